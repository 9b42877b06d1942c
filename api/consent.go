package api

import (
	"net/http"
	"time"

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

// createConsentLink answers a short-lived link to the learner's choices
// page, for the learning app to send them to: {"locale": "fr-CA"}
// (optional) picks the page's language where a translation exists.
func (s *Server) createConsentLink(c echo.Context) error {
	t, user, err := s.tenantAndLearner(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in struct {
		Locale string `json:"locale"`
	}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	var v apperr.Validator
	v.CheckText("locale", in.Locale, 0, maxLocale)
	if err := v.Err(); err != nil {
		return err
	}
	// The learner must be one the tenant has (and has not erased).
	if _, err := s.agreements.LearnerConsent(c.Request().Context(), t.ID, user); err != nil {
		return err
	}
	link, expires, err := s.browser.ConsentLink(t.ID, t.DisplayName, user, in.Locale, time.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"url": link, "expires_at": expires})
}

// maxLocale bounds a BCP 47 language tag (RFC 5646 §4.4.1 suggests 35).
const maxLocale = 35

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
