package lti

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/handoff"
	"github.com/klasterina/hub/internal/token"
)

// The browser-facing endpoints. api/routes.go registers them; they only
// translate between HTTP and the HTTP-free steps of login.go and launch.go.

// cookiePath scopes the hub's cookies to its LTI endpoints as the browser
// sees them: under the path of HUB_PUBLIC_URL when a proxy serves the hub
// there (https://x.example/hub: /hub/lti).
func (t *Tool) cookiePath() string { return path.Join("/", t.publicURL.Path, "lti") }

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
	t.setBindingCookie(c, res.CookieName, res.CookieValue)
	switch {
	case res.StorageTarget != "":
		return t.page(c, http.StatusOK, "store-state", map[string]any{
			"Next": res.RedirectURL, "Origin": origin(res.RedirectURL), "Target": res.StorageTarget,
			"Key": res.CookieName, "Value": res.CookieValue,
		})
	case framed(c.Request()):
		return t.checkBinding(c, res) // the cookie may not stick: find out first (window.go)
	}
	return c.Redirect(http.StatusFound, res.RedirectURL)
}

// setBindingCookie binds a login to the browser. SameSite=None so the
// cookie survives the platform's cross-site form post back to us; browsers
// that block third-party cookies drop it in a frame, and then platform
// storage or a new window takes over.
func (t *Tool) setBindingCookie(c echo.Context, name, secret string) {
	c.SetCookie(&http.Cookie{Name: name, Value: secret, Path: t.cookiePath(), MaxAge: int(t.StateTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
}

// HandleLaunch answers the platform's form post to /lti/launch.
func (t *Tool) HandleLaunch(c echo.Context) error {
	in := LaunchRequest{IDToken: c.FormValue("id_token"), State: c.FormValue("state"),
		StorageSecret: c.FormValue("lti_storage_secret"), Origin: c.Request().Header.Get("Origin"), Cookie: func(name string) string {
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
// secret from platform storage when the platform offered it. Otherwise the
// login could not tell it would be lost (a browser that does not say it is
// framed): the page asks the learner to launch again in a new window from
// the LMS. Restarting the login here would replay hints the platform has
// already spent.
func (t *Tool) unbound(c echo.Context, in LaunchRequest) error {
	st, err := openState(t.sealer, in.State)
	if err != nil {
		return t.refuse(c, "launch", failErr(ReasonInvalidState, err))
	}
	reg, err := t.targetOf(c.Request().Context(), st.Registration, st.Tenant)
	if err != nil {
		return t.refuse(c, "launch", err)
	}
	if st.Storage != "" && in.StorageSecret == "" {
		t.Metrics.refused.WithLabelValues("launch", "state_fetch_from_platform_storage").Inc()
		return t.page(c, http.StatusOK, "fetch-state", map[string]any{
			"Action": t.LaunchURL(), "IDToken": in.IDToken, "State": in.State, "Origin": origin(reg.AuthLoginURL),
			"Target": st.Storage, "Key": st.cookieName(),
		})
	}
	t.Metrics.refused.WithLabelValues("launch", string(ReasonStateNotBound)).Inc()
	t.logRefusal(c.Request().Context(), &Launch{target: reg, Registration: reg.Registration}, ReasonStateNotBound, requestID(c))
	return t.page(c, http.StatusUnauthorized, "new-window", map[string]any{"RequestID": requestID(c)})
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// HandleLaunchInfo answers GET /lti/launch: someone opened the launch
// address in a browser, where nothing is launched.
func (t *Tool) HandleLaunchInfo(c echo.Context) error {
	return t.info(c, "The launch address", "This address is where your LMS sends launches, as a form post after you sign in. "+
		"Opening it directly does nothing: start the activity from your course in the LMS.")
}

// HandleDeepLinkInfo answers GET /lti/deep-link.
func (t *Tool) HandleDeepLinkInfo(c echo.Context) error {
	return t.info(c, "The activity picker's address", "This address is where the hub's activity picker sends the activities "+
		"course staff chose. Opening it directly does nothing: add an activity from your course in the LMS.")
}

// HandleHome answers GET /, the hub's root, for whoever opens it.
func (t *Tool) HandleHome(c echo.Context) error {
	return t.info(c, "Learning hub", "This is the learning hub: an LTI 1.3 tool that launches learners from their LMS "+
		"into the learning app. Learners and instructors start from their course in the LMS. LMS administrators register "+
		"the hub with the configuration or registration link their organisation's hub administrator gives them. "+
		"The hub's REST API is described at /api/v1/openapi.json.")
}

func (t *Tool) info(c echo.Context, heading, text string) error {
	return t.page(c, http.StatusOK, "info", map[string]any{"Heading": heading, "Text": text})
}

// refuse shows the error page with the reason code and the request id as
// reference, counts the refusal and logs the detail, which the browser
// never sees. The page says whose the fault is: the hub's own failures
// (its database unavailable, an internal error) are never put on the LMS.
func (t *Tool) refuse(c echo.Context, stage string, err error) error {
	reason, status := reasonOf(err), http.StatusBadRequest
	switch reason {
	case ReasonUnavailable:
		status = http.StatusServiceUnavailable
		c.Response().Header().Set("Retry-After", "30")
	case ReasonInternal:
		status = http.StatusInternalServerError
	case ReasonKeysetUnavailable:
		status = http.StatusBadGateway
	case ReasonRateLimited:
		var f *Failure
		errors.As(err, &f)
		status = http.StatusTooManyRequests
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(f.RetryAfter, time.Second).Seconds()))))
	case ReasonDeepLinkingNotAllowed, ReasonTenantSuspended:
		status = http.StatusForbidden
	}
	t.Metrics.refused.WithLabelValues(stage, string(reason)).Inc()
	level := slog.LevelWarn
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	t.log.Log(c.Request().Context(), level, "lti "+stage+" refused", "reason", reason, "err", err)
	page := stagePages[stage]
	if page.heading == "" {
		page = stagePages["launch"]
	}
	message := messages[reason]
	if message == "" {
		message = page.message
	}
	data := map[string]any{
		"Reason": reason, "RequestID": requestID(c), "Heading": page.heading, "Message": message, "Contact": page.contact,
	}
	if reason == ReasonAmbiguousIssuer {
		// The form of the URL only: which registrations matched is no
		// business of whoever sent the login.
		data["LoginURL"] = t.LoginURL() + "/{registration id}"
	}
	return t.page(c, status, "error", data)
}

// stagePages say, for each stage, what failed, what to do when the reason
// has no message of its own, and whom to give the reference.
var stagePages = map[string]struct{ heading, message, contact string }{
	"login": {"This launch could not be completed", "The LMS sent a launch the hub cannot accept. Please go back to the LMS and launch again.",
		"your LMS administrator"},
	"launch": {"This launch could not be completed", "The LMS sent a launch the hub cannot accept. Please go back to the LMS and launch again.",
		"your LMS administrator"},
	"deep_linking": {"The activity could not be added", "The hub could not add the activity. Please go back to the LMS and start again.",
		"your LMS administrator"},
	"registration": {"The registration could not be completed", "The hub could not register with your LMS. Start again from your LMS's tool registration page.",
		"your organisation's hub administrator"},
}

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
	return ReasonInternal
}

var messages = map[Reason]string{
	ReasonUnknownRegistration:      "This LMS is not registered with the hub.",
	ReasonUnknownDeployment:        "This installation of the tool is not registered with the hub.",
	ReasonAmbiguousIssuer:          "More than one registration with the hub matches this LMS, so the hub cannot tell where this launch belongs.",
	ReasonTenantSuspended:          "Access for your organisation is suspended.",
	ReasonStateExpired:             "The launch took too long. Please go back and launch again.",
	ReasonNonceReplayed:            "This launch was already used. Please go back and launch again.",
	ReasonUnavailable:              "The hub is temporarily unavailable. Please try again in a minute.",
	ReasonInternal:                 "Something went wrong in the hub, not in your LMS. Please try again in a minute.",
	ReasonInvalidIdentifier:        "The LMS sent an identifier the hub cannot store: it holds characters that are not text.",
	ReasonInvalidParameter:         "The LMS sent a sign-in request the hub cannot accept: a parameter is too long or not text.",
	ReasonRateLimited:              "Too many sign-ins came from your network at once. Please wait a moment and launch again.",
	ReasonStorageSecretUnexpected:  "This launch could not be tied to your browser. Please go back to the LMS and launch again.",
	ReasonStorageSecretCrossOrigin: "This launch could not be tied to your browser. Please go back to the LMS and launch again.",
	ReasonDeepLinkingNotAllowed: "Adding activities is for instructors and other course staff. " +
		"If you teach this course, ask your LMS administrator to check your role in it.",
	ReasonDeepLinkingSession: "This page expired, or the choice is not one your LMS accepts. " +
		"Please go back to the LMS and start adding the activity again.",
	ReasonDeepLinkingNotBound: "This page was opened in another browser, or your browser blocked the hub's cookie. " +
		"Please go back to the LMS and start adding the activity again.",
	ReasonDeepLinkingUsed: "This choice was already sent to the LMS. To add more, start again from the LMS.",
	ReasonRegistrationLink: "This registration link is unknown, has expired, or was used already. " +
		"Ask your organisation's hub administrator for a new registration link and start again from your LMS.",
	ReasonRegistrationLinkSpent: "This registration link failed too many times and can no longer be used. " +
		"Ask your organisation's hub administrator for a new registration link.",
	ReasonPlatformConfig: "The hub could not read your LMS's registration details. Start the registration again " +
		"from your LMS's tool registration page; if it fails again, give your hub administrator the reference below.",
	ReasonPlatformRegistration: "Your LMS did not accept the hub's registration. Check that your LMS allows registering " +
		"this tool, then start again from its tool registration page: the link can be tried again a few times.",
}

func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// page renders a template with a CSP that allows only its own inline
// script, and lets any LMS frame it.
func (t *Tool) page(c echo.Context, status int, name string, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	data["Nonce"] = token.Random(16)
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-"+data["Nonce"].(string)+"'; connect-src 'self'; form-action *; frame-ancestors *")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", referrerPolicy(name))
	return c.HTMLBlob(status, buf.Bytes())
}

// referrerPolicy keeps the hub's addresses from other sites. The page that
// posts a secret from platform storage back to the hub is the exception:
// under no-referrer browsers send "Origin: null", and the hub checks that
// the post comes from its own origin.
func referrerPolicy(page string) string {
	if page == "fetch-state" {
		return "same-origin"
	}
	return "no-referrer"
}

// handOff posts the signed handoff token to the learning app, or shows the
// hub's landing page when there is none.
func (t *Tool) handOff(c echo.Context, l *Launch, rec Recorded) error {
	ctx := c.Request().Context()
	claims := l.Claims
	sub := handoff.Subject{UserID: rec.UserID.String(), Tenant: l.target.TenantSlug, Roles: l.Roles, MessageType: l.Message, Locale: locale(claims),
		Name: claims.Name, GivenName: claims.GivenName, FamilyName: claims.FamilyName, Email: claims.Email, Picture: claims.Picture}
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
			"Roles": RoleLabels(l.Roles), "UserID": sub.UserID,
		})
	}
	token, err := t.Handoff.Sign(ctx, sub)
	if err != nil {
		return t.refuse(c, "launch", err)
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
