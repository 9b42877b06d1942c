package delivery

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klasterina/hub/internal/httpheader"
)

// FuzzAnswer reads a receiver's answer as the senders do: whatever its
// status, Retry-After and body, the result has a known outcome, a wait
// within bounds and at most MaxResultBody bytes of body.
func FuzzAnswer(f *testing.F) {
	f.Add(429, "120", "slow down")
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", "")
	f.Add(503, "99999999999999999999", "")
	f.Add(200, "-1", strings.Repeat("x", 2000))
	f.Add(301, " 5 ", "")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter, body string) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}}, Body: io.NopCloser(strings.NewReader(body))}
		for i, c := range []func(int, string) Outcome{classify, classifyStatement} {
			r := answered(resp, now, now, c)
			if !slices.Contains([]Outcome{Delivered, Retry, Throttled, Failed}, r.Outcome) {
				t.Fatalf("outcome %q", r.Outcome)
			}
			if r.RetryAfter < 0 || r.RetryAfter > httpheader.MaxRetryAfter {
				t.Fatalf("Retry-After %q read as %s", retryAfter, r.RetryAfter)
			}
			if len(r.Body) > MaxResultBody {
				t.Fatalf("kept %d bytes of body", len(r.Body))
			}
			if r.Outcome == Delivered && (status < 200 || status > 299) && !(i == 1 && status == http.StatusConflict) {
				t.Fatalf("status %d delivered", status)
			}
			resp.Body = io.NopCloser(strings.NewReader(body))
		}
	})
}
