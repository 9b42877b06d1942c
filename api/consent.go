package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
)

// getConsent answers where a learner stands with the tenant's active
// agreement: their current answer, whether they must be asked, and their
// answers so far.
func (s *Server) getConsent(c echo.Context) error {
	t, user, err := s.tenantAndLearner(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	lc, err := s.agreements.LearnerConsent(c.Request().Context(), t.ID, user)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, lc)
}

// setConsent records the learner's answer given through the learning
// app: {"answer": "granted" | "declined" | "withdrawn"}.
func (s *Server) setConsent(c echo.Context) error {
	t, user, err := s.tenantAndLearner(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in struct {
		Answer agreements.ConsentAnswer `json:"answer"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	lc, err := s.agreements.SetConsent(c.Request().Context(), actor(c), t.ID, user, in.Answer, agreements.ViaAPI)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, lc)
}

func (s *Server) tenantAndLearner(c echo.Context, scope tenants.Scope) (tenants.Tenant, uuid.UUID, error) {
	t, err := s.tenantFor(c, scope)
	if err != nil {
		return t, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("user"))
	if err != nil {
		return t, uuid.Nil, apperr.New(apperr.NotFound, "no such learner")
	}
	return t, id, nil
}
