package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// DefaultTimeout bounds one attempt, answer included: Standard Webhooks
// recommends giving receivers 15 to 30 seconds.
const DefaultTimeout = 15 * time.Second

// userAgent names the hub to receivers.
const userAgent = "hub-delivery/1"

// ErrInvalid means the caller passed something no attempt can send (a
// malformed secret, event id or record): a bug or bad stored data, not
// the receiver's fault. Nothing was sent.
var ErrInvalid = errors.New("delivery: cannot send")

// Sender sends one attempt at a time; it is safe for concurrent use.
type Sender struct {
	client  *http.Client
	Timeout time.Duration // per attempt; DefaultTimeout when 0
	Now     func() time.Time
}

// NewSender sends through client, the hub's guarded outbound client
// (httpx.New). Redirects are not followed: a destination that moved is
// told to the admin as a failure, so its URL is changed, not chased.
func NewSender(client *http.Client) *Sender {
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Sender{client: &c, Timeout: DefaultTimeout, Now: time.Now}
}

// send makes one attempt at req, or in a dry run records it and sends
// nothing. redact lists headers recorded as "[redacted]".
func (s *Sender) send(ctx context.Context, req *http.Request, body []byte, dryRun bool,
	classify func(int, string) Outcome, redact ...string) Result {
	if dryRun {
		return Result{Outcome: DryRun, Request: record(req, body, redact)}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	resp, err := s.client.Do(req.WithContext(ctx))
	if err != nil {
		return unanswered(err, start)
	}
	return answered(resp, start, s.Now(), classify)
}

// newRequest is a request of the hub's with a body.
func newRequest(method, target string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %s to a URL that does not parse", ErrInvalid, method) // the URL may hold a token
	}
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func record(req *http.Request, body []byte, redact []string) *Request {
	h := req.Header.Clone()
	for _, name := range redact {
		if h.Get(name) != "" {
			h.Set(name, "[redacted]")
		}
	}
	return &Request{Method: req.Method, URL: req.URL.String(), Header: h, Body: body}
}
