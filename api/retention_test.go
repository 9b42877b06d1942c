package api_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/agreements"
)

type retentionRun struct {
	ID                 string  `json:"id"`
	Trigger            string  `json:"trigger"`
	Status             string  `json:"status"`
	RequestedAt        string  `json:"requested_at"`
	StartedAt          *string `json:"started_at"`
	FinishedAt         *string `json:"finished_at"`
	DisclosuresDeleted int     `json:"disclosures_deleted"`
	LearnersErased     int     `json:"learners_erased"`
	Error              *string `json:"error"`
}

// learnersWithDecisions makes n users of the tenant, created now, and
// records for the first of them `old` decisions taken under no agreement
// at decidedAt and one taken now; it answers the users.
func (h *hub) learnersWithDecisions(tenant uuid.UUID, n, old int, decidedAt time.Time) []uuid.UUID {
	h.t.Helper()
	users := make([]uuid.UUID, n)
	for i := range users {
		users[i] = uuid.New()
	}
	ctx := context.Background()
	err := pg.InTenant(ctx, h.deps.DB, tenant, func(tx *sqlx.Tx) error {
		for _, u := range users {
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, tenant_id, name, created_at, updated_at)
				VALUES ($1, $2, 'Ada Lovelace', now(), now())`, u, tenant); err != nil {
				return err
			}
		}
		for _, at := range []struct {
			n  int
			at time.Time
		}{{old, decidedAt}, {1, time.Now()}} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO disclosures (id, tenant_id, user_id, destination_kind, category, decision,
					record_type, decided_at)
				SELECT gen_random_uuid(), $1, $2, 'lms', 'completion', 'share', 'result', $3 FROM generate_series(1, $4)`,
				tenant, users[0], at.at, at.n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return users
}

func (h *hub) retentionRun(key, path string) retentionRun {
	h.t.Helper()
	var run retentionRun
	h.expect(h.do("GET", path, key, nil), 200).json(h.t, &run)
	return run
}

// retentionFinished waits for the run at path to end and returns it.
func (h *hub) retentionFinished(t *testing.T, key, path string) retentionRun {
	t.Helper()
	var run retentionRun
	eventually(t, 30*time.Second, "the retention run at "+path+" ends", func() bool {
		run = h.retentionRun(key, path)
		return run.Status == "succeeded" || run.Status == "failed"
	})
	return run
}

func (h *hub) disclosureCount(tenant uuid.UUID) int {
	h.t.Helper()
	var n int
	err := pg.InTenant(context.Background(), h.deps.DB, tenant, func(tx *sqlx.Tx) error {
		return tx.Get(&n, `SELECT count(*) FROM disclosures`)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// A tenant admin asks for a run; the job engine works it: a backlog
// larger than one batch of decisions taken under no agreement, past the
// operator's default retention, goes; the run is recorded, listed and
// audited with its counts.
func TestRetentionRunRequestedOverREST(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	keyID, key := h.createKey("uni", "write")
	tenant := h.tenantID("uni")
	old := agreements.RetentionBatch + 200
	h.learnersWithDecisions(tenant, 1, old, time.Now().Add(-(agreements.DefaultDisclosureRetentionDays+1)*24*time.Hour))

	// The job engine is not running: the run stays queued, and a second
	// request joins it.
	first := h.expect(h.do("POST", "/api/v1/tenants/uni/retention-runs", key, nil), 202)
	var queued retentionRun
	first.json(t, &queued)
	loc := first.header.Get("Location")
	if loc != "/api/v1/tenants/uni/retention-runs/"+queued.ID || queued.Status != "queued" || queued.Trigger != "request" ||
		queued.StartedAt != nil || queued.FinishedAt != nil {
		t.Fatalf("202 Location %q, run %+v", loc, queued)
	}
	second := h.expect(h.do("POST", "/api/v1/tenants/uni/retention-runs", key, map[string]any{}), 202)
	if second.field(t, "id") != queued.ID || second.header.Get("Location") != loc {
		t.Fatalf("second request: %s at %q, want the queued run joined", second.body, second.header.Get("Location"))
	}
	if got := h.retentionRun(key, loc); got.ID != queued.ID || got.Status != "queued" {
		t.Fatalf("GET Location = %+v", got)
	}

	(&platformHub{hub: h}).startJobs(t)
	run := h.retentionFinished(t, key, loc)
	if run.Status != "succeeded" || run.DisclosuresDeleted != old || run.LearnersErased != 0 || run.Error != nil ||
		run.StartedAt == nil || run.FinishedAt == nil {
		t.Fatalf("run = %+v, want %d disclosures deleted", run, old)
	}
	if n := h.disclosureCount(tenant); n != 1 {
		t.Fatalf("%d disclosures left, want the young one", n)
	}

	var runs page[retentionRun]
	found := false
	for cursor := ""; ; {
		h.expect(h.do("GET", "/api/v1/tenants/uni/retention-runs?limit=1&cursor="+url.QueryEscape(cursor), key, nil), 200).json(t, &runs)
		for _, r := range runs.Items {
			found = found || r.ID == run.ID && r.Status == run.Status && r.DisclosuresDeleted == run.DisclosuresDeleted
		}
		if cursor = runs.NextCursor; cursor == "" {
			break
		}
	}
	if !found {
		t.Fatalf("the run is not listed as %+v", run)
	}
	requested := (&platformHub{hub: h}).actions(key, "retention.requested") // newest first
	if len(requested) != 2 || requested[1].ActorID != keyID || requested[1].TargetID != queued.ID ||
		requested[1].Details["joined"] != "false" || requested[0].Details["joined"] != "true" {
		t.Fatalf("retention.requested entries %+v", requested)
	}
	var ran bool
	for _, e := range (&platformHub{hub: h}).actions(key, "retention.ran") {
		if e.TargetID == run.ID {
			ran = e.ActorType == "system" && e.Details["disclosures_deleted"] == "1200" && e.Details["trigger"] == "request"
		}
	}
	if !ran {
		t.Fatalf("no retention.ran entry for %s with its counts", run.ID)
	}
}

// A run after an agreement terminated with delete has passed its copy
// retention erases the tenant's learners; the schedule's runs are listed
// with the requested one.
func TestRetentionRunErasesTheLearnersOfAnEndedAgreement(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	_, key := h.createKey("uni", "write")
	tenant := h.tenantID("uni")
	users := h.learnersWithDecisions(tenant, 3, 0, time.Now())
	a := h.createAgreement(key, map[string]any{"on_end": "delete", "copy_retention_days": 1})
	h.expect(h.do("POST", "/api/v1/tenants/uni/agreements/"+a.ID+"/activate", key, signatures), 200)
	h.expect(h.do("POST", "/api/v1/tenants/uni/agreements/"+a.ID+"/terminate", key, nil), 200)
	h.deps.Retention.Now = func() time.Time { return time.Now().Add(25 * time.Hour) }
	(&platformHub{hub: h}).startJobs(t)

	r := h.expect(h.do("POST", "/api/v1/tenants/uni/retention-runs", key, nil), 202)
	run := h.retentionFinished(t, key, r.header.Get("Location"))
	var erased int
	for _, e := range (&platformHub{hub: h}).actions(key, "learner.erased") {
		for _, u := range users {
			if e.TargetID == u.String() && e.ActorType == "system" && e.ActorID == "retention" {
				erased++
			}
		}
	}
	// The schedule's run, on the engine's start, may have got there first.
	if run.Status != "succeeded" || erased != len(users) {
		t.Fatalf("run %+v; %d of %d learners erased by retention", run, erased, len(users))
	}
	for _, u := range users {
		h.problem(h.do("GET", "/api/v1/tenants/uni/learners/"+u.String()+"/export", key, nil), 404, "not-found")
	}
	var runs page[retentionRun]
	h.expect(h.do("GET", "/api/v1/tenants/uni/retention-runs", key, nil), 200).json(t, &runs)
	var total int
	for _, r := range runs.Items {
		total += r.LearnersErased
	}
	if total != len(users) {
		t.Fatalf("runs %+v erased %d learners in all, want %d", runs.Items, total, len(users))
	}
}

func TestRetentionRunsAreTheTenantsOwnAndInputIsChecked(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	h.createTenant("other", "institution")
	_, key := h.createKey("uni", "write")
	_, reader := h.createKey("uni", "read")
	_, otherKey := h.createKey("other", "write")
	r := h.expect(h.do("POST", "/api/v1/tenants/uni/retention-runs", key, nil), 202)
	id := r.field(t, "id")

	for name, tc := range map[string]struct {
		method, path, key string
		body              any
		status            int
		problem, field    string
	}{
		"another tenant's run":          {"GET", "/api/v1/tenants/other/retention-runs/" + id, otherKey, nil, 404, "not-found", ""},
		"a run by another tenant's key": {"GET", "/api/v1/tenants/uni/retention-runs/" + id, otherKey, nil, 404, "not-found", ""},
		"another tenant's listing":      {"GET", "/api/v1/tenants/uni/retention-runs", otherKey, nil, 404, "not-found", ""},
		"a request by another's key":    {"POST", "/api/v1/tenants/uni/retention-runs", otherKey, nil, 404, "not-found", ""},
		"no such run":                   {"GET", "/api/v1/tenants/uni/retention-runs/" + uuid.NewString(), key, nil, 404, "not-found", ""},
		"a run id that is no id":        {"GET", "/api/v1/tenants/uni/retention-runs/last", key, nil, 404, "not-found", ""},
		"a cursor not from the API":     {"GET", "/api/v1/tenants/uni/retention-runs?cursor=bogus", key, nil, 400, "validation", "cursor"},
		"a limit out of range":          {"GET", "/api/v1/tenants/uni/retention-runs?limit=0", key, nil, 400, "validation", "limit"},
		"a request with a read key":     {"POST", "/api/v1/tenants/uni/retention-runs", reader, nil, 403, "forbidden", ""},
		"a request with a body":         {"POST", "/api/v1/tenants/uni/retention-runs", key, map[string]any{"now": true}, 400, "validation", "now"},
	} {
		t.Run(name, func(t *testing.T) {
			p := h.problem(h.do(tc.method, tc.path, tc.key, tc.body), tc.status, tc.problem)
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Fatalf("problem %+v, want the field %s named", p, tc.field)
			}
		})
	}
	var other page[retentionRun]
	h.expect(h.do("GET", "/api/v1/tenants/other/retention-runs", otherKey, nil), 200).json(t, &other)
	if len(other.Items) != 0 {
		t.Fatalf("the other tenant lists %+v", other.Items)
	}
	if got := h.retentionRun(reader, "/api/v1/tenants/uni/retention-runs/"+id); got.Status != "queued" {
		t.Fatalf("the run after the others' attempts: %+v", got)
	}
}
