package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/klasterina/hub/internal/httpheader"
	"github.com/klasterina/hub/internal/httpx"
)

// Outcome is what became of one attempt, and so what the worker does next.
type Outcome string

// Outcomes.
const (
	Delivered Outcome = "delivered" // the receiver took it
	Retry     Outcome = "retry"     // a fault that may pass: try again with backoff
	Throttled Outcome = "throttled" // the receiver asked the hub to slow down: wait RetryAfter
	Failed    Outcome = "failed"    // refused: retrying will not help until the destination changes
	DryRun    Outcome = "dry_run"   // nothing sent; Request is what would have been
)

// Causes of an attempt that got no answer, for logs and the admin.
const (
	CauseTimeout          = "timeout"            // no answer in time
	CauseRefused          = "connection_refused" // nothing listens there
	CauseDNS              = "dns"                // the name did not resolve
	CauseTLS              = "tls"                // the certificate or the handshake failed
	CauseForbiddenAddress = "forbidden_address"  // the outbound guard refused the address
	CauseConnection       = "connection"         // any other network failure
	CauseCanceled         = "canceled"           // the caller gave up (shutdown)
)

// MaxResultBody is how much of an answer's body a Result keeps: enough to
// read an error message, never a document.
const MaxResultBody = 1 << 10

// drainBody is how much more of a body is read, and dropped, so the
// connection can be used again.
const drainBody = 64 << 10

// Result is what happened to one attempt.
type Result struct {
	Outcome Outcome
	Status  int           // the HTTP status; 0 when no answer came
	Latency time.Duration // from sending to the first MaxResultBody bytes of the answer
	// Body is the start of the answer's body, at most MaxResultBody bytes.
	// It is the receiver's text: for an admin or a log, never parsed.
	Body []byte
	// RetryAfter is the receiver's Retry-After (at most
	// httpheader.MaxRetryAfter); 0 when it gave none.
	RetryAfter time.Duration
	// Cause says why no answer came (one of the Cause constants), and Err
	// is the error for the log; Err's text is not for clients.
	Cause string
	Err   error
	// Request is, in a dry run, the request as it would have been sent,
	// with credentials redacted.
	Request *Request
}

// Request is an HTTP request as recorded.
type Request struct {
	Method string      `json:"method"`
	URL    string      `json:"url"`
	Header http.Header `json:"headers"`
	Body   []byte      `json:"body"`
}

// classify tells what an answer means for the worker. A 3xx is not
// followed (Standard Webhooks: update the URL instead) and fails like a
// refusal; 408 is the receiver's timeout and worth another try.
func classify(status int, retryAfter string) Outcome {
	switch {
	case status >= 200 && status < 300:
		return Delivered
	case status == http.StatusTooManyRequests,
		status == http.StatusServiceUnavailable && retryAfter != "":
		return Throttled
	case status >= 500, status == http.StatusRequestTimeout:
		return Retry
	}
	return Failed
}

// answered is the Result of a response: its class, Retry-After and the
// start of its body. The rest of the body is drained and closed.
func answered(resp *http.Response, start, now time.Time, classify func(int, string) Outcome) Result {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResultBody))
	latency := time.Since(start)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBody))
	retry := resp.Header.Get("Retry-After")
	return Result{Outcome: classify(resp.StatusCode, retry), Status: resp.StatusCode, Latency: latency, Body: body,
		RetryAfter: httpheader.RetryAfter(retry, now)}
}

// unanswered is the Result of a request that got no answer. An address
// the guard refuses fails: it will be refused again. Anything else may
// pass.
//
// Err drops the URL a transport error names: its query may hold the
// receiver's token, and Err is for logs.
func unanswered(err error, start time.Time) Result {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = fmt.Errorf("%s: %w", urlErr.Op, urlErr.Err)
	}
	r := Result{Outcome: Retry, Latency: time.Since(start), Err: err, Cause: causeOf(err)}
	if r.Cause == CauseForbiddenAddress {
		r.Outcome = Failed
	}
	return r
}

func causeOf(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, httpx.ErrForbiddenAddress):
		return CauseForbiddenAddress
	case errors.Is(err, context.Canceled):
		return CauseCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return CauseTimeout
	case errors.As(err, &dnsErr):
		return CauseDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseRefused
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &recordErr):
		return CauseTLS
	}
	return CauseConnection
}
