package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
)

// createdKey is the one response that carries a key's token.
type createdKey struct {
	tenants.Key
	Token string `json:"token"`
}

func (s *Server) createAPIKey(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in tenants.NewKey
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	k, token, err := s.mintKey(c, t, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+t.Slug+"/api-keys/"+k.ID.String())
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, createdKey{Key: k, Token: token})
}

// mintKey issues the key: the operator's may be open-ended; one minted by a
// key is that key's child, bound by its expiry and revoked with it.
func (s *Server) mintKey(c echo.Context, t tenants.Tenant, in tenants.NewKey) (tenants.Key, string, error) {
	ctx := c.Request().Context()
	if cl := callerOf(c); cl.key != nil {
		return s.tenants.CreateChildKey(ctx, actor(c), t.ID, cl.key.Key.ID, in)
	}
	return s.tenants.CreateKey(ctx, actor(c), t.ID, in)
}

func (s *Server) listAPIKeys(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	ks, next, err := s.tenants.ListKeys(c.Request().Context(), t.ID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(ks, next))
}

func (s *Server) getAPIKey(c echo.Context) error {
	t, id, err := s.tenantAndKey(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	k, err := s.tenants.GetKey(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

func (s *Server) revokeAPIKey(c echo.Context) error {
	t, id, err := s.tenantAndKey(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	if _, err := s.tenants.RevokeKey(c.Request().Context(), actor(c), t.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) tenantAndKey(c echo.Context, scope tenants.Scope) (tenants.Tenant, uuid.UUID, error) {
	t, err := s.tenantFor(c, scope)
	if err != nil {
		return t, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("key"))
	if err != nil {
		return t, uuid.Nil, apperr.New(apperr.NotFound, "api key %q not found", c.Param("key"))
	}
	return t, id, nil
}
