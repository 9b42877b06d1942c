package api

import (
	"net/http"
	"slices"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
)

// createAgreement stores the terms as the tenant's next version, a draft.
func (s *Server) createAgreement(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in agreements.Terms
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	a, err := s.agreements.Create(c.Request().Context(), actor(c), t.ID, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+c.Param("tenant")+"/agreements/"+a.ID.String())
	return c.JSON(http.StatusCreated, a)
}

var agreementStatuses = []agreements.Status{agreements.StatusDraft, agreements.StatusActive, agreements.StatusSuperseded,
	agreements.StatusTerminated}

// listAgreements lists the tenant's versions, newest first; ?status=.
func (s *Server) listAgreements(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	status := agreements.Status(c.QueryParam("status"))
	var v apperr.Validator
	v.Check(status == "" || slices.Contains(agreementStatuses, status), "status", "must be draft, active, superseded or terminated")
	if err := v.Err(); err != nil {
		return err
	}
	list, next, err := s.agreements.List(c.Request().Context(), t.ID, status, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

func (s *Server) getAgreement(c echo.Context) error {
	t, id, err := s.tenantAndAgreement(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	a, err := s.agreements.Get(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// updateAgreement replaces a draft's terms (409 for any other version).
func (s *Server) updateAgreement(c echo.Context) error {
	t, id, err := s.tenantAndAgreement(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in agreements.Terms
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	a, err := s.agreements.Update(c.Request().Context(), actor(c), t.ID, id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// activateAgreement makes a draft the active agreement, superseding the
// last, with who signed for each side.
func (s *Server) activateAgreement(c echo.Context) error {
	t, id, err := s.tenantAndAgreement(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in agreements.Signatures
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	a, err := s.agreements.Activate(c.Request().Context(), actor(c), t.ID, id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// terminateAgreement ends the active agreement.
func (s *Server) terminateAgreement(c echo.Context) error {
	t, id, err := s.tenantAndAgreement(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	a, err := s.agreements.Terminate(c.Request().Context(), actor(c), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) tenantAndAgreement(c echo.Context, scope tenants.Scope) (tenants.Tenant, uuid.UUID, error) {
	t, err := s.tenantFor(c, scope)
	if err != nil {
		return t, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("agreement"))
	if err != nil {
		return t, uuid.Nil, apperr.New(apperr.NotFound, "no such agreement")
	}
	return t, id, nil
}
