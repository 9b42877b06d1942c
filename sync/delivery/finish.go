package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/klasterina/hub/internal/pg"
)

// change is a delivery's new state after a run.
type change struct {
	d           row
	status      string
	reason      string
	attempts    int
	throttled   int
	lastStatus  *int
	lastError   *string
	scoreTime   *time.Time
	deliveredAt *time.Time
	notBefore   *time.Time
	attempt     *Result
}

// settle is what a run's outcome makes of the delivery, and the wait
// before its next try when it stays pending; nil when nothing changed.
func (s *Service) settle(d row, o outcome, now time.Time) (*change, time.Duration) {
	if o.deferred > 0 {
		nb := now.Add(o.deferred)
		return &change{d: d, status: StatusPending, attempts: d.Attempts, throttled: d.Throttled, notBefore: &nb}, o.deferred
	}
	if o.end == "" && o.attempt == nil {
		return nil, o.busy
	}
	c := &change{d: d, status: o.end, reason: o.reason, attempts: d.Attempts, throttled: d.Throttled, scoreTime: o.scoreTimestamp,
		attempt: o.attempt}
	var wait time.Duration
	if a := o.attempt; a != nil {
		s.m.attempted(d.Kind, a.Latency)
		if a.Status != 0 {
			c.lastStatus = &a.Status
		}
		if msg := attemptError(*a); msg != "" {
			c.lastError = &msg
		}
		switch a.Outcome {
		case Delivered:
			c.status = StatusDelivered
		case DryRun:
			c.status = StatusDryRun
		case Failed:
			c.status = StatusFailed
			if c.reason == "" {
				c.reason = ReasonRefused
				if a.Cause == CauseForbiddenAddress {
					c.reason = ReasonForbiddenAddress
				}
			}
		case Retry:
			if c.attempts++; c.attempts >= s.Policy.MaxAttempts {
				c.status, c.reason = StatusDead, ReasonExhausted
			} else {
				c.status, wait = StatusPending, s.Policy.backoff(c.attempts)
				s.m.count(d.Kind, "retried", 1)
			}
		case Throttled:
			c.throttled++
			c.status, wait = StatusPending, s.Policy.throttleWait(a.RetryAfter, c.throttled)
			s.m.count(d.Kind, "throttled", 1)
		}
	}
	if c.status == StatusDelivered || c.status == StatusDryRun {
		c.deliveredAt = &now
		if c.status == StatusDelivered {
			s.m.received(d.Kind, now.Sub(o.receivedAt))
		}
	}
	if c.status != StatusPending {
		s.m.count(d.Kind, c.status, 1)
	}
	c.notBefore = notBefore(c.status, now, wait)
	return c, wait
}

// finish records what the runs came to, in two statements whatever their
// number (their attempts, and the deliveries' new states), and deletes
// the jobs of the deliveries a batch ended for them, which have nothing
// left to do. It answers each delivery's wait before its next try.
func (s *Service) finish(ctx context.Context, tx *sqlx.Tx, runs []ran) (map[uuid.UUID]time.Duration, error) {
	now := s.Now()
	waits := make(map[uuid.UUID]time.Duration, len(runs))
	var changes []*change
	var ended []int64
	for i, r := range runs {
		c, wait := s.settle(r.d, r.o, now)
		waits[r.d.ID] = wait
		if c == nil {
			continue
		}
		changes = append(changes, c)
		if i > 0 && c.status != StatusPending && r.d.JobID != nil {
			ended = append(ended, *r.d.JobID)
		}
	}
	if err := s.saveAttempts(ctx, tx, changes, now); err != nil {
		return nil, err
	}
	if err := saveChanges(ctx, tx, changes, now); err != nil {
		return nil, err
	}
	if len(ended) > 0 {
		if _, err := s.Jobs.JobDeleteManyTx(ctx, tx.Tx, river.NewJobDeleteManyParams().IDs(ended...).
			States(rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStateRetryable)); err != nil {
			return nil, fmt.Errorf("delivery: drop the batch's jobs: %w", err)
		}
	}
	return waits, nil
}

// saveAttempts keeps the runs' attempts: the answer's status, latency and
// first bytes, why none came, and in a dry run the request as it would
// have gone. Attempts are numbered on from the last one kept, so a
// redriven delivery (its counts back at zero) adds to its history.
func (s *Service) saveAttempts(ctx context.Context, tx *sqlx.Tx, changes []*change, at time.Time) error {
	var tried []uuid.UUID
	for _, c := range changes {
		if c.attempt != nil {
			tried = append(tried, c.d.ID)
		}
	}
	if len(tried) == 0 {
		return nil
	}
	last, err := lastAttempts(ctx, tx, changes[0].d.TenantID, tried)
	if err != nil {
		return err
	}
	var args []any
	n := 0
	for _, c := range changes {
		a := c.attempt
		if a == nil {
			continue
		}
		var request any
		if a.Request != nil {
			b, err := json.Marshal(recordedRequest{Method: a.Request.Method, URL: a.Request.URL, Header: a.Request.Header,
				Body: string(a.Request.Body)})
			if err != nil {
				return fmt.Errorf("delivery: record request: %w", err)
			}
			request = string(b)
		}
		var status *int
		if a.Status != 0 {
			status = &a.Status
		}
		var latency *float64
		if a.Latency > 0 {
			ms := float64(a.Latency) / float64(time.Millisecond)
			latency = &ms
		}
		args = append(args, c.d.TenantID, c.d.ID, last[c.d.ID]+1, at, string(a.Outcome), status, latency, attemptError(*a), text(a.Body), request)
		n++
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO delivery_attempts (tenant_id, delivery_id, n, at, outcome, status, latency_ms,
			error, response, request)
		SELECT v.tenant_id::uuid, v.delivery_id::uuid, v.n::integer, v.at::timestamptz, v.outcome, v.status::integer,
			v.latency::double precision, nullif(v.error, ''), nullif(v.response, ''), v.request::jsonb
		FROM (VALUES `+pg.Values(n, 10)+`) AS v (tenant_id, delivery_id, n, at, outcome, status, latency, error, response, request)`, args...)
	if err != nil {
		return fmt.Errorf("delivery: record attempts: %w", err)
	}
	return nil
}

// lastAttempts is the number of each delivery's last attempt kept.
func lastAttempts(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]int, error) {
	var rows []struct {
		ID uuid.UUID `db:"delivery_id"`
		N  int       `db:"n"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT delivery_id, max(n) AS n FROM delivery_attempts
		WHERE tenant_id = $1 AND delivery_id = ANY ($2) GROUP BY delivery_id`, tenant, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("delivery: read attempts: %w", err)
	}
	out := make(map[uuid.UUID]int, len(rows))
	for _, r := range rows {
		out[r.ID] = r.N
	}
	return out, nil
}

// saveChanges writes the deliveries' new states.
func saveChanges(ctx context.Context, tx *sqlx.Tx, changes []*change, now time.Time) error {
	if len(changes) == 0 {
		return nil
	}
	args := make([]any, 0, len(changes)*11)
	for _, c := range changes {
		args = append(args, c.d.ID, c.status, c.reason, c.attempts, c.throttled, c.lastStatus, c.lastError, c.scoreTime,
			c.deliveredAt, c.notBefore, c.d.TenantID)
	}
	_, err := tx.ExecContext(ctx, `UPDATE deliveries d SET status = v.status, reason = nullif(v.reason, ''),
			attempts = v.attempts::integer, throttled = v.throttled::integer,
			last_status = coalesce(v.last_status::integer, d.last_status), last_error = coalesce(v.last_error, d.last_error),
			score_timestamp = coalesce(v.score_timestamp::timestamptz, d.score_timestamp),
			delivered_at = v.delivered_at::timestamptz, not_before = v.not_before::timestamptz, updated_at = $`+fmt.Sprint(len(args)+1)+`
		FROM (VALUES `+pg.Values(len(changes), 11)+`) AS v (id, status, reason, attempts, throttled, last_status, last_error,
			score_timestamp, delivered_at, not_before, tenant_id)
		WHERE d.tenant_id = v.tenant_id::uuid AND d.id = v.id::uuid`, append(args, now)...)
	if err != nil {
		return fmt.Errorf("delivery: record outcomes: %w", err)
	}
	return nil
}

// notBefore is when a pending delivery may be tried again.
func notBefore(status string, now time.Time, wait time.Duration) *time.Time {
	if status != StatusPending || wait <= 0 {
		return nil
	}
	t := now.Add(wait)
	return &t
}
