package api

import (
	"cmp"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/sso/scim"
)

// problemBase prefixes every problem type; the suffixes are stable and
// documented in the OpenAPI document.
const problemBase = "urn:hub:problem:"

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Instance  string              `json:"instance,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []apperr.FieldError `json:"errors,omitempty"`
}

type problemKind struct {
	status int
	slug   string
	title  string
}

var kinds = map[apperr.Code]problemKind{
	apperr.Invalid:      {http.StatusBadRequest, "validation", "The request is invalid"},
	apperr.NotFound:     {http.StatusNotFound, "not-found", "Not found"},
	apperr.Conflict:     {http.StatusConflict, "conflict", "Conflict"},
	apperr.Unauthorized: {http.StatusUnauthorized, "unauthorized", "Authentication required"},
	apperr.Forbidden:    {http.StatusForbidden, "forbidden", "Forbidden"},
	apperr.Unavailable:  {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	apperr.RateLimited:  {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	apperr.Unprocessable: {http.StatusUnprocessableEntity, "idempotency-key-reused",
		"The Idempotency-Key was used for a different request"},
	apperr.Refused: {http.StatusUnprocessableEntity, "refused", "Refused by policy"},
}

// httpKinds covers errors Echo raises itself (no route, wrong method,
// body too large).
var httpKinds = map[int]problemKind{
	http.StatusNotFound:              {http.StatusNotFound, "not-found", "Not found"},
	http.StatusMethodNotAllowed:      {http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"},
	http.StatusRequestEntityTooLarge: {http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large"},
	http.StatusUnsupportedMediaType:  {http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"},
	http.StatusTooManyRequests:       {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	http.StatusRequestTimeout:        {http.StatusRequestTimeout, "request-timeout", "The request body did not arrive in time"},
}

var internalKind = problemKind{http.StatusInternalServerError, "internal", "Internal server error"}

// problemFor turns any error into the problem a client sees. Client-safe
// messages come only from apperr.Error; anything else is an internal error
// whose detail stays in the log.
func problemFor(err error) (Problem, bool) {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		if k, ok := kinds[ae.Code]; ok {
			return newProblem(k, ae.Message, ae.Fields), false
		}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if k, ok := httpKinds[he.Code]; ok {
			return newProblem(k, "", nil), false
		}
	}
	return newProblem(internalKind, "", nil), true
}

func newProblem(k problemKind, detail string, fields []apperr.FieldError) Problem {
	return Problem{Type: problemBase + k.slug, Title: k.title, Status: k.status, Detail: detail, Errors: fields}
}

// errorHandler is the server's one error mapper.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p, internal := problemFor(err)
	p.RequestID = requestID(c)
	p.Instance = c.Request().URL.Path
	log := s.log.With("path", p.Instance)
	if internal {
		log.ErrorContext(c.Request().Context(), "request failed", "err", err)
	} else if p.Status >= 500 {
		log.WarnContext(c.Request().Context(), "request failed", "status", p.Status, "err", err)
	}
	if strings.HasPrefix(c.Request().URL.Path, "/scim/") {
		// The SCIM directory's clients read SCIM errors (RFC 7644 §3.12)
		// even for what Echo refuses before a handler runs (404, 405, 413).
		_ = scim.WriteError(c, p.Status, cmp.Or(p.Detail, p.Title))
		return
	}
	if p.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", wwwAuthenticate(err))
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(p.Status)
		return
	}
	if err := c.JSON(p.Status, p); err != nil {
		log.ErrorContext(c.Request().Context(), "write problem", "err", err)
	}
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}
