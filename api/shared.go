package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/lti"
)

// The operator's shared registrations: one platform registration whose
// deployments the operator assigns to tenants (Blackboard, Canvas partner
// keys). Tenant keys get 403 here, as on every operator route.

func (s *Server) createSharedRegistration(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	var in lti.NewSharedRegistration
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := s.registrations.CreateShared(c.Request().Context(), actor(c), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/lti/registrations/"+r.ID.String())
	return c.JSON(http.StatusCreated, s.withLoginURL(r))
}

func (s *Server) listSharedRegistrations(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	rs, next, err := s.registrations.ListShared(c.Request().Context(), page)
	if err != nil {
		return err
	}
	for i := range rs {
		rs[i] = s.withLoginURL(rs[i])
	}
	return c.JSON(http.StatusOK, newList(rs, next))
}

func (s *Server) getSharedRegistration(c echo.Context) error {
	id, err := sharedRegistrationID(c)
	if err != nil {
		return err
	}
	r, err := s.registrations.GetShared(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.withLoginURL(r))
}

func (s *Server) updateSharedRegistration(c echo.Context) error {
	id, err := sharedRegistrationID(c)
	if err != nil {
		return err
	}
	var p lti.RegistrationPatch
	if err := decodeJSON(c, &p); err != nil {
		return err
	}
	r, err := s.registrations.UpdateShared(c.Request().Context(), actor(c), id, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.withLoginURL(r))
}

func (s *Server) deleteSharedRegistration(c echo.Context) error {
	id, err := sharedRegistrationID(c)
	if err != nil {
		return err
	}
	force, err := forceParam(c)
	if err != nil {
		return err
	}
	if err := s.registrations.DeleteShared(c.Request().Context(), actor(c), id, force); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// assignSharedDeployment gives a deployment id to a tenant: body
// {deployment_id, tenant} with the tenant's slug.
func (s *Server) assignSharedDeployment(c echo.Context) error {
	id, err := sharedRegistrationID(c)
	if err != nil {
		return err
	}
	var in struct {
		DeploymentID string `json:"deployment_id"`
		Tenant       string `json:"tenant"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := s.tenants.BySlug(c.Request().Context(), in.Tenant)
	if apperr.Is(err, apperr.NotFound) {
		return apperr.InvalidFields(apperr.FieldError{Field: "tenant", Message: "must be the slug of a tenant"})
	}
	if err != nil {
		return err
	}
	r, err := s.registrations.AssignDeployment(c.Request().Context(), actor(c), id, in.DeploymentID, t.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, s.withLoginURL(r))
}

func (s *Server) unassignSharedDeployment(c echo.Context) error {
	id, err := sharedRegistrationID(c)
	if err != nil {
		return err
	}
	force, err := forceParam(c)
	if err != nil {
		return err
	}
	if err := s.registrations.UnassignDeployment(c.Request().Context(), actor(c), id, c.Param("deployment"), force); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// sharedRegistrationID admits the operator only and reads {registration}.
func sharedRegistrationID(c echo.Context) (uuid.UUID, error) {
	if err := requireOperator(c); err != nil {
		return uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("registration"))
	if err != nil {
		return uuid.Nil, apperr.New(apperr.NotFound, "shared registration %q not found", c.Param("registration"))
	}
	return id, nil
}

func (s *Server) withLoginURL(r lti.SharedRegistration) lti.SharedRegistration {
	r.LoginURL = s.lti.RegistrationLoginURL(r.ID)
	return r
}
