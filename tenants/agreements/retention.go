package agreements

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// DefaultDisclosureRetentionDays is how long the record of a decision
// made under no agreement is kept while the tenant has no active
// agreement either: about seven years (HUB_DISCLOSURE_RETENTION_DAYS sets
// another).
const DefaultDisclosureRetentionDays = 2555

// RetentionBatch is how many rows one transaction of a run deletes: a
// backlog of millions is worked in short transactions, none holding its
// locks for long.
const RetentionBatch = 1000

// What asked for a retention run.
const (
	RetentionBySchedule = "schedule"
	RetentionByRequest  = "request"
)

// Retention run states.
const (
	RetentionQueued    = "queued"
	RetentionRunning   = "running"
	RetentionSucceeded = "succeeded"
	RetentionFailed    = "failed"
)

// RetentionRun is one run of a tenant's retention, with what it deleted
// so far.
type RetentionRun struct {
	ID                 uuid.UUID  `db:"id" json:"id"`
	TenantID           uuid.UUID  `db:"tenant_id" json:"-"`
	Trigger            string     `db:"trigger" json:"trigger"`
	Status             string     `db:"status" json:"status"`
	RequestedAt        time.Time  `db:"requested_at" json:"requested_at"`
	StartedAt          *time.Time `db:"started_at" json:"started_at"`
	FinishedAt         *time.Time `db:"finished_at" json:"finished_at"`
	DisclosuresDeleted int        `db:"disclosures_deleted" json:"disclosures_deleted"`
	LearnersErased     int        `db:"learners_erased" json:"learners_erased"`
	Error              *string    `db:"error" json:"error"`
}

const retentionRunColumns = `id, tenant_id, trigger, status, requested_at, started_at, finished_at, disclosures_deleted,
	learners_erased, error`

// Expiring is one table whose rows retention deletes once they are older
// than the retention of the agreement version they were made under. Its
// rows have tenant_id, id and agreement_id (the version, or NULL for none)
// columns, and an index on (tenant_id, agreement_id, At). A row made under
// no agreement is kept as long as the tenant's active agreement says, or,
// with none active, Retention.DefaultDays.
type Expiring struct {
	Table string
	// At is the column a row's age is counted from.
	At string
	// Retention is the agreements column that says for how many days the
	// rows are kept: disclosure_retention_days or copy_retention_days.
	Retention string
	// Counted is the retention_runs column counting the rows deleted.
	Counted string
}

// Expirings lists every table retention deletes from by age: the record
// of disclosures, then the copies of shared records (KeptCopies).
func Expirings() []Expiring {
	return append([]Expiring{{Table: "disclosures", At: "decided_at", Retention: "disclosure_retention_days",
		Counted: "disclosures_deleted"}}, KeptCopies()...)
}

// KeptCopies lists the tables of copies the hub keeps of records it
// shared, each kept for the copy_retention_days of the version it was
// shared under. None exists yet: nothing sends records until the delivery
// work arrives. A table of copies joins retention by one entry here (with
// Retention "copy_retention_days") and a count column of its own on
// retention_runs.
func KeptCopies() []Expiring { return nil }

// ErrRetentionPaused says a run stopped before its deadline with what it
// did so far recorded: working it again carries on.
var ErrRetentionPaused = errors.New("agreements: retention run paused before its deadline")

// ErrRetentionRunEnded says the run has ended, or is not the tenant's:
// there is nothing to work.
var ErrRetentionRunEnded = errors.New("agreements: the retention run has ended")

// retentionMargin is the time a run keeps in hand before its deadline:
// longer than one batch's transaction may take.
const retentionMargin = 2 * pg.TxTimeout

// retentionActor is who a run's audit entries name.
var retentionActor = audit.System("retention")

// Retention deletes what a tenant's agreements say the hub keeps no
// longer, and records each run (table retention_runs):
//
//   - the rows of each Expirings table older than their agreement
//     version's retention (a row of no agreement: the active agreement's,
//     or DefaultDays with none active);
//   - when the tenant's newest version in force was terminated with
//     on_end delete and its copy_retention_days have passed since it
//     ended, every learner the tenant had when it ended, erased as
//     Learners.Erase erases one (each in a transaction of its own,
//     audited as learner.erased). A version activated since stops it.
//
// Deletions go a batch at a time, each batch in a transaction of its own
// with the run's count, so a run resumed after a crash or a pause carries
// on with its counts right; erased learners are never erased twice. The
// run's end is audited as retention.ran, with counts only.
type Retention struct {
	db       *sqlx.DB
	chain    *audit.Keyring
	learners *Learners
	// DefaultDays is how long rows made under no agreement are kept while
	// the tenant has no active agreement.
	DefaultDays int
	// Batch is how many rows a transaction deletes (RetentionBatch).
	Batch int
	Now   func() time.Time

	// batchHook, in tests, hears of each batch committed: the table and
	// how many rows went.
	batchHook func(table string, n int64)
}

// NewRetention returns the tenants' retention over db, audited in chain;
// defaultDays 0 is DefaultDisclosureRetentionDays.
func NewRetention(db *sqlx.DB, chain *audit.Keyring, defaultDays int) *Retention {
	if defaultDays <= 0 {
		defaultDays = DefaultDisclosureRetentionDays
	}
	r := &Retention{db: db, chain: chain, DefaultDays: defaultDays, Batch: RetentionBatch, Now: time.Now}
	r.learners = &Learners{db: db, chain: chain, Now: func() time.Time { return r.Now() }}
	return r
}

// QueueTx queues a run of the tenant's retention in the caller's
// transaction tx (pg.InTenant for tenant), unless one is queued or
// running: that one is answered instead (joined). A run asked for by
// someone (by not nil) is audited as retention.requested.
func (r *Retention) QueueTx(ctx context.Context, tx *sqlx.Tx, by *audit.Actor, tenant uuid.UUID, trigger string) (RetentionRun, bool, error) {
	now := r.Now()
	var run RetentionRun
	var joined bool
	for attempt := 1; ; attempt++ {
		err := tx.GetContext(ctx, &run, `INSERT INTO retention_runs (id, tenant_id, trigger, status, requested_at)
			VALUES ($1, $2, $3, 'queued', $4)
			ON CONFLICT (tenant_id) WHERE status IN ('queued', 'running') DO NOTHING
			RETURNING `+retentionRunColumns, uuid.New(), tenant, trigger, now)
		if joined = pg.IsNoRows(err); joined {
			err = tx.GetContext(ctx, &run, `SELECT `+retentionRunColumns+` FROM retention_runs
				WHERE tenant_id = $1 AND status IN ('queued', 'running')`, tenant)
		}
		if pg.IsNoRows(err) && attempt < 3 { // the run it met ended meanwhile
			continue
		}
		if err != nil {
			return RetentionRun{}, false, pg.MapError(fmt.Errorf("agreements: queue retention run: %w", err))
		}
		break
	}
	if by != nil {
		if _, err := r.chain.Append(ctx, tx, &tenant, *by, audit.Event{Action: "retention.requested", TargetType: "retention_run",
			TargetID: run.ID.String(), Details: map[string]string{"joined": strconv.FormatBool(joined)}}, now); err != nil {
			return RetentionRun{}, false, err
		}
	}
	return run, joined, nil
}

// Work runs the tenant's queued or running run id until it is done, or
// until deadline (zero: none) nears, when it answers ErrRetentionPaused
// with its progress recorded. ErrRetentionRunEnded for a run that has
// ended. On any other error the run stays running for another try; Fail
// ends it.
func (r *Retention) Work(ctx context.Context, tenant, id uuid.UUID, deadline time.Time) (RetentionRun, error) {
	run, err := r.start(ctx, tenant, id)
	if err != nil {
		return run, err
	}
	w := &retentionWork{r: r, tenant: tenant, run: id, deadline: deadline, now: r.Now()}
	for _, e := range Expirings() {
		if err := w.expire(ctx, e); err != nil {
			return run, err
		}
	}
	if err := w.eraseEnded(ctx); err != nil {
		return run, err
	}
	return r.finish(ctx, tenant, id, "")
}

// Fail ends a run that cannot finish (its job's last try failed) as
// failed, with detail for the tenant's admins (no personal data, no
// internals), and audits it.
func (r *Retention) Fail(ctx context.Context, tenant, id uuid.UUID, detail string) (RetentionRun, error) {
	if detail == "" {
		detail = "failed"
	}
	return r.finish(ctx, tenant, id, detail)
}

func (r *Retention) start(ctx context.Context, tenant, id uuid.UUID) (RetentionRun, error) {
	var run RetentionRun
	err := pg.InTenant(ctx, r.db, tenant, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &run, `UPDATE retention_runs SET status = 'running', started_at = coalesce(started_at, $3)
			WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running') RETURNING `+retentionRunColumns, tenant, id, r.Now())
	})
	if pg.IsNoRows(err) {
		return RetentionRun{}, ErrRetentionRunEnded
	}
	return run, pg.MapError(err)
}

// finish ends the run, succeeded (failure "") or failed, and audits
// retention.ran with its counts.
func (r *Retention) finish(ctx context.Context, tenant, id uuid.UUID, failure string) (RetentionRun, error) {
	status := RetentionSucceeded
	if failure != "" {
		status = RetentionFailed
	}
	var run RetentionRun
	err := pg.InTenant(ctx, r.db, tenant, func(tx *sqlx.Tx) error {
		now := r.Now()
		err := tx.GetContext(ctx, &run, `UPDATE retention_runs SET status = $3, finished_at = $4, error = nullif($5, '')
			WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running') RETURNING `+retentionRunColumns,
			tenant, id, status, now, truncate(failure, 1024))
		if pg.IsNoRows(err) {
			return ErrRetentionRunEnded
		}
		if err != nil {
			return err
		}
		_, err = r.chain.Append(ctx, tx, &tenant, retentionActor, audit.Event{Action: "retention.ran", TargetType: "retention_run",
			TargetID: run.ID.String(), Details: map[string]string{"trigger": run.Trigger, "status": run.Status,
				"disclosures_deleted": strconv.Itoa(run.DisclosuresDeleted), "learners_erased": strconv.Itoa(run.LearnersErased)}}, now)
		return err
	})
	return run, pg.MapError(err)
}

// retentionWork is one Work call on a run: its cutoff time is now.
type retentionWork struct {
	r        *Retention
	tenant   uuid.UUID
	run      uuid.UUID
	deadline time.Time
	now      time.Time
}

func (w *retentionWork) pausing() bool {
	return !w.deadline.IsZero() && time.Until(w.deadline) < retentionMargin
}

// count adds n to the run's column in tx; ErrRetentionRunEnded (rolling
// tx back) when the run is no longer running.
func (w *retentionWork) count(ctx context.Context, tx *sqlx.Tx, column string, n int64) error {
	col := pq.QuoteIdentifier(column)
	res, err := tx.ExecContext(ctx, `UPDATE retention_runs SET `+col+` = `+col+` + $3
		WHERE tenant_id = $1 AND id = $2 AND status = 'running'`, w.tenant, w.run, n)
	if err != nil {
		return err
	}
	if done, _ := res.RowsAffected(); done == 0 {
		return ErrRetentionRunEnded
	}
	return nil
}

// expire deletes e's expired rows of the tenant: those of each version
// that was in force, and those of no agreement, by its own cutoff, a
// batch per transaction.
func (w *retentionWork) expire(ctx context.Context, e Expiring) error {
	limits, err := w.limits(ctx, e)
	if err != nil {
		return err
	}
	for _, l := range limits {
		if err := w.expireBefore(ctx, e, l.Agreement, w.now.Add(-time.Duration(l.Days)*24*time.Hour)); err != nil {
			return err
		}
	}
	return nil
}

// retentionLimit is how many days the rows made under an agreement
// version (nil: under none) are kept.
type retentionLimit struct {
	Agreement *uuid.UUID `db:"id"`
	Days      int        `db:"days"`
}

// limits are the days of e's retention for each version that was in
// force, and for rows of no agreement: the active version's, or
// DefaultDays.
func (w *retentionWork) limits(ctx context.Context, e Expiring) ([]retentionLimit, error) {
	col := pq.QuoteIdentifier(e.Retention)
	var limits []retentionLimit
	err := pg.InTenant(ctx, w.r.db, w.tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &limits, `SELECT id, `+col+` AS days FROM agreements WHERE tenant_id = $1 AND status <> 'draft'
			UNION ALL SELECT NULL::uuid, coalesce((SELECT `+col+` FROM agreements WHERE tenant_id = $1 AND status = 'active'), $2::integer)`,
			w.tenant, w.r.DefaultDays)
	})
	if err != nil {
		return nil, pg.MapError(fmt.Errorf("agreements: retention of %s: %w", e.Table, err))
	}
	return limits, nil
}

// expireBefore deletes e's rows of the agreement (nil: of none) made
// before cutoff, a batch per transaction with the run's count.
func (w *retentionWork) expireBefore(ctx context.Context, e Expiring, agreement *uuid.UUID, cutoff time.Time) error {
	q := e.deleteQuery(agreement == nil)
	for {
		if w.pausing() {
			return ErrRetentionPaused
		}
		var n int64
		err := pg.InTenant(ctx, w.r.db, w.tenant, func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, q, w.tenant, agreement, cutoff, w.r.Batch)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
			return w.count(ctx, tx, e.Counted, n)
		})
		if err != nil {
			return pg.MapError(fmt.Errorf("agreements: retention of %s: %w", e.Table, err))
		}
		if w.r.batchHook != nil {
			w.r.batchHook(e.Table, n)
		}
		if n < int64(w.r.Batch) {
			return nil
		}
	}
}

// deleteQuery deletes at most $4 of the tenant's ($1) rows of agreement
// $2 (of none: $2 is NULL and ignored) made before $3. The table's index
// on (tenant_id, agreement_id, At) reads exactly the rows to delete.
func (e Expiring) deleteQuery(none bool) string {
	of := `agreement_id = $2`
	if none {
		of = `agreement_id IS NULL AND $2::uuid IS NULL`
	}
	table := pq.QuoteIdentifier(e.Table)
	return `DELETE FROM ` + table + ` WHERE tenant_id = $1 AND id IN (
		SELECT id FROM ` + table + ` WHERE tenant_id = $1 AND ` + of + ` AND ` + pq.QuoteIdentifier(e.At) + ` < $3 LIMIT $4)`
}

// eraseEnded erases the learners of an agreement that ended with delete
// and whose retention is over, a batch of ids at a time, each learner in
// a transaction of its own.
func (w *retentionWork) eraseEnded(ctx context.Context) error {
	for {
		if w.pausing() {
			return ErrRetentionPaused
		}
		users, err := w.endedLearners(ctx)
		if err != nil || len(users) == 0 {
			return err
		}
		erasedAny := false
		for _, user := range users {
			if w.pausing() {
				return ErrRetentionPaused
			}
			erased, stop, err := w.eraseOne(ctx, user)
			if err != nil || stop {
				return err
			}
			erasedAny = erasedAny || erased
		}
		if !erasedAny { // a batch no one of which was left to erase: never go round it again
			return nil
		}
	}
}

// endedLearners is a batch of the learners, not yet erased, that the
// tenant had when its agreement ended for deletion; none when it has no
// such agreement.
func (w *retentionWork) endedLearners(ctx context.Context) ([]uuid.UUID, error) {
	var users []uuid.UUID
	err := pg.InTenant(ctx, w.r.db, w.tenant, func(tx *sqlx.Tx) error {
		ended, err := endedForDeletion(ctx, tx, w.tenant, w.now)
		if err != nil || ended == nil {
			return err
		}
		return tx.SelectContext(ctx, &users, `SELECT id FROM users WHERE tenant_id = $1 AND erased_at IS NULL AND created_at <= $2
			ORDER BY created_at, id LIMIT $3`, w.tenant, *ended, w.r.Batch)
	})
	if err != nil {
		return nil, pg.MapError(fmt.Errorf("agreements: retention: learners to erase: %w", err))
	}
	return users, nil
}

// eraseOne erases the learner in a transaction that first checks again,
// in turn with activations (the tenant's row is key-share locked, which
// an activation's lock waits for), that the agreement still ends for
// deletion; stop when it no longer does. erased is false for a learner
// erased meanwhile.
func (w *retentionWork) eraseOne(ctx context.Context, user uuid.UUID) (erased, stop bool, err error) {
	err = pg.MapError(pg.RetryInTenant(ctx, w.r.db, w.tenant, func(tx *sqlx.Tx) error {
		erased, stop = false, false
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM tenants WHERE id = $1 FOR KEY SHARE`, w.tenant); err != nil {
			return err
		}
		ended, err := endedForDeletion(ctx, tx, w.tenant, w.now)
		if err != nil {
			return err
		}
		if ended == nil {
			stop = true
			return nil
		}
		if erased, err = w.r.learners.erase(ctx, tx, retentionActor, w.tenant, user); err != nil || !erased {
			return err
		}
		return w.count(ctx, tx, "learners_erased", 1)
	}))
	if apperr.Is(err, apperr.NotFound) { // not the tenant's learner after all: nothing to erase
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("agreements: retention: erase a learner: %w", err)
	}
	return erased, stop, nil
}

// endedForDeletion is when the tenant's newest version that was in force
// ended, if it was terminated with on_end delete and its copy retention
// has passed at now; nil otherwise (a version is active, none was ever in
// force, the newest ended otherwise or too recently).
func endedForDeletion(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, now time.Time) (*time.Time, error) {
	var a struct {
		Status  Status     `db:"status"`
		OnEnd   OnEnd      `db:"on_end"`
		EndedAt *time.Time `db:"ended_at"`
		Days    int        `db:"copy_retention_days"`
	}
	err := tx.GetContext(ctx, &a, `SELECT status, on_end, ended_at, copy_retention_days FROM agreements
		WHERE tenant_id = $1 AND status <> 'draft' ORDER BY version DESC LIMIT 1`, tenant)
	if pg.IsNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if a.Status != StatusTerminated || a.OnEnd != OnEndDelete || a.EndedAt == nil ||
		now.Before(a.EndedAt.Add(time.Duration(a.Days)*24*time.Hour)) {
		return nil, nil
	}
	return a.EndedAt, nil
}

// Runs lists the tenant's retention runs, newest first.
func (r *Retention) Runs(ctx context.Context, tenant uuid.UUID, page pg.Page) ([]RetentionRun, *pg.Cursor, error) {
	var afterAt *time.Time
	var afterID *uuid.UUID
	if page.After != nil {
		afterAt, afterID = &page.After.At, &page.After.ID
	}
	var runs []RetentionRun
	err := pg.InTenant(ctx, r.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &runs, `SELECT `+retentionRunColumns+` FROM retention_runs
			WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR (requested_at, id) < ($2, $3::uuid))
			ORDER BY requested_at DESC, id DESC LIMIT $4`, tenant, afterAt, afterID, page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("agreements: list retention runs: %w", err))
	}
	return pg.TrimPage(runs, page.Limit, func(run RetentionRun) pg.Cursor { return pg.Cursor{At: run.RequestedAt, ID: run.ID} })
}

// Run is one of the tenant's runs; NotFound when it has none by
// that id.
func (r *Retention) Run(ctx context.Context, tenant, id uuid.UUID) (RetentionRun, error) {
	var run RetentionRun
	err := pg.InTenant(ctx, r.db, tenant, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &run, `SELECT `+retentionRunColumns+` FROM retention_runs WHERE tenant_id = $1 AND id = $2`, tenant, id)
	})
	if pg.IsNoRows(err) {
		return RetentionRun{}, apperr.New(apperr.NotFound, "no such retention run")
	}
	return run, pg.MapError(err)
}

// truncate cuts s to at most n bytes, at a character's start.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
