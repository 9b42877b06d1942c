package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/tenants/audit"
)

// refusalHub serves a hub on d over plain HTTP with the refusal bounds ra,
// behind a trusted loopback proxy, so that X-Forwarded-For names the client.
func refusalHub(t *testing.T, d pgtest.DB, ra api.RefusalAudit) (*hub, *api.Server) {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(api.LogHandler{Handler: slog.NewJSONHandler(logs, nil)})
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	public, _ := url.Parse("http://hub.test")
	cfg := &config.Config{DatabaseURL: d.URL, AdminToken: adminToken, SecretKey: make([]byte, 32), PublicURL: public,
		OutboundAllowPrivate: true, TrustedProxies: []*net.IPNet{loopback}}
	db := mustOpen(t, d)
	deps, err := api.Assemble(context.Background(), db, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deps.CloseJobs() })
	deps.RefusalAudit = ra
	srv, err := api.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &hub{t: t, url: ts.URL, db: db, dbt: d, logs: logs, client: ts.Client(), deps: deps}, srv
}

// refusal sends an unknown bearer token as if from the client at ip. It
// may run on any goroutine.
func (h *hub) refusal(ip string) error {
	req, _ := http.NewRequest("GET", h.url+"/api/v1/tenants", nil)
	req.Header.Set("Authorization", "Bearer not-a-key-of-this-hub")
	req.Header.Set("X-Forwarded-For", ip)
	res, err := h.client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("refused token from %s answered %d, want 401", ip, res.StatusCode)
	}
	return nil
}

func (h *hub) refuse(ip string, n int) {
	h.t.Helper()
	for range n {
		if err := h.refusal(ip); err != nil {
			h.t.Fatal(err)
		}
	}
}

// operatorEntries counts the operator chain's entries of action, read as
// the superuser, behind the application's back.
func operatorEntries(t *testing.T, super *sqlx.DB, action string) int {
	t.Helper()
	var n int
	if err := super.Get(&n, `SELECT count(*) FROM audit_log WHERE tenant_id IS NULL AND action = $1`, action); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRefusalBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bounds  api.RefusalAudit
		send    func(h *hub)
		audited int
	}{
		{"one source's burst of 100 gets its 20", api.RefusalAudit{}, func(h *hub) { h.refuse("203.0.113.7", 100) }, 20},
		{"500 sources get the replica's 100", api.RefusalAudit{}, func(h *hub) {
			for i := range 500 {
				h.refuse(fmt.Sprintf("198.51.%d.%d", i/250, i%250+1), 1)
			}
		}, 100},
		{"two addresses of one IPv6 /64 share a bound", api.RefusalAudit{PerSource: 3}, func(h *hub) {
			h.refuse("2001:db8:1:2::1", 3)
			h.refuse("2001:db8:1:2:ffff::2", 3)
		}, 3},
		{"addresses in two IPv6 /64s do not", api.RefusalAudit{PerSource: 3}, func(h *hub) {
			h.refuse("2001:db8:1:2::1", 3)
			h.refuse("2001:db8:1:3::1", 3)
		}, 6},
		{"an IPv4-mapped address is its IPv4 address", api.RefusalAudit{PerSource: 3}, func(h *hub) {
			h.refuse("::ffff:192.0.2.1", 3)
			h.refuse("192.0.2.1", 3)
		}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pgtest.New(t)
			h, _ := refusalHub(t, d, tc.bounds)
			tc.send(h)
			if n := operatorEntries(t, pgtest.Superuser(t, d), "auth.failed"); n != tc.audited {
				t.Fatalf("%d refusals audited, want %d", n, tc.audited)
			}
		})
	}
}

// TestRefusalBoundAcrossReplicas: two hubs on one database audit no more
// than the database's bound between them, however their sources differ.
func TestRefusalBoundAcrossReplicas(t *testing.T) {
	d := pgtest.New(t)
	bounds := api.RefusalAudit{PerSource: 1000, PerReplica: 1000, PerDatabase: 30}
	a, _ := refusalHub(t, d, bounds)
	b, _ := refusalHub(t, d, bounds)
	var wg sync.WaitGroup
	for i, h := range []*hub{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if err := h.refusal(fmt.Sprintf("203.0.113.%d", i+1)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := operatorEntries(t, pgtest.Superuser(t, d), "auth.failed"); n != 30 {
		t.Fatalf("%d of 50 refusals audited across two hubs, want the database's 30", n)
	}
	var v audit.Verification
	a.expect(a.do("GET", "/api/v1/audit/verify", adminToken, nil), 200).json(t, &v)
	if !v.Valid {
		t.Fatalf("operator chain = %+v", v)
	}
}

// summaries starts srv's background work driven by tick; stop cancels it
// and waits for it to return.
func summaries(t *testing.T, srv *api.Server) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return once cancelled")
		}
	}
	t.Cleanup(stop)
	return stop
}

// summaryEntries returns the operator chain's auth.failures_unaudited
// entries, newest first, through the audit API.
func summaryEntries(h *hub) []audit.Entry {
	var page auditPage
	h.expect(h.do("GET", "/api/v1/audit?action=auth.failures_unaudited", adminToken, nil), 200).json(h.t, &page)
	return page.Items
}

// TestUnauditedRefusalsAreSummarised: what the bounds drop is audited as
// one count per tick, nothing when nothing was dropped, and once more when
// the server stops.
func TestUnauditedRefusalsAreSummarised(t *testing.T) {
	tick := make(chan time.Time)
	h, srv := refusalHub(t, pgtest.New(t), api.RefusalAudit{PerSource: 5, Tick: tick})
	stop := summaries(t, srv)

	h.refuse("203.0.113.7", 12)
	h.refuse("2001:db8::1", 7)
	h.refuse("2001:db8::2", 1)
	h.refuse("192.0.2.1", 3)
	until := time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)
	tick <- until
	tick <- until.Add(time.Minute) // received only once the first summary is written; nothing to add
	entries := summaryEntries(h)
	if len(entries) != 1 {
		t.Fatalf("%d summaries after two ticks, want 1: %+v", len(entries), entries)
	}
	got := entries[0]
	want := map[string]string{"count": "10", "sources": "2", "over_source": "10", "until": until.Format(time.RFC3339)}
	for k, v := range want {
		if got.Details[k] != v {
			t.Errorf("details[%s] = %q, want %q (details %v)", k, got.Details[k], v, got.Details)
		}
	}
	if _, err := time.Parse(time.RFC3339, got.Details["since"]); err != nil || got.ActorType != audit.ActorSystem {
		t.Errorf("summary = %+v, want a since and the hub as actor", got)
	}

	h.refuse("203.0.113.7", 2)
	stop()
	entries = summaryEntries(h)
	if len(entries) != 2 || entries[0].Details["count"] != "2" {
		t.Fatalf("summaries after stopping = %+v, want a second one counting 2", entries)
	}
	metrics := string(h.expect(h.do("GET", "/metrics", "", nil), 200).body)
	if !slices.Contains(strings.Split(metrics, "\n"), "hub_auth_failures_unaudited_total 12") {
		t.Fatal("unaudited refusals are not counted in hub_auth_failures_unaudited_total")
	}
	var v audit.Verification
	h.expect(h.do("GET", "/api/v1/audit/verify", adminToken, nil), 200).json(t, &v)
	if !v.Valid {
		t.Fatalf("operator chain = %+v", v)
	}
}

// TestRefusalWritesCannotHoldThePool: a refusal's audit write gives up at
// its timeout, and one that finds every writer busy is counted without
// waiting for a connection.
func TestRefusalWritesCannotHoldThePool(t *testing.T) {
	d := pgtest.New(t)
	tick := make(chan time.Time)
	h, srv := refusalHub(t, d, api.RefusalAudit{Writers: 1, Timeout: 500 * time.Millisecond, Tick: tick})
	summaries(t, srv)
	super := pgtest.Superuser(t, d)

	// Hold the operator chain's lock, as a slow writer would.
	ctx := context.Background()
	conn, err := super.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const lock = `hashtextextended('audit:operator', 0)`
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+lock+`)`); err != nil {
		t.Fatal(err)
	}
	slow := make(chan error, 1)
	go func() { slow <- h.refusal("203.0.113.7") }()
	waitFor(t, "the first write to wait on the chain's lock", func() bool {
		var waiting int
		err := super.Get(&waiting, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)
		return err == nil && waiting == 1
	})
	start := time.Now()
	h.refuse("203.0.113.8", 1)
	if waited := time.Since(start); waited > 400*time.Millisecond {
		t.Fatalf("a refusal that found the writer busy waited %s", waited)
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock(`+lock+`)`); err != nil {
		t.Fatal(err)
	}
	tick <- time.Now()
	tick <- time.Now()
	entries := summaryEntries(h)
	if len(entries) != 1 || entries[0].Details["busy"] != "1" || entries[0].Details["failed"] != "1" || entries[0].Details["count"] != "2" {
		t.Fatalf("summaries = %+v, want one counting a busy and a failed write", entries)
	}
	if n := operatorEntries(t, super, "auth.failed"); n != 0 {
		t.Fatalf("%d refusals audited, want none", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
