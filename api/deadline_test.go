package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
)

// TestFrozenDatabaseAnswers503: with every byte between the hub and
// PostgreSQL held (a stalled path, a hung server), requests end with 503
// within their database deadline instead of hanging, /readyz answers
// within its own 2 s, and the hub recovers by itself once the path thaws.
func TestFrozenDatabaseAnswers503(t *testing.T) {
	d := pgtest.New(t)
	u, _ := url.Parse(d.URL)
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr
	h := newHubOn(t, d, u.String())
	h.createTenant("uni", "institution")
	_, key := h.createKey("uni", "read")
	h.expect(h.do("GET", "/api/v1/tenants/uni/lti/registrations", key, nil), 200)

	proxy.freeze()
	var wg sync.WaitGroup
	check := func(name string, limit time.Duration, req func() response, want func(response) bool) {
		wg.Go(func() {
			start := time.Now()
			r := req()
			if took := time.Since(start); !want(r) || took > limit {
				t.Errorf("%s while frozen: %d after %s (limit %s): %s", name, r.status, took, limit, r.body)
			}
		})
	}
	reqLimit := pg.TxTimeout + 2*time.Second // the deadline, and the time to answer
	problem503 := func(r response) bool {
		return r.status == 503 && strings.Contains(r.header.Get("Content-Type"), "problem+json")
	}
	// More reads than the pool holds: the key's first TenantInFlight wait
	// for the database and answer 503; the rest are refused at once (429).
	var unavailable atomic.Int32
	for range 25 {
		check("an API read", reqLimit, func() response { return h.do("GET", "/api/v1/tenants/uni/lti/registrations", key, nil) },
			func(r response) bool {
				if problem503(r) {
					unavailable.Add(1)
					return true
				}
				return r.status == 429
			})
	}
	check("an operator write", reqLimit, func() response {
		return h.do("POST", "/api/v1/tenants", adminToken, map[string]string{"slug": "acme", "display_name": "Acme", "kind": "employer"})
	}, problem503)
	check("an LTI login", reqLimit, func() response {
		return h.do("GET", "/lti/login?iss=https://lms.example&login_hint=x&target_link_uri="+url.QueryEscape(h.url+"/lti/launch"), "", nil)
	}, func(r response) bool {
		return r.status == 503 && strings.Contains(string(r.body), "temporarily_unavailable")
	})
	check("readyz", 3*time.Second, func() response { return h.do("GET", "/readyz", "", nil) },
		func(r response) bool { return r.status == 503 })
	wg.Wait()
	if unavailable.Load() == 0 {
		t.Error("no read answered 503 while the database was frozen")
	}

	proxy.thaw()
	eventually(t, 15*time.Second, "the hub recovers after the database path thawed", func() bool {
		return h.do("GET", "/api/v1/tenants/uni/lti/registrations", key, nil).status == 200 && h.do("GET", "/readyz", "", nil).status == 200
	})
}

// eventually polls cond until it holds, failing t with what after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOneTenantCannotHoldThePool: tenant A's writes all wait on a lock
// (a slow database for A); tenant B's reads still find connections, because
// A may hold only its share of the pool.
func TestOneTenantCannotHoldThePool(t *testing.T) {
	h := newHub(t)
	h.createTenant("tenant-a", "institution")
	h.createTenant("tenant-b", "institution")
	_, keyB := h.createKey("tenant-b", "read")
	super := pgtest.Superuser(t, h.dbt)
	tx := super.MustBegin()
	tx.MustExec(`LOCK TABLE lti_registrations IN EXCLUSIVE MODE`) // writes wait; reads do not
	var finished atomic.Int32
	var wg sync.WaitGroup
	for i := range 2 * pg.MaxConns {
		wg.Go(func() {
			h.do("POST", "/api/v1/tenants/tenant-a/lti/registrations", adminToken, map[string]any{
				"issuer": "https://lms.a.example", "client_id": "c" + string(rune('a'+i)),
				"auth_login_url": "https://lms.a.example/auth", "auth_token_url": "https://lms.a.example/token",
				"jwks_url": "https://lms.a.example/jwks"})
			finished.Add(1)
		})
	}
	waitForLockWaiters(t, super, pg.TenantShare)
	r := h.do("GET", "/api/v1/tenants/tenant-b/lti/registrations", keyB, nil)
	if r.status != 200 || finished.Load() != 0 {
		t.Fatalf("B's read: %d with %d of A's writes finished; want 200 while A's still wait", r.status, finished.Load())
	}
	tx.Rollback()
	wg.Wait()
}

func waitForLockWaiters(t *testing.T, super interface {
	Get(any, string, ...any) error
}, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var waiting int
		if err := super.Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d of A's requests reached the lock", n)
}

// TestTenantInFlightAllowance: a tenant's key may have TenantInFlight
// requests in progress; one more is refused at once with 429 (its body is
// never read), while another tenant is served. A's requests are held in
// progress by bodies that never finish arriving.
func TestTenantInFlightAllowance(t *testing.T) {
	h := newHub(t)
	h.createTenant("tenant-a", "institution")
	h.createTenant("tenant-b", "institution")
	_, keyA := h.createKey("tenant-a", "write")
	_, keyB := h.createKey("tenant-b", "read")
	var writers []*io.PipeWriter
	var wg sync.WaitGroup
	release := func() {
		for _, pw := range writers {
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}
		wg.Wait()
	}
	t.Cleanup(release) // also when the test fails: the server cannot close with requests in progress
	for range api.TenantInFlight {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		req, _ := http.NewRequest("POST", h.url+"/api/v1/tenants/tenant-a/lti/registrations", pr)
		req.Header.Set("Authorization", "Bearer "+keyA)
		req.Header.Set("Content-Type", "application/json")
		wg.Go(func() {
			if res, err := h.client.Do(req); err == nil {
				res.Body.Close()
			}
		})
		_, _ = pw.Write([]byte(`{"issuer":`)) // the request is in; the body never ends
	}
	want := fmt.Sprintf("hub_api_key_requests_in_flight %d\n", api.TenantInFlight)
	eventually(t, 30*time.Second, "all of A's held requests are in progress", func() bool {
		return strings.Contains(string(h.do("GET", "/metrics", "", nil).body), want)
	})
	r := h.do("GET", "/api/v1/tenants/tenant-a/lti/registrations", keyA, nil)
	h.problem(r, 429, "rate-limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	h.expect(h.do("GET", "/api/v1/tenants/tenant-b/lti/registrations", keyB, nil), 200)
	release()
	// The client gives up on a broken body before the hub's handler ends.
	eventually(t, 10*time.Second, "A is served again once its requests end", func() bool {
		return h.do("GET", "/api/v1/tenants/tenant-a/lti/registrations", keyA, nil).status == 200
	})
}
