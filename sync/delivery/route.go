package delivery

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/riverqueue/river"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/agreements"
)

// routed is a result as routing reads it, with its destinations: the
// resource links whose gradebooks get its score (a scored result with a
// resource link: every course of the tenant's LMSes with that link where
// the learner is an active member and the platform offered the grade
// services), and the enabled webhook and xAPI destinations subscribed to
// its category (as "kind:id").
type routed struct {
	UserID     uuid.UUID      `db:"user_id"`
	Category   string         `db:"category"`
	OccurredAt time.Time      `db:"occurred_at"`
	Links      pq.StringArray `db:"links"`
	Dests      pq.StringArray `db:"dests"`
}

// routeQuery reads a result and its destinations. Its category is
// scores when it carries a score, completion when it says whether the
// activity was completed, progress otherwise.
const routeQuery = `WITH r AS (
	SELECT tenant_id, user_id, resource_link_id, occurred_at, score_given IS NOT NULL AS scored,
		CASE WHEN score_given IS NOT NULL THEN 'scores' WHEN completed IS NOT NULL THEN 'completion' ELSE 'progress' END AS category
	FROM results WHERE tenant_id = $1 AND id = $2)
SELECT r.user_id, r.category, r.occurred_at,
	ARRAY(SELECT rl.id::text FROM resource_links rl
		JOIN contexts c ON c.tenant_id = rl.tenant_id AND c.id = rl.context_ref
		JOIN memberships m ON m.tenant_id = c.tenant_id AND m.context_ref = c.id AND m.user_id = r.user_id AND m.status = 'active'
		WHERE r.scored AND rl.tenant_id = r.tenant_id AND rl.resource_link_id = r.resource_link_id
			AND (rl.ags_lineitem IS NOT NULL OR c.ags_lineitems IS NOT NULL)
		ORDER BY rl.id) AS links,
	ARRAY(SELECT d.kind || ':' || d.id FROM destinations d
		WHERE d.tenant_id = r.tenant_id AND d.enabled AND r.category = ANY (d.event_types)
		ORDER BY d.created_at, d.id) AS dests
FROM r`

// target is one destination of a result.
type target struct {
	Kind         agreements.DestinationKind
	Destination  *uuid.UUID // webhook, xapi
	ResourceLink *uuid.UUID // lms: the resource_links row whose line item gets the score
}

func (r routed) targets() ([]target, error) {
	out := make([]target, 0, len(r.Links)+len(r.Dests))
	for _, l := range r.Links {
		id, err := uuid.Parse(l)
		if err != nil {
			return nil, err
		}
		out = append(out, target{Kind: agreements.DestinationLMS, ResourceLink: &id})
	}
	for _, d := range r.Dests {
		kind, raw, _ := strings.Cut(d, ":")
		id, err := uuid.Parse(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, target{Kind: agreements.DestinationKind(kind), Destination: &id})
	}
	return out, nil
}

// Route works out where the tenant's result goes and queues a delivery
// with its job for each, in tx: the transaction that records the result,
// on the job engine's pool, so the result and its deliveries commit
// together or not at all (see routed for where results go). A newer score
// for the same line item and learner supersedes a pending older one. The
// agreements' policy is not applied here: it is when each delivery is
// sent. Route answers how many deliveries it queued.
func (s *Service) Route(ctx context.Context, tx *sqlx.Tx, tenant, result uuid.UUID) (int, error) {
	if s.Jobs == nil {
		return 0, fmt.Errorf("delivery: route: no job engine")
	}
	var r routed
	if err := tx.GetContext(ctx, &r, routeQuery, tenant, result); err != nil {
		return 0, fmt.Errorf("delivery: route: read result: %w", err)
	}
	targets, err := r.targets()
	if err != nil || len(targets) == 0 {
		return 0, err
	}
	now := s.Now()
	ids := make([]uuid.UUID, len(targets))
	params := make([]river.InsertManyParams, len(targets))
	for i := range targets {
		ids[i] = uuid.New()
		params[i] = river.InsertManyParams{Args: DeliverArgs{TenantID: tenant, DeliveryID: ids[i]}}
	}
	queued, err := s.Jobs.InsertManyTx(ctx, tx.Tx, params)
	if err != nil {
		return 0, pg.MapError(fmt.Errorf("delivery: route: queue jobs: %w", err))
	}
	kinds, dests, links, jobIDs := make([]string, len(targets)), make([]*string, len(targets)), make([]*string, len(targets)),
		make([]int64, len(targets))
	for i, t := range targets {
		if t.ResourceLink != nil {
			if err := supersedeOlder(ctx, tx, tenant, *t.ResourceLink, r.UserID, r.OccurredAt, now); err != nil {
				return 0, err
			}
			l := t.ResourceLink.String()
			links[i] = &l
		}
		if t.Destination != nil {
			d := t.Destination.String()
			dests[i] = &d
		}
		kinds[i], jobIDs[i] = string(t.Kind), queued[i].Job.ID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, tenant_id, result_id, user_id, destination_kind,
			destination_id, resource_link_ref, category, status, occurred_at, created_at, updated_at, job_id)
		SELECT v.id, $1, $2, $3, v.kind, v.dest, v.link, $4, 'pending', $5, $6, $6, v.job
		FROM unnest($7::uuid[], $8::text[], $9::uuid[], $10::uuid[], $11::bigint[]) AS v (id, kind, dest, link, job)`,
		tenant, result, r.UserID, r.Category, r.OccurredAt, now, pq.Array(ids), pq.Array(kinds), pq.Array(dests),
		pq.Array(links), pq.Array(jobIDs)); err != nil {
		return 0, fmt.Errorf("delivery: route: queue: %w", err)
	}
	for _, t := range targets {
		s.m.count(string(t.Kind), "queued", 1)
	}
	return len(targets), nil
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
