package api

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/sso/scim"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

// createdSCIMToken is the one response that carries a SCIM token.
type createdSCIMToken struct {
	scim.Token
	Secret string `json:"token"`
}

func (s *Server) createSCIMToken(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in scim.NewToken
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	k, token, err := s.scimTokens.Create(c.Request().Context(), actor(c), t.ID, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+t.Slug+"/scim-tokens/"+k.ID.String())
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, createdSCIMToken{Token: k, Secret: token})
}

func (s *Server) listSCIMTokens(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	ks, next, err := s.scimTokens.List(c.Request().Context(), t.ID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(ks, next))
}

func (s *Server) getSCIMToken(c echo.Context) error {
	t, id, err := s.tenantAndSCIMToken(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	k, err := s.scimTokens.Get(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

func (s *Server) revokeSCIMToken(c echo.Context) error {
	t, id, err := s.tenantAndSCIMToken(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	if _, err := s.scimTokens.Revoke(c.Request().Context(), actor(c), t.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) tenantAndSCIMToken(c echo.Context, scope tenants.Scope) (tenants.Tenant, uuid.UUID, error) {
	t, err := s.tenantFor(c, scope)
	if err != nil {
		return t, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("token"))
	if err != nil {
		return t, uuid.Nil, apperr.New(apperr.NotFound, "scim token %q not found", c.Param("token"))
	}
	return t, id, nil
}

// scimTenant resolves the {tenant} of a SCIM path for its token check.
func (s *Server) scimTenant(ctx context.Context, slug string) (uuid.UUID, bool, error) {
	t, err := s.tenants.BySlug(ctx, slug)
	return t.ID, t.Status == tenants.Active, err
}

// auditSCIMRefusal audits a refused SCIM token as a refused API key is
// (auth.failed, within the same bounds): in its tenant's chain when it
// named one of the tenant's tokens, in the operator's otherwise.
func (s *Server) auditSCIMRefusal(c echo.Context, tenant *uuid.UUID, token uuid.UUID, reason string) {
	id := ""
	if token != uuid.Nil {
		id = token.String()
	}
	ev := audit.Event{Action: audit.RefusalAction, TargetType: "scim_token", TargetID: id,
		Details: map[string]string{"reason": reason, "method": c.Request().Method, "route": c.Path()}}
	who := audit.Actor{Type: audit.ActorAnonymous, ID: c.RealIP(), RequestID: requestID(c)}
	s.refusals.record(c.Request().Context(), c.RealIP(), tenant, who, ev)
}
