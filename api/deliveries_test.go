package api_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti/ltitest"
)

type deliveryItem struct {
	ID          string  `json:"id"`
	ResultID    *string `json:"result_id"`
	Learner     *string `json:"learner"`
	Destination struct {
		Kind string  `json:"kind"`
		ID   *string `json:"id"`
	} `json:"destination"`
	Category    string     `json:"category"`
	Status      string     `json:"status"`
	Reason      *string    `json:"reason"`
	Attempts    int        `json:"attempts"`
	Throttled   int        `json:"throttled"`
	LastStatus  *int       `json:"last_status"`
	LastError   *string    `json:"last_error"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at"`
}

type deliveryAttempt struct {
	N         int             `json:"n"`
	Outcome   string          `json:"outcome"`
	Status    *int            `json:"status"`
	LatencyMS *float64        `json:"latency_ms"`
	Error     *string         `json:"error"`
	Response  *string         `json:"response"`
	Request   json.RawMessage `json:"request"`
}

const deliveriesPath = "/api/v1/tenants/uni/deliveries"

// deliveriesHub is a hub whose tenant uni has two learners, a webhook
// for scores and completion (scoresHook) and one for progress
// (progressHook), and deliveries queued by results the app posted:
// learner 1 two scores and a progress, learner 2 one score. The job
// engine is not running: the deliveries stay pending until a test
// changes them.
type deliveriesHub struct {
	*platformHub
	write, read              string
	learner1, learner2       string
	scoresHook, progressHook string
}

func newDeliveriesHub(t *testing.T) *deliveriesHub {
	t.Helper()
	ph, learner1, app := launchedLearner(t)
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-2"}))
	dh := &deliveriesHub{platformHub: ph, learner1: learner1, learner2: ph.userOf("learner-2")}
	_, dh.write = ph.createKey("uni", "write")
	_, dh.read = ph.createKey("uni", "read")
	var d destination
	ph.expect(ph.do("POST", "/api/v1/tenants/uni/destinations", dh.write, webhookBody("https://hooks.example/scores", nil)), 201).json(t, &d)
	dh.scoresHook = d.ID
	ph.expect(ph.do("POST", "/api/v1/tenants/uni/destinations", dh.write, webhookBody("https://hooks.example/progress",
		map[string]any{"name": "Progress", "event_types": []string{"progress"}})), 201).json(t, &d)
	dh.progressHook = d.ID
	progress := func(m map[string]any) {
		delete(m, "score_given")
		delete(m, "score_maximum")
		delete(m, "completed")
		delete(m, "success")
		m["activity_progress"], m["grading_progress"] = "InProgress", "NotReady"
	}
	for _, body := range []map[string]any{scored(learner1, nil), scored(dh.learner2, nil), scored(learner1, progress),
		scored(learner1, func(m map[string]any) { m["score_given"] = 9.0 })} {
		ph.expect(ph.postResult(app.Token, "", body), 201)
	}
	return dh
}

// list follows the cursors of the listing with query and returns every
// delivery, in order.
func (dh *deliveriesHub) list(key, query string) []deliveryItem {
	dh.t.Helper()
	var all []deliveryItem
	cursor := ""
	for range 100 {
		var p page[deliveryItem]
		dh.expect(dh.do("GET", deliveriesPath+"?"+query+"&cursor="+url.QueryEscape(cursor), key, nil), 200).json(dh.t, &p)
		all = append(all, p.Items...)
		if cursor = p.NextCursor; cursor == "" {
			return all
		}
	}
	dh.t.Fatal("the cursors never ended")
	return nil
}

// set changes a delivery's row directly, as the test's setup.
func (dh *deliveriesHub) set(id, assignments string, args ...any) {
	dh.t.Helper()
	if _, err := pgtest.Superuser(dh.t, dh.dbt).Exec(`UPDATE deliveries SET `+assignments+` WHERE id = $1`,
		append([]any{id}, args...)...); err != nil {
		dh.t.Fatal(err)
	}
}

// jobs counts the delivery jobs River holds.
func (dh *deliveriesHub) jobs() int {
	dh.t.Helper()
	var n int
	if err := pgtest.Superuser(dh.t, dh.dbt).Get(&n, `SELECT count(*) FROM river_job WHERE kind = 'delivery.send'`); err != nil {
		dh.t.Fatal(err)
	}
	return n
}

func (dh *deliveriesHub) delivery(key, id string) (deliveryItem, []deliveryAttempt) {
	dh.t.Helper()
	var out struct {
		Delivery deliveryItem      `json:"delivery"`
		Attempts []deliveryAttempt `json:"attempts"`
	}
	dh.expect(dh.do("GET", deliveriesPath+"/"+id, key, nil), 200).json(dh.t, &out)
	return out.Delivery, out.Attempts
}

func deliveryIDs(ds []deliveryItem) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// webhooks are the deliveries to the named destinations, newest first.
func webhooks(ds []deliveryItem) []deliveryItem {
	return slices.DeleteFunc(slices.Clone(ds), func(d deliveryItem) bool { return d.Destination.Kind != "webhook" })
}

func TestDeliveriesAreListedByEachFilter(t *testing.T) {
	dh := newDeliveriesHub(t)
	all := dh.list(dh.read, "")
	hooks := webhooks(all)
	if len(hooks) != 4 {
		t.Fatalf("%d webhook deliveries, want 4 (three scores, one progress): %+v", len(hooks), all)
	}
	// A learner's newer score supersedes their older one in the gradebook.
	pending := 0
	for i, d := range all {
		if d.Status == "pending" {
			pending++
		}
		if (d.Destination.Kind == "webhook" && d.Status != "pending") || d.Learner == nil || d.ResultID == nil {
			t.Fatalf("delivery %+v", d)
		}
		if i > 0 && d.CreatedAt.After(all[i-1].CreatedAt) {
			t.Fatalf("not newest first: %v after %v", d.CreatedAt, all[i-1].CreatedAt)
		}
	}
	newest := hooks[0]
	if *newest.Destination.ID != dh.scoresHook || *newest.Learner != dh.learner1 || newest.Category != "scores" {
		t.Fatalf("the newest webhook delivery %+v", newest)
	}
	dh.set(newest.ID, "status = 'dead', reason = 'attempts_exhausted', attempts = 12")

	count := func(query string, want int, check func(deliveryItem) bool) {
		t.Helper()
		got := dh.list(dh.read, query)
		if len(got) != want {
			t.Fatalf("?%s: %d deliveries, want %d: %+v", query, len(got), want, got)
		}
		for _, d := range got {
			if !check(d) {
				t.Fatalf("?%s listed %+v", query, d)
			}
		}
	}
	count("kind=webhook", 4, func(d deliveryItem) bool { return d.Destination.Kind == "webhook" })
	count("kind=lms", len(all)-4, func(d deliveryItem) bool { return d.Destination.Kind == "lms" && d.Destination.ID == nil })
	count("kind=xapi", 0, nil)
	count("destination="+dh.scoresHook, 3, func(d deliveryItem) bool { return *d.Destination.ID == dh.scoresHook })
	count("destination="+dh.progressHook, 1, func(d deliveryItem) bool { return d.Category == "progress" })
	count("kind=webhook&learner="+dh.learner2, 1, func(d deliveryItem) bool { return *d.Learner == dh.learner2 })
	count("learner="+dh.learner1, len(all)-len(dh.list(dh.read, "learner="+dh.learner2)),
		func(d deliveryItem) bool { return *d.Learner == dh.learner1 })
	count("status=dead", 1, func(d deliveryItem) bool {
		return d.ID == newest.ID && d.Attempts == 12 && *d.Reason == "attempts_exhausted"
	})
	count("status=pending", pending-1, func(d deliveryItem) bool { return d.Status == "pending" })
	count("status=dead&destination="+dh.progressHook, 0, nil)

	// Pages of one follow each other to the same list.
	var p page[deliveryItem]
	dh.expect(dh.do("GET", deliveriesPath+"?limit=1", dh.read, nil), 200).json(t, &p)
	if len(p.Items) != 1 || p.NextCursor == "" || p.Items[0].ID != all[0].ID {
		t.Fatalf("the first page %+v", p)
	}
	for _, limit := range []int{1, 2, 3} {
		if paged := dh.list(dh.read, "limit="+strconv.Itoa(limit)); !slices.Equal(deliveryIDs(paged), deliveryIDs(all)) {
			t.Fatalf("pages of %d: %v, want %v", limit, deliveryIDs(paged), deliveryIDs(all))
		}
	}
	// The operator sees the tenant's deliveries too.
	if got := dh.list(adminToken, "kind=webhook"); len(got) != 4 {
		t.Fatalf("the operator listed %d webhook deliveries", len(got))
	}
}

func TestDeliveriesRefuseABadFilter(t *testing.T) {
	dh := newDeliveriesHub(t)
	for _, tc := range []struct{ query, field string }{
		{"status=lost", "status"},
		{"kind=email", "kind"},
		{"destination=hooks", "destination"},
		{"destination=webhook:" + dh.scoresHook, "destination"},
		{"learner=learner-1", "learner"},
		{"limit=0", "limit"},
		{"cursor=not-a-cursor", "cursor"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			if p := dh.problem(dh.do("GET", deliveriesPath+"?"+tc.query, dh.read, nil), 400, "validation"); !names(p, tc.field) {
				t.Fatalf("the problem does not name %s: %+v", tc.field, p)
			}
		})
	}
}

func TestADeliveryIsShownWithItsAttempts(t *testing.T) {
	dh := newDeliveriesHub(t)
	d := webhooks(dh.list(dh.read, "destination="+dh.scoresHook))[0]
	su := pgtest.Superuser(t, dh.dbt)
	if _, err := su.Exec(`INSERT INTO delivery_attempts (tenant_id, delivery_id, n, at, outcome, status, latency_ms, error, response, request)
		SELECT tenant_id, id, 1, now(), 'retry', 503, 12.5, 'the receiver answered 503', 'busy', NULL::jsonb FROM deliveries WHERE id = $1
		UNION ALL
		SELECT tenant_id, id, 2, now(), 'dry_run', NULL, NULL, NULL, NULL, '{"method": "POST", "url": "https://hooks.example/scores", "headers": {}, "body": "{}"}'::jsonb
		FROM deliveries WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	dh.set(d.ID, "status = 'dry_run', attempts = 1, last_status = 503, last_error = 'the receiver answered 503', delivered_at = now()")
	got, attempts := dh.delivery(dh.read, d.ID)
	if got.ID != d.ID || got.Status != "dry_run" || got.Attempts != 1 || *got.LastStatus != 503 || got.DeliveredAt == nil {
		t.Fatalf("delivery %+v", got)
	}
	if len(attempts) != 2 {
		t.Fatalf("attempts %+v", attempts)
	}
	first, second := attempts[0], attempts[1]
	if first.N != 1 || first.Outcome != "retry" || *first.Status != 503 || *first.LatencyMS != 12.5 ||
		*first.Error != "the receiver answered 503" || *first.Response != "busy" || string(first.Request) != "null" {
		t.Fatalf("the first attempt %+v", first)
	}
	var req struct {
		Method, URL string
	}
	if err := json.Unmarshal(second.Request, &req); err != nil || second.N != 2 || second.Outcome != "dry_run" || second.Status != nil ||
		req.Method != "POST" || req.URL != "https://hooks.example/scores" {
		t.Fatalf("the dry run's attempt %+v (%v)", second, err)
	}
	// One never tried has none.
	untried := dh.list(dh.read, "destination="+dh.progressHook)[0]
	if _, none := dh.delivery(dh.read, untried.ID); none == nil || len(none) != 0 {
		t.Fatalf("attempts of an untried delivery: %+v", none)
	}

	// Another tenant's key, the operator under another tenant, an
	// unknown id and no id at all find nothing.
	dh.createTenant("acme", "employer")
	_, acme := dh.createKey("acme", "write")
	dh.problem(dh.do("GET", "/api/v1/tenants/acme/deliveries/"+d.ID, acme, nil), 404, "not-found")
	dh.problem(dh.do("GET", "/api/v1/tenants/acme/deliveries/"+d.ID, adminToken, nil), 404, "not-found")
	dh.problem(dh.do("POST", "/api/v1/tenants/acme/deliveries/"+d.ID+"/redrive", acme, nil), 404, "not-found")
	dh.problem(dh.do("GET", deliveriesPath+"/"+d.ID, acme, nil), 404, "not-found")
	dh.problem(dh.do("GET", deliveriesPath+"/"+uuid.NewString(), dh.read, nil), 404, "not-found")
	dh.problem(dh.do("GET", deliveriesPath+"/not-an-id", dh.read, nil), 404, "not-found")
	var p page[deliveryItem]
	dh.expect(dh.do("GET", "/api/v1/tenants/acme/deliveries", acme, nil), 200).json(t, &p)
	if len(p.Items) != 0 {
		t.Fatalf("acme lists uni's deliveries: %+v", p.Items)
	}
}

func TestADeadDeliveryIsRedriven(t *testing.T) {
	dh := newDeliveriesHub(t)
	hooks := dh.list(dh.read, "kind=webhook")
	dead, delivered := hooks[0], hooks[1]
	dh.set(dead.ID, "status = 'dead', reason = 'attempts_exhausted', attempts = 12, throttled = 3, last_status = 503")
	dh.set(delivered.ID, "status = 'delivered', delivered_at = now()")
	jobs := dh.jobs()

	// A read-only key may look, not redrive.
	dh.problem(dh.do("POST", deliveriesPath+"/"+dead.ID+"/redrive", dh.read, nil), 403, "forbidden")
	if got, _ := dh.delivery(dh.read, dead.ID); got.Status != "dead" || dh.jobs() != jobs {
		t.Fatalf("a read-only key's redrive changed %+v", got)
	}

	var got deliveryItem
	dh.expect(dh.do("POST", deliveriesPath+"/"+dead.ID+"/redrive", dh.write, nil), 200).json(t, &got)
	if got.ID != dead.ID || got.Status != "pending" || got.Attempts != 0 || got.Throttled != 0 || got.Reason != nil ||
		got.LastStatus == nil || *got.LastStatus != 503 {
		t.Fatalf("redriven %+v", got)
	}
	if stored, _ := dh.delivery(dh.read, dead.ID); stored.Status != "pending" || stored.Attempts != 0 {
		t.Fatalf("stored after the redrive %+v", stored)
	}
	if n := dh.jobs(); n != jobs+1 {
		t.Fatalf("%d delivery jobs after the redrive, want %d", n, jobs+1)
	}
	var audited auditPage
	dh.expect(dh.do("GET", "/api/v1/tenants/uni/audit?action=delivery.redriven", adminToken, nil), 200).json(t, &audited)
	if len(audited.Items) != 1 || audited.Items[0].TargetID != dead.ID || audited.Items[0].Details["status"] != "dead" {
		t.Fatalf("delivery.redriven entries %+v", audited.Items)
	}

	// Only a dead or failed delivery goes again.
	for _, tc := range []struct{ id, status string }{{delivered.ID, "delivered"}, {dead.ID, "pending"}} {
		p := dh.problem(dh.do("POST", deliveriesPath+"/"+tc.id+"/redrive", dh.write, nil), 409, "conflict")
		if !strings.Contains(p.Detail, tc.status) {
			t.Fatalf("the conflict does not name %s: %+v", tc.status, p)
		}
	}
	if n := dh.jobs(); n != jobs+1 {
		t.Fatalf("%d delivery jobs after refused redrives, want %d", n, jobs+1)
	}
	dh.problem(dh.do("POST", deliveriesPath+"/"+uuid.NewString()+"/redrive", dh.write, nil), 404, "not-found")
}

func TestDeliveriesAreRedrivenInBulk(t *testing.T) {
	dh := newDeliveriesHub(t)
	hooks := dh.list(dh.read, "kind=webhook")
	for _, d := range hooks[:2] {
		dh.set(d.ID, "status = 'dead', reason = 'attempts_exhausted', attempts = 12")
	}
	dh.set(hooks[2].ID, "status = 'failed', reason = 'refused'")
	dh.set(hooks[3].ID, "status = 'delivered', delivered_at = now()")
	jobs, pending := dh.jobs(), len(dh.list(dh.read, "status=pending"))
	redrive := func(key string, body any) response {
		t.Helper()
		return dh.do("POST", deliveriesPath+"/redrive", key, body)
	}
	redriven := func(body any, want int) {
		t.Helper()
		var out struct {
			Redriven *int `json:"redriven"`
		}
		dh.expect(redrive(dh.write, body), 200).json(t, &out)
		if out.Redriven == nil || *out.Redriven != want {
			t.Fatalf("%v redrove %v, want %d", body, out.Redriven, want)
		}
	}

	dh.problem(redrive(dh.read, map[string]any{}), 403, "forbidden")
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"status": "pending"}, "status"},
		{map[string]any{"status": "delivered"}, "status"},
		{map[string]any{"kind": "email"}, "kind"},
		{map[string]any{"destination": "hooks"}, "destination"},
		{map[string]any{"learner": "learner-1"}, "learner"},
		{map[string]any{"since": "yesterday"}, "since"},
	} {
		if p := dh.problem(redrive(dh.write, tc.body), 400, "validation"); !names(p, tc.field) {
			t.Fatalf("%v: the problem does not name %s: %+v", tc.body, tc.field, p)
		}
	}
	if n := dh.jobs(); n != jobs || len(dh.list(dh.read, "status=pending")) != pending {
		t.Fatal("a refused bulk redrive changed something")
	}

	redriven(map[string]any{"kind": "lms"}, 0)
	redriven(map[string]any{"status": "dead", "learner": dh.learner2}, 0)
	redriven(map[string]any{"status": "dead"}, 2)
	redriven(map[string]any{"status": "dead"}, 0)
	redriven(map[string]any{"destination": hooks[2].Destination.ID}, 1)
	redriven(nil, 0) // no body: every dead or failed one, and none is left
	if n := dh.jobs(); n != jobs+3 {
		t.Fatalf("%d delivery jobs after redriving 3, want %d", n, jobs+3)
	}
	for _, d := range hooks[:3] {
		if got, _ := dh.delivery(dh.read, d.ID); got.Status != "pending" || got.Attempts != 0 || got.Reason != nil {
			t.Fatalf("after the bulk redrive %+v", got)
		}
	}
	if got, _ := dh.delivery(dh.read, hooks[3].ID); got.Status != "delivered" {
		t.Fatalf("a delivered delivery was redriven: %+v", got)
	}
	var audited auditPage
	dh.expect(dh.do("GET", "/api/v1/tenants/uni/audit?action=delivery.redriven_bulk", adminToken, nil), 200).json(t, &audited)
	var counts []string
	for _, e := range audited.Items {
		counts = append(counts, e.Details["count"]+":"+e.Details["status"])
	}
	if !slices.Equal(counts, []string{"1:", "2:dead"}) {
		t.Fatalf("delivery.redriven_bulk entries (count:status), newest first: %v", counts)
	}
}
