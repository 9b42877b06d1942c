package web

import (
	"log/slog"
	"net/http"
	"path"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/page"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/lti"
)

// Handlers answers the browser-facing LTI endpoints that api/routes.go
// registers.
type Handlers struct {
	tool *lti.Tool
	log  *slog.Logger
	// Consents and Sealer, when set, show the consent page a tenant's
	// opt-in agreement asks for before the handoff.
	Consents Consents
	Sealer   *secrets.Sealer
}

// New returns the handlers of tool's endpoints; refusals are logged to log.
func New(tool *lti.Tool, log *slog.Logger) *Handlers {
	return &Handlers{tool: tool, log: log}
}

// publicURL is HUB_PUBLIC_URL as text: the base of the hub's own
// addresses.
func (h *Handlers) publicURL() string {
	u := h.tool.PublicURL()
	return u.String()
}

// cookiePath scopes the hub's cookies to its LTI endpoints as the browser
// sees them: under the path of HUB_PUBLIC_URL when a proxy serves the hub
// there (https://x.example/hub: /hub/lti).
func (h *Handlers) cookiePath() string {
	u := h.tool.PublicURL()
	return path.Join("/", u.Path, "lti")
}

// cookieOf looks up the request's cookies by name: "" when absent.
func cookieOf(c echo.Context) func(name string) string {
	return func(name string) string {
		ck, err := c.Cookie(name)
		if err != nil {
			return ""
		}
		return ck.Value
	}
}

func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// page renders a template with a CSP that allows only its own inline
// script, and lets any LMS frame it.
func (h *Handlers) page(c echo.Context, status int, name string, data map[string]any) error {
	c.Response().Header().Set("Referrer-Policy", referrerPolicy(name))
	return page.Write(c.Response(), pages, status, name, data, "*")
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

// HandleLaunchInfo answers GET /lti/launch: someone opened the launch
// address in a browser, where nothing is launched.
func (h *Handlers) HandleLaunchInfo(c echo.Context) error {
	return h.info(c, "The launch address", "This address is where your LMS sends launches, as a form post after you sign in. "+
		"Opening it directly does nothing: start the activity from your course in the LMS.")
}

// HandleDeepLinkInfo answers GET /lti/deep-link.
func (h *Handlers) HandleDeepLinkInfo(c echo.Context) error {
	return h.info(c, "The activity picker's address", "This address is where the hub's activity picker sends the activities "+
		"course staff chose. Opening it directly does nothing: add an activity from your course in the LMS.")
}

// HandleHome answers GET /, the hub's root, for whoever opens it.
func (h *Handlers) HandleHome(c echo.Context) error {
	return h.info(c, "Learning hub", "This is the learning hub: an LTI 1.3 tool that launches learners from their LMS "+
		"into the learning app. Learners and instructors start from their course in the LMS. LMS administrators register "+
		"the hub with the configuration or registration link their organisation's hub administrator gives them. "+
		"The hub's REST API is described at /api/v1/openapi.json.")
}

func (h *Handlers) info(c echo.Context, heading, text string) error {
	return h.page(c, http.StatusOK, "info", map[string]any{"Heading": heading, "Text": text})
}
