package api

import (
	"sync"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/sso/scim"
)

// TenantInFlight is how many of one tenant's API-key requests (and of one
// key's) a replica works on at once. More are refused at once with 429, before their bodies
// are read or decoded, so one tenant flooding the API spends its own
// allowance, not the CPU and connections other tenants' requests need.
// (The database's own per-tenant share is pg.TenantShare.)
const TenantInFlight = 8

// inFlight counts requests in progress per holder: an API key (by its
// visible prefix, before the database is asked about it) or a tenant.
type inFlight struct {
	mu     sync.Mutex
	max    int
	counts map[string]int
}

func newInFlight(max int) *inFlight { return &inFlight{max: max, counts: map[string]int{}} }

// enter admits one more of holder's requests, or reports false when it
// already has max in progress. leave must follow an admission.
func (f *inFlight) enter(holder string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts[holder] >= f.max {
		return false
	}
	f.counts[holder]++
	return true
}

func (f *inFlight) leave(holder string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts[holder]--; f.counts[holder] <= 0 {
		delete(f.counts, holder)
	}
}

// errTenantBusy answers a tenant over its in-flight allowance.
var errTenantBusy = apperr.New(apperr.RateLimited, "this tenant has too many requests in progress; retry shortly")

// within runs next within holder's in-flight allowance: a key's before it
// is looked up (so a flood from one key costs no database work past its
// allowance), a tenant's after.
func (s *Server) within(c echo.Context, holder string, next echo.HandlerFunc) error {
	if !s.inFlight.enter(holder) {
		c.Response().Header().Set("Retry-After", "1")
		return errTenantBusy
	}
	defer s.inFlight.leave(holder)
	return next(c)
}

// keyRequest counts a tenant key's request while it is in progress, for
// hub_api_key_requests_in_flight.
func (s *Server) keyRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s.keyRequests.Inc()
		defer s.keyRequests.Dec()
		return next(c)
	}
}

// scimInFlight runs a SCIM request within its directory's own in-flight
// allowance (TenantInFlight), apart from the tenant's API keys', so an
// identity provider's sync neither starves nor is starved by the admins.
func (s *Server) scimInFlight(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		return s.within(c, "scim:"+scim.TenantOf(c).String(), func(c echo.Context) error {
			s.scimRequests.Inc()
			defer s.scimRequests.Dec()
			return next(c)
		})
	}
}

func keyHolder(prefix string) string       { return "key:" + prefix }
func tenantHolder(tenant uuid.UUID) string { return "tenant:" + tenant.String() }
