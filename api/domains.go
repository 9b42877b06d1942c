package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/sso"
	"github.com/klasterina/hub/tenants"
)

// domainAssignment is PUT /domains/{domain}'s optional body: which of the
// tenant's connections signs the domain in.
type domainAssignment struct {
	Connection *uuid.UUID `json:"connection"`
}

// assignDomain gives an email domain to a tenant, the operator's alone:
// sign-ins by email from it go to the tenant's connection. 201 when new,
// 200 when the tenant had it already.
func (s *Server) assignDomain(c echo.Context) error {
	t, err := s.operatorTenant(c)
	if err != nil {
		return err
	}
	var in domainAssignment
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	d, created, err := s.sso.AssignDomain(c.Request().Context(), actor(c), t.ID, c.Param("domain"), in.Connection)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, d)
}

// listDomains lists the tenant's domains; the tenant's keys may read them.
func (s *Server) listDomains(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	domains, err := s.sso.ListDomains(c.Request().Context(), t.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list[sso.Domain]{Items: domains})
}

// removeDomain takes a domain from a tenant (the operator's alone).
func (s *Server) removeDomain(c echo.Context) error {
	t, err := s.operatorTenant(c)
	if err != nil {
		return err
	}
	if err := s.sso.RemoveDomain(c.Request().Context(), actor(c), t.ID, c.Param("domain")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
