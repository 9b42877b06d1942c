package roster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"golang.org/x/sync/semaphore"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/lti/nrps"
)

// Failure codes a run records.
const (
	CodeNoEndpoint     = "no_endpoint"          // the platform sent no NRPS endpoint for the course
	CodeContextGone    = "context_gone"         // the platform answered 404: it no longer knows the course
	CodeTokenRefused   = "token_refused"        // the token endpoint refused (invalid_client, invalid_scope, …)
	CodeRefused        = "platform_refused"     // the platform refused the request (4xx)
	CodeNotAllowed     = "destination_refused"  // the hub's outbound guard refused the platform's address
	CodeUnavailable    = "platform_unavailable" // 5xx, throttling, timeouts beyond the retry policy
	CodeMalformedPage  = "malformed_page"       // a page that is not a membership container
	CodeInternal       = "internal"             // the hub's own fault, still there on the job's last try
	fallbackToFullSync = "differences link refused; full sync instead"
)

// failure ends a run: code and the platform's answer.
type failure struct{ code, detail string }

func (f *failure) Error() string { return "roster: " + f.code + ": " + f.detail }

// snooze asks the job engine to run the job again after a while: the
// platform asked to wait longer than a worker should hold on, or the job's
// time is up. The run keeps its lease and cursor.
type snooze struct{ after time.Duration }

func (s *snooze) Error() string { return fmt.Sprintf("roster: continue in %s", s.after) }

// Progress, when set, hears of each page applied.
type Progress func(Run)

// sync runs a run of contextRef (runID's, or the active one, created with
// trigger when none is queued) as owner until it ends, the job's time
// (deadline) nears, or ctx ends. It returns the run as last recorded.
func (s *Service) sync(ctx context.Context, tenant, contextRef uuid.UUID, runID *uuid.UUID, trigger, owner string, deadline time.Time,
	onPage Progress) (Run, error) {
	var c course
	var run Run
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		if c, err = loadCourse(ctx, tx, tenant, contextRef); err != nil {
			return err
		}
		run, err = claimRun(ctx, tx, tenant, contextRef, runID, trigger, owner, s.Now())
		return err
	})
	if err != nil {
		return Run{}, err
	}
	if c.MembershipsURL == nil {
		return run, s.fail(ctx, c, run, owner, &failure{CodeNoEndpoint, "the platform sent no Names and Role Provisioning endpoint"})
	}
	st := &state{s: s, c: c, run: run, owner: owner, deadline: deadline, onPage: onPage}
	err = st.list(ctx)
	var f *failure
	if errors.As(err, &f) {
		return st.run, s.fail(ctx, c, st.run, owner, f)
	}
	if err != nil {
		return st.run, err
	}
	return st.finish(ctx)
}

// state is one run in progress.
type state struct {
	s        *Service
	c        course
	run      Run
	owner    string
	deadline time.Time
	onPage   Progress
	last     *nrps.Page // the last page applied
}

// list fetches and applies the run's pages from its cursor (or its
// start), the next page fetched while one is applied.
func (st *state) list(ctx context.Context) error {
	if st.run.Pages > 0 && st.run.NextURL == nil {
		return nil // listed already; a crash came while finishing
	}
	first, err := st.start(ctx)
	if err != nil {
		return err
	}
	err = st.pull(ctx, first)
	var refused *differencesRefused
	if errors.As(err, &refused) {
		st.s.log.InfoContext(ctx, fallbackToFullSync, "run", st.run.ID, "status", refused.status)
		if err := st.setMode(ctx, ModeFull, *st.c.MembershipsURL); err != nil {
			return err
		}
		return st.pull(ctx, st.firstFull())
	}
	return err
}

// start decides where the run begins: its cursor, the last sync's
// differences link, or the first page of the whole roster.
func (st *state) start(ctx context.Context) (string, error) {
	if st.run.NextURL != nil {
		return *st.run.NextURL, nil
	}
	if st.run.Mode == ModeDifferences && st.c.DifferencesURL != nil {
		return *st.c.DifferencesURL, st.setMode(ctx, ModeDifferences, *st.c.DifferencesURL)
	}
	first := st.firstFull()
	return first, st.setMode(ctx, ModeFull, first)
}

func (st *state) firstFull() string {
	u, err := nrps.PageURL(*st.c.MembershipsURL, nrps.Query{Limit: PageLimit})
	if err != nil {
		return *st.c.MembershipsURL
	}
	return u
}

func (st *state) setMode(ctx context.Context, mode, first string) error {
	err := pg.InTenant(ctx, st.s.db, st.c.TenantID, func(tx *sqlx.Tx) error {
		return setMode(ctx, tx, st.c.TenantID, st.run, st.owner, mode, first)
	})
	if err == nil {
		st.run.Mode, st.run.NextURL = mode, &first
	}
	return err
}

// differencesRefused: the platform would not answer the last sync's
// differences link (expired, unknown), or the link names a host the
// course's endpoint no longer does (status 0); a full sync follows.
type differencesRefused struct{ status int }

func (d *differencesRefused) Error() string {
	if d.status == 0 {
		return "roster: the differences link names another origin than the course's endpoint"
	}
	return fmt.Sprintf("roster: differences link refused with %d", d.status)
}

// maxBatch is the most pages applied in one transaction. Pages the
// fetcher has ready when the last transaction ends are applied together
// (each page stays atomic): a platform faster than the database costs
// fewer transactions, a slower one is applied page by page.
const maxBatch = 8

// maxBatchMembers ends a batch early: a transaction's statements stay
// small whatever the platform's page size.
const maxBatchMembers = 500

// pull fetches pages from first on, applying them as they come.
func (st *state) pull(ctx context.Context, first string) error {
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan fetched, maxBatch)
	defer func() {
		cancel()
		for range pages { // the fetcher has stopped when it closes them
		}
	}()
	budget := semaphore.NewWeighted(bufferedMembers)
	go st.s.fetchAll(ctx, st.c, first, st.run.Mode == ModeDifferences && st.run.Pages == 0, st.deadline, budget, pages)
	for f := range pages {
		if st.run.Pages >= MaxPages {
			return &failure{CodeMalformedPage, fmt.Sprintf("the listing goes past %d pages", MaxPages)}
		}
		batch, ferr := ready(f, pages)
		if len(batch) > 0 {
			if err := st.apply(ctx, batch); err != nil {
				return err
			}
			for _, f := range batch {
				budget.Release(f.weight)
			}
		}
		if ferr != nil {
			return ferr
		}
	}
	return ctx.Err()
}

// ready is f and the pages after it the fetcher has ready, up to
// maxBatch pages or maxBatchMembers members, and the error that ends them
// if one came.
func ready(f fetched, pages <-chan fetched) ([]fetched, error) {
	var batch []fetched
	members := 0
	for {
		if f.err != nil {
			return batch, f.err
		}
		batch = append(batch, f)
		if members += len(f.page.Members); len(batch) == maxBatch || members >= maxBatchMembers {
			return batch, nil
		}
		select {
		case next, ok := <-pages:
			if !ok {
				return batch, nil
			}
			f = next
		default:
			return batch, nil
		}
	}
}

// apply applies a batch of pages and the run's progress in one
// transaction.
func (st *state) apply(ctx context.Context, batch []fetched) error {
	full := st.run.Mode == ModeFull
	pages := make([]*nrps.Page, len(batch))
	for i, f := range batch {
		pages[i] = f.page
	}
	last := pages[len(pages)-1]
	var p progress
	var err error
	for attempt := 0; attempt < 2; attempt++ { // a member's first launch may race the page: read again
		err = pg.InTenant(ctx, st.s.db, st.c.TenantID, func(tx *sqlx.Tx) error {
			now := st.s.Now()
			if p, err = applyPages(ctx, tx, st.c, st.run, st.owner, pages, batch[0].at, now, full); err != nil {
				return err
			}
			if last.Next == "" {
				return saveDifferences(ctx, tx, st.c, last.Differences)
			}
			return nil
		})
		if err == nil || errors.Is(err, errLeaseLost) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return err
	}
	st.advance(p, len(pages), last)
	return nil
}

func (st *state) advance(p progress, pages int, last *nrps.Page) {
	st.run.Pages += pages
	st.run.Members += p.Members
	st.run.Added += p.Added
	st.run.Changed += p.Changed
	st.run.NextURL = nil
	if p.Next != "" {
		st.run.NextURL = &p.Next
	}
	st.last = last
	st.s.m.pagesApplied(p, pages)
	if st.onPage != nil {
		st.onPage(st.run)
	}
}

// saveDifferences keeps the last page's differences link for the next
// sync ("" clears it: the platform offers none).
func saveDifferences(ctx context.Context, tx *sqlx.Tx, c course, link string) error {
	_, err := tx.ExecContext(ctx, `UPDATE contexts SET roster_differences_url = nullif($3, '') WHERE tenant_id = $1 AND id = $2`,
		c.TenantID, c.Ref, truncate(link, 4096))
	return pg.MapError(err)
}

// finish marks the members a full sync did not list as removed, in
// batches, then ends the run and schedules the course's next sync.
func (st *state) finish(ctx context.Context) (Run, error) {
	if st.run.Mode == ModeFull {
		for {
			var n int
			err := pg.InTenant(ctx, st.s.db, st.c.TenantID, func(tx *sqlx.Tx) error {
				var err error
				if n, err = markRemoved(ctx, tx, st.c, st.run, st.s.Now()); err != nil {
					return err
				}
				return recordRemoved(ctx, tx, st.c.TenantID, st.run, st.owner, n)
			})
			if err != nil {
				return st.run, err
			}
			st.run.Removed += n
			st.s.m.removed(n)
			if n < removeBatch {
				break
			}
		}
	}
	err := pg.InTenant(ctx, st.s.db, st.c.TenantID, func(tx *sqlx.Tx) error {
		now := st.s.Now()
		if err := finishRun(ctx, tx, st.c.TenantID, st.run, st.owner, 0, "", "", now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE contexts SET roster_synced_at = $3, roster_next_sync_at = $4
			WHERE tenant_id = $1 AND id = $2`, st.c.TenantID, st.c.Ref, now, nextSync(now, st.c.interval()))
		return pg.MapError(err)
	})
	if err == nil {
		st.run.Status = StatusSucceeded
		st.s.m.finished(StatusSucceeded, "")
	}
	return st.run, err
}

// recordRemoved adds n removed members to the run, if owner holds it.
func recordRemoved(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, run Run, owner string, n int) error {
	res, err := tx.ExecContext(ctx, `UPDATE roster_syncs SET removed = removed + $4 WHERE tenant_id = $1 AND id = $2
		AND lease_owner = $3 AND status = 'running'`, tenant, run.ID, owner, n)
	if err != nil {
		return pg.MapError(fmt.Errorf("roster: record removed: %w", err))
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return errLeaseLost
	}
	return nil
}

// fail ends the run with f. A course the platform no longer knows leaves
// the schedule until its next launch; any other failure is tried again at
// the next scheduled sync.
func (s *Service) fail(ctx context.Context, c course, run Run, owner string, f *failure) error {
	ctx = context.WithoutCancel(ctx)
	err := pg.InTenant(ctx, s.db, c.TenantID, func(tx *sqlx.Tx) error {
		now := s.Now()
		if err := finishRun(ctx, tx, c.TenantID, run, owner, 0, f.code, f.detail, now); err != nil {
			return err
		}
		q := `UPDATE contexts SET roster_next_sync_at = $3 WHERE tenant_id = $1 AND id = $2`
		if f.code == CodeContextGone {
			q = `UPDATE contexts SET roster_gone_at = $3 WHERE tenant_id = $1 AND id = $2`
			_, err := tx.ExecContext(ctx, q, c.TenantID, c.Ref, now)
			return pg.MapError(err)
		}
		_, err := tx.ExecContext(ctx, q, c.TenantID, c.Ref, nextSync(now, c.interval()))
		return pg.MapError(err)
	})
	s.m.finished(StatusFailed, f.code)
	s.log.WarnContext(ctx, "roster sync failed", "tenant", c.TenantID, "context", c.Ref, "run", run.ID, "code", f.code, "detail", f.detail)
	if err != nil {
		return err
	}
	return f
}
