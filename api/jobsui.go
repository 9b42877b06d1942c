package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants/audit"
)

// jobsUIPrefix is where River's own UI is served, to the operator only:
// its pages, and its JSON API under jobsUIPrefix + "/api".
const jobsUIPrefix = "/riverui"

// errOperatorSignIn asks for the operator's credential in a form a browser
// can send: HTTP Basic auth, any user name, the operator token as the
// password. wwwAuthenticate answers it with a Basic challenge.
var errOperatorSignIn = apperr.New(apperr.Unauthorized,
	"sign in as the operator: any user name, the operator token as the password")

var errNoJobsUI = apperr.New(apperr.Unavailable, "the job engine is not running in this server")

// authenticateOperator admits the operator's token as the password of
// HTTP Basic auth (what a browser prompts for) or as a bearer token, and
// nothing else: a tenant API key is refused like any wrong password. A
// credential presented and refused is audited in the operator's chain.
func (s *Server) authenticateOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		secret, presented := operatorSecret(c.Request())
		if !presented {
			return errOperatorSignIn
		}
		if !s.isAdminToken(secret) {
			s.auditOperatorRefusal(c)
			return errOperatorSignIn
		}
		c.Set(callerKey, caller{operator: true})
		return next(c)
	}
}

// operatorSecret is the request's Basic auth password, or else its bearer
// token.
func operatorSecret(r *http.Request) (string, bool) {
	if _, password, ok := r.BasicAuth(); ok {
		return password, password != ""
	}
	return bearerToken(r.Header.Get(echo.HeaderAuthorization))
}

func (s *Server) auditOperatorRefusal(c echo.Context) {
	ev := audit.Event{Action: audit.RefusalAction, TargetType: "operator_token",
		Details: map[string]string{"reason": "not_operator_token", "method": c.Request().Method, "route": c.Path()}}
	who := audit.Actor{Type: audit.ActorAnonymous, ID: c.RealIP(), RequestID: requestID(c)}
	s.refusals.record(c.Request().Context(), c.RealIP(), nil, who, ev)
}

// serveJobsUI hands an operator's request to River's UI. A browser sends
// the operator's Basic credentials to the hub whichever site asks it to,
// so a change (a POST, PUT or PATCH of the UI's API) coming from another
// origin is refused.
func (s *Server) serveJobsUI(c echo.Context) error {
	if s.jobsUI == nil {
		return errNoJobsUI
	}
	if err := s.crossOrigin.Check(c.Request()); err != nil {
		return apperr.Wrap(apperr.Forbidden, err, "changes to jobs and queues are taken from the UI's own pages only")
	}
	s.jobsUI.ServeHTTP(c.Response(), c.Request())
	return nil
}
