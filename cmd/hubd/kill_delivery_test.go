package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/pg/pgtest"
)

// webhookLog is a webhook receiver that notes, for every webhook-id, the
// records it carried. While it holds, it answers the first requests and
// keeps every later one waiting until released, so a kill lands with
// deliveries in flight however fast the machine is.
type webhookLog struct {
	hold     atomic.Int64 // > 0: requests after this many wait for release
	release  chan struct{}
	mu       sync.Mutex
	byID     map[string]map[string]bool // webhook-id → record ids
	records  map[string]int             // record id → receipts
	received int
}

func (l *webhookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev struct {
		Data struct {
			RecordID string `json:"record_id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	if h := l.hold.Load(); h > 0 && l.count() >= h {
		<-l.release
	}
	l.mu.Lock()
	id := r.Header.Get("webhook-id")
	if l.byID[id] == nil {
		l.byID[id] = map[string]bool{}
	}
	l.byID[id][ev.Data.RecordID] = true
	l.records[ev.Data.RecordID]++
	l.received++
	l.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// count is how many requests were received.
func (l *webhookLog) count() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(l.received)
}

func (l *webhookLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.records)
}

// call sends a JSON request with token and decodes the answer into out.
func call(t *testing.T, method, url, token string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		_ = json.NewDecoder(res.Body).Decode(out)
	}
	return res.StatusCode
}

// TestAKilledHubdDeliversEverythingAfterRestart: hubd is killed (SIGKILL)
// while thousands of deliveries are in flight to a webhook; started again,
// it delivers every one, none lost; a record received twice came both
// times under the same webhook-id.
func TestAKilledHubdDeliversEverythingAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the job engine to rescue a killed process's jobs")
	}
	d := pgtest.NewEmpty(t)
	e := baseEnv(d)
	e["HUB_AUTO_MIGRATE"] = "true"
	e["HUB_OUTBOUND_ALLOW_PRIVATE"] = "true"
	e["HUB_JOBS_RESCUE_AFTER"] = "30s"
	e["HUB_PUBLIC_URL"] = "http://" + e["HUB_ADDR"]
	rcv := &webhookLog{byID: map[string]map[string]bool{}, records: map[string]int{}, release: make(chan struct{})}
	receiver := httptest.NewServer(rcv)
	defer receiver.Close()

	hubd := startProcess(t, e)
	db := pgtest.Superuser(t, d)
	api := "http://" + e["HUB_ADDR"] + "/api/v1"
	var tenant struct{ ID uuid.UUID }
	call(t, "POST", api+"/tenants", testAdminToken, map[string]any{"slug": "acme", "display_name": "Acme", "kind": "employer"}, &tenant)
	var hook struct{ ID string }
	if code := call(t, "POST", api+"/tenants/acme/destinations", testAdminToken, map[string]any{"kind": "webhook", "name": "HR",
		"url": receiver.URL, "event_types": []string{"completion"}}, &hook); code != 201 {
		t.Fatalf("create the webhook: %d", code)
	}
	var agreement struct{ ID string }
	call(t, "POST", api+"/tenants/acme/agreements", testAdminToken, map[string]any{"effective_from": "2026-01-01T00:00:00Z",
		"purposes": []map[string]any{{"code": "training_records", "description": "Training records"}}, "categories": []string{"completion"},
		"fields": []string{}, "destinations": []map[string]any{{"kind": "webhook", "id": hook.ID}}, "consent": "not_required",
		"disclosure_retention_days": 365, "copy_retention_days": 90, "on_end": "delete"}, &agreement)
	signed := map[string]any{"name": "A", "title": "B", "signed_at": "2026-01-02T10:00:00Z"}
	if code := call(t, "POST", api+"/tenants/acme/agreements/"+agreement.ID+"/activate", testAdminToken,
		map[string]any{"institution_signatory": signed, "provider_signatory": signed}, nil); code != 200 {
		t.Fatalf("activate the agreement: %d", code)
	}
	call(t, "POST", api+"/activities", testAdminToken, map[string]any{"id": "safety", "title": "Safety training"}, nil)
	var app struct{ Token string }
	call(t, "POST", api+"/app-keys", testAdminToken, map[string]any{"name": "app"}, &app)
	user := uuid.New()
	if _, err := db.Exec(`INSERT INTO users (id, tenant_id, created_at, updated_at) VALUES ($1, $2, now(), now())`, user, tenant.ID); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	rcv.hold.Store(n / 2)
	for batch := range n / 1000 {
		items := make([]map[string]any, 1000)
		for i := range items {
			items[i] = map[string]any{"user": user, "activity": "safety", "activity_progress": "Completed",
				"grading_progress": "FullyGraded", "completed": true,
				"occurred_at": time.Now().Add(-time.Duration(batch*1000+i) * time.Millisecond).Format(time.RFC3339Nano)}
		}
		if code := call(t, "POST", api+"/results/batch", app.Token, map[string]any{"results": items}, nil); code != 200 {
			t.Fatalf("post results: %d", code)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for rcv.distinct() < n/10 {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries did not get going: %d received", rcv.distinct())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := hubd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = hubd.Wait()
	if got := rcv.distinct(); got >= n {
		t.Fatalf("everything was delivered before the kill (%d): nothing was in flight", got)
	}

	rcv.hold.Store(0)
	close(rcv.release) // the killed process's requests end; the restarted one's are answered at once
	startProcess(t, e)
	// Those the killed process sent without recording it are sent again
	// once the job engine rescues their jobs.
	deadline = time.Now().Add(180 * time.Second)
	for pending := n; pending > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries not delivered after the restart, %d of %d records received", pending, rcv.distinct(), n)
		}
		time.Sleep(200 * time.Millisecond)
		if err := db.Get(&pending, `SELECT count(*) FROM deliveries WHERE status <> 'delivered'`); err != nil {
			t.Fatal(err)
		}
	}
	if rcv.distinct() != n {
		t.Fatalf("%d of %d records received", rcv.distinct(), n)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, records := range rcv.byID {
		if len(records) != 1 {
			t.Fatalf("webhook-id %s carried %d records: a repeat must keep its id", id, len(records))
		}
	}
	t.Logf("%d records, %d receipts (%d repeats, each under its first id)", n, rcv.received, rcv.received-n)
}
