package api

import (
	"net/http"
	"slices"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/tenants"
)

func (s *Server) createRegistration(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in lti.NewRegistration
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := s.registrations.Create(c.Request().Context(), actor(c), t.ID, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, registrationPath(t, r))
	return c.JSON(http.StatusCreated, r)
}

func registrationPath(t tenants.Tenant, r lti.Registration) string {
	return "/api/v1/tenants/" + t.Slug + "/lti/registrations/" + r.ID.String()
}

func (s *Server) listRegistrations(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	rs, next, err := s.registrations.List(c.Request().Context(), t.ID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(rs, next))
}

func (s *Server) getRegistration(c echo.Context) error {
	t, id, err := s.tenantAndRegistration(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	r, err := s.registrations.Get(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (s *Server) updateRegistration(c echo.Context) error {
	t, id, err := s.tenantAndRegistration(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var p lti.RegistrationPatch
	if err := decodeJSON(c, &p); err != nil {
		return err
	}
	r, err := s.registrations.Update(c.Request().Context(), actor(c), t.ID, id, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// deleteRegistration refuses (409) to erase launch records unless
// ?force=true.
func (s *Server) deleteRegistration(c echo.Context) error {
	t, id, err := s.tenantAndRegistration(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	force, err := forceParam(c)
	if err != nil {
		return err
	}
	if err := s.registrations.Delete(c.Request().Context(), actor(c), t.ID, id, force); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) addDeployment(c echo.Context) error {
	t, id, err := s.tenantAndRegistration(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in struct {
		DeploymentID string `json:"deployment_id"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := s.registrations.AddDeployment(c.Request().Context(), actor(c), t.ID, id, in.DeploymentID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

func (s *Server) removeDeployment(c echo.Context) error {
	t, id, err := s.tenantAndRegistration(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	force, err := forceParam(c)
	if err != nil {
		return err
	}
	if _, err := s.registrations.RemoveDeployment(c.Request().Context(), actor(c), t.ID, id, c.Param("deployment"), force); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) toolConfiguration(c echo.Context) error {
	t, id, err := s.tenantAndRegistration(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	r, err := s.registrations.Get(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.lti.Configuration(r))
}

func (s *Server) tenantAndRegistration(c echo.Context, scope tenants.Scope) (tenants.Tenant, uuid.UUID, error) {
	t, err := s.tenantFor(c, scope)
	if err != nil {
		return t, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("registration"))
	if err != nil {
		return t, uuid.Nil, apperr.New(apperr.NotFound, "registration %q not found", c.Param("registration"))
	}
	return t, id, nil
}

// createRegistrationLink makes a one-time LTI Dynamic Registration link for
// an LMS admin. The URL holds the token and is shown only here.
func (s *Server) createRegistrationLink(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	l, err := s.lti.CreateRegistrationLink(c.Request().Context(), actor(c), t.ID)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, l)
}

// listRegistrationLinks lists the tenant's links with their status; the
// tokens are not kept, so never shown.
func (s *Server) listRegistrationLinks(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	ls, next, err := s.lti.ListRegistrationLinks(c.Request().Context(), t.ID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(ls, next))
}

func (s *Server) revokeRegistrationLink(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("link"))
	if err != nil {
		return apperr.New(apperr.NotFound, "registration link %q not found", c.Param("link"))
	}
	if _, err := s.lti.RevokeRegistrationLink(c.Request().Context(), actor(c), t.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// forceParam reads ?force: true erases launch records a deletion would
// otherwise refuse to.
func forceParam(c echo.Context) (bool, error) {
	switch c.QueryParam("force") {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, apperr.InvalidFields(apperr.FieldError{Field: "force", Message: "must be true or false"})
}

// listLaunches lists the tenant's launch log, newest first: launches and
// the refusals of launches whose registration was found. ?request_id=
// finds the one an error page named as its reference.
func (s *Server) listLaunches(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	var v apperr.Validator
	f := lti.LaunchFilter{Outcome: c.QueryParam("outcome"), RequestID: c.QueryParam("request_id"), Page: page}
	v.Check(f.Outcome == "" || slices.Contains([]string{lti.OutcomeLaunched, lti.OutcomeRefused}, f.Outcome),
		"outcome", "must be launched or refused")
	v.CheckText("request_id", f.RequestID, 0, 64)
	f.Since = timeParam(c, &v, "since")
	if err := v.Err(); err != nil {
		return err
	}
	entries, next, err := s.lti.Launches(c.Request().Context(), t.ID, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(entries, next))
}
