package api

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/sync/results"
)

// appKeyOf is the app key authenticateApp admitted.
const appKeyOf = "hub.app_key"

// authenticateApp admits the learning app's app keys, and nothing else:
// the results routes take no tenant key and no operator token.
func (s *Server) authenticateApp(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, ok := bearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			return errNoCredentials
		}
		k, err := s.results.AuthenticateApp(c.Request().Context(), token)
		if err != nil {
			return err
		}
		c.Set(appKeyOf, k)
		return next(c)
	}
}

// createResult records one result the app reports; with an
// Idempotency-Key a repeat answers the first result (Idempotent-Replayed:
// true) and changes nothing.
func (s *Server) createResult(c echo.Context) error {
	var in results.Report
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, replayed, err := s.results.Record(c.Request().Context(), c.Get(appKeyOf).(results.AppKey), in,
		c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	return c.JSON(http.StatusCreated, res)
}

// MaxBatch is how many results one batch request may carry.
const MaxBatch = 1000

// batchItem is one result of a batch, with its own idempotency key.
type batchItem struct {
	results.Report
	IdempotencyKey string `json:"idempotency_key"`
}

// batchAnswer is the answer to one result of a batch: its status as a
// single request would have had it, and the result or the problem.
type batchAnswer struct {
	Status   int             `json:"status"`
	Replayed bool            `json:"replayed,omitempty"`
	Result   *results.Result `json:"result,omitempty"`
	Problem  *Problem        `json:"problem,omitempty"`
}

// createResults records up to MaxBatch results, each on its own: one
// refused changes nothing of the others, and each is answered in order.
func (s *Server) createResults(c echo.Context) error {
	var in struct {
		Results []batchItem `json:"results"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var v apperr.Validator
	v.Check(len(in.Results) >= 1 && len(in.Results) <= MaxBatch, "results", fmt.Sprintf("must hold 1 to %d results", MaxBatch))
	if err := v.Err(); err != nil {
		return err
	}
	by := c.Get(appKeyOf).(results.AppKey)
	answers := make([]batchAnswer, len(in.Results))
	for i, item := range in.Results {
		res, replayed, err := s.results.Record(c.Request().Context(), by, item.Report, item.IdempotencyKey)
		if err != nil {
			p, internal := problemFor(err)
			if internal || p.Status >= 500 {
				// The whole batch can be sent again: those already
				// recorded replay under their idempotency keys.
				return err
			}
			p.RequestID, p.Instance = requestID(c), fmt.Sprintf("%s#/results/%d", c.Request().URL.Path, i)
			answers[i] = batchAnswer{Status: p.Status, Problem: &p}
			continue
		}
		answers[i] = batchAnswer{Status: http.StatusCreated, Replayed: replayed, Result: &res}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": answers})
}

// createAppKey issues an app key (operator only); its token is shown once.
func (s *Server) createAppKey(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	k, token, err := s.results.CreateAppKey(c.Request().Context(), actor(c), in.Name)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/app-keys/"+k.ID.String())
	return c.JSON(http.StatusCreated, struct {
		results.AppKey
		Token string `json:"token"`
	}{k, token})
}

// listAppKeys lists the app keys (operator only).
func (s *Server) listAppKeys(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	ks, next, err := s.results.ListAppKeys(c.Request().Context(), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(ks, next))
}

// revokeAppKey revokes an app key for good (operator only).
func (s *Server) revokeAppKey(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("key"))
	if err != nil {
		return apperr.New(apperr.NotFound, "no such app key")
	}
	k, err := s.results.RevokeAppKey(c.Request().Context(), actor(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}
