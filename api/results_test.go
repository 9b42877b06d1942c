package api_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/lti/ltitest"
)

type appKey struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Token string `json:"token"`
}

type result struct {
	ID               string   `json:"id"`
	User             string   `json:"user"`
	ResourceLink     string   `json:"resource_link"`
	ScoreGiven       *float64 `json:"score_given"`
	ScoreMaximum     *float64 `json:"score_maximum"`
	ActivityProgress string   `json:"activity_progress"`
	GradingProgress  string   `json:"grading_progress"`
	Comment          string   `json:"comment"`
}

func (h *hub) createAppKey(name string) appKey {
	h.t.Helper()
	var k appKey
	h.expect(h.do("POST", "/api/v1/app-keys", adminToken, map[string]any{"name": name}), 201).json(h.t, &k)
	if !strings.HasPrefix(k.Token, "hubapp_") {
		h.t.Fatalf("app key token %q", k.Token)
	}
	return k
}

// postResult posts body as the app, with an Idempotency-Key when key is
// not empty.
func (h *hub) postResult(token, key string, body any) response {
	h.t.Helper()
	req := h.request("POST", "/api/v1/results", token, body)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return h.send(req)
}

// scored is a valid report about user's work on the launch's link.
func scored(user string, change func(map[string]any)) map[string]any {
	r := map[string]any{"user": user, "resource_link": "link-1", "score_given": 7.5, "score_maximum": 10,
		"activity_progress": "Completed", "grading_progress": "FullyGraded", "completed": true, "success": true,
		"time_spent_seconds": 600, "comment": "Well argued.", "occurred_at": time.Now().Add(-time.Minute).Format(time.RFC3339Nano)}
	if change != nil {
		change(r)
	}
	return r
}

// launchedLearner is a hub with one learner who launched link-1, and an
// app key.
func launchedLearner(t *testing.T) (*platformHub, string, appKey) {
	ph := newPlatformHub(t)
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1"}))
	return ph, ph.userOf("learner-1"), ph.createAppKey("learning app")
}

func TestTheAppReportsAResult(t *testing.T) {
	ph, user, app := launchedLearner(t)
	r := ph.expect(ph.postResult(app.Token, "", scored(user, nil)), 201)
	var got result
	r.json(t, &got)
	if got.User != user || got.ResourceLink != "link-1" || *got.ScoreGiven != 7.5 || *got.ScoreMaximum != 10 ||
		got.ActivityProgress != "Completed" || got.GradingProgress != "FullyGraded" || got.Comment != "Well argued." {
		t.Fatalf("result %+v", got)
	}
	// Progress without a score, naming the catalog activity instead.
	ph.expect(ph.postResult(app.Token, "", scored(user, func(m map[string]any) {
		delete(m, "score_given")
		delete(m, "score_maximum")
		m["activity_progress"], m["grading_progress"] = "InProgress", "NotReady"
	})), 201)
	if n := ph.rows("results"); n != 2 {
		t.Fatalf("%d results stored, want 2", n)
	}
}

func TestAResultIsIdempotentByItsKey(t *testing.T) {
	ph, user, app := launchedLearner(t)
	body := scored(user, nil)
	first := ph.expect(ph.postResult(app.Token, "attempt-42", body), 201)
	again := ph.expect(ph.postResult(app.Token, "attempt-42", body), 201)
	if again.header.Get("Idempotent-Replayed") != "true" || first.field(t, "id") != again.field(t, "id") {
		t.Fatalf("a repeat was not answered with the first result: %s / %s", first.body, again.body)
	}
	// The same report with the user id spelled otherwise is a repeat too.
	upper := map[string]any{}
	for k, v := range body {
		upper[k] = v
	}
	upper["user"] = strings.ToUpper(user)
	if r := ph.expect(ph.postResult(app.Token, "attempt-42", upper), 201); r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a repeat spelling the user in capitals: %s", r.body)
	}
	body["score_given"] = 9.0
	ph.problem(ph.postResult(app.Token, "attempt-42", body), 422, "idempotency-key-reused")
	// The same key from another app key is another request.
	other := ph.createAppKey("second app")
	ph.expect(ph.postResult(other.Token, "attempt-42", body), 201)

	// Repeats racing each other record one result.
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	race := scored(user, func(m map[string]any) { m["comment"] = "raced" })
	for range 8 {
		wg.Go(func() { statuses <- ph.postResult(app.Token, "race", race).status })
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 201 {
			t.Fatalf("a racing repeat answered %d", s)
		}
	}
	if n := ph.rows("results"); n != 3 {
		t.Fatalf("%d results stored, want 3", n)
	}
}

func TestAResultIsRefusedWithTheFieldAtFault(t *testing.T) {
	ph, user, app := launchedLearner(t)
	for _, tc := range []struct {
		name, field string
		change      func(map[string]any)
	}{
		{"no user", "user", func(m map[string]any) { delete(m, "user") }},
		{"a user that is not an id", "user", func(m map[string]any) { m["user"] = "learner-1" }},
		{"an unknown user", "user", func(m map[string]any) { m["user"] = uuid.NewString() }},
		{"no activity", "activity", func(m map[string]any) { delete(m, "resource_link") }},
		{"an unknown activity", "activity", func(m map[string]any) { m["activity"] = "no-such-activity" }},
		{"an unknown resource link", "resource_link", func(m map[string]any) { m["resource_link"] = "link-9" }},
		{"a bad activity progress", "activity_progress", func(m map[string]any) { m["activity_progress"] = "Done" }},
		{"no grading progress", "grading_progress", func(m map[string]any) { delete(m, "grading_progress") }},
		{"a negative score", "score_given", func(m map[string]any) { m["score_given"] = -1 }},
		{"a score without maximum", "score_maximum", func(m map[string]any) { delete(m, "score_maximum") }},
		{"a zero maximum", "score_maximum", func(m map[string]any) { m["score_maximum"] = 0 }},
		{"a huge score", "score_given", func(m map[string]any) { m["score_given"] = 1e12 }},
		{"negative time", "time_spent_seconds", func(m map[string]any) { m["time_spent_seconds"] = -5 }},
		{"a long comment", "comment", func(m map[string]any) { m["comment"] = strings.Repeat("x", 4001) }},
		{"a control character", "comment", func(m map[string]any) { m["comment"] = "bad\u0007bell" }},
		{"no time", "occurred_at", func(m map[string]any) { delete(m, "occurred_at") }},
		{"a future time", "occurred_at", func(m map[string]any) { m["occurred_at"] = time.Now().Add(time.Hour).Format(time.RFC3339) }},
		{"an ancient time", "occurred_at", func(m map[string]any) { m["occurred_at"] = "1999-12-31T23:59:59Z" }},
		{"an unknown field", "extra", func(m map[string]any) { m["extra"] = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ph.problem(ph.postResult(app.Token, "", scored(user, tc.change)), 400, "validation")
			if !names(p, tc.field) {
				t.Fatalf("the problem does not name %s: %+v", tc.field, p)
			}
		})
	}
	ph.problem(ph.postResult(app.Token, strings.Repeat("k", 256), scored(user, nil)), 400, "validation")
	if n := ph.rows("results"); n != 0 {
		t.Fatalf("%d results stored from refused reports", n)
	}
}

func TestResultsTakeOnlyALiveAppKey(t *testing.T) {
	ph, user, app := launchedLearner(t)
	_, tenantKey := ph.createKey("uni", "write")
	for _, token := range []string{tenantKey, adminToken, "hubapp_aaaaaaaaaa_bbbb", ""} {
		r := ph.postResult(token, "", scored(user, nil))
		if r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %.12q: %d %s", token, r.status, r.body)
		}
	}
	// An app key opens nothing else.
	if r := ph.do("GET", "/api/v1/tenants", app.Token, nil); r.status != 401 {
		t.Fatalf("an app key on the tenants route: %d", r.status)
	}
	// Only the operator issues, lists and revokes app keys; the token is shown once.
	ph.problem(ph.do("POST", "/api/v1/app-keys", tenantKey, map[string]any{"name": "x"}), 403, "forbidden")
	ph.problem(ph.do("POST", "/api/v1/app-keys", adminToken, map[string]any{"name": ""}), 400, "validation")
	listed := string(ph.expect(ph.do("GET", "/api/v1/app-keys", adminToken, nil), 200).body)
	if !strings.Contains(listed, app.ID) || strings.Contains(listed, app.Token) || strings.Contains(listed, "token") {
		t.Fatalf("the listing: %s", listed)
	}
	ph.expect(ph.do("DELETE", "/api/v1/app-keys/"+app.ID, adminToken, nil), 200)
	ph.expect(ph.do("DELETE", "/api/v1/app-keys/"+app.ID, adminToken, nil), 200)
	ph.problem(ph.do("DELETE", "/api/v1/app-keys/"+uuid.NewString(), adminToken, nil), 404, "not-found")
	ph.problem(ph.postResult(app.Token, "", scored(user, nil)), 401, "unauthorized")
	var audited auditPage
	ph.expect(ph.do("GET", "/api/v1/audit?action=app_key.revoked", adminToken, nil), 200).json(t, &audited)
	if len(audited.Items) != 1 {
		t.Fatalf("app_key.revoked entries: %+v", audited.Items)
	}
}

func TestAResultAboutAnErasedLearnerIsRefused(t *testing.T) {
	ph, user, app := launchedLearner(t)
	_, key := ph.createKey("uni", "write")
	ph.expect(ph.postResult(app.Token, "", scored(user, nil)), 201)
	ph.expect(ph.do("DELETE", "/api/v1/tenants/uni/learners/"+user, key, nil), 204)
	if p := ph.problem(ph.postResult(app.Token, "", scored(user, nil)), 400, "validation"); !names(p, "user") {
		t.Fatalf("problem %+v", p)
	}
	if n := ph.rows("results"); n != 0 {
		t.Fatalf("%d results kept after the erasure", n)
	}
}

type batchAnswer struct {
	Status   int     `json:"status"`
	Replayed bool    `json:"replayed"`
	Result   *result `json:"result"`
	Problem  *struct {
		Type     string `json:"type"`
		Instance string `json:"instance"`
	} `json:"problem"`
}

func TestABatchAnswersEachResult(t *testing.T) {
	ph, user, app := launchedLearner(t)
	first := scored(user, nil)
	ph.expect(ph.postResult(app.Token, "k1", first), 201)
	repeat := map[string]any{"idempotency_key": "k1"}
	for k, v := range first {
		repeat[k] = v
	}
	items := []map[string]any{
		repeat, // a repeat
		scored(user, func(m map[string]any) { m["score_given"] = -3 }),                                           // refused
		scored(user, func(m map[string]any) { m["idempotency_key"] = "k2"; m["activity_progress"] = "Started" }), // new
	}
	var out struct {
		Items []batchAnswer `json:"items"`
	}
	req := ph.request("POST", "/api/v1/results/batch", app.Token, map[string]any{"results": items})
	ph.expect(ph.send(req), 200).json(t, &out)
	if len(out.Items) != 3 || out.Items[0].Status != 201 || !out.Items[0].Replayed || out.Items[1].Status != 400 ||
		out.Items[1].Problem == nil || !strings.HasSuffix(out.Items[1].Problem.Instance, "#/results/1") ||
		out.Items[2].Status != 201 || out.Items[2].Replayed || out.Items[2].Result.ActivityProgress != "Started" {
		t.Fatalf("batch answers %+v", out.Items)
	}
	if n := ph.rows("results"); n != 2 {
		t.Fatalf("%d results stored, want 2", n)
	}

	many := make([]map[string]any, 1001)
	for i := range many {
		many[i] = scored(user, nil)
	}
	for _, body := range []any{map[string]any{"results": []any{}}, map[string]any{"results": many}} {
		ph.problem(ph.send(ph.request("POST", "/api/v1/results/batch", app.Token, body)), 400, "validation")
	}
	if n := ph.rows("results"); n != 2 {
		t.Fatalf("%d results stored after refused batches", n)
	}
}

// TestResultsRacingAnErasureLeaveNothing: results the app posts while the
// learner is being erased are recorded before it (and erased with them)
// or refused; none is left about the erased learner.
func TestResultsRacingAnErasureLeaveNothing(t *testing.T) {
	ph, user, app := launchedLearner(t)
	_, key := ph.createKey("uni", "write")
	var wg sync.WaitGroup
	done := make(chan struct{})
	bad := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				r := ph.postResult(app.Token, "", scored(user, func(m map[string]any) { m["comment"] = "Ada Lovelace wrote this" }))
				if r.status != 201 && r.status != 400 {
					bad <- string(r.body)
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	ph.expect(ph.do("DELETE", "/api/v1/tenants/uni/learners/"+user, key, nil), 204)
	time.Sleep(300 * time.Millisecond)
	close(done)
	wg.Wait()
	close(bad)
	for b := range bad {
		t.Fatalf("a result racing the erasure answered %s", b)
	}
	if n := ph.rows("results"); n != 0 {
		t.Fatalf("%d results about the erased learner survive the erasure", n)
	}
}
