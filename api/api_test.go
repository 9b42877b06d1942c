package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
)

const adminToken = "operator-token-for-tests-0123456789abcdef"

// hub is a real server on loopback over a fresh database.
type hub struct {
	t    testing.TB
	url  string
	db   *sqlx.DB
	dbt  pgtest.DB
	logs *lockedBuffer
	// client is a browser: it trusts the test certificate, keeps cookies
	// and does not follow redirects by itself.
	client *http.Client
	deps   api.Deps
	// handler is the server without the network in front, for requests
	// net/http would refuse to carry.
	handler http.Handler
}

// lockedBuffer collects the server's log lines while its goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newHub(t testing.TB) *hub {
	t.Helper()
	d := pgtest.New(t)
	return serveHub(t, d, mustOpen(t, d))
}

func serveHub(t testing.TB, d pgtest.DB, db *sqlx.DB, configure ...func(*config.Config)) *hub {
	t.Helper()
	return serveHubWith(t, d, db, nil, configure...)
}

// serveHubWith is serveHub with a chance to change the assembled parts
// (limits, clocks) before the server starts.
func serveHubWith(t testing.TB, d pgtest.DB, db *sqlx.DB, adjust func(*api.Deps), configure ...func(*config.Config)) *hub {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(api.LogHandler{Handler: slog.NewJSONHandler(logs, nil)})
	// The hub serves TLS on loopback, as browsers require for the
	// SameSite=None; Secure cookies of LTI launches.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public, _ := url.Parse("https://" + ln.Addr().String())
	cfg := &config.Config{DatabaseURL: d.URL, AdminToken: adminToken, SecretKey: bytes.Repeat([]byte{7}, 32), PublicURL: public,
		OutboundAllowPrivate: true}
	for _, c := range configure {
		c(cfg)
	}
	deps, err := api.Assemble(context.Background(), db, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deps.CloseJobs() })
	if adjust != nil {
		adjust(&deps)
	}
	srv, err := api.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener = ln
	ts.StartTLS()
	t.Cleanup(ts.Close)
	client := ts.Client()
	client.Jar, _ = cookiejar.New(nil)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hub{t: t, url: ts.URL, db: db, dbt: d, logs: logs, client: client, deps: deps, handler: srv.Handler()}
}

func mustOpen(t testing.TB, d pgtest.DB) *sqlx.DB {
	t.Helper()
	db, err := pg.Open(context.Background(), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// response is a decoded reply.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) field(t testing.TB, name string) string {
	var m map[string]any
	r.json(t, &m)
	s, _ := m[name].(string)
	return s
}

// do sends a request; body may be a string (sent as is) or a value (JSON).
func (h *hub) do(method, path, token string, body any) response {
	h.t.Helper()
	return h.send(h.request(method, path, token, body))
}

// request builds the request do sends, for a caller to add headers to.
func (h *hub) request(method, path, token string, body any) *http.Request {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// names reports whether problem p names field among its errors.
func names(p api.Problem, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field {
			return true
		}
	}
	return false
}

func (h *hub) expect(r response, status int) response {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

func (h *hub) createTenant(slug, kind string) {
	h.t.Helper()
	h.expect(h.do("POST", "/api/v1/tenants", adminToken, map[string]string{"slug": slug, "display_name": "T " + slug, "kind": kind}), 201)
}

// createKey issues a key and returns its id and token.
func (h *hub) createKey(slug string, scopes ...string) (string, string) {
	h.t.Helper()
	r := h.expect(h.do("POST", "/api/v1/tenants/"+slug+"/api-keys", adminToken, map[string]any{"name": "k", "scopes": scopes}), 201)
	return r.field(h.t, "id"), r.field(h.t, "token")
}

// problem checks an RFC 9457 reply and returns it.
func (h *hub) problem(r response, status int, typ string) api.Problem {
	h.t.Helper()
	h.expect(r, status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		h.t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p api.Problem
	r.json(h.t, &p)
	if p.Type != "urn:hub:problem:"+typ || p.Status != status || p.RequestID == "" || p.RequestID != r.header.Get("X-Request-Id") {
		h.t.Fatalf("problem = %+v, want type %s with the request id %q", p, typ, r.header.Get("X-Request-Id"))
	}
	return p
}

// doRaw sends a request with a literal Authorization header ("" for none).
func (h *hub) doRaw(method, path, authorization string) response {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return h.send(req)
}

func (h *hub) send(req *http.Request) response {
	h.t.Helper()
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}
