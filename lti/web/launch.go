package web

import (
	"errors"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/handoff"
	"github.com/klasterina/hub/lti"
)

// HandleLaunch answers the platform's form post to /lti/launch. The
// launch's Origin is passed on: a secret from platform storage is accepted
// only from the hub's own page.
func (h *Handlers) HandleLaunch(c echo.Context) error {
	in := lti.LaunchRequest{IDToken: c.FormValue("id_token"), State: c.FormValue("state"),
		StorageSecret: c.FormValue("lti_storage_secret"), Origin: c.Request().Header.Get("Origin"), Cookie: cookieOf(c),
		Source: c.RealIP()}
	l, rec, err := h.tool.Admit(c.Request().Context(), in, requestID(c))
	if err != nil {
		var f *lti.Failure
		if errors.As(err, &f) && f.Reason == lti.ReasonStateNotBound && in.State != "" {
			return h.unbound(c, in)
		}
		return h.refuse(c, "launch", err)
	}
	if l.Message == lti.MessageDeepLinkingRequest {
		return h.pickActivities(c, l)
	}
	return h.handOff(c, l, rec)
}

// unbound answers a launch whose browser lost the login cookie: a page
// that fetches the secret from platform storage, when the platform offered
// it, or one that asks the learner to launch again in a new window.
func (h *Handlers) unbound(c echo.Context, in lti.LaunchRequest) error {
	fetch, err := h.tool.Unbound(c.Request().Context(), in, requestID(c))
	var f *lti.Failure
	switch {
	case errors.As(err, &f) && f.Reason == lti.ReasonStateNotBound:
		return h.page(c, http.StatusUnauthorized, "new-window", map[string]any{"RequestID": requestID(c)})
	case err != nil:
		return h.refuse(c, "launch", err)
	}
	return h.page(c, http.StatusOK, "fetch-state", map[string]any{
		"Action": h.tool.LaunchURL(), "IDToken": in.IDToken, "State": in.State, "Origin": fetch.Origin,
		"Target": fetch.Target, "Key": fetch.Key,
	})
}

// handOff posts the signed handoff token to the learning app, or shows the
// hub's landing page when there is none; first, when the tenant's
// agreement asks for it, the consent page.
func (h *Handlers) handOff(c echo.Context, l *lti.Launch, rec lti.Recorded) error {
	return h.HandOff(c, l.Registration.TenantID, l.TenantName(), l.Subject(rec))
}

// HandOff hands sub, a learner of tenant who just launched or signed in,
// to the learning app (or shows the landing page without one); first,
// when the tenant's agreement asks for it, the consent page, whose answer
// continues to the same handoff. Employer sign-ins (package sso) hand
// off through it too, so both reach the app the same way.
func (h *Handlers) HandOff(c echo.Context, tenant uuid.UUID, tenantName string, sub handoff.Subject) error {
	asked, err := h.askConsent(c, tenant, tenantName, sub)
	if apperr.Is(err, apperr.NotFound) {
		// The learner was erased while this launch was recorded: the hub
		// hands off no one it no longer has, and the next launch starts
		// afresh with a new user.
		return h.page(c, http.StatusConflict, "info", map[string]any{"Heading": "Please start again",
			"Text": "Your record changed while this page was loading. Go back and open the activity, or sign in, again."})
	}
	if err != nil {
		return h.refuse(c, stageOf(sub), err)
	}
	if asked {
		return nil
	}
	return h.continueTo(c, tenantName, sub)
}

// stageOf names the refusal page of sub's handoff.
func stageOf(sub handoff.Subject) string {
	if sub.MessageType == handoff.SignIn {
		return "sign_in"
	}
	return "launch"
}

// continueTo hands sub off to the learning app, or shows the landing page.
func (h *Handlers) continueTo(c echo.Context, tenantName string, sub handoff.Subject) error {
	if h.tool.Handoff == nil {
		return h.page(c, http.StatusOK, "landing", map[string]any{
			"Name": sub.Name, "Tenant": tenantName, "Course": refTitle(sub.Context), "Activity": refTitle(sub.Activity),
			"Roles": lti.RoleLabels(sub.Roles), "UserID": sub.UserID,
		})
	}
	token, err := h.tool.Handoff.Sign(c.Request().Context(), sub)
	if err != nil {
		return h.refuse(c, stageOf(sub), err)
	}
	return h.page(c, http.StatusOK, "handoff", map[string]any{"Action": h.tool.Handoff.Audience(), "Token": token})
}

func refTitle(r *handoff.Ref) string {
	if r == nil {
		return ""
	}
	if r.Title != "" {
		return r.Title
	}
	return r.ID
}
