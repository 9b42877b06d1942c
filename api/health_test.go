package api_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
)

func TestHealthAndReadiness(t *testing.T) {
	h := newHub(t)
	h.expect(h.do("GET", "/healthz", "", nil), 200)
	h.expect(h.do("GET", "/readyz", "", nil), 200)

	if _, err := pgtest.Superuser(t, h.dbt).Exec(`DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)`); err != nil {
		t.Fatal(err)
	}
	r := h.expect(h.do("GET", "/readyz", "", nil), 503)
	if !strings.Contains(string(r.body), "schema outdated") {
		t.Fatalf("readyz with an outdated schema: %s", r.body)
	}
	h.expect(h.do("GET", "/healthz", "", nil), 200)
}

// TestReadinessFollowsTheDatabase cuts the hub off from PostgreSQL through a
// loopback proxy, then restores it: /readyz answers 503 while the database
// is unreachable and recovers by itself.
func TestReadinessFollowsTheDatabase(t *testing.T) {
	d := pgtest.New(t)
	u, _ := url.Parse(d.URL)
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr
	h := newHubOn(t, d, u.String())

	h.expect(h.do("GET", "/readyz", "", nil), 200)
	proxy.stop()
	r := h.expect(h.do("GET", "/readyz", "", nil), 503)
	if !strings.Contains(string(r.body), "database unreachable") {
		t.Fatalf("readyz while cut off: %s", r.body)
	}
	h.expect(h.do("GET", "/healthz", "", nil), 200)
	proxy.start()
	// Connections broken by the cut are discarded as they are tried; the
	// hub must be ready again within a few probes, without a restart.
	eventually(t, 5*time.Second, "readyz recovers after the database came back", func() bool {
		return h.do("GET", "/readyz", "", nil).status == 200
	})
}

func TestMetrics(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	h.expect(h.do("GET", "/api/v1/tenants/uni", adminToken, nil), 200)
	h.expect(h.do("GET", "/api/v1/tenants/nowhere", adminToken, nil), 404)
	h.do("GET", "/no/such/route/"+strings.Repeat("x", 10), "", nil)
	body := string(h.expect(h.do("GET", "/metrics", "", nil), 200).body)
	for _, want := range []string{
		`hub_http_requests_total{code="200",host="",method="GET",url="/api/v1/tenants/:tenant"} 1`,
		`hub_http_requests_total{code="404",host="",method="GET",url="/api/v1/tenants/:tenant"} 1`,
		`hub_http_requests_total{code="201",host="",method="POST",url="/api/v1/tenants"} 1`,
		`hub_http_request_duration_seconds_bucket{code="200",host="",method="GET",url="/api/v1/tenants/:tenant",le=`,
		`go_sql_max_open_connections{db_name="hub"} 20`,
		`go_sql_open_connections{db_name="hub"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "/no/such/route") {
		t.Error("an unmatched path became a metric label")
	}
}

// proxy forwards TCP to PostgreSQL until stopped; start listens again on
// the same address.
type proxy struct {
	t       *testing.T
	addr    string
	target  string
	mu      sync.Mutex
	ln      net.Listener
	conns   []net.Conn
	stopped bool
	frozen  bool
}

// freeze holds every byte in both directions while keeping connections
// open, as a stalled network path or a hung server does; thaw releases.
func (p *proxy) freeze() { p.mu.Lock(); p.frozen = true; p.mu.Unlock() }
func (p *proxy) thaw()   { p.mu.Lock(); p.frozen = false; p.mu.Unlock() }

func (p *proxy) isFrozen() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.frozen }

// pipe copies src to dst, holding data while the proxy is frozen.
func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for n > 0 && p.isFrozen() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, addr: "127.0.0.1:0", target: target}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr, p.stopped = ln, ln.Addr().String(), false
	p.mu.Unlock()
	go p.accept(ln)
}

func (p *proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// newHubOn is newHub against a given database URL.
func newHubOn(t *testing.T, d pgtest.DB, dbURL string) *hub {
	db, err := pg.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return serveHub(t, d, db)
}

func TestLogLinesCarryTheRequestID(t *testing.T) {
	h := newHub(t)
	r := h.do("GET", "/api/v1/tenants/nowhere", adminToken, nil)
	id := r.header.Get("X-Request-Id")
	if id == "" {
		t.Fatal("no X-Request-Id")
	}
	var found bool
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"request_id":"`+id+`"`) {
			found = true
			if !strings.Contains(line, `"route":"/api/v1/tenants/:tenant"`) || !strings.Contains(line, `"status":404`) {
				t.Fatalf("request line lacks route or status: %s", line)
			}
		}
		if strings.Contains(line, adminToken) {
			t.Fatalf("a log line holds the operator token: %s", line)
		}
	}
	if !found {
		t.Fatalf("no request log line with request_id %s in:\n%s", id, h.logs.String())
	}
}

// TestRequestIDsAreTheHubs: a caller's X-Request-ID never becomes the id
// the hub logs and audits under; a short plain one is kept beside it.
func TestRequestIDsAreTheHubs(t *testing.T) {
	h := newHub(t)
	cases := map[string]struct{ sent, kept string }{
		"plain id kept beside":  {"caller-42.a:b", "caller-42.a:b"},
		"forged hub id":         {"000000000000000000000000", "000000000000000000000000"},
		"too long dropped":      {strings.Repeat("a", 129), ""},
		"log injection dropped": {"x\",\"request_id\":\"evil", ""},
		"spaces dropped":        {"a b", ""},
	}
	seen := map[string]bool{}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.url+"/healthz", nil)
			req.Header.Set("X-Request-ID", tc.sent)
			res, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			id := res.Header.Get("X-Request-Id")
			if id == tc.sent || !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(id) || seen[id] {
				t.Fatalf("response id %q for sent %q: want a fresh id of the hub's own", id, tc.sent)
			}
			seen[id] = true
			line := logLine(t, h, id)
			hasClient := strings.Contains(line, `"client_request_id":`)
			if (tc.kept == "") == hasClient || (tc.kept != "" && !strings.Contains(line, `"client_request_id":"`+tc.kept+`"`)) {
				t.Fatalf("log line %s: want client_request_id %q", line, tc.kept)
			}
		})
	}
}

func logLine(t *testing.T, h *hub, id string) string {
	t.Helper()
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"request_id":"`+id+`"`) {
			return line
		}
	}
	t.Fatalf("no request line for %s", id)
	return ""
}

// TestNoSniffEverywhere: every kind of response tells browsers not to
// guess its type.
func TestNoSniffEverywhere(t *testing.T) {
	h := newHub(t)
	for _, path := range []string{"/healthz", "/api/v1/openapi.json", "/api/v1/tenants", "/nowhere", "/lti/login", "/.well-known/jwks.json"} {
		r := h.do("GET", path, "", nil)
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s (%d): X-Content-Type-Options = %q", path, r.status, got)
		}
	}
}
