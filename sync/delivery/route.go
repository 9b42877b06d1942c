package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/agreements"
)

// routed is a result as routing reads it.
type routed struct {
	UserID       uuid.UUID `db:"user_id"`
	ResourceLink string    `db:"resource_link_id"`
	Scored       bool      `db:"scored"`
	Completed    *bool     `db:"completed"`
	OccurredAt   time.Time `db:"occurred_at"`
}

// categoryOf is the data category of a result: scores when it carries a
// score, completion when it says whether the activity was completed,
// progress otherwise.
func (r routed) category() agreements.Category {
	switch {
	case r.Scored:
		return agreements.CategoryScores
	case r.Completed != nil:
		return agreements.CategoryCompletion
	}
	return agreements.CategoryProgress
}

// target is one destination of a result.
type target struct {
	Kind         agreements.DestinationKind
	Destination  *uuid.UUID // webhook, xapi
	ResourceLink *uuid.UUID // lms: the resource_links row whose line item gets the score
}

// Route works out where the tenant's result goes and queues a delivery
// with its job for each, in tx: the transaction that records the result,
// on the job engine's pool, so the result and its deliveries commit
// together or not at all.
//
// A scored result goes to the gradebook of every course of the tenant's
// LMSes with the result's resource link where the learner is an active
// member and the platform offered the grade services; a newer score for
// the same line item and learner supersedes a pending older one. Every
// result goes to each enabled webhook and xAPI destination subscribed to
// its category. The agreements' policy is not applied here: it is when
// each delivery is sent. Route answers how many deliveries it queued.
func (s *Service) Route(ctx context.Context, tx *sqlx.Tx, tenant, result uuid.UUID) (int, error) {
	if s.Jobs == nil {
		return 0, fmt.Errorf("delivery: route: no job engine")
	}
	var r routed
	if err := tx.GetContext(ctx, &r, `SELECT user_id, coalesce(resource_link_id, '') AS resource_link_id,
			score_given IS NOT NULL AS scored, completed, occurred_at
		FROM results WHERE tenant_id = $1 AND id = $2`, tenant, result); err != nil {
		return 0, fmt.Errorf("delivery: route: read result: %w", err)
	}
	targets, err := s.targets(ctx, tx, tenant, r)
	if err != nil {
		return 0, fmt.Errorf("delivery: route: %w", err)
	}
	if len(targets) == 0 {
		return 0, nil
	}
	now := s.Now()
	params := make([]river.InsertManyParams, 0, len(targets))
	for _, t := range targets {
		id := uuid.New()
		if t.ResourceLink != nil {
			if err := supersedeOlder(ctx, tx, tenant, *t.ResourceLink, r.UserID, r.OccurredAt, now); err != nil {
				return 0, err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, tenant_id, result_id, user_id, destination_kind,
				destination_id, resource_link_ref, category, status, occurred_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $10)`,
			id, tenant, result, r.UserID, t.Kind, t.Destination, t.ResourceLink, r.category(), r.OccurredAt, now); err != nil {
			return 0, fmt.Errorf("delivery: route: queue: %w", err)
		}
		params = append(params, river.InsertManyParams{Args: DeliverArgs{TenantID: tenant, DeliveryID: id}})
	}
	if _, err := s.Jobs.InsertManyTx(ctx, tx.Tx, params); err != nil {
		return 0, pg.MapError(fmt.Errorf("delivery: route: queue jobs: %w", err))
	}
	for _, t := range targets {
		s.m.count(string(t.Kind), "queued", 1)
	}
	return len(targets), nil
}

// targets are the result's destinations.
func (s *Service) targets(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, r routed) ([]target, error) {
	var out []target
	if r.Scored && r.ResourceLink != "" {
		var links []uuid.UUID
		if err := tx.SelectContext(ctx, &links, `SELECT rl.id FROM resource_links rl
			JOIN contexts c ON c.tenant_id = rl.tenant_id AND c.id = rl.context_ref
			JOIN memberships m ON m.tenant_id = c.tenant_id AND m.context_ref = c.id AND m.user_id = $3 AND m.status = 'active'
			WHERE rl.tenant_id = $1 AND rl.resource_link_id = $2
				AND (rl.ags_lineitem IS NOT NULL OR c.ags_lineitems IS NOT NULL)
			ORDER BY rl.id`, tenant, r.ResourceLink, r.UserID); err != nil {
			return nil, fmt.Errorf("courses: %w", err)
		}
		for _, l := range links {
			out = append(out, target{Kind: agreements.DestinationLMS, ResourceLink: &l})
		}
	}
	var dests []struct {
		ID   uuid.UUID `db:"id"`
		Kind string    `db:"kind"`
	}
	if err := tx.SelectContext(ctx, &dests, `SELECT id, kind FROM destinations
		WHERE tenant_id = $1 AND enabled AND $2 = ANY (event_types) ORDER BY created_at, id`,
		tenant, string(r.category())); err != nil {
		return nil, fmt.Errorf("destinations: %w", err)
	}
	for _, d := range dests {
		out = append(out, target{Kind: agreements.DestinationKind(d.Kind), Destination: &d.ID})
	}
	return out, nil
}

// supersedeOlder ends the pending scores of the pair (resource link,
// learner) that are not newer than the one being queued: only the latest
// is sent. One a worker is sending now is locked, and left to finish;
// the newer one waits for it (the pair's lock) and goes after it.
func supersedeOlder(ctx context.Context, tx *sqlx.Tx, tenant, link, user uuid.UUID, occurred, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'superseded', reason = 'newer_score', updated_at = $5
		WHERE tenant_id = $1 AND id IN (SELECT id FROM deliveries
			WHERE tenant_id = $1 AND destination_kind = 'lms' AND resource_link_ref = $2 AND user_id = $3
				AND status = 'pending' AND occurred_at <= $4
			FOR UPDATE SKIP LOCKED)`, tenant, link, user, occurred, now)
	if err != nil {
		return fmt.Errorf("delivery: route: supersede: %w", err)
	}
	return nil
}
