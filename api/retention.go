package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
)

// listRetentionRuns lists the tenant's retention runs, newest first.
func (s *Server) listRetentionRuns(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	list, next, err := s.retention.Runs(c.Request().Context(), t.ID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

func (s *Server) getRetentionRun(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("run"))
	if err != nil {
		return apperr.New(apperr.NotFound, "no such retention run")
	}
	run, err := s.retention.Run(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, run)
}

// requestRetentionRun queues a run of the tenant's retention now (202
// with the run's Location), or joins the one queued or running. It takes
// no body; an empty JSON object is accepted.
func (s *Server) requestRetentionRun(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	if c.Request().ContentLength != 0 {
		var in struct{}
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	run, _, err := s.retentionJobs.Request(c.Request().Context(), actor(c), t.ID)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+c.Param("tenant")+"/retention-runs/"+run.ID.String())
	return c.JSON(http.StatusAccepted, run)
}
