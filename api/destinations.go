package api

import (
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/destinations"
)

// createDestination stores a webhook or xAPI destination; a webhook's
// answer carries its signing secret, the one time it is shown.
func (s *Server) createDestination(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in destinations.New
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	d, err := s.destinations.Create(c.Request().Context(), actor(c), t.ID, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+t.Slug+"/destinations/"+d.ID.String())
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, d)
}

// listDestinations lists the tenant's destinations, newest first; ?kind=.
func (s *Server) listDestinations(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	kind := destinations.Kind(c.QueryParam("kind"))
	var v apperr.Validator
	v.Check(kind == "" || kind == destinations.KindWebhook || kind == destinations.KindXAPI, "kind", "must be webhook or xapi")
	if err := v.Err(); err != nil {
		return err
	}
	list, next, err := s.destinations.List(c.Request().Context(), t.ID, kind, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

func (s *Server) getDestination(c echo.Context) error {
	t, id, err := s.tenantAndDestination(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	d, err := s.destinations.Get(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// updateDestination changes the settings the body names.
func (s *Server) updateDestination(c echo.Context) error {
	t, id, err := s.tenantAndDestination(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in destinations.Patch
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	d, err := s.destinations.Update(c.Request().Context(), actor(c), t.ID, id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) deleteDestination(c echo.Context) error {
	t, id, err := s.tenantAndDestination(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	if err := s.destinations.Delete(c.Request().Context(), actor(c), t.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// rotateDestinationSecret gives a webhook a new secret, shown in this
// answer only; the previous one keeps signing until the rotation is
// finished or destinations.RotationWindow passes.
func (s *Server) rotateDestinationSecret(c echo.Context) error {
	t, id, err := s.tenantAndDestination(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	d, err := s.destinations.RotateSecret(c.Request().Context(), actor(c), t.ID, id)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, d)
}

// finishDestinationRotation stops the previous secret signing.
func (s *Server) finishDestinationRotation(c echo.Context) error {
	t, id, err := s.tenantAndDestination(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	d, err := s.destinations.FinishRotation(c.Request().Context(), actor(c), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// testAnswer is how a destination answered a test: its status, how long
// it took and the start of its body, or why it did not answer; in dry run
// the request that would have been sent.
type testAnswer struct {
	Outcome           delivery.Outcome `json:"outcome"`
	EventID           string           `json:"event_id,omitempty"`
	Status            int              `json:"status,omitempty"`
	LatencyMS         int64            `json:"latency_ms"`
	ResponseBody      string           `json:"response_body,omitempty"`
	RetryAfterSeconds int64            `json:"retry_after_seconds,omitempty"`
	Error             string           `json:"error,omitempty"`
	Request           *testRequest     `json:"request,omitempty"`
}

// testRequest is a dry run's request, its body as text.
type testRequest struct {
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Headers http.Header `json:"headers"`
	Body    string      `json:"body"`
}

// testDestination sends a webhook destination a signed test event, or
// asks an LRS whether it takes the destination's credentials (writing
// nothing), through the same sender and guard as deliveries, and reports
// the answer. A dry-run destination is sent nothing: the answer shows the
// request instead. No learner data is involved. Audited as
// destination.tested.
func (s *Server) testDestination(c echo.Context) error {
	t, id, err := s.tenantAndDestination(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, creds, err := s.destinations.Credentials(ctx, t.ID, id)
	if err != nil {
		return err
	}
	var res delivery.Result
	var answer testAnswer
	if d.Kind == destinations.KindWebhook {
		ev := delivery.Event{ID: "msg_" + uuid.NewString(), Type: delivery.TestEventType, Timestamp: time.Now(),
			Data: map[string]string{"destination_id": d.ID.String(), "tenant": t.Slug,
				"message": "A test of this destination from the hub. It is about no learner."}}
		answer.EventID = ev.ID
		res, err = s.delivery.SendWebhook(ctx, delivery.Webhook{URL: d.URL, Secrets: creds.Secrets, DryRun: d.DryRun}, ev)
	} else {
		res, err = s.delivery.CheckLRS(ctx, delivery.LRS{Endpoint: d.URL, Username: creds.Username, Password: creds.Password, DryRun: d.DryRun})
	}
	if err != nil {
		return err
	}
	if res.Err != nil {
		s.log.InfoContext(ctx, "destination test got no answer", "destination", d.ID, "cause", res.Cause, "err", res.Err)
	}
	if err := s.destinations.Tested(ctx, actor(c), t.ID, d, string(res.Outcome), res.Status); err != nil {
		s.log.ErrorContext(ctx, "destination test not audited", "destination", d.ID, "err", err)
	}
	return c.JSON(http.StatusOK, answerOf(answer, res))
}

func answerOf(a testAnswer, res delivery.Result) testAnswer {
	a.Outcome, a.Status, a.LatencyMS, a.Error = res.Outcome, res.Status, res.Latency.Milliseconds(), res.Cause
	a.ResponseBody = apperr.CleanText(string(res.Body))
	a.RetryAfterSeconds = int64(res.RetryAfter / time.Second)
	if r := res.Request; r != nil {
		a.Request = &testRequest{Method: r.Method, URL: r.URL, Headers: r.Header, Body: string(r.Body)}
	}
	return a
}

func (s *Server) tenantAndDestination(c echo.Context, scope tenants.Scope) (tenants.Tenant, uuid.UUID, error) {
	t, err := s.tenantFor(c, scope)
	if err != nil {
		return t, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("destination"))
	if err != nil {
		return t, uuid.Nil, apperr.New(apperr.NotFound, "no such destination")
	}
	return t, id, nil
}
