package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/tenants"
)

func (s *Server) createTenant(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	var in tenants.NewTenant
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := s.tenants.Create(c.Request().Context(), actor(c), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+t.Slug)
	return c.JSON(http.StatusCreated, t)
}

func (s *Server) listTenants(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	ts, next, err := s.tenants.List(c.Request().Context(), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(ts, next))
}

func (s *Server) getTenant(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (s *Server) updateTenant(c echo.Context) error {
	t, err := s.operatorTenant(c)
	if err != nil {
		return err
	}
	var p tenants.Patch
	if err := decodeJSON(c, &p); err != nil {
		return err
	}
	t, err = s.tenants.Update(c.Request().Context(), actor(c), t.ID, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (s *Server) suspendTenant(c echo.Context) error {
	return s.setTenantStatus(c, tenants.Suspended)
}

func (s *Server) reactivateTenant(c echo.Context) error {
	return s.setTenantStatus(c, tenants.Active)
}

func (s *Server) setTenantStatus(c echo.Context, status tenants.Status) error {
	t, err := s.operatorTenant(c)
	if err != nil {
		return err
	}
	t, err = s.tenants.SetStatus(c.Request().Context(), actor(c), t.ID, status)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

// operatorTenant resolves {tenant} for an operator-only route. A tenant key
// asking about another tenant still gets 404, not 403, so the existence of
// other tenants is never revealed.
func (s *Server) operatorTenant(c echo.Context) (tenants.Tenant, error) {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return t, err
	}
	return t, requireOperator(c)
}
