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

// FindCourse finds a tenant's course by the hub's id or by the platform's
// context_id (the first registration's when several platforms use it).
func (s *Service) FindCourse(ctx context.Context, tenant uuid.UUID, ref string) (uuid.UUID, error) {
	var id uuid.UUID
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &id, `SELECT id FROM contexts WHERE tenant_id = $1 AND (id::text = $2 OR context_id = $2)
			ORDER BY (id::text = $2) DESC, updated_at DESC LIMIT 1`, tenant, ref)
	})
	if pg.IsNoRows(err) {
		return uuid.Nil, apperr.New(apperr.NotFound, "no course %q in this tenant", ref)
	}
	return id, pg.MapError(err)
}

// SyncNow runs a sync of the course in this process, for `hubd
// roster-sync`, reporting each page to onPage. When a worker is running
// the course's sync already, it follows that run's progress instead. A
// platform asking to wait is waited out here.
func (s *Service) SyncNow(ctx context.Context, tenant, course uuid.UUID, onPage Progress) (Run, error) {
	owner := "command:" + uuid.NewString()
	for {
		run, err := s.sync(ctx, tenant, course, nil, TriggerCommand, owner, time.Time{}, onPage)
		var sn *snooze
		var f *failure
		switch {
		case errors.Is(err, errJoined):
			run, err := s.follow(ctx, tenant, course, onPage)
			if errors.Is(err, errAbandoned) {
				continue // its owner went silent: take it over
			}
			return run, err
		case ctx.Err() != nil && run.ID != uuid.Nil:
			s.releaseRun(ctx, tenant, run, owner) // stopped by the operator: the next worker takes over at once
			return run, ctx.Err()
		case errors.As(err, &sn):
			if !sleep(ctx, sn.after) {
				return run, ctx.Err()
			}
			continue
		case errors.As(err, &f):
			return s.latest(ctx, tenant, run.ID)
		case err != nil:
			return run, err
		}
		return s.latest(ctx, tenant, run.ID)
	}
}

func (s *Service) latest(ctx context.Context, tenant, id uuid.UUID) (Run, error) {
	return s.Run(context.WithoutCancel(ctx), tenant, id)
}

// errAbandoned says the run followed has no owner any more.
var errAbandoned = errors.New("roster: the run's owner went silent")

// follow reports the progress of the course's active run until it ends,
// or errAbandoned when its owner lets it go or goes silent.
func (s *Service) follow(ctx context.Context, tenant, course uuid.UUID, onPage Progress) (Run, error) {
	var id uuid.UUID
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &id, `SELECT id FROM roster_syncs WHERE tenant_id = $1 AND context_ref = $2
			ORDER BY requested_at DESC LIMIT 1`, tenant, course)
	})
	if err != nil {
		return Run{}, pg.MapError(fmt.Errorf("roster: follow run: %w", err))
	}
	for {
		run, err := s.Run(ctx, tenant, id)
		if err != nil {
			return run, err
		}
		if onPage != nil {
			onPage(run)
		}
		if run.Status == StatusSucceeded || run.Status == StatusFailed {
			return run, nil
		}
		if run.LeaseOwner == nil || (run.ProgressedAt != nil && s.Now().Sub(*run.ProgressedAt) >= leaseTTL) {
			return run, errAbandoned
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return run, ctx.Err()
		}
	}
}
