package api_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/internal/secrets"
)

type destination struct {
	ID                      string   `json:"id"`
	Kind                    string   `json:"kind"`
	Name                    string   `json:"name"`
	URL                     string   `json:"url"`
	Enabled                 bool     `json:"enabled"`
	DryRun                  bool     `json:"dry_run"`
	EventTypes              []string `json:"event_types"`
	PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
	Secret                  string   `json:"secret"`
}

type testAnswer struct {
	Outcome           string `json:"outcome"`
	EventID           string `json:"event_id"`
	Status            int    `json:"status"`
	LatencyMS         *int64 `json:"latency_ms"`
	ResponseBody      string `json:"response_body"`
	RetryAfterSeconds int64  `json:"retry_after_seconds"`
	Error             string `json:"error"`
	Request           *struct {
		Method  string              `json:"method"`
		URL     string              `json:"url"`
		Headers map[string][]string `json:"headers"`
		Body    string              `json:"body"`
	} `json:"request"`
}

const destinationsPath = "/api/v1/tenants/acme/destinations"

func webhookBody(url string, overrides map[string]any) map[string]any {
	b := map[string]any{"kind": "webhook", "name": "HR system", "url": url, "event_types": []string{"completion", "scores"}}
	for k, v := range overrides {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

func xapiBody(url string, overrides map[string]any) map[string]any {
	b := webhookBody(url, map[string]any{"kind": "xapi", "name": "LRS", "username": "lrs-key", "password": "lrs-password-1"})
	for k, v := range overrides {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

func (h *hub) createDestination(key string, body map[string]any) destination {
	h.t.Helper()
	var d destination
	h.expect(h.do("POST", destinationsPath, key, body), 201).json(h.t, &d)
	return d
}

func (h *hub) testDestination(key, id string) testAnswer {
	h.t.Helper()
	var a testAnswer
	h.expect(h.do("POST", destinationsPath+"/"+id+"/test", key, nil), 200).json(h.t, &a)
	return a
}

// sealedColumn reads a destination's column as stored, as the
// application role within the tenant.
func (h *hub) sealedColumn(slug, id, column string) []byte {
	h.t.Helper()
	ctx := context.Background()
	tenant, err := h.deps.Tenants.BySlug(ctx, slug)
	if err != nil {
		h.t.Fatal(err)
	}
	var b []byte
	if err := pg.InTenant(ctx, h.db, tenant.ID, func(tx *sqlx.Tx) error {
		return tx.Get(&b, `SELECT `+column+` FROM destinations WHERE id = $1`, id)
	}); err != nil {
		h.t.Fatal(err)
	}
	return b
}

// verifyingReceiver is a webhook endpoint that accepts (200) what the
// reference library verifies with one of secrets, and refuses (401) the
// rest.
type verifyingReceiver struct {
	*httptest.Server
	secrets []string
	hits    atomic.Int32
}

func newVerifyingReceiver(t *testing.T, secrets ...string) *verifyingReceiver {
	r := &verifyingReceiver{secrets: secrets}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		body, _ := io.ReadAll(req.Body)
		for _, s := range r.secrets {
			wh, err := standardwebhooks.NewWebhook(s)
			if err == nil && wh.Verify(body, req.Header) == nil {
				io.WriteString(w, "verified")
				return
			}
		}
		http.Error(w, "signature refused", http.StatusUnauthorized)
	}))
	t.Cleanup(r.Close)
	return r
}

func TestDestinationLifecycle(t *testing.T) {
	h := newHub(t)
	h.createTenant("acme", "employer")
	_, key := h.createKey("acme", "write")
	recv := newVerifyingReceiver(t)

	r := h.expect(h.do("POST", destinationsPath, key, webhookBody(recv.URL+"/hooks?token=receiver-token", nil)), 201)
	var hook destination
	r.json(t, &hook)
	if !strings.HasPrefix(hook.Secret, "whsec_") || hook.Kind != "webhook" || !hook.Enabled || hook.DryRun ||
		!slices.Equal(hook.EventTypes, []string{"completion", "scores"}) {
		t.Fatalf("created %+v", hook)
	}
	if r.header.Get("Location") != destinationsPath+"/"+hook.ID || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Location %q, Cache-Control %q", r.header.Get("Location"), r.header.Get("Cache-Control"))
	}

	// The secret was shown once: no read shows it again, and the database
	// holds it sealed.
	for _, path := range []string{destinationsPath, destinationsPath + "/" + hook.ID} {
		got := h.expect(h.do("GET", path, key, nil), 200)
		if bytes.Contains(got.body, []byte(hook.Secret[6:])) || bytes.Contains(got.body, []byte(`"secret"`)) {
			t.Fatalf("GET %s shows the secret: %s", path, got.body)
		}
	}
	stored := h.sealedColumn("acme", hook.ID, "secret")
	if bytes.Contains(stored, []byte(hook.Secret[6:])) {
		t.Fatal("the database holds the webhook secret in the clear")
	}
	if _, err := secrets.KeyIDOf(stored); err != nil {
		t.Fatalf("the secret column is not sealed: %v", err)
	}

	var changed destination
	h.expect(h.do("PATCH", destinationsPath+"/"+hook.ID, key, map[string]any{"name": "HR", "enabled": false,
		"event_types": []string{"certificates"}}), 200).json(t, &changed)
	if changed.Name != "HR" || changed.Enabled || !slices.Equal(changed.EventTypes, []string{"certificates"}) || changed.Secret != "" {
		t.Fatalf("patched %+v", changed)
	}

	lrs := h.createDestination(key, xapiBody("https://lrs.example/xapi", nil))
	if lrs.Secret != "" {
		t.Fatal("an xapi destination was given a secret")
	}
	got := h.expect(h.do("GET", destinationsPath+"/"+lrs.ID, key, nil), 200)
	for _, s := range []string{"lrs-key", "lrs-password-1", "username", "password"} {
		if bytes.Contains(got.body, []byte(s)) {
			t.Fatalf("GET shows the LRS's %s: %s", s, got.body)
		}
	}
	for col, plain := range map[string]string{"lrs_username": "lrs-key", "lrs_password": "lrs-password-1"} {
		if b := h.sealedColumn("acme", lrs.ID, col); len(b) == 0 || bytes.Contains(b, []byte(plain)) {
			t.Fatalf("%s is not sealed", col)
		}
	}
	h.expect(h.do("PATCH", destinationsPath+"/"+lrs.ID, key, map[string]any{"password": "lrs-password-2"}), 200)

	var list page[destination]
	h.expect(h.do("GET", destinationsPath+"?kind=webhook", key, nil), 200).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != hook.ID {
		t.Fatalf("webhooks %+v", list.Items)
	}
	h.expect(h.do("GET", destinationsPath+"?limit=1", key, nil), 200).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != lrs.ID || list.NextCursor == "" {
		t.Fatalf("first page %+v", list)
	}
	next := list.NextCursor
	list = page[destination]{}
	h.expect(h.do("GET", destinationsPath+"?limit=1&cursor="+next, key, nil), 200).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != hook.ID || list.NextCursor != "" {
		t.Fatalf("second page %+v", list)
	}

	h.expect(h.do("DELETE", destinationsPath+"/"+hook.ID, key, nil), 204)
	h.problem(h.do("GET", destinationsPath+"/"+hook.ID, key, nil), 404, "not-found")

	auditBody := h.expect(h.do("GET", "/api/v1/tenants/acme/audit?action=destination.", key, nil), 200)
	var audited auditPage
	auditBody.json(t, &audited)
	var actions []string
	for _, e := range audited.Items {
		actions = append(actions, e.Action)
	}
	want := "destination.deleted destination.updated destination.created destination.updated destination.created"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("audited %q, want %q", got, want)
	}
	for _, s := range []string{hook.Secret[6:], "lrs-password", "lrs-key", "receiver-token"} {
		if bytes.Contains(auditBody.body, []byte(s)) || strings.Contains(h.logs.String(), s) {
			t.Fatalf("the audit log or the server's log holds %q", s)
		}
	}
}

func TestDestinationRejections(t *testing.T) {
	d := pgtest.New(t)
	h := serveHub(t, d, mustOpen(t, d), func(c *config.Config) { c.OutboundAllowPrivate = false })
	h.createTenant("acme", "employer")
	h.createTenant("other", "employer")
	_, key := h.createKey("acme", "write")
	_, reader := h.createKey("acme", "read")
	_, otherKey := h.createKey("other", "write")
	const good = "https://hr.example/hooks"

	for _, tc := range []struct {
		name   string
		body   any
		fields []string
	}{
		{"bad kind", webhookBody(good, map[string]any{"kind": "email"}), []string{"kind"}},
		{"plain http", webhookBody("http://hr.example/hooks", nil), []string{"url"}},
		{"a loopback address", webhookBody("https://127.0.0.1/hooks", nil), []string{"url"}},
		{"a private address", webhookBody("https://10.1.2.3/hooks", nil), []string{"url"}},
		{"cloud metadata", webhookBody("https://169.254.169.254/latest", nil), []string{"url"}},
		{"credentials in the URL", webhookBody("https://u:p@hr.example/", nil), []string{"url"}},
		{"a relative URL", webhookBody("/hooks", nil), []string{"url"}},
		{"missing fields", map[string]any{}, []string{"kind", "name", "url", "event_types"}},
		{"no event types", webhookBody(good, map[string]any{"event_types": []string{}}), []string{"event_types"}},
		{"an unknown event type", webhookBody(good, map[string]any{"event_types": []string{"grades"}}), []string{"event_types[0]"}},
		{"an event type twice", webhookBody(good, map[string]any{"event_types": []string{"scores", "scores"}}), []string{"event_types[1]"}},
		{"a webhook with a password", webhookBody(good, map[string]any{"password": "x"}), []string{"password"}},
		{"an LRS without credentials", xapiBody(good, map[string]any{"username": nil, "password": nil}), []string{"username", "password"}},
		{"a username with a colon", xapiBody(good, map[string]any{"username": "a:b"}), []string{"username"}},
		{"a blank name", webhookBody(good, map[string]any{"name": "  "}), []string{"name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := h.problem(h.do("POST", destinationsPath, key, tc.body), 400, "validation")
			var fields []string
			for _, f := range p.Errors {
				if !slices.Contains(fields, f.Field) {
					fields = append(fields, f.Field)
				}
			}
			if !slices.Equal(fields, tc.fields) {
				t.Fatalf("fields at fault %v, want %v", fields, tc.fields)
			}
		})
	}
	// Unknown fields are refused: the hub makes webhook secrets, and a
	// destination's kind never changes.
	h.problem(h.do("POST", destinationsPath, key, webhookBody(good, map[string]any{"secret": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"})), 400, "validation")
	hook := h.createDestination(key, webhookBody(good, nil))
	path := destinationsPath + "/" + hook.ID
	h.problem(h.do("PATCH", path, key, map[string]any{"kind": "xapi"}), 400, "validation")
	h.problem(h.do("PATCH", path, key, map[string]any{}), 400, "validation")
	h.problem(h.do("PATCH", path, key, map[string]any{"url": "http://hr.example/"}), 400, "validation")
	h.problem(h.do("PATCH", path, key, map[string]any{"username": "x"}), 400, "validation")
	h.problem(h.do("POST", destinationsPath, key, webhookBody("https://elsewhere.example/", nil)), 409, "conflict")
	h.problem(h.do("GET", destinationsPath+"?kind=email", key, nil), 400, "validation")
	h.problem(h.do("GET", destinationsPath+"/not-a-uuid", key, nil), 404, "not-found")

	// A read key reads and changes nothing.
	h.expect(h.do("GET", path, reader, nil), 200)
	for _, tc := range []struct{ method, path string }{
		{"POST", destinationsPath}, {"PATCH", path}, {"DELETE", path}, {"POST", path + "/rotate-secret"},
		{"POST", path + "/finish-rotation"}, {"POST", path + "/test"},
	} {
		h.problem(h.do(tc.method, tc.path, reader, webhookBody(good, map[string]any{"name": "new"})), 403, "forbidden")
	}

	// Another tenant's destination is not found, through its own path or
	// through the owner's.
	other := "/api/v1/tenants/other/destinations/" + hook.ID
	for _, tc := range []struct {
		method, path, key string
		body              any
	}{
		{"GET", other, otherKey, nil}, {"PATCH", other, otherKey, map[string]any{"name": "mine"}}, {"DELETE", other, otherKey, nil},
		{"POST", other + "/rotate-secret", otherKey, nil}, {"POST", other + "/finish-rotation", otherKey, nil},
		{"POST", other + "/test", otherKey, nil}, {"GET", other, adminToken, nil}, {"GET", path, otherKey, nil},
	} {
		h.problem(h.do(tc.method, tc.path, tc.key, tc.body), 404, "not-found")
	}
	var list page[destination]
	h.expect(h.do("GET", "/api/v1/tenants/other/destinations", otherKey, nil), 200).json(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("the other tenant lists %+v", list.Items)
	}
	if got := h.expect(h.do("GET", path, key, nil), 200).field(t, "name"); got != "HR system" {
		t.Fatalf("after the other tenant's attempts the name is %q", got)
	}
}

// TestDestinationSecretRotation: while a rotation lasts, a receiver that
// knows only the old secret or only the new one verifies the hub's
// signature with the reference library; once finished, only the new one.
func TestDestinationSecretRotation(t *testing.T) {
	h := newHub(t)
	h.createTenant("acme", "employer")
	_, key := h.createKey("acme", "write")
	url := "http://" + freeAddress(t) // no receiver yet: the secret is needed first
	hook := h.createDestination(key, webhookBody(url, nil))
	path := destinationsPath + "/" + hook.ID

	var rotated destination
	r := h.expect(h.do("POST", path+"/rotate-secret", key, nil), 200)
	r.json(t, &rotated)
	if rotated.Secret == "" || rotated.Secret == hook.Secret || rotated.PreviousSecretExpiresAt == nil || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotated %+v", rotated)
	}
	if got := h.expect(h.do("GET", path, key, nil), 200); bytes.Contains(got.body, []byte(rotated.Secret[6:])) {
		t.Fatal("GET shows the new secret")
	}
	h.problem(h.do("POST", path+"/rotate-secret", key, nil), 409, "conflict")

	old, fresh := newVerifyingReceiver(t, hook.Secret), newVerifyingReceiver(t, rotated.Secret)
	for name, recv := range map[string]*verifyingReceiver{"old": old, "new": fresh} {
		h.expect(h.do("PATCH", path, key, map[string]any{"url": recv.URL}), 200)
		if a := h.testDestination(key, hook.ID); a.Outcome != "delivered" || a.Status != 200 || a.ResponseBody != "verified" {
			t.Fatalf("during the rotation a receiver with the %s secret answered %+v", name, a)
		}
	}

	var finished destination
	h.expect(h.do("POST", path+"/finish-rotation", key, nil), 200).json(t, &finished)
	if finished.PreviousSecretExpiresAt != nil {
		t.Fatalf("finished %+v", finished)
	}
	h.problem(h.do("POST", path+"/finish-rotation", key, nil), 409, "conflict")
	h.expect(h.do("PATCH", path, key, map[string]any{"url": old.URL}), 200)
	if a := h.testDestination(key, hook.ID); a.Outcome != "failed" || a.Status != 401 {
		t.Fatalf("after the rotation a receiver with the old secret answered %+v", a)
	}
	h.expect(h.do("PATCH", path, key, map[string]any{"url": fresh.URL}), 200)
	if a := h.testDestination(key, hook.ID); a.Outcome != "delivered" {
		t.Fatalf("after the rotation a receiver with the new secret answered %+v", a)
	}

	lrs := h.createDestination(key, xapiBody("https://lrs.example/xapi", nil))
	h.problem(h.do("POST", destinationsPath+"/"+lrs.ID+"/rotate-secret", key, nil), 409, "conflict")

	var audited auditPage
	h.expect(h.do("GET", "/api/v1/tenants/acme/audit?action=destination.", key, nil), 200).json(t, &audited)
	var actions []string
	for _, e := range audited.Items {
		if !slices.Contains(actions, e.Action) {
			actions = append(actions, e.Action)
		}
	}
	slices.Sort(actions)
	want := []string{"destination.created", "destination.rotation_finished", "destination.secret_rotated", "destination.tested", "destination.updated"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audited %v, want %v", actions, want)
	}
}

func freeAddress(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDestinationTestReportsTheAnswer: the test endpoint sends through
// the real sender and says how the receiver answered.
func TestDestinationTestReportsTheAnswer(t *testing.T) {
	d := pgtest.New(t)
	h := serveHubWith(t, d, mustOpen(t, d), func(deps *api.Deps) { deps.Delivery.Timeout = 300 * time.Millisecond })
	h.createTenant("acme", "employer")
	_, key := h.createKey("acme", "write")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var slowHits atomic.Int32

	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		check  func(testAnswer) bool
	}{
		{"ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "thanks") },
			func(a testAnswer) bool {
				return a.Outcome == "delivered" && a.Status == 200 && a.ResponseBody == "thanks"
			}},
		{"server error", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) },
			func(a testAnswer) bool { return a.Outcome == "retry" && a.Status == 500 && a.ResponseBody == "boom\n" }},
		{"throttled", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}, func(a testAnswer) bool {
			return a.Outcome == "throttled" && a.Status == 429 && a.RetryAfterSeconds == 30
		}},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			slowHits.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}, func(a testAnswer) bool {
			return a.Outcome == "retry" && a.Status == 0 && a.Error == "timeout" && *a.LatencyMS >= 250
		}},
		{"a long body", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, strings.Repeat("y", 5000)) },
			func(a testAnswer) bool { return a.Outcome == "delivered" && len(a.ResponseBody) == 1024 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got http.Header
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Header.Clone()
				io.Copy(io.Discard, r.Body) // a server notices a client gone only once the body is read
				tc.answer(w, r)
			}))
			defer recv.Close()
			hook := h.createDestination(key, webhookBody(recv.URL, map[string]any{"name": tc.name}))
			start := time.Now()
			a := h.testDestination(key, hook.ID)
			if !tc.check(a) || a.LatencyMS == nil || a.EventID == "" || a.Request != nil {
				t.Fatalf("answer %+v", a)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("the test took %s", time.Since(start))
			}
			if got.Get("webhook-id") != a.EventID || got.Get("webhook-signature") == "" {
				t.Fatalf("the receiver got headers %v", got)
			}
		})
	}
	if slowHits.Load() != 1 {
		t.Fatalf("the slow receiver was called %d times", slowHits.Load())
	}
}

func TestDestinationDryRunSendsNothing(t *testing.T) {
	h := newHub(t)
	h.createTenant("acme", "employer")
	_, key := h.createKey("acme", "write")
	recv := newVerifyingReceiver(t)
	hook := h.createDestination(key, webhookBody(recv.URL+"/in", map[string]any{"dry_run": true}))
	a := h.testDestination(key, hook.ID)
	if a.Outcome != "dry_run" || a.Status != 0 || a.Request == nil {
		t.Fatalf("answer %+v", a)
	}
	if n := recv.hits.Load(); n != 0 {
		t.Fatalf("a dry run reached the receiver %d times", n)
	}
	req := a.Request
	header := http.Header(req.Headers)
	wh, _ := standardwebhooks.NewWebhook(hook.Secret)
	if req.Method != "POST" || req.URL != recv.URL+"/in" || !strings.Contains(req.Body, `"type":"destination.test"`) ||
		header.Get("webhook-id") != a.EventID || wh.Verify([]byte(req.Body), header) != nil {
		t.Fatalf("recorded request %+v", req)
	}

	lrs := h.createDestination(key, xapiBody(recv.URL+"/xapi", map[string]any{"dry_run": true}))
	a = h.testDestination(key, lrs.ID)
	if a.Outcome != "dry_run" || a.Request == nil || http.Header(a.Request.Headers).Get("Authorization") != "[redacted]" ||
		!strings.Contains(a.Request.URL, "/xapi/statements?statementId=") {
		t.Fatalf("LRS dry run %+v", a)
	}
	if n := recv.hits.Load(); n != 0 {
		t.Fatalf("a dry run reached the LRS %d times", n)
	}
}

// TestDestinationTestOfAnLRS asks the LRS for a statement that does not
// exist, with the destination's credentials and the version header.
func TestDestinationTestOfAnLRS(t *testing.T) {
	h := newHub(t)
	h.createTenant("acme", "employer")
	_, key := h.createKey("acme", "write")
	var writes atomic.Int32
	lrs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		switch {
		case r.Method != http.MethodGet:
			writes.Add(1)
			http.Error(w, "read only", http.StatusMethodNotAllowed)
		case r.Header.Get("X-Experience-API-Version") != "1.0.3":
			http.Error(w, "version", http.StatusBadRequest)
		case !ok || user != "lrs-key" || pass != "lrs-password-1":
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		case r.URL.Path != "/xapi/statements" || r.URL.Query().Get("statementId") == "":
			http.Error(w, "wrong resource", http.StatusBadRequest)
		default:
			http.NotFound(w, r)
		}
	}))
	defer lrs.Close()
	dest := h.createDestination(key, xapiBody(lrs.URL+"/xapi/", nil))
	if a := h.testDestination(key, dest.ID); a.Outcome != "delivered" || a.Status != 404 {
		t.Fatalf("with its credentials: %+v", a)
	}
	h.expect(h.do("PATCH", destinationsPath+"/"+dest.ID, key, map[string]any{"password": "wrong"}), 200)
	if a := h.testDestination(key, dest.ID); a.Outcome != "failed" || a.Status != 401 {
		t.Fatalf("with a wrong password: %+v", a)
	}
	if writes.Load() != 0 {
		t.Fatal("a test wrote to the LRS")
	}
}

// TestDestinationGuardAtDelivery: without private addresses allowed, a
// destination whose name resolves to loopback is stored (a name is judged
// when it is dialled) and refused when the test dials it.
func TestDestinationGuardAtDelivery(t *testing.T) {
	d := pgtest.New(t)
	h := serveHub(t, d, mustOpen(t, d), func(c *config.Config) { c.OutboundAllowPrivate = false })
	h.createTenant("acme", "employer")
	_, key := h.createKey("acme", "write")
	var hits atomic.Int32
	recv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer recv.Close()
	_, port, _ := net.SplitHostPort(recv.Listener.Addr().String())

	h.problem(h.do("POST", destinationsPath, key, webhookBody("https://127.0.0.1:"+port+"/", nil)), 400, "validation")
	hook := h.createDestination(key, webhookBody("https://localhost:"+port+"/", nil))
	if a := h.testDestination(key, hook.ID); a.Outcome != "failed" || a.Error != "forbidden_address" || a.Status != 0 {
		t.Fatalf("answer %+v", a)
	}
	if hits.Load() != 0 {
		t.Fatal("the receiver on loopback was reached")
	}
}
