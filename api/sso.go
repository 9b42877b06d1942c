package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/sso"
	"github.com/klasterina/hub/tenants"
)

// createSSOConnection stores one of the tenant's OpenID providers; its
// client secret is sealed and never shown again.
func (s *Server) createSSOConnection(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in sso.NewConnection
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	conn, err := s.sso.CreateConnection(c.Request().Context(), actor(c), t.ID, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+t.Slug+"/sso/connections/"+conn.ID.String())
	return c.JSON(http.StatusCreated, conn)
}

// listSSOConnections lists the tenant's connections, newest first.
func (s *Server) listSSOConnections(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	list, next, err := s.sso.ListConnections(c.Request().Context(), t.ID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

func (s *Server) getSSOConnection(c echo.Context) error {
	t, id, err := s.tenantAndConnection(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	conn, err := s.sso.GetConnection(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conn)
}

// updateSSOConnection changes the settings the body names; a
// client_secret rotates the secret.
func (s *Server) updateSSOConnection(c echo.Context) error {
	t, id, err := s.tenantAndConnection(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in sso.ConnectionPatch
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	conn, err := s.sso.UpdateConnection(c.Request().Context(), actor(c), t.ID, id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conn)
}

func (s *Server) deleteSSOConnection(c echo.Context) error {
	t, id, err := s.tenantAndConnection(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	if err := s.sso.DeleteConnection(c.Request().Context(), actor(c), t.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) tenantAndConnection(c echo.Context, scope tenants.Scope) (tenants.Tenant, uuid.UUID, error) {
	t, err := s.tenantFor(c, scope)
	if err != nil {
		return t, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("connection"))
	if err != nil {
		return t, uuid.Nil, apperr.New(apperr.NotFound, "no such connection")
	}
	return t, id, nil
}

// listSSOSessions lists the tenant's hub sessions, newest first; ?user=
// for one user's, ?live=true for those not ended or expired.
func (s *Server) listSSOSessions(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	f, err := sessionFilter(c)
	if err != nil {
		return err
	}
	list, next, err := s.sso.ListSessions(c.Request().Context(), t.ID, f, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

func sessionFilter(c echo.Context) (sso.SessionFilter, error) {
	var f sso.SessionFilter
	var v apperr.Validator
	if u := c.QueryParam("user"); u != "" {
		id, err := uuid.Parse(u)
		v.Check(err == nil, "user", "must be a user id")
		f.User = &id
	}
	switch c.QueryParam("live") {
	case "", "false":
	case "true":
		f.LiveOnly = true
	default:
		v.Check(false, "live", "must be true or false")
	}
	return f, v.Err()
}

// endSSOSession ends one of the tenant's sessions.
func (s *Server) endSSOSession(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("session"))
	if err != nil {
		return apperr.New(apperr.NotFound, "no such session")
	}
	sess, err := s.sso.EndSession(c.Request().Context(), actor(c), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sess)
}

// endSSOSessions ends every live session of ?user= (required).
func (s *Server) endSSOSessions(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	user, err := uuid.Parse(c.QueryParam("user"))
	if err != nil {
		return apperr.InvalidFields(apperr.FieldError{Field: "user", Message: "must be the id of the user whose sessions end"})
	}
	n, err := s.sso.EndUserSessions(c.Request().Context(), actor(c), t.ID, user)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"ended": n})
}
