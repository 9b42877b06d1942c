package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

func (s *Server) listTenantAudit(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	return s.listAudit(c, &t.ID)
}

func (s *Server) verifyTenantAudit(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	return s.verifyAudit(c, &t.ID)
}

// listOperatorAudit lists the chain of events that belong to no tenant,
// such as refused bearer tokens that matched no key.
func (s *Server) listOperatorAudit(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	return s.listAudit(c, nil)
}

func (s *Server) verifyOperatorAudit(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	return s.verifyAudit(c, nil)
}

func (s *Server) listAudit(c echo.Context, tenant *uuid.UUID) error {
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	entries, next, err := s.audit.List(c.Request().Context(), tenant, f)
	if err != nil {
		return err
	}
	l := list[audit.Entry]{Items: entries}
	if l.Items == nil {
		l.Items = []audit.Entry{}
	}
	if next > 0 {
		l.NextCursor = strconv.FormatInt(next, 10)
	}
	return c.JSON(http.StatusOK, l)
}

func (s *Server) verifyAudit(c echo.Context, tenant *uuid.UUID) error {
	v, err := s.audit.Verify(c.Request().Context(), tenant)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// auditFilter reads ?action= ?since= ?until= ?cursor= ?limit=.
func auditFilter(c echo.Context) (audit.Filter, error) {
	var v apperr.Validator
	f := audit.Filter{Action: c.QueryParam("action")}
	v.CheckText("action", f.Action, 0, 100)
	var err error
	f.Limit, err = limitParam(c)
	if err != nil {
		return f, err
	}
	f.Since = timeParam(c, &v, "since")
	f.Until = timeParam(c, &v, "until")
	v.Check(f.Since.IsZero() || f.Until.IsZero() || f.Since.Before(f.Until), "until", "must be later than since")
	if raw := c.QueryParam("cursor"); raw != "" {
		f.Before, err = strconv.ParseInt(raw, 10, 64)
		v.Check(err == nil && f.Before > 0, "cursor", "is not a cursor this API returned")
	}
	return f, v.Err()
}

func timeParam(c echo.Context, v *apperr.Validator, name string) time.Time {
	raw := c.QueryParam(name)
	if raw == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, raw)
	v.Check(err == nil, name, "must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
	return t
}
