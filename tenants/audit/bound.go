package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
)

// RefusalAction is the action of a refused bearer token, the one event
// counted across chains (hub_recent_refusal_count).
const RefusalAction = "auth.failed"

// Bound caps how many entries of one action a chain takes within a sliding
// window. It is counted in the database, so the writes of every replica
// count against it.
type Bound struct {
	Max    int           // entries of the action in this chain within Window
	HubMax int           // refused tokens (RefusalAction only) in every chain together within Window; 0: no such bound
	Window time.Duration // sliding
}

// RecordBounded appends ev to tenant's chain in a transaction of its own,
// unless the chain already holds b.Max entries of ev.Action stamped within
// b.Window before now; it reports whether it wrote. The count is taken under
// the chain's advisory lock, so writers on any number of replicas cannot
// overshoot the bound together. It serves events an outsider can cause at
// will, such as refused bearer tokens.
func (l *Log) RecordBounded(ctx context.Context, tenant *uuid.UUID, actor Actor, ev Event, b Bound) (bool, error) {
	wrote := false
	err := l.inChain(ctx, tenant, func(tx *sqlx.Tx) error {
		now := l.Now()
		if b.HubMax > 0 {
			under, err := underHubBound(ctx, tx, ev.Action, now.Add(-b.Window), b.HubMax)
			if err != nil || !under {
				return err
			}
		}
		if err := lockChain(ctx, tx, tenant); err != nil {
			return err
		}
		n, err := countRecent(ctx, tx, tenant, ev.Action, now.Add(-b.Window), b.Max)
		if err != nil || n >= b.Max {
			return err
		}
		if _, err := l.keys.Append(ctx, tx, tenant, actor, ev, now); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return wrote, nil
}

// underHubBound takes the action's hub-wide lock (before any chain's, so
// writers never wait on each other in a circle) and reports whether every
// chain together holds fewer than max entries of action since since.
func underHubBound(ctx context.Context, tx *sqlx.Tx, action string, since time.Time, max int) (bool, error) {
	if action != RefusalAction {
		return false, fmt.Errorf("audit: a hub-wide bound is kept for %s only, not %s", RefusalAction, action)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "audit-bound:"+action); err != nil {
		return false, pg.MapError(fmt.Errorf("audit: lock bound of %s: %w", action, err))
	}
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT hub_recent_refusal_count($1, $2)`, since, max); err != nil {
		return false, pg.MapError(fmt.Errorf("audit: count recent %s everywhere: %w", action, err))
	}
	return n < max, nil
}

// countRecent counts, up to max, the entries of action in tenant's chain
// stamped after since. The index on (tenant_id, action, at) serves
// the operator's chain too: a B-tree finds tenant_id IS NULL.
func countRecent(ctx context.Context, tx *sqlx.Tx, tenant *uuid.UUID, action string, since time.Time, max int) (int, error) {
	chain, args := "tenant_id = $4", []any{action, since, max, tenant}
	if tenant == nil {
		chain, args = "tenant_id IS NULL", args[:3]
	}
	var n int
	q := `SELECT count(*) FROM (SELECT 1 FROM audit_log WHERE ` + chain + ` AND action = $1 AND at > $2
		AND at <= now() + interval '1 minute' LIMIT $3) recent` // a row stamped in the future holds no bound shut
	if err := tx.GetContext(ctx, &n, q, args...); err != nil {
		return 0, pg.MapError(fmt.Errorf("audit: count recent %s: %w", action, err))
	}
	return n, nil
}
