package delivery

import (
	"context"
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
	JobID           *int64     `db:"job_id"`
}

// rowColumns are the columns of a row.
const rowColumns = `id, tenant_id, result_id, user_id, destination_kind, destination_id, resource_link_ref, category, status,
	attempts, throttled, occurred_at, created_at, not_before, job_id`

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
	// sent says the record went out, or may have (an attempt without an
	// answer): its decision goes on the record of disclosures.
	sent bool
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
	err = pg.InTenantFor(ctx, s.sendDB, tenant, sendTimeout, func(tx *sqlx.Tx) error {
		if err := lockLearner(ctx, tx, tenant, id); err != nil {
			return err
		}
		d, err := lockDelivery(ctx, tx, tenant, id)
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
		waits, err := s.finish(ctx, tx, runs)
		wait = waits[id]
		return err
	})
	if errors.Is(err, errBusy) {
		return time.Second, nil // its transaction ended with the wait
	}
	return wait, err
}

// lockLearner holds the delivery's learner (agreements.HoldLearners)
// before the delivery's row is locked: an erasure takes the learner
// first and then detaches their deliveries, so taking the two in the same
// order means neither waits for the other in a circle. errBusy while an
// erasure of the learner runs or waits.
func lockLearner(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID) error {
	var user *uuid.UUID
	err := tx.GetContext(ctx, &user, `SELECT user_id FROM deliveries WHERE tenant_id = $1 AND id = $2`, tenant, id)
	if pg.IsNoRows(err) || (err == nil && user == nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delivery: read learner: %w", err)
	}
	held, err := agreements.HoldLearners(ctx, tx, tenant, []uuid.UUID{*user})
	if err == nil && len(held) == 0 {
		return errBusy
	}
	return err
}

// lockWait is how long a delivery's job waits for its row when another
// worker holds it (a batch took it along): briefly, then the job gives its
// worker back and looks again later, when the batch has sent it (and
// dropped its job) or left it to it.
const lockWait = "50ms"

// lockDelivery reads the delivery and locks it, waiting up to lockWait
// when another worker holds it (a batch that took it along, or a rescued
// job's first run still sending): errBusy when it still does. Nil when
// there is none (never committed).
func lockDelivery(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID) (*row, error) {
	if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true)`, lockWait); err != nil {
		return nil, fmt.Errorf("delivery: lock timeout: %w", err)
	}
	var d row
	err := tx.GetContext(ctx, &d, `SELECT `+rowColumns+` FROM deliveries WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, id)
	switch {
	case pg.IsNoRows(err):
		return nil, nil
	case pg.IsLockNotAvailable(err):
		return nil, errBusy
	case err != nil:
		return nil, fmt.Errorf("delivery: read: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', '0', true)`); err != nil {
		return nil, fmt.Errorf("delivery: lock timeout: %w", err)
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

// maxError bounds a delivery's last error and an attempt's.
const maxError = 2000

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
