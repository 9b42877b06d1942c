package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

// caller is who made a request: the operator, or a tenant API key.
type caller struct {
	operator bool
	key      *tenants.Principal
}

const callerKey = "hub.caller"

func callerOf(c echo.Context) caller {
	cl, _ := c.Get(callerKey).(caller)
	return cl
}

// actor is the caller as the audit log names it.
func actor(c echo.Context) audit.Actor {
	cl := callerOf(c)
	if cl.operator {
		return audit.Operator(requestID(c))
	}
	return audit.Actor{Type: audit.ActorAPIKey, ID: cl.key.Key.ID.String(), RequestID: requestID(c)}
}

var errNoCredentials = apperr.New(apperr.Unauthorized, "send a bearer token: Authorization: Bearer <token>")

// authenticate admits the operator's token or a tenant API key. A presented
// token that fails is audited, in its tenant's chain when it names a known
// key and in the operator's chain otherwise.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, ok := bearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			return errNoCredentials
		}
		if s.isAdminToken(token) {
			c.Set(callerKey, caller{operator: true})
			return next(c)
		}
		prefix := tenants.PrefixOf(token)
		if prefix == "" {
			return s.authenticateKey(c, token, next) // refused without a lookup
		}
		return s.within(c, keyHolder(prefix), func(c echo.Context) error { return s.authenticateKey(c, token, next) })
	}
}

// authenticateKey looks the key up and runs next within its tenant's
// in-flight allowance.
func (s *Server) authenticateKey(c echo.Context, token string, next echo.HandlerFunc) error {
	p, err := s.tenants.Authenticate(c.Request().Context(), token)
	if err != nil {
		s.auditRefusal(c, err)
		return err
	}
	c.Set(callerKey, caller{key: &p})
	return s.within(c, tenantHolder(p.Tenant.ID), s.keyRequest(next))
}

// isAdminToken compares digests so the comparison takes the same time
// whatever the lengths.
func (s *Server) isAdminToken(token string) bool {
	want := sha256.Sum256(s.adminToken)
	got := sha256.Sum256([]byte(token))
	return len(s.adminToken) > 0 && subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *Server) auditRefusal(c echo.Context, err error) {
	var f *tenants.AuthFailure
	if !errors.As(err, &f) {
		return // the database failed, not the caller
	}
	ev := audit.Event{Action: audit.RefusalAction, TargetType: "api_key", TargetID: f.KeyID,
		Details: map[string]string{"reason": f.Reason, "method": c.Request().Method, "route": c.Path()}}
	who := audit.Actor{Type: audit.ActorAnonymous, ID: c.RealIP(), RequestID: requestID(c)}
	s.refusals.record(c.Request().Context(), c.RealIP(), f.Tenant, who, ev)
}

// wwwAuthenticate is the challenge for a 401: RFC 6750's Bearer, or Basic
// (RFC 7617) where a browser signs in as the operator.
func wwwAuthenticate(err error) string {
	if errors.Is(err, errOperatorSignIn) {
		return `Basic realm="hub operator"`
	}
	if errors.Is(err, errNoCredentials) {
		return `Bearer realm="hub"`
	}
	return `Bearer realm="hub", error="invalid_token"`
}

// requireOperator refuses tenant keys on the operator's routes.
func requireOperator(c echo.Context) error {
	if !callerOf(c).operator {
		return apperr.New(apperr.Forbidden, "only the operator may do this")
	}
	return nil
}

// tenantFor resolves the {tenant} of the path for the caller. A key sees its
// own tenant only: any other slug answers 404, exactly as a missing one does.
func (s *Server) tenantFor(c echo.Context, scope tenants.Scope) (tenants.Tenant, error) {
	slug := c.Param("tenant")
	cl := callerOf(c)
	if cl.operator {
		return s.tenants.BySlug(c.Request().Context(), slug)
	}
	if cl.key.Tenant.Slug != slug {
		return tenants.Tenant{}, apperr.New(apperr.NotFound, "tenant %q not found", slug)
	}
	if !cl.key.Key.Allows(scope) {
		return tenants.Tenant{}, apperr.New(apperr.Forbidden, "this API key lacks the %s scope", scope)
	}
	return cl.key.Tenant, nil
}
