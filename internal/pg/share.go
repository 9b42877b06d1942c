package pg

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
)

// TenantShare is how many of a pool's connections one tenant's
// transactions may hold at once. A tenant flooding the hub with slow or
// large requests then waits for its own share (and gets 503 when
// TxTimeout passes) while other tenants' requests find free connections.
const TenantShare = MaxConns / 4

// shares holds each pool's per-tenant semaphores. It is keyed by the pool,
// so tests with a database each do not share their limits.
var shares sync.Map // *sqlx.DB → *tenantShares

type tenantShares struct {
	mu    sync.Mutex
	slots map[uuid.UUID]*tenantSlot
}

type tenantSlot struct {
	sem   chan struct{}
	users int // holders and waiters; the slot is dropped at zero
}

// acquireShare waits until tenant holds fewer than TenantShare
// transactions on db, or ctx ends (Unavailable). release gives it back.
func acquireShare(ctx context.Context, db *sqlx.DB, tenant uuid.UUID) (release func(), err error) {
	v, _ := shares.LoadOrStore(db, &tenantShares{slots: map[uuid.UUID]*tenantSlot{}})
	ts := v.(*tenantShares)
	slot := ts.join(tenant)
	select {
	case slot.sem <- struct{}{}:
		return func() { <-slot.sem; ts.leave(tenant) }, nil
	case <-ctx.Done():
		ts.leave(tenant)
		return nil, apperr.Wrap(apperr.Unavailable, fmt.Errorf("pg: tenant %s: %w", tenant, ctx.Err()),
			"too many of this tenant's requests are using the database; try again shortly")
	}
}

func (ts *tenantShares) join(tenant uuid.UUID) *tenantSlot {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s := ts.slots[tenant]
	if s == nil {
		s = &tenantSlot{sem: make(chan struct{}, TenantShare)}
		ts.slots[tenant] = s
	}
	s.users++
	return s
}

func (ts *tenantShares) leave(tenant uuid.UUID) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if s := ts.slots[tenant]; s != nil {
		if s.users--; s.users == 0 {
			delete(ts.slots, tenant)
		}
	}
}
