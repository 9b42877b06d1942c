package delivery_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/tenants/agreements"
)

func newSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint on loopback that keeps what it gets and
// answers with answer.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []received
	hits atomic.Int32
}

func newReceiver(t testing.TB, answer http.HandlerFunc) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), body})
		r.mu.Unlock()
		r.hits.Add(1)
		answer(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) last(t testing.TB) received {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		t.Fatal("the receiver got nothing")
	}
	return r.got[len(r.got)-1]
}

func ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

func sender() *delivery.Sender { return delivery.NewSender(httpx.New(true)) }

func testEvent() delivery.Event {
	return delivery.Event{ID: "msg_" + uuid.NewString(), Type: delivery.TestEventType,
		Timestamp: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Data: map[string]string{"hello": "world"}}
}

// TestWebhookIsSignedPerStandardWebhooks: the reference library's Verify
// accepts what the hub sends, with its timestamp check on.
func TestWebhookIsSignedPerStandardWebhooks(t *testing.T) {
	secret := newSecret(t)
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	recv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	ev := testEvent()
	res, err := sender().SendWebhook(context.Background(), delivery.Webhook{URL: recv.URL + "/hooks", Secrets: []string{secret}}, ev)
	if err != nil || res.Outcome != delivery.Delivered || res.Status != 200 {
		t.Fatalf("sent: %+v, %v", res, err)
	}
	got := recv.last(t)
	if err := verifier.Verify(got.body, got.header); err != nil {
		t.Fatalf("the reference library refuses the signature: %v", err)
	}
	if got.header.Get("webhook-id") != ev.ID || got.header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", got.header)
	}
	ts, err := strconv.ParseInt(got.header.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Fatalf("webhook-timestamp %q is not the time of sending", got.header.Get("webhook-timestamp"))
	}
	var payload struct {
		Type      string            `json:"type"`
		Timestamp time.Time         `json:"timestamp"`
		Data      map[string]string `json:"data"`
	}
	if err := json.Unmarshal(got.body, &payload); err != nil || payload.Type != ev.Type || !payload.Timestamp.Equal(ev.Timestamp) ||
		payload.Data["hello"] != "world" {
		t.Fatalf("payload %s (%v)", got.body, err)
	}
	// Changing a byte of the body, or signing with another secret, fails.
	if verifier.Verify(append([]byte(" "), got.body...), got.header) == nil {
		t.Fatal("a changed body verified")
	}
	other, _ := standardwebhooks.NewWebhook(newSecret(t))
	if other.Verify(got.body, got.header) == nil {
		t.Fatal("another secret verified the signature")
	}
}

// TestRotationSignsWithBothSecrets: during a rotation a receiver that
// knows either secret accepts the delivery.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	current, previous := newSecret(t), newSecret(t)
	recv := newReceiver(t, ok)
	if _, err := sender().SendWebhook(context.Background(), delivery.Webhook{URL: recv.URL, Secrets: []string{current, previous}},
		testEvent()); err != nil {
		t.Fatal(err)
	}
	got := recv.last(t)
	sigs := strings.Fields(got.header.Get("webhook-signature"))
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("webhook-signature %q: want two v1 signatures", got.header.Get("webhook-signature"))
	}
	for name, secret := range map[string]string{"current": current, "previous": previous} {
		wh, _ := standardwebhooks.NewWebhook(secret)
		if err := wh.Verify(got.body, got.header); err != nil {
			t.Errorf("a receiver with the %s secret refuses: %v", name, err)
		}
	}
}

func TestWebhookOutcomes(t *testing.T) {
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		want       delivery.Outcome
		wantWait   time.Duration // at least
	}{
		{"ok", 200, "", delivery.Delivered, 0},
		{"accepted", 202, "", delivery.Delivered, 0},
		{"server error", 500, "", delivery.Retry, 0},
		{"bad gateway", 502, "", delivery.Retry, 0},
		{"unavailable without retry-after", 503, "", delivery.Retry, 0},
		{"unavailable with retry-after", 503, "120", delivery.Throttled, 120 * time.Second},
		{"too many requests", 429, "7", delivery.Throttled, 7 * time.Second},
		{"too many requests until a date", 429, httpDate, delivery.Throttled, 80 * time.Second},
		{"too many requests without retry-after", 429, "", delivery.Throttled, 0},
		{"receiver timeout", 408, "", delivery.Retry, 0},
		{"bad request", 400, "", delivery.Failed, 0},
		{"unauthorized", 401, "", delivery.Failed, 0},
		{"gone", 410, "", delivery.Failed, 0},
		{"moved", 301, "", delivery.Failed, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				if tc.status/100 == 3 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, strings.Repeat("x", 3000))
			})
			res, err := sender().SendWebhook(context.Background(), delivery.Webhook{URL: recv.URL, Secrets: []string{newSecret(t)}}, testEvent())
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.want || res.Status != tc.status || res.RetryAfter < tc.wantWait || res.Err != nil {
				t.Fatalf("%d Retry-After %q: %+v, want %s waiting at least %s", tc.status, tc.retryAfter, res, tc.want, tc.wantWait)
			}
			if len(res.Body) != delivery.MaxResultBody || res.Latency <= 0 {
				t.Fatalf("kept %d bytes of the body (want %d), latency %s", len(res.Body), delivery.MaxResultBody, res.Latency)
			}
			if n := recv.hits.Load(); n != 1 {
				t.Fatalf("the receiver was called %d times: a redirect was followed", n)
			}
		})
	}
}

func TestWebhookWithoutAnAnswer(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	slow := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	for _, tc := range []struct {
		name, url string
		cause     string
	}{
		{"slow receiver", slow.URL + "/h?token=sekrit", delivery.CauseTimeout},
		{"nothing listening", closedURL + "/h?token=sekrit", delivery.CauseRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sender()
			s.Timeout = 200 * time.Millisecond
			start := time.Now()
			res, err := s.SendWebhook(context.Background(), delivery.Webhook{URL: tc.url, Secrets: []string{newSecret(t)}}, testEvent())
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != delivery.Retry || res.Cause != tc.cause || res.Err == nil || res.Status != 0 {
				t.Fatalf("%+v, want retry because of %s", res, tc.cause)
			}
			if strings.Contains(res.Err.Error(), "sekrit") {
				t.Fatalf("the error for the log names the URL's query: %v", res.Err)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("the attempt took %s: the timeout did not hold", time.Since(start))
			}
		})
	}
}

// TestTheGuardRefusesPrivateAddresses: with private addresses not allowed
// a delivery to loopback is refused before anything is sent, for good.
func TestTheGuardRefusesPrivateAddresses(t *testing.T) {
	recv := newReceiver(t, ok)
	_, port, _ := net.SplitHostPort(recv.Listener.Addr().String())
	s := delivery.NewSender(httpx.New(false))
	for _, url := range []string{recv.URL, "http://localhost:" + port + "/"} {
		res, err := s.SendWebhook(context.Background(), delivery.Webhook{URL: url, Secrets: []string{newSecret(t)}}, testEvent())
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != delivery.Failed || res.Cause != delivery.CauseForbiddenAddress || !errors.Is(res.Err, httpx.ErrForbiddenAddress) {
			t.Fatalf("%s: %+v, want failed by the guard", url, res)
		}
	}
	if n := recv.hits.Load(); n != 0 {
		t.Fatalf("the receiver on loopback was reached %d times", n)
	}
}

// TestDryRunSendsNothing: a dry run returns the signed request it would
// have sent, which the reference library verifies, and sends nothing.
func TestDryRunSendsNothing(t *testing.T) {
	recv := newReceiver(t, ok)
	secret := newSecret(t)
	ev := testEvent()
	res, err := sender().SendWebhook(context.Background(), delivery.Webhook{URL: recv.URL + "/h", Secrets: []string{secret}, DryRun: true}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != delivery.DryRun || res.Request == nil || res.Status != 0 {
		t.Fatalf("%+v", res)
	}
	if n := recv.hits.Load(); n != 0 {
		t.Fatalf("a dry run reached the receiver %d times", n)
	}
	req := res.Request
	wh, _ := standardwebhooks.NewWebhook(secret)
	if req.Method != "POST" || req.URL != recv.URL+"/h" || req.Header.Get("webhook-id") != ev.ID || wh.Verify(req.Body, req.Header) != nil {
		t.Fatalf("recorded request %+v does not verify", req)
	}
}

func TestWebhookRefusesWhatItCannotSend(t *testing.T) {
	good := newSecret(t)
	for _, tc := range []struct {
		name    string
		secrets []string
		id      string
	}{
		{"no secret", nil, "msg_1"},
		{"a secret without its prefix", []string{strings.TrimPrefix(good, "whsec_")}, "msg_1"},
		{"an empty secret", []string{"whsec_"}, "msg_1"},
		{"a secret that is not base64", []string{"whsec_***"}, "msg_1"},
		{"an id with a full stop", []string{good}, "msg.1"},
		{"an id with a space", []string{good}, "msg 1"},
		{"an empty id", []string{good}, ""},
		{"a long id", []string{good}, strings.Repeat("a", 256)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := testEvent()
			ev.ID = tc.id
			_, err := sender().SendWebhook(context.Background(), delivery.Webhook{URL: "http://127.0.0.1:1/", Secrets: tc.secrets}, ev)
			if !errors.Is(err, delivery.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestRecordEventCarriesOnlyAllowedFields: a field the decision did not
// let go stays out of the payload even when the record holds it.
func TestRecordEventCarriesOnlyAllowedFields(t *testing.T) {
	given, maximum, done := 8.0, 10.0, true
	r := delivery.Record{ID: uuid.New(), Category: agreements.CategoryScores, Learner: uuid.New(),
		Fields: []agreements.Field{agreements.FieldExternalID}, Name: "Ada Lovelace", Email: "ada@example.com", ExternalID: "E-1",
		ScoreGiven: &given, ScoreMax: &maximum, Completed: &done, ActivityID: "quiz-1", ActivityTitle: "Quiz",
		OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ev := delivery.RecordEvent("msg_"+r.ID.String(), r)
	body, err := json.Marshal(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "scores.recorded" || strings.Contains(string(body), "Ada") || strings.Contains(string(body), "ada@") ||
		!strings.Contains(string(body), `"external_id":"E-1"`) || !strings.Contains(string(body), `"scaled":0.8`) {
		t.Fatalf("event %s: %s", ev.Type, body)
	}
}
