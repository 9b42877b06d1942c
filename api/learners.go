package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
)

// exportLearner answers everything the hub holds about a learner, and
// records that the caller read it.
func (s *Server) exportLearner(c echo.Context) error {
	t, id, err := s.tenantAndLearner(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	doc, err := s.learners.Export(c.Request().Context(), actor(c), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, doc)
}

// correctLearner sets the learner's name or email as the tenant admin
// corrects them.
func (s *Server) correctLearner(c echo.Context) error {
	t, id, err := s.tenantAndLearner(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in agreements.Correction
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := s.learners.Correct(c.Request().Context(), actor(c), t.ID, id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// eraseLearner erases the learner; 204 again for one already erased.
func (s *Server) eraseLearner(c echo.Context) error {
	t, id, err := s.tenantAndLearner(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	if err := s.learners.Erase(c.Request().Context(), actor(c), t.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
