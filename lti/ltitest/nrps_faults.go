package ltitest

import (
	"net/http"
	"time"
)

// Fault is a way the roster service fails one request, as platforms under
// load or in trouble do.
type Fault int

// The faults InjectNRPSFaults takes.
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
	// FaultMalformed answers 200 with a truncated membership container.
	FaultMalformed
	// FaultDropConnection closes the connection without answering.
	FaultDropConnection
	// FaultSlow holds the request for NRPSSlowDelay (3 s when zero), or
	// until the tool gives up, then answers normally.
	FaultSlow
)

// InjectNRPSFaults queues faults: each of the next roster requests that
// passes the bearer check takes the first one left.
func (p *Platform) InjectNRPSFaults(f ...Fault) {
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	p.nrps.faults = append(p.nrps.faults, f...)
}

func (p *Platform) nextFault() (Fault, bool) {
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	if len(p.nrps.faults) == 0 {
		return 0, false
	}
	f := p.nrps.faults[0]
	p.nrps.faults = p.nrps.faults[1:]
	return f, true
}

// fail answers r with fault f; false when the request is to be served
// normally after all (a slow answer that waited).
func (p *Platform) fail(w http.ResponseWriter, r *http.Request, f Fault) bool {
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
		w.Header().Set("Content-Type", nrpsMediaType)
		_, _ = w.Write([]byte(`{"id":"` + p.Server.URL + r.URL.RequestURI() + `","members":[{"status":"Active","user_id":"nrps-`))
	case FaultDropConnection:
		dropConnection(w)
	case FaultSlow:
		delay := p.NRPSSlowDelay
		if delay <= 0 {
			delay = defaultNRPSSlowWait
		}
		return !sleep(r, delay)
	}
	return true
}

// dropConnection closes the connection under a request without a word.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2: the server resets the stream
	}
	_ = conn.Close()
}
