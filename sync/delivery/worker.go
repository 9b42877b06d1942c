package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/tenants/agreements"
)

// DeliverArgs is the job that sends one delivery. It carries ids only: the
// worker reads the record, the destination and the learner's consent as
// they are when it runs.
type DeliverArgs struct {
	TenantID   uuid.UUID `json:"tenant_id"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

// Kind names the job for River.
func (DeliverArgs) Kind() string { return "delivery.send" }

// InsertOpts puts the job on the delivery queue. River's attempts count
// only the hub's own faults (the database unavailable): a receiver's
// failures are counted on the delivery, and waited out by snoozing.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueDelivery, MaxAttempts: 25}
}

// Worker works DeliverArgs jobs.
type Worker struct {
	river.WorkerDefaults[DeliverArgs]
	s *Service
}

// Worker is the service's River worker.
func (s *Service) Worker() *Worker { return &Worker{s: s} }

// Timeout lets a delivery's transaction run its course.
func (w *Worker) Timeout(*river.Job[DeliverArgs]) time.Duration { return sendTimeout + 5*time.Second }

// Work makes one attempt at the delivery and snoozes the job for the
// next one when the delivery stays pending.
func (w *Worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	wait, err := w.s.Deliver(ctx, job.Args.TenantID, job.Args.DeliveryID)
	if err != nil {
		return err
	}
	if wait > 0 {
		return river.JobSnooze(wait)
	}
	return nil
}

// Statuses of a delivery.
const (
	StatusPending    = "pending"
	StatusDelivered  = "delivered"
	StatusDryRun     = "dry_run"
	StatusWithheld   = "withheld"
	StatusSuperseded = "superseded"
	StatusFailed     = "failed"
	StatusDead       = "dead"
)

// Reasons a delivery failed, besides the policy's reasons to withhold.
const (
	ReasonRefused           = "refused"            // the receiver answered a 4xx (or 3xx)
	ReasonForbiddenAddress  = "forbidden_address"  // the outbound guard refused the address
	ReasonExhausted         = "attempts_exhausted" // dead: every attempt failed
	ReasonDestinationGone   = "destination_deleted"
	ReasonDestinationOff    = "destination_disabled"
	ReasonResourceLinkGone  = "resource_link_deleted"
	ReasonNoIdentity        = "no_platform_identity"    // the learner never launched from that platform
	ReasonNoScoreScope      = "score_scope_not_granted" // the course did not grant AGS scores
	ReasonNoLineItemScope   = "lineitem_scope_not_granted"
	ReasonLineItemGone      = "line_item_deleted"
	ReasonOtherHost         = "line_item_on_other_host"
	ReasonTokenRefused      = "token_refused"
	ReasonInvalidRecord     = "invalid_record"
	ReasonMalformedPlatform = "malformed_answer"
	ReasonNewerScore        = "newer_score"
)

// row is a delivery as the worker reads it.
type row struct {
	ID              uuid.UUID  `db:"id"`
	TenantID        uuid.UUID  `db:"tenant_id"`
	ResultID        *uuid.UUID `db:"result_id"`
	UserID          *uuid.UUID `db:"user_id"`
	Kind            string     `db:"destination_kind"`
	DestinationID   *uuid.UUID `db:"destination_id"`
	ResourceLinkRef *uuid.UUID `db:"resource_link_ref"`
	Category        string     `db:"category"`
	Status          string     `db:"status"`
	Attempts        int        `db:"attempts"`
	Throttled       int        `db:"throttled"`
	OccurredAt      time.Time  `db:"occurred_at"`
	CreatedAt       time.Time  `db:"created_at"`
	NotBefore       *time.Time `db:"not_before"`
}

// rowColumns are the columns of a row.
const rowColumns = `id, tenant_id, result_id, user_id, destination_kind, destination_id, resource_link_ref, category, status,
	attempts, throttled, occurred_at, created_at, not_before`

func (d row) destination() agreements.Destination {
	return agreements.Destination{Kind: agreements.DestinationKind(d.Kind), ID: d.DestinationID}
}

// outcome is what one run of a delivery came to.
type outcome struct {
	// end is the delivery's final status when decided without an attempt
	// (withheld, superseded, failed before sending); "" otherwise.
	end    string
	reason string
	// attempt is the attempt made, if one was.
	attempt *Result
	// busy: nothing was tried (the pair's or the destination's turn is
	// taken); try again after this long.
	busy time.Duration
	// deferred: nothing was tried (a batch stopped before it as its
	// receiver asked for a pause); the delivery is not tried for this long.
	deferred       time.Duration
	scoreTimestamp *time.Time
	receivedAt     time.Time // the result's report, for the receipt latency
}

// errBusy is a delivery another worker holds.
var errBusy = errors.New("delivery: held by another worker")

// Deliver makes one attempt at the tenant's delivery id, in one
// transaction on the job engine's pool that holds the delivery's row and
// the learner's (agreements.Disclose) until the attempt is recorded. It
// answers how long to wait before the next attempt, 0 when the delivery
// ended (or is not pending). An error is the hub's own fault (the
// database), for River to retry.
func (s *Service) Deliver(ctx context.Context, tenant, id uuid.UUID) (wait time.Duration, err error) {
	err = pg.InTenantFor(ctx, s.db, tenant, sendTimeout, func(tx *sqlx.Tx) error {
		if err := lockLearner(ctx, tx, tenant, id); err != nil {
			return err
		}
		d, err := lockDelivery(ctx, tx, tenant, id)
		if errors.Is(err, errBusy) {
			wait = time.Second
			return nil
		}
		if err != nil || d == nil || d.Status != StatusPending {
			return err
		}
		if now := s.Now(); d.NotBefore != nil && d.NotBefore.After(now) {
			wait = d.NotBefore.Sub(now) // a batch deferred it
			return nil
		}
		var runs []ran
		switch {
		case d.UserID == nil || d.ResultID == nil:
			o, err := s.withholdErased(ctx, tx, *d)
			runs = []ran{{*d, o}}
			if err != nil {
				return err
			}
		case d.Kind == string(agreements.DestinationLMS):
			o, err := s.sendScore(ctx, tx, *d)
			runs = []ran{{*d, o}}
			if err != nil {
				return err
			}
		default:
			if runs, err = s.sendRecords(ctx, tx, *d); err != nil {
				return err
			}
		}
		for _, r := range runs {
			w, err := s.finish(ctx, tx, r.d, r.o)
			if err != nil {
				return err
			}
			if r.d.ID == id {
				wait = w
			}
		}
		return nil
	})
	return wait, err
}

// lockLearner holds the delivery's learner's row FOR SHARE before the
// delivery's row is locked: an erasure locks the learner first and then
// detaches their deliveries, so taking the two in the same order means
// neither waits for the other in a circle.
func lockLearner(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID) error {
	_, err := tx.ExecContext(ctx, `SELECT 1 FROM users WHERE tenant_id = $1
			AND id = (SELECT user_id FROM deliveries WHERE tenant_id = $1 AND id = $2)
		FOR SHARE`, tenant, id)
	if err != nil {
		return fmt.Errorf("delivery: lock learner: %w", err)
	}
	return nil
}

// lockDelivery reads the delivery and locks it, or errBusy when another
// worker holds it (a rescued job whose first run still sends); nil when
// there is none (erased with its tenant's data, or never committed).
func lockDelivery(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID) (*row, error) {
	var d row
	err := tx.GetContext(ctx, &d, `SELECT `+rowColumns+` FROM deliveries WHERE tenant_id = $1 AND id = $2 FOR UPDATE NOWAIT`, tenant, id)
	switch {
	case pg.IsNoRows(err):
		return nil, nil
	case pg.IsLockNotAvailable(err):
		return nil, errBusy
	case err != nil:
		return nil, fmt.Errorf("delivery: read: %w", err)
	}
	return &d, nil
}

// withholdErased ends a delivery whose learner was erased before it went:
// withheld, and on the record of disclosures without naming anyone.
func (s *Service) withholdErased(ctx context.Context, tx *sqlx.Tx, d row) (outcome, error) {
	_, err := agreements.RecordDecision(ctx, tx, d.TenantID, agreements.Disclosure{Destination: d.destination(),
		Category: agreements.Category(d.Category), Decision: agreements.OutcomeWithhold, Reason: agreements.ReasonLearnerErased,
		RecordType: recordType, DecidedAt: s.Now()})
	if err != nil {
		return outcome{}, err
	}
	return outcome{end: StatusWithheld, reason: string(agreements.ReasonLearnerErased)}, nil
}

// recordType is what the record of disclosures calls a result.
const recordType = "result"

// disclose passes the record through the agreements' policy now, and
// records the decision; a withheld record ends the delivery.
func (s *Service) disclose(ctx context.Context, tx *sqlx.Tx, d row, fields []agreements.Field) (agreements.Decision, *outcome, error) {
	dec, err := agreements.Disclose(ctx, tx, d.TenantID, agreements.Outbound{Learner: *d.UserID, Destination: d.destination(),
		Category: agreements.Category(d.Category), Fields: fields, RecordType: recordType, RecordID: d.ResultID}, s.Now())
	if err != nil {
		return dec, nil, err
	}
	if dec.Outcome == agreements.OutcomeWithhold {
		return dec, &outcome{end: StatusWithheld, reason: string(dec.Reason)}, nil
	}
	return dec, nil, nil
}

// maxError bounds a delivery's last error and an attempt's.
const maxError = 2000

// finish records what became of the run: its attempt, the delivery's new
// status and counts, and the metrics; it answers the wait before the next
// attempt when the delivery stays pending.
func (s *Service) finish(ctx context.Context, tx *sqlx.Tx, d row, o outcome) (time.Duration, error) {
	if o.deferred > 0 {
		_, err := tx.ExecContext(ctx, `UPDATE deliveries SET not_before = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
			d.TenantID, d.ID, s.Now().Add(o.deferred), s.Now())
		if err != nil {
			return 0, fmt.Errorf("delivery: defer: %w", err)
		}
		return o.deferred, nil
	}
	if o.end == "" && o.attempt == nil {
		return o.busy, nil
	}
	now := s.Now()
	status, reason, wait := o.end, o.reason, time.Duration(0)
	attempts, throttled := d.Attempts, d.Throttled
	var lastStatus *int
	var lastError *string
	if a := o.attempt; a != nil {
		if err := s.recordAttempt(ctx, tx, d, *a, now); err != nil {
			return 0, err
		}
		s.m.attempted(d.Kind, a.Latency)
		if a.Status != 0 {
			lastStatus = &a.Status
		}
		if msg := attemptError(*a); msg != "" {
			lastError = &msg
		}
		switch a.Outcome {
		case Delivered:
			status = StatusDelivered
		case DryRun:
			status = StatusDryRun
		case Failed:
			status = StatusFailed
			if reason == "" {
				reason = ReasonRefused
				if a.Cause == CauseForbiddenAddress {
					reason = ReasonForbiddenAddress
				}
			}
		case Retry:
			if attempts++; attempts >= s.Policy.MaxAttempts {
				status, reason = StatusDead, ReasonExhausted
			} else {
				status, wait = StatusPending, s.Policy.backoff(attempts)
				s.m.count(d.Kind, "retried", 1)
			}
		case Throttled:
			throttled++
			status, wait = StatusPending, s.Policy.throttleWait(a.RetryAfter, throttled)
			s.m.count(d.Kind, "throttled", 1)
		}
	}
	var deliveredAt *time.Time
	if status == StatusDelivered || status == StatusDryRun {
		deliveredAt = &now
		if status == StatusDelivered {
			s.m.received(d.Kind, now.Sub(o.receivedAt))
		}
	}
	if status != StatusPending {
		s.m.count(d.Kind, status, 1)
	}
	_, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = $3, reason = nullif($4, ''), attempts = $5, throttled = $6,
			last_status = coalesce($7, last_status), last_error = coalesce($8, last_error), score_timestamp = coalesce($9, score_timestamp),
			delivered_at = $10, updated_at = $11, not_before = $12
		WHERE tenant_id = $1 AND id = $2`,
		d.TenantID, d.ID, status, reason, attempts, throttled, lastStatus, lastError, o.scoreTimestamp, deliveredAt, now, notBefore(status, now, wait))
	if err != nil {
		return 0, fmt.Errorf("delivery: record outcome: %w", err)
	}
	return wait, nil
}

// notBefore is when a pending delivery may be tried again.
func notBefore(status string, now time.Time, wait time.Duration) *time.Time {
	if status != StatusPending || wait <= 0 {
		return nil
	}
	t := now.Add(wait)
	return &t
}

// recordAttempt keeps the delivery's next attempt: the answer's status,
// latency and first bytes, why none came, and in a dry run the request as
// it would have gone. Attempts are numbered on from the last one kept, so
// a redriven delivery (its counts back at zero) adds to its history.
func (s *Service) recordAttempt(ctx context.Context, tx *sqlx.Tx, d row, a Result, at time.Time) error {
	var request []byte
	if a.Request != nil {
		b, err := json.Marshal(recordedRequest{Method: a.Request.Method, URL: a.Request.URL, Header: a.Request.Header,
			Body: string(a.Request.Body)})
		if err != nil {
			return fmt.Errorf("delivery: record request: %w", err)
		}
		request = b
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
	_, err := tx.ExecContext(ctx, `INSERT INTO delivery_attempts (tenant_id, delivery_id, n, at, outcome, status, latency_ms,
			error, response, request)
		VALUES ($1, $2, (SELECT coalesce(max(n), 0) + 1 FROM delivery_attempts WHERE tenant_id = $1 AND delivery_id = $2),
			$3, $4, $5, $6, nullif($7, ''), nullif($8, ''), $9)`,
		d.TenantID, d.ID, at, string(a.Outcome), status, latency, attemptError(a), text(a.Body), nullJSON(request))
	if err != nil {
		return fmt.Errorf("delivery: record attempt: %w", err)
	}
	return nil
}

// recordedRequest is a dry run's request as the attempt keeps it.
type recordedRequest struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Header map[string][]string `json:"headers"`
	Body   string              `json:"body"`
}

func nullJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// attemptError says why an attempt did not deliver, for the admin: the
// cause of no answer, or the status; "" for a delivered attempt.
func attemptError(a Result) string {
	var msg string
	switch {
	case a.Outcome == Delivered || a.Outcome == DryRun:
		return ""
	case a.Err != nil && a.Cause != "":
		msg = a.Cause + ": " + a.Err.Error()
	case a.Err != nil:
		msg = a.Err.Error()
	case a.Status != 0:
		msg = fmt.Sprintf("the receiver answered %d", a.Status)
	}
	return truncate(msg, maxError)
}

// text is the receiver's bytes as valid UTF-8 text for the database.
func text(b []byte) string {
	return truncate(string([]rune(string(b))), MaxResultBody*4)
}

// truncate cuts s to at most n bytes on a rune boundary, dropping NULs
// (which text columns refuse).
func truncate(s string, n int) string {
	out := make([]rune, 0, min(len(s), n))
	size := 0
	for _, r := range s {
		if r == 0 {
			continue
		}
		if size += utf8.RuneLen(r); size > n {
			break
		}
		out = append(out, r)
	}
	return string(out)
}
