package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
)

// Bound caps how many entries of one action a chain takes within a sliding
// window. It is counted in the database, so the writes of every replica
// count against it.
type Bound struct {
	Max    int
	Window time.Duration
}

// RecordBounded appends ev to tenant's chain in a transaction of its own,
// unless the chain already holds b.Max entries of ev.Action stamped within
// b.Window before now; it reports whether it wrote. The count is taken under
// the chain's advisory lock, so writers on any number of replicas cannot
// overshoot the bound together. It serves events an outsider can cause at
// will, such as refused bearer tokens.
func (l *Log) RecordBounded(ctx context.Context, tenant *uuid.UUID, actor Actor, ev Event, b Bound) (bool, error) {
	wrote := false
	err := l.inChain(ctx, tenant, "audit record "+ev.Action, func(tx *sqlx.Tx) error {
		if err := lockChain(ctx, tx, tenant); err != nil {
			return err
		}
		now := l.Now()
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

// countRecent counts, up to max, the entries of action in tenant's chain
// stamped after since. The index on (tenant_id, action, at) serves
// the operator's chain too: a B-tree finds tenant_id IS NULL.
func countRecent(ctx context.Context, tx *sqlx.Tx, tenant *uuid.UUID, action string, since time.Time, max int) (int, error) {
	chain, args := "tenant_id = $4", []any{action, since, max, tenant}
	if tenant == nil {
		chain, args = "tenant_id IS NULL", args[:3]
	}
	var n int
	q := `SELECT count(*) FROM (SELECT 1 FROM audit_log WHERE ` + chain + ` AND action = $1 AND at > $2 LIMIT $3) recent`
	if err := tx.GetContext(ctx, &n, q, args...); err != nil {
		return 0, pg.MapError(fmt.Errorf("audit: count recent %s: %w", action, err))
	}
	return n, nil
}
