package api

import (
	"sync"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
)

// TenantInFlight is how many of one tenant's API-key requests a replica
// works on at once. More are refused at once with 429, before their bodies
// are read or decoded, so one tenant flooding the API spends its own
// allowance, not the CPU and connections other tenants' requests need.
// (The database's own per-tenant share is pg.TenantShare.)
const TenantInFlight = 8

// inFlight counts each tenant's requests in progress.
type inFlight struct {
	mu     sync.Mutex
	max    int
	counts map[uuid.UUID]int
}

func newInFlight(max int) *inFlight { return &inFlight{max: max, counts: map[uuid.UUID]int{}} }

// enter admits one more of tenant's requests, or reports false when the
// tenant already has max in progress. leave must follow an admission.
func (f *inFlight) enter(tenant uuid.UUID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts[tenant] >= f.max {
		return false
	}
	f.counts[tenant]++
	return true
}

func (f *inFlight) leave(tenant uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts[tenant]--; f.counts[tenant] <= 0 {
		delete(f.counts, tenant)
	}
}

// errTenantBusy answers a tenant over its in-flight allowance.
var errTenantBusy = apperr.New(apperr.RateLimited, "this tenant has too many requests in progress; retry shortly")

// limitTenant runs next within the key's tenant's in-flight allowance.
func (s *Server) limitTenant(c echo.Context, tenant uuid.UUID, next echo.HandlerFunc) error {
	if !s.inFlight.enter(tenant) {
		c.Response().Header().Set("Retry-After", "1")
		return errTenantBusy
	}
	defer s.inFlight.leave(tenant)
	return next(c)
}
