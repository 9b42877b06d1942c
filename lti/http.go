package lti

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/handoff"
)

// The browser-facing endpoints. api/routes.go registers them; they only
// translate between HTTP and the HTTP-free steps of login.go and launch.go.

const cookiePath = "/lti"

// HandleLogin answers /lti/login (GET or POST) and /lti/login/:registration.
func (t *Tool) HandleLogin(c echo.Context) error {
	in := LoginRequest{
		Issuer: c.FormValue("iss"), ClientID: c.FormValue("client_id"), LoginHint: c.FormValue("login_hint"),
		MessageHint: c.FormValue("lti_message_hint"), TargetLinkURI: c.FormValue("target_link_uri"),
		DeploymentID: c.FormValue("lti_deployment_id"), StorageTarget: c.FormValue("lti_storage_target"),
		RegistrationID: c.Param("registration"), Source: c.RealIP(),
	}
	res, err := t.Login(c.Request().Context(), in)
	if err != nil {
		return t.refuse(c, "login", err)
	}
	// SameSite=None so the cookie survives the platform's cross-site form
	// post back to us; browsers that block third-party cookies drop it,
	// and then platform storage or a new window takes over.
	c.SetCookie(&http.Cookie{Name: res.CookieName, Value: res.CookieValue, Path: cookiePath, MaxAge: int(t.StateTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	if res.StorageTarget == "" {
		return c.Redirect(http.StatusFound, res.RedirectURL)
	}
	return t.page(c, http.StatusOK, "store-state", map[string]any{
		"Next": res.RedirectURL, "Origin": origin(res.RedirectURL), "Target": res.StorageTarget,
		"Key": res.CookieName, "Value": res.CookieValue,
	})
}

// HandleLaunch answers the platform's form post to /lti/launch.
func (t *Tool) HandleLaunch(c echo.Context) error {
	in := LaunchRequest{IDToken: c.FormValue("id_token"), State: c.FormValue("state"),
		StorageSecret: c.FormValue("lti_storage_secret"), Cookie: func(name string) string {
			ck, err := c.Cookie(name)
			if err != nil {
				return ""
			}
			return ck.Value
		}}
	ctx := c.Request().Context()
	l := &Launch{}
	err := t.validate(ctx, in, l)
	var rec Recorded
	if err == nil {
		rec, err = t.Record(ctx, l, requestID(c))
	}
	if err != nil {
		var f *Failure
		if errors.As(err, &f) && f.Reason == ReasonStateNotBound && in.State != "" {
			return t.unbound(c, in)
		}
		if l.target.ID != uuid.Nil {
			t.logRefusal(ctx, l, reasonOf(err), requestID(c))
		}
		return t.refuse(c, "launch", err)
	}
	t.Metrics.launches.WithLabelValues(l.target.TenantSlug, OutcomeLaunched).Inc()
	if l.Message == MessageDeepLinkingRequest {
		return t.pickActivities(c, l)
	}
	return t.handOff(c, l, rec)
}

// unbound handles a launch whose browser lost the login cookie: fetch the
// secret from platform storage when the platform offered it, else offer to
// restart the launch in a new window, where cookies are first-party.
func (t *Tool) unbound(c echo.Context, in LaunchRequest) error {
	st, err := openState(t.sealer, in.State)
	if err != nil {
		return t.refuse(c, "launch", failErr(ReasonInvalidState, err))
	}
	reg, err := t.targetByID(c.Request().Context(), st.Registration, "")
	if err != nil {
		return t.refuse(c, "launch", err)
	}
	restart := t.LoginURL() + "?" + url.Values{
		"iss": {reg.Issuer}, "client_id": {reg.ClientID}, "login_hint": {st.LoginHint},
		"lti_message_hint": {st.MessageHint}, "target_link_uri": {st.TargetLink},
	}.Encode()
	if st.Storage != "" && in.StorageSecret == "" {
		t.Metrics.refused.WithLabelValues("launch", "state_fetch_from_platform_storage").Inc()
		return t.page(c, http.StatusOK, "fetch-state", map[string]any{
			"Action": t.LaunchURL(), "IDToken": in.IDToken, "State": in.State, "Origin": origin(reg.AuthLoginURL),
			"Target": st.Storage, "Key": st.cookieName(), "NewWindow": restart,
		})
	}
	t.Metrics.refused.WithLabelValues("launch", string(ReasonStateNotBound)).Inc()
	t.logRefusal(c.Request().Context(), &Launch{target: reg, Registration: reg.Registration}, ReasonStateNotBound, requestID(c))
	return t.page(c, http.StatusUnauthorized, "new-window", map[string]any{"NewWindow": restart, "RequestID": requestID(c)})
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// refuse shows the error page with the reason code and the request id as
// reference, counts the refusal and logs the detail, which the browser
// never sees.
func (t *Tool) refuse(c echo.Context, stage string, err error) error {
	reason, status := reasonOf(err), http.StatusBadRequest
	switch reason {
	case ReasonUnavailable:
		status = http.StatusServiceUnavailable
		c.Response().Header().Set("Retry-After", "30")
	case reasonInternal:
		status = http.StatusInternalServerError
	case ReasonKeysetUnavailable:
		status = http.StatusBadGateway
	case ReasonRateLimited:
		var f *Failure
		errors.As(err, &f)
		status = http.StatusTooManyRequests
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(f.RetryAfter, time.Second).Seconds()))))
	}
	t.Metrics.refused.WithLabelValues(stage, string(reason)).Inc()
	t.log.WarnContext(c.Request().Context(), "lti "+stage+" refused", "reason", reason, "err", err)
	return t.page(c, status, "error", map[string]any{
		"Reason": reason, "RequestID": requestID(c), "Message": messages[reason],
	})
}

// reasonInternal is the reason shown for an error that is the hub's own.
const reasonInternal Reason = "internal"

// reasonOf is the reason code a refusal shows: the Failure's, or
// unavailable or internal for errors that are no fault of the launch.
func reasonOf(err error) Reason {
	var f *Failure
	switch {
	case apperr.Is(err, apperr.Unavailable):
		return ReasonUnavailable
	case errors.As(err, &f):
		return f.Reason
	}
	return reasonInternal
}

var messages = map[Reason]string{
	ReasonUnknownRegistration: "This LMS is not registered with the hub.",
	ReasonUnknownDeployment:   "This installation of the tool is not registered with the hub.",
	ReasonTenantSuspended:     "Access for your organisation is suspended.",
	ReasonStateExpired:        "The launch took too long. Please go back and launch again.",
	ReasonNonceReplayed:       "This launch was already used. Please go back and launch again.",
	ReasonUnavailable:         "The service is temporarily unavailable. Please try again in a minute.",
	ReasonInvalidIdentifier:   "The LMS sent an identifier the hub cannot store: it holds characters that are not text.",
	ReasonInvalidParameter:    "The LMS sent a sign-in request the hub cannot accept: a parameter is too long or not text.",
	ReasonRateLimited:         "Too many sign-ins came from your network at once. Please wait a moment and launch again.",
	ReasonRegistrationLink:    "This registration link is unknown, has expired, or is being used or was used already. Ask for a new link.",
}

func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// page renders a template with a CSP that allows only its own inline
// script, and lets any LMS frame it.
func (t *Tool) page(c echo.Context, status int, name string, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	data["Nonce"] = base64.StdEncoding.EncodeToString(nonce)
	if data["Message"] == nil || data["Message"] == "" {
		data["Message"] = "The LMS sent a launch the hub cannot accept."
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-"+data["Nonce"].(string)+"'; form-action *; frame-ancestors *")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	return c.HTMLBlob(status, buf.Bytes())
}

// handOff posts the signed handoff token to the learning app, or shows the
// hub's landing page when there is none.
func (t *Tool) handOff(c echo.Context, l *Launch, rec Recorded) error {
	ctx := c.Request().Context()
	sub := handoff.Subject{UserID: rec.UserID.String(), Tenant: l.target.TenantSlug, Roles: l.Roles, MessageType: l.Message, Locale: locale(l.Claims)}
	if l.Claims.Context != nil {
		sub.Context = &handoff.Ref{ID: l.Claims.Context.ID, Title: l.Claims.Context.Title}
	}
	if l.Claims.ResourceLink != nil {
		sub.Activity = &handoff.Ref{ID: l.Claims.ResourceLink.ID, Title: l.Claims.ResourceLink.Title}
		// Links made by deep linking carry the catalog id as a custom
		// parameter (custom keys may lose their case on some platforms).
		if id, ok := l.Claims.Custom["activity_id"].(string); ok {
			sub.Activity.CatalogID = id
		}
	}
	if t.Handoff == nil {
		return t.page(c, http.StatusOK, "landing", map[string]any{
			"Name": l.Claims.Name, "Tenant": l.target.TenantName, "Course": refTitle(sub.Context), "Activity": refTitle(sub.Activity),
			"Roles": l.Roles, "UserID": sub.UserID,
		})
	}
	token, err := t.Handoff.Sign(ctx, sub)
	if err != nil {
		return err
	}
	return t.page(c, http.StatusOK, "handoff", map[string]any{"Action": t.Handoff.Audience(), "Token": token})
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
