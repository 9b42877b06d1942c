package roster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
)

// Triggers: what asked for a run.
const (
	TriggerLaunch   = "launch"
	TriggerSchedule = "schedule"
	TriggerRequest  = "request"
	TriggerCommand  = "command"
)

// Modes of a run.
const (
	ModeFull        = "full"        // every member listed; the unlisted are marked removed
	ModeDifferences = "differences" // only what changed since the last sync
)

// Run states.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// Run is one sync of a course, with its live progress.
type Run struct {
	ID           uuid.UUID  `db:"id" json:"id"`
	ContextRef   uuid.UUID  `db:"context_ref" json:"context"`
	Trigger      string     `db:"trigger" json:"trigger"`
	Mode         string     `db:"mode" json:"mode"`
	Status       string     `db:"status" json:"status"`
	RequestedAt  time.Time  `db:"requested_at" json:"requested_at"`
	StartedAt    *time.Time `db:"started_at" json:"started_at"`
	FinishedAt   *time.Time `db:"finished_at" json:"finished_at"`
	ProgressedAt *time.Time `db:"progressed_at" json:"progressed_at"`
	Pages        int        `db:"pages" json:"pages"`
	Members      int        `db:"members" json:"members"`
	Added        int        `db:"added" json:"added"`
	Changed      int        `db:"changed" json:"changed"`
	Removed      int        `db:"removed" json:"removed"`
	ErrorCode    *string    `db:"error_code" json:"error_code"`
	Error        *string    `db:"error" json:"error"`
	NextURL      *string    `db:"next_url" json:"-"`
	LeaseOwner   *string    `db:"lease_owner" json:"-"`
}

const runColumns = `id, context_ref, trigger, mode, status, requested_at, started_at, finished_at, progressed_at,
	pages, members, added, changed, removed, error_code, error, next_url, lease_owner`

// leaseTTL is how long a running run's owner may go without progress
// before another worker may take the run over: longer than the longest
// wait between two pages (a Retry-After the worker sleeps through, a slow
// page), shorter than the time River takes to rescue a stuck job.
const leaseTTL = 2 * time.Minute

// errJoined says another worker is running the course's run: this job
// has nothing to do.
var errJoined = errors.New("roster: the course's run is another worker's")

// errLeaseLost says the run was taken over (its owner seemed gone): the
// worker stops without writing more.
var errLeaseLost = errors.New("roster: the run's lease was taken over")

// queueRun creates a queued run of contextRef unless one is queued or
// running, which it returns instead (joined; a queued run asked for a
// full sync becomes one, a running one keeps its mode).
func queueRun(ctx context.Context, tx *sqlx.Tx, tenant, contextRef uuid.UUID, trigger, mode string, now time.Time) (Run, bool, error) {
	var run Run
	err := tx.GetContext(ctx, &run, `INSERT INTO roster_syncs (id, tenant_id, context_ref, trigger, mode, status, requested_at)
		VALUES ($1, $2, $3, $4, $5, 'queued', $6)
		ON CONFLICT (context_ref) WHERE status IN ('queued', 'running') DO NOTHING
		RETURNING `+runColumns, uuid.New(), tenant, contextRef, trigger, mode, now)
	if err == nil {
		return run, false, nil
	}
	if !pg.IsNoRows(err) {
		return Run{}, false, pg.MapError(fmt.Errorf("roster: queue run: %w", err))
	}
	// A full sync asked of a run not yet started makes it one.
	err = tx.GetContext(ctx, &run, `UPDATE roster_syncs SET mode = CASE WHEN status = 'queued' AND $3 = 'full' THEN 'full' ELSE mode END
		WHERE tenant_id = $1 AND context_ref = $2 AND status IN ('queued', 'running') RETURNING `+runColumns, tenant, contextRef, mode)
	if err != nil {
		return Run{}, false, pg.MapError(fmt.Errorf("roster: join run: %w", err))
	}
	return run, true, nil
}

// errRunDone says the run a job was queued for has ended (or is not the
// tenant's): the job has nothing to do.
var errRunDone = errors.New("roster: the job's run has ended")

// claimRun gives owner the lease of a run of contextRef: the run runID
// names (a job's), or else the course's active run, created when none is
// queued or running (differences when the platform offers them, else
// full). A run another owner holds is errJoined while its owner makes
// progress; one whose owner went silent for leaseTTL, or let it go, is
// taken over. errRunDone when runID's run has ended.
func claimRun(ctx context.Context, tx *sqlx.Tx, tenant, contextRef uuid.UUID, runID *uuid.UUID, trigger, owner string, now time.Time) (Run, error) {
	run, err := activeRun(ctx, tx, tenant, contextRef, runID, trigger, now)
	if err != nil {
		return Run{}, err
	}
	held := run.Status == StatusRunning && run.LeaseOwner != nil && *run.LeaseOwner != owner
	if held && run.ProgressedAt != nil && now.Sub(*run.ProgressedAt) < leaseTTL {
		return Run{}, errJoined
	}
	err = tx.GetContext(ctx, &run, `UPDATE roster_syncs SET status = 'running', lease_owner = $3,
			started_at = coalesce(started_at, $4), progressed_at = $4
		WHERE tenant_id = $1 AND id = $2 RETURNING `+runColumns, tenant, run.ID, owner, now)
	return run, pg.MapError(err)
}

func activeRun(ctx context.Context, tx *sqlx.Tx, tenant, contextRef uuid.UUID, runID *uuid.UUID, trigger string, now time.Time) (Run, error) {
	if runID == nil {
		run, _, err := queueRun(ctx, tx, tenant, contextRef, trigger, ModeDifferences, now)
		return run, err
	}
	var run Run
	err := tx.GetContext(ctx, &run, `SELECT `+runColumns+` FROM roster_syncs
		WHERE tenant_id = $1 AND id = $2 AND context_ref = $3 FOR UPDATE`, tenant, *runID, contextRef)
	if pg.IsNoRows(err) || (err == nil && run.Status != StatusQueued && run.Status != StatusRunning) {
		return Run{}, errRunDone
	}
	return run, pg.MapError(err)
}

// releaseRun lets go of owner's lease, so that the run's next worker
// takes it over at once (a command stopped by its operator).
func (s *Service) releaseRun(ctx context.Context, tenant uuid.UUID, run Run, owner string) {
	ctx = context.WithoutCancel(ctx)
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE roster_syncs SET lease_owner = NULL WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`,
			tenant, run.ID, owner)
		return err
	})
	if err != nil {
		s.log.WarnContext(ctx, "release roster sync", "run", run.ID, "err", err)
	}
}

// progress is what applying one page adds to its run.
type progress struct {
	Members, Added, Changed int
	Next                    string // the page after, "" when this was the last
}

// recordPage adds a page of p.Members to the run and moves its cursor, if
// owner still holds the lease; errLeaseLost if not (the caller rolls the
// page back). Added and changed members are counted as they are written.
func recordPage(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, run Run, owner string, p progress, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE roster_syncs SET pages = pages + 1, members = members + $4,
			next_url = nullif($5, ''), progressed_at = $6
		WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'running'`,
		tenant, run.ID, owner, p.Members, p.Next, now)
	if err != nil {
		return pg.MapError(fmt.Errorf("roster: record page: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	return nil
}

// setMode records a run's mode (a differences run that fell back to a
// full sync) and where it starts.
func setMode(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, run Run, owner, mode, first string) error {
	res, err := tx.ExecContext(ctx, `UPDATE roster_syncs SET mode = $4, next_url = $5
		WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'running'`, tenant, run.ID, owner, mode, first)
	if err != nil {
		return pg.MapError(fmt.Errorf("roster: set mode: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	return nil
}

// finishRun ends the run: succeeded with removed members counted, or
// failed with code and the platform's answer.
func finishRun(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, run Run, owner string, removed int, code, detail string, now time.Time) error {
	status := StatusSucceeded
	if code != "" {
		status = StatusFailed
	}
	res, err := tx.ExecContext(ctx, `UPDATE roster_syncs SET status = $4, removed = removed + $5, error_code = nullif($6, ''),
			error = nullif($7, ''), finished_at = $8, progressed_at = $8, next_url = NULL, lease_owner = NULL
		WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'running'`,
		tenant, run.ID, owner, status, removed, code, truncate(detail, 1024), now)
	if err != nil {
		return pg.MapError(fmt.Errorf("roster: finish run: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// RunFilter selects runs of a listing.
type RunFilter struct {
	Context *uuid.UUID
	Status  string
	Page    pg.Page
}

// Runs lists the tenant's runs, newest first.
func (s *Service) Runs(ctx context.Context, tenant uuid.UUID, f RunFilter) ([]Run, *pg.Cursor, error) {
	var afterAt *time.Time
	var afterID *uuid.UUID
	if f.Page.After != nil {
		afterAt, afterID = &f.Page.After.At, &f.Page.After.ID
	}
	var runs []Run
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &runs, `SELECT `+runColumns+` FROM roster_syncs
			WHERE tenant_id = $1 AND ($2::uuid IS NULL OR context_ref = $2) AND ($3 = '' OR status = $3)
				AND ($4::timestamptz IS NULL OR (requested_at, id) < ($4, $5::uuid))
			ORDER BY requested_at DESC, id DESC LIMIT $6`, tenant, f.Context, f.Status, afterAt, afterID, f.Page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("roster: list runs: %w", err))
	}
	return pg.TrimPage(runs, f.Page.Limit, func(r Run) pg.Cursor { return pg.Cursor{At: r.RequestedAt, ID: r.ID} })
}

// Run is one of the tenant's runs; NotFound when it has none by that id.
func (s *Service) Run(ctx context.Context, tenant, id uuid.UUID) (Run, error) {
	var run Run
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &run, `SELECT `+runColumns+` FROM roster_syncs WHERE tenant_id = $1 AND id = $2`, tenant, id)
	})
	if pg.IsNoRows(err) {
		return Run{}, apperr.New(apperr.NotFound, "no such roster sync")
	}
	return run, pg.MapError(err)
}
