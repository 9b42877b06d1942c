package nrps

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/klasterina/hub/internal/httpheader"
)

// StatusError is a page the platform refused or failed.
type StatusError struct {
	Status     int
	RetryAfter time.Duration // from Retry-After; 0 when absent
	Throttled  bool          // the platform asked the hub to slow down
	Body       string        // first 512 bytes
}

// maxErrorBody is how much of a refusal's body StatusError keeps.
const maxErrorBody = 512

// Error names the status, and the wait when the platform asked for one.
// The body is left out: it is the platform's text, for a log at most.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("nrps: platform answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Throttled {
		msg += " (throttled)"
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	return msg
}

// Temporary reports whether the same request may succeed later: the
// platform throttled it (429, 503 with Retry-After, Canvas's 403 rate
// limit) or failed (5xx). Anything else (401, 403, 404, 410) needs a new
// token, a new URL or a full sync, not a retry.
func (e *StatusError) Temporary() bool { // 429, 5xx, Throttled
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Throttled
}

// newStatusError reads a refusal: its Retry-After and the start of its
// body, which tells Canvas's throttling 403 from a real one.
func newStatusError(resp *http.Response, now time.Time) *StatusError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	retry := resp.Header.Get("Retry-After")
	e := &StatusError{Status: resp.StatusCode, RetryAfter: httpheader.RetryAfter(retry, now), Body: string(b)}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		e.Throttled = true
	case http.StatusServiceUnavailable:
		e.Throttled = strings.TrimSpace(retry) != ""
	case http.StatusForbidden:
		// Canvas throttles with "403 Forbidden (Rate Limit Exceeded)".
		e.Throttled = strings.Contains(strings.ToLower(e.Body), "rate limit exceeded")
	}
	return e
}
