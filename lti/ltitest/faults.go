package ltitest

import (
	"net/http"
	"sync"
	"time"
)

// Fault is a way a service (roster or grades) fails one request, as
// platforms under load or in trouble do.
type Fault int

// The faults InjectNRPSFaults and InjectAGSFaults take.
const (
	// FaultTooMany answers 429 with Retry-After: 1.
	FaultTooMany Fault = iota + 1
	// FaultTooManyDate answers 429 with Retry-After as an HTTP-date one to
	// two seconds ahead (the date has whole seconds).
	FaultTooManyDate
	// FaultCanvasThrottle answers as Canvas throttles: 403 with the body
	// "403 Forbidden (Rate Limit Exceeded)".
	FaultCanvasThrottle
	// FaultUnavailable answers 503 with Retry-After: 1.
	FaultUnavailable
	// FaultServerError answers 500.
	FaultServerError
	// FaultMalformed answers 200 with a truncated body of the service's
	// media type (a membership container, a line item or a container of
	// them), doing nothing else.
	FaultMalformed
	// FaultDropConnection closes the connection without answering.
	FaultDropConnection
	// FaultSlow holds the request for the service's slow delay
	// (NRPSSlowDelay, AGSSlowDelay; 3 s when zero), or until the tool
	// gives up, then answers normally.
	FaultSlow
	// FaultUnauthorized answers 401 invalid_token to a token the platform
	// issued, as a platform that dropped it before its expiry: the tool
	// must get a new one. The token itself stays good (RevokeTokens
	// refuses it for good).
	FaultUnauthorized
)

// faultQueue holds the faults injected into a service; each request that
// passes the bearer check takes the first one left.
type faultQueue struct {
	mu     sync.Mutex
	faults []Fault
}

func (q *faultQueue) push(f ...Fault) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.faults = append(q.faults, f...)
}

func (q *faultQueue) next() (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.faults) == 0 {
		return 0, false
	}
	f := q.faults[0]
	q.faults = q.faults[1:]
	return f, true
}

// InjectNRPSFaults queues faults: each of the next roster requests that
// passes the bearer check takes the first one left.
func (p *Platform) InjectNRPSFaults(f ...Fault) { p.nrps.faults.push(f...) }

// faultAnswer is how a service answers FaultMalformed (a truncated body of
// its media type) and how long it holds FaultSlow.
type faultAnswer struct {
	mediaType string
	malformed string
	slow      time.Duration
}

// fail answers r with fault f; false when the request is to be served
// normally after all (a slow answer that waited).
func (p *Platform) fail(w http.ResponseWriter, r *http.Request, f Fault, a faultAnswer) bool {
	switch f {
	case FaultTooMany:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
	case FaultTooManyDate:
		w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
	case FaultCanvasThrottle:
		http.Error(w, "403 Forbidden (Rate Limit Exceeded)", http.StatusForbidden)
	case FaultUnavailable:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
	case FaultServerError:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	case FaultMalformed:
		w.Header().Set("Content-Type", a.mediaType)
		_, _ = w.Write([]byte(a.malformed))
	case FaultDropConnection:
		dropConnection(w)
	case FaultSlow:
		delay := a.slow
		if delay <= 0 {
			delay = defaultSlowWait
		}
		return !sleep(r, delay)
	case FaultUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="ltitest", error="invalid_token"`)
		http.Error(w, "access token unknown, expired or revoked", http.StatusUnauthorized)
	}
	return true
}

// defaultSlowWait is how long FaultSlow holds a request when the
// service's delay is zero.
const defaultSlowWait = 3 * time.Second

// dropConnection closes the connection under a request without a word.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2: the server resets the stream
	}
	_ = conn.Close()
}
