package sso

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/handoff"
	"github.com/klasterina/hub/internal/page"
)

// stateCookie holds a pending sign-in between /sso/start and the callback.
const stateCookie = "hub_sso_state"

// HandOff hands a signed-in learner to the learning app, with the consent
// page first when the tenant's agreement asks: the one LTI launches use
// (lti/web.Handlers.HandOff).
type HandOff func(c echo.Context, tenant uuid.UUID, tenantName string, sub handoff.Subject) error

// Handlers answers the browser's /sso/ pages, which api/routes.go
// registers. They translate between HTTP and the Service only.
type Handlers struct {
	svc     *Service
	log     *slog.Logger
	handOff HandOff
	// crossOrigin refuses posts other sites' pages make (Sec-Fetch-Site,
	// else Origin): the session cookie is SameSite=Lax, which a top-level
	// cross-site post would not carry, but a sign-out's cookie clearing
	// would still land.
	crossOrigin *http.CrossOriginProtection
}

// NewHandlers returns the pages of svc; handOff continues a sign-in.
func NewHandlers(svc *Service, handOff HandOff, log *slog.Logger) *Handlers {
	return &Handlers{svc: svc, handOff: handOff, log: log, crossOrigin: http.NewCrossOriginProtection()}
}

// fromOtherSite answers a post another site's page made.
func (h *Handlers) fromOtherSite(c echo.Context) (bool, error) {
	if err := h.crossOrigin.Check(c.Request()); err != nil {
		h.log.InfoContext(c.Request().Context(), "sso: cross-site post refused", "path", c.Path(), "err", err)
		return true, h.render(c, http.StatusForbidden, "info", map[string]any{"Heading": "Use the learning hub's own page",
			"Text": "Another site asked for this. To continue or sign out, use the buttons on the learning hub's own session page, /sso/session."})
	}
	return false, nil
}

func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// render writes one of the sign-in pages; none may be framed (they carry
// the session, and a framed sign-in page invites clickjacking).
func (h *Handlers) render(c echo.Context, status int, name string, data map[string]any) error {
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	return page.Write(c.Response(), pages, status, name, data, "'none'")
}

// basePath is the path of HUB_PUBLIC_URL ("" or "/hub").
func (h *Handlers) basePath() string {
	return strings.TrimSuffix(h.svc.publicURL.Path, "/")
}

// HandleStart answers GET /sso/start: ?email= (home-realm discovery) or
// ?tenant=&connection=; with neither, a page asking for the email.
func (h *Handlers) HandleStart(c echo.Context) error {
	in := StartRequest{Email: strings.TrimSpace(c.QueryParam("email")), Tenant: c.QueryParam("tenant"), Connection: c.QueryParam("connection"),
		Source: c.RealIP()}
	if in.Email == "" && in.Tenant == "" && in.Connection == "" {
		return h.render(c, http.StatusOK, "start", map[string]any{"Action": h.svc.PublicURL() + "/sso/start"})
	}
	started, err := h.svc.Start(c.Request().Context(), in)
	if err != nil {
		if ReasonOf(err) == ReasonBadRequest || ReasonOf(err) == ReasonUnknownDomain {
			h.log.InfoContext(c.Request().Context(), "sso start refused", "reason", ReasonOf(err), "err", err)
			return h.render(c, statusOf(ReasonOf(err)), "start", map[string]any{"Action": h.svc.PublicURL() + "/sso/start",
				"Notice": messages[ReasonOf(err)], "Email": in.Email})
		}
		return h.refuse(c, err)
	}
	c.SetCookie(&http.Cookie{Name: stateCookie, Value: started.StateCookie, Path: path.Join("/", h.basePath(), "sso/callback"),
		MaxAge: int(StateTTL / time.Second), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	return c.Redirect(http.StatusFound, started.URL)
}

// HandleCallback answers GET /sso/callback/:connection, the connection's
// redirect URI: the provider's answer, with code or error.
func (h *Handlers) HandleCallback(c echo.Context) error {
	q := c.QueryParams()
	cb := Callback{Connection: c.Param("connection"), State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"),
		ErrorDesc: q.Get("error_description"), Iss: q.Get("iss"), HasIss: q.Has("iss"), RequestID: requestID(c)}
	if ck, err := c.Cookie(stateCookie); err == nil {
		cb.StateCookie = ck.Value
	}
	// Used or not, the state cookie has served.
	c.SetCookie(&http.Cookie{Name: stateCookie, Value: "", Path: path.Join("/", h.basePath(), "sso/callback"), MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	in, err := h.svc.Finish(c.Request().Context(), cb)
	if err != nil {
		return h.refuse(c, err)
	}
	h.svc.Metrics.signedIn(in.MatchedBy)
	if old, err := c.Cookie(SessionCookie); err == nil {
		// The browser's previous session gives way to the new one.
		if _, err := h.svc.Logout(c.Request().Context(), old.Value); err != nil && !errors.Is(err, ErrNoSession) {
			h.log.WarnContext(c.Request().Context(), "sso: previous session not ended", "err", err)
		}
	}
	h.setSession(c, in.Session, in.Expires)
	return h.handOff(c, in.Tenant, in.TenantName, subjectOf(in.TenantSlug, in.User, in.Groups))
}

func (h *Handlers) setSession(c echo.Context, value string, expires time.Time) {
	ck := &http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
	if value == "" {
		ck.MaxAge = -1
	} else {
		ck.Expires = expires
	}
	c.SetCookie(ck)
}

func subjectOf(tenantSlug string, u User, groups []string) handoff.Subject {
	if groups == nil {
		groups = []string{}
	}
	return handoff.Subject{UserID: u.ID.String(), Tenant: tenantSlug, Roles: groups, MessageType: handoff.SignIn,
		Locale: deref(u.Locale), Name: deref(u.Name), GivenName: deref(u.GivenName), FamilyName: deref(u.FamilyName), Email: deref(u.Email)}
}

func (h *Handlers) current(c echo.Context) (Current, error) {
	ck, err := c.Cookie(SessionCookie)
	if err != nil {
		return Current{}, ErrNoSession
	}
	return h.svc.Lookup(c.Request().Context(), ck.Value)
}

// HandleSession answers GET /sso/session: who is signed in, with buttons
// to continue to the learning app and to sign out.
func (h *Handlers) HandleSession(c echo.Context) error {
	cur, err := h.current(c)
	if errors.Is(err, ErrNoSession) {
		return h.render(c, http.StatusOK, "no-session", map[string]any{"Start": h.svc.PublicURL() + "/sso/start"})
	}
	if err != nil {
		return h.refuse(c, err)
	}
	return h.render(c, http.StatusOK, "session", map[string]any{"Name": deref(cur.User.Name), "Email": deref(cur.User.Email),
		"Tenant": cur.TenantName, "Expires": cur.ExpiresAt.UTC().Format(time.RFC1123),
		"Continue": h.svc.PublicURL() + "/sso/continue", "Logout": h.svc.PublicURL() + "/sso/logout"})
}

// HandleContinue answers POST /sso/continue: the signed-in learner goes to
// the learning app again; from the hub's own page only.
func (h *Handlers) HandleContinue(c echo.Context) error {
	if refused, err := h.fromOtherSite(c); refused {
		return err
	}
	cur, err := h.current(c)
	if errors.Is(err, ErrNoSession) {
		return h.render(c, http.StatusUnauthorized, "no-session", map[string]any{"Start": h.svc.PublicURL() + "/sso/start"})
	}
	if err != nil {
		return h.refuse(c, err)
	}
	return h.handOff(c, cur.TenantID, cur.TenantName, subjectOf(cur.TenantSlug, cur.User, cur.Groups))
}

// HandleLogoutPage answers GET /sso/logout: a button that signs out (a
// GET must not: a link or an image could sign anyone out).
func (h *Handlers) HandleLogoutPage(c echo.Context) error {
	return h.render(c, http.StatusOK, "logout", map[string]any{"Action": h.svc.PublicURL() + "/sso/logout"})
}

// HandleLogout answers POST /sso/logout: the session ends and its cookie
// goes, then the provider's end_session_endpoint, when it has one, ends
// the provider's (RP-Initiated Logout 1.0), coming back to /sso/signed-out.
func (h *Handlers) HandleLogout(c echo.Context) error {
	if refused, err := h.fromOtherSite(c); refused {
		return err
	}
	ctx := c.Request().Context()
	signedOut := h.svc.PublicURL() + "/sso/signed-out"
	var next string
	if ck, err := c.Cookie(SessionCookie); err == nil {
		ended, err := h.svc.Logout(ctx, ck.Value)
		switch {
		case err == nil:
			next = h.svc.EndSessionURL(ctx, ended, signedOut)
		case !errors.Is(err, ErrNoSession):
			return h.refuse(c, err)
		}
	}
	h.setSession(c, "", time.Time{})
	if next == "" {
		next = signedOut
	}
	return c.Redirect(http.StatusSeeOther, next)
}

// HandleSignedOut answers GET /sso/signed-out, where a logout ends.
func (h *Handlers) HandleSignedOut(c echo.Context) error {
	return h.render(c, http.StatusOK, "info", map[string]any{"Heading": "You are signed out",
		"Text": "You are signed out of the learning hub. You can close this window, or sign in again from your organisation's portal."})
}

// HandleBackchannelLogout answers POST /sso/backchannel-logout/:connection
// (OpenID Connect Back-Channel Logout 1.0 §2.5, §2.8): 200 when the
// sessions the logout token names are ended (or none were live), 400 with
// invalid_request for a token the hub refuses.
func (h *Handlers) HandleBackchannelLogout(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	n, err := h.svc.BackchannelLogout(c.Request().Context(), c.Param("connection"), c.FormValue("logout_token"))
	if IsLogoutTokenRefused(err) {
		h.log.InfoContext(c.Request().Context(), "back-channel logout refused", "err", err)
		return c.JSON(http.StatusBadRequest, map[string]string{"error": "invalid_request",
			"error_description": "the logout token was refused"})
	}
	if err != nil {
		h.log.ErrorContext(c.Request().Context(), "back-channel logout failed", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
	}
	h.log.InfoContext(c.Request().Context(), "back-channel logout", "sessions_ended", n)
	return c.NoContent(http.StatusOK)
}

// refuse shows the refusal page: what happened and what to do, with the
// reason and request id as reference; the detail goes to the log only.
func (h *Handlers) refuse(c echo.Context, err error) error {
	reason := ReasonOf(err)
	status := statusOf(reason)
	h.svc.Metrics.refusal(reason)
	level := slog.LevelWarn
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	h.log.Log(c.Request().Context(), level, "sso sign-in refused", "reason", reason, "err", err)
	var f *Failure
	switch {
	case status == http.StatusServiceUnavailable:
		c.Response().Header().Set("Retry-After", "30")
	case errors.As(err, &f) && f.RetryAfter > 0:
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(f.RetryAfter, time.Second).Seconds()))))
	}
	return h.render(c, status, "error", map[string]any{"Heading": headings[reason], "Message": messages[reason],
		"Reason": reason, "RequestID": requestID(c), "Start": h.svc.PublicURL() + "/sso/start"})
}

func statusOf(r Reason) int {
	switch r {
	case ReasonBadRequest, ReasonStateMissing, ReasonStateInvalid, ReasonStateUsed, ReasonMixUp:
		return http.StatusBadRequest
	case ReasonUnknownDomain, ReasonUnknownConnection:
		return http.StatusNotFound
	case ReasonNoConnectionChosen:
		return http.StatusConflict
	case ReasonProviderError, ReasonCodeExchange, ReasonProviderUnavailable:
		return http.StatusBadGateway
	case ReasonRateLimited:
		return http.StatusTooManyRequests
	case ReasonUnavailable:
		return http.StatusServiceUnavailable
	case ReasonInternal:
		return http.StatusInternalServerError
	}
	return http.StatusForbidden
}

// headings and messages say, for each reason, what happened and what to
// do, in the words of the person signing in.
var headings = map[Reason]string{}

func init() {
	for r := range messages {
		headings[r] = "You could not be signed in"
	}
	headings[ReasonAccessDenied] = "Sign-in cancelled"
	headings[ReasonDeactivated] = "Your account is deactivated"
	headings[ReasonNotProvisioned] = "You do not have access yet"
	headings[ReasonStateUsed] = "This sign-in has expired"
}

var providerFault = "Your organisation's sign-in service sent an answer the hub cannot accept, so you are not signed in. " +
	"Please sign in again; if it keeps happening, give your IT team the reference below."

var messages = map[Reason]string{
	ReasonBadRequest:    "Enter your work email address to sign in.",
	ReasonUnknownDomain: "The learning hub does not know an organisation that signs in with this email address. Check it, or use the sign-in link your organisation gave you.",
	ReasonUnknownConnection: "This sign-in link does not lead to a sign-in service the hub knows, or it is switched off. " +
		"Use the sign-in link your organisation gave you, or ask your IT team.",
	ReasonNoConnectionChosen: "Your organisation has more than one sign-in service and has not said which one your email address uses. " +
		"Use the sign-in link your organisation gave you, or ask your IT team to choose one for your email domain.",
	ReasonTenantSuspended: "Access for your organisation is suspended. Ask your IT team.",
	ReasonAccessDenied:    "The sign-in was cancelled or refused at your organisation's sign-in service. To use the learning hub, sign in again and allow it.",
	ReasonProviderError:   "Your organisation's sign-in service reported a problem, so you are not signed in. Please sign in again; if it keeps happening, tell your IT team.",
	ReasonStateMissing: "This sign-in was started in another browser, or your browser blocked the hub's cookie. " +
		"Start signing in again from this browser, with cookies allowed for the learning hub.",
	ReasonStateInvalid:        "This sign-in does not belong to this browser. Start signing in again from this browser.",
	ReasonStateUsed:           "This sign-in was already used, or took longer than ten minutes. Start signing in again.",
	ReasonMixUp:               "The answer came from another sign-in service than the one this sign-in started with. Start signing in again.",
	ReasonCodeExchange:        providerFault,
	ReasonIDToken:             providerFault,
	ReasonNonce:               providerFault,
	ReasonAuthorizedParty:     providerFault,
	ReasonSubjectMissing:      providerFault,
	ReasonEmailUnverified:     "Your organisation's sign-in service does not confirm your email address, which the hub needs to recognise you. Ask your IT team.",
	ReasonDeactivated:         "Your account was deactivated by your organisation. If you think this is a mistake, ask your IT team.",
	ReasonNotProvisioned:      "Your organisation has not given you access to the learning hub yet. Ask your IT team for access.",
	ReasonProviderUnavailable: "Your organisation's sign-in service could not be reached. Please try again in a minute.",
	ReasonRateLimited:         "Too many sign-ins came from your network at once. Please wait a moment and sign in again.",
	ReasonUnavailable:         "The learning hub is temporarily unavailable. Please try again in a minute.",
	ReasonInternal:            "Something went wrong in the learning hub, not at your organisation. Please try again in a minute.",
}

// The sign-in pages.
var pages = page.Parse(`
{{define "start"}}{{template "head" "Sign in"}}
<h1>Sign in to the learning hub</h1>
{{with .Notice}}<p role="alert"><strong>{{.}}</strong></p>{{end}}
<form method="get" action="{{.Action}}">
<p><label>Work email address<br><input type="email" name="email" value="{{.Email}}" autocomplete="email" required></label></p>
<p><button>Continue</button></p>
</form>
<p>You will sign in with your organisation's own sign-in service.</p>
</body></html>{{end}}

{{define "error"}}{{template "head" .Heading}}
<h1>{{.Heading}}</h1>
<p>{{.Message}}</p>
<p><a href="{{.Start}}">Sign in again</a></p>
<p>If this keeps happening, give your IT team this reference:</p>
<p>reason <code>{{.Reason}}</code>, reference <code>{{.RequestID}}</code></p>
</body></html>{{end}}

{{define "session"}}{{template "head" "Signed in"}}
<h1>You are signed in{{if .Name}} as {{.Name}}{{end}}</h1>
<dl>
<dt>Organisation</dt><dd>{{.Tenant}}</dd>
{{if .Email}}<dt>Email</dt><dd>{{.Email}}</dd>{{end}}
<dt>Signed in until</dt><dd>{{.Expires}} at the latest</dd>
</dl>
<form method="post" action="{{.Continue}}"><button>Continue to learning</button></form>
<form method="post" action="{{.Logout}}"><button>Sign out</button></form>
</body></html>{{end}}

{{define "no-session"}}{{template "head" "Not signed in"}}
<h1>You are not signed in</h1>
<p>Your session ended, or you have not signed in in this browser.</p>
<p><a href="{{.Start}}">Sign in</a></p>
</body></html>{{end}}

{{define "logout"}}{{template "head" "Sign out"}}
<h1>Sign out of the learning hub</h1>
<form method="post" action="{{.Action}}"><button>Sign out</button></form>
</body></html>{{end}}
`)
