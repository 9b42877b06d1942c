package api_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/sync/jobs"
)

// rosterSize is the fake platform's roster of course-1: three pages of
// at most 50 members.
const rosterSize = 120

// Course, member, run and schedule as the API answers them.
type course struct {
	ID            string  `json:"id"`
	ContextID     string  `json:"context_id"`
	Memberships   *string `json:"context_memberships_url"`
	ActiveMembers int     `json:"active_members"`
	SyncedAt      *string `json:"roster_synced_at"`
}

type member struct {
	UserID  string   `json:"user_id"`
	Subject *string  `json:"lti_user_id"`
	Roles   []string `json:"roles"`
	Status  string   `json:"status"`
	Source  string   `json:"source"`
}

type rosterRun struct {
	ID         string  `json:"id"`
	Context    string  `json:"context"`
	Trigger    string  `json:"trigger"`
	Mode       string  `json:"mode"`
	Status     string  `json:"status"`
	StartedAt  *string `json:"started_at"`
	FinishedAt *string `json:"finished_at"`
	Pages      int     `json:"pages"`
	Members    int     `json:"members"`
	Added      int     `json:"added"`
	Changed    int     `json:"changed"`
	Removed    int     `json:"removed"`
	ErrorCode  *string `json:"error_code"`
}

type schedule struct {
	Enabled         bool    `json:"enabled"`
	IntervalMinutes int     `json:"interval_minutes"`
	UpdatedAt       *string `json:"updated_at"`
}

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// newRosterHub is the hub with a fake LMS whose course-1 has a roster of
// rosterSize, and whose token endpoint verifies the hub's client
// assertions against the hub's keyset. The job engine is not running:
// tests start it when they want runs worked.
func newRosterHub(t *testing.T) *platformHub {
	t.Helper()
	ph := newPlatformHub(t)
	ph.p.ToolJWKSURL, ph.p.ToolClient = ph.url+"/.well-known/jwks.json", ph.client
	ph.p.SetRoster("course-1", rosterSize)
	return ph
}

// startJobs works the hub's jobs until the test ends.
func (ph *platformHub) startJobs(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if err := jobs.Start(ctx, ph.deps.Jobs); err != nil {
		t.Fatal(err)
	}
	go func() { done <- jobs.Run(ctx, ph.deps.Jobs, 2*time.Second, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("job engine: %v", err)
		}
	})
}

// startLaunchQueue queues the syncs first launches ask for, as hubd
// serve does, until the test ends.
func (ph *platformHub) startLaunchQueue(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ph.deps.Roster.RunLaunchQueue(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// launchCourse launches subject into course-1 as an instructor and
// returns the course's id in the hub.
func (ph *platformHub) launchCourse(token, subject string) string {
	ph.t.Helper()
	ph.succeeded(ph.launch(ltitest.Launch{Subject: subject, Roles: []string{lti.RoleInstructor}}))
	var courses page[course]
	ph.expect(ph.do("GET", "/api/v1/tenants/"+ph.slug+"/lti/contexts", token, nil), 200).json(ph.t, &courses)
	for _, c := range courses.Items {
		if c.ContextID == "course-1" {
			return c.ID
		}
	}
	ph.t.Fatalf("course-1 is not listed: %+v", courses.Items)
	return ""
}

func (ph *platformHub) getRun(token, path string) rosterRun {
	ph.t.Helper()
	var run rosterRun
	ph.expect(ph.do("GET", path, token, nil), 200).json(ph.t, &run)
	return run
}

// finished waits for the run at path to end and returns it.
func (ph *platformHub) finished(t *testing.T, token, path string) rosterRun {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run := ph.getRun(token, path)
		if run.Status == "succeeded" || run.Status == "failed" {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("the roster sync at %s has not finished within 30s: %+v", path, run)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (ph *platformHub) members(token, courseID, query string) []member {
	ph.t.Helper()
	var p page[member]
	ph.expect(ph.do("GET", "/api/v1/tenants/"+ph.slug+"/lti/contexts/"+courseID+"/members?limit=200&"+query, token, nil), 200).json(ph.t, &p)
	if p.NextCursor != "" {
		ph.t.Fatalf("members?%s: more than a page", query)
	}
	return p.Items
}

func subjectOf(m member) string { return str(m.Subject) }

func TestRosterFirstLaunchSyncsTheCourse(t *testing.T) {
	ph := newRosterHub(t)
	_, key := ph.createKey("uni", "read")
	ph.startJobs(t)
	ph.startLaunchQueue(t)
	id := ph.launchCourse(key, "teacher-1")

	var runs page[rosterRun]
	eventually(t, 30*time.Second, "the first launch's sync succeeds", func() bool {
		ph.expect(ph.do("GET", "/api/v1/tenants/uni/roster-syncs?context="+id, key, nil), 200).json(t, &runs)
		return len(runs.Items) == 1 && runs.Items[0].Status == "succeeded"
	})
	run := runs.Items[0]
	// No differences link before the first sync: a full one.
	if run.Trigger != "launch" || run.Mode != "full" || run.Context != id || run.Pages != 3 || run.Members != rosterSize ||
		run.Added != rosterSize || run.ErrorCode != nil || run.StartedAt == nil || run.FinishedAt == nil {
		t.Fatalf("run = %+v", run)
	}
	var c course
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/lti/contexts/"+id, key, nil), 200).json(t, &c)
	if c.ActiveMembers != rosterSize || c.SyncedAt == nil || c.Memberships == nil || !strings.HasSuffix(*c.Memberships, "/nrps/course-1") {
		t.Fatalf("course = %+v", c)
	}
	active := ph.members(key, id, "status=active")
	if len(active) != rosterSize {
		t.Fatalf("%d active members, want %d", len(active), rosterSize)
	}
	for _, m := range active {
		if m.Source != "nrps" || !strings.HasPrefix(subjectOf(m), "nrps-course-1-") {
			t.Fatalf("active member %+v", m)
		}
	}
	// The launcher is not on the platform's roster and launched before
	// the run started: the full sync marks them removed, and keeps them.
	removed := ph.members(key, id, "status=removed")
	if run.Removed != 1 || len(removed) != 1 || subjectOf(removed[0]) != "teacher-1" || removed[0].Source != "launch" {
		t.Fatalf("removed = %+v (run removed %d), want the launcher", removed, run.Removed)
	}
	if all := ph.members(key, id, ""); len(all) != rosterSize+1 {
		t.Fatalf("%d members in all, want %d", len(all), rosterSize+1)
	}
}

func TestRosterSyncRequestJoinsAndSucceeds(t *testing.T) {
	ph := newRosterHub(t)
	keyID, key := ph.createKey("uni", "write")
	id := ph.launchCourse(key, "teacher-1")
	base := "/api/v1/tenants/uni/lti/contexts/" + id + "/roster-syncs"

	// The job engine is not running: the first request stays queued and
	// the second joins it.
	first := ph.expect(ph.do("POST", base, key, map[string]string{"mode": "full"}), 202)
	var queued rosterRun
	first.json(t, &queued)
	loc := first.header.Get("Location")
	if loc != "/api/v1/tenants/uni/roster-syncs/"+queued.ID || queued.Status != "queued" || queued.Trigger != "request" ||
		queued.Mode != "full" || queued.Context != id {
		t.Fatalf("202 Location %q, run %+v", loc, queued)
	}
	second := ph.expect(ph.do("POST", base, key, nil), 202)
	var joined rosterRun
	second.json(t, &joined)
	if joined.ID != queued.ID || second.header.Get("Location") != loc || joined.Mode != "full" {
		t.Fatalf("second request: %+v at %q, want the queued run %s joined", joined, second.header.Get("Location"), queued.ID)
	}
	if got := ph.getRun(key, loc); got.ID != queued.ID || got.Status != "queued" {
		t.Fatalf("GET Location = %+v", got)
	}

	ph.startJobs(t)
	run := ph.finished(t, key, loc)
	if run.Status != "succeeded" || run.Pages != 3 || run.Members != rosterSize || run.Added != rosterSize || run.Removed != 1 ||
		run.ErrorCode != nil || run.FinishedAt == nil {
		t.Fatalf("run = %+v", run)
	}
	var runs page[rosterRun]
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/roster-syncs?status=succeeded&context="+id, key, nil), 200).json(t, &runs)
	if len(runs.Items) != 1 || runs.Items[0].ID != run.ID {
		t.Fatalf("succeeded runs = %+v", runs.Items)
	}
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/roster-syncs?status=queued", key, nil), 200).json(t, &runs)
	if len(runs.Items) != 0 {
		t.Fatalf("queued runs = %+v", runs.Items)
	}

	// Both requests are audited, the second as joined.
	var audited auditPage
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/audit?action=roster_sync.requested", key, nil), 200).json(t, &audited)
	if len(audited.Items) != 2 {
		t.Fatalf("%d roster_sync.requested entries, want 2", len(audited.Items))
	}
	for i, e := range audited.Items { // newest first
		wantJoined := map[int]string{0: "true", 1: "false"}[i]
		if e.ActorID != keyID || e.TargetType != "lti_context" || e.TargetID != id || e.Details["run"] != run.ID ||
			e.Details["joined"] != wantJoined {
			t.Fatalf("audit entry %d = %+v", i, e)
		}
	}
}

func TestRosterMembersFilterByRoleAndStatus(t *testing.T) {
	ph := newRosterHub(t)
	_, key := ph.createKey("uni", "write")
	id := ph.launchCourse(key, "teacher-1")
	ph.startJobs(t)
	sync := func(mode string) rosterRun {
		t.Helper()
		r := ph.expect(ph.do("POST", "/api/v1/tenants/uni/lti/contexts/"+id+"/roster-syncs", key, map[string]string{"mode": mode}), 202)
		return ph.finished(t, key, r.header.Get("Location"))
	}
	if run := sync("full"); run.Status != "succeeded" {
		t.Fatalf("first sync: %+v", run)
	}

	// Instructors, teaching assistants among them (a sub-role, sent in
	// full or short form), as the platform lists them.
	roster := ph.p.Roster("course-1")
	var instructors []string
	for i := range roster.Len() {
		m := roster.Member(i)
		for _, r := range m.Roles {
			if strings.Contains(r, "Instructor") {
				instructors = append(instructors, m.UserID)
				break
			}
		}
	}
	got := ph.members(key, id, "status=active&role=Instructor")
	if len(got) != len(instructors) || len(instructors) < 5 {
		t.Fatalf("%d active instructors, the platform lists %d", len(got), len(instructors))
	}
	for _, m := range got {
		if !strings.Contains(subjectOf(m), "nrps-course-1-") || !hasRolePrefix(m.Roles, lti.RoleInstructor, "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#") {
			t.Fatalf("role=Instructor lists %+v", m)
		}
	}
	full := ph.members(key, id, "role="+url.QueryEscape(lti.RoleTeachingAssistant))
	if len(full) == 0 || len(full) >= len(got) {
		t.Fatalf("%d teaching assistants by full URI, of %d instructors", len(full), len(got))
	}
	if learners := ph.members(key, id, "role=Learner&status=active"); len(learners)+len(got) >= rosterSize || len(learners) == 0 {
		t.Fatalf("%d learners", len(learners))
	}

	// A member the platform no longer lists is removed by a full sync.
	ph.jobsDone(t)
	gone := roster.Member(3).UserID
	roster.Remove(3)
	run := sync("full")
	if run.Status != "succeeded" || run.Mode != "full" || run.Removed != 1 || run.Added != 0 {
		t.Fatalf("sync after a removal: %+v", run)
	}
	var subjects []string
	for _, m := range ph.members(key, id, "status=removed") {
		subjects = append(subjects, subjectOf(m))
	}
	if strings.Join(subjects, " ") != gone+" teacher-1" && strings.Join(subjects, " ") != "teacher-1 "+gone {
		t.Fatalf("removed members %v, want %s and the launcher", subjects, gone)
	}
	if n := len(ph.members(key, id, "status=active")); n != rosterSize-1 {
		t.Fatalf("%d active members after one left, want %d", n, rosterSize-1)
	}
}

// jobsDone waits until the job engine has recorded the end of every
// roster sync job: a run reports its end before its job does.
func (ph *platformHub) jobsDone(t *testing.T) {
	t.Helper()
	db := pgtest.Superuser(t, ph.dbt)
	eventually(t, 10*time.Second, "the roster sync jobs are completed", func() bool {
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM river_job WHERE kind = 'roster.sync' AND state <> 'completed'`); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// TestRosterSyncRequestedAsARunEndsIsWorked: a request that comes as soon
// as the course's last run reports its end (its job not yet recorded as
// completed) is worked too, not left queued.
func TestRosterSyncRequestedAsARunEndsIsWorked(t *testing.T) {
	ph := newRosterHub(t)
	_, key := ph.createKey("uni", "write")
	id := ph.launchCourse(key, "teacher-1")
	ph.startJobs(t)
	path := "/api/v1/tenants/uni/lti/contexts/" + id + "/roster-syncs"
	first := ph.finished(t, key, ph.expect(ph.do("POST", path, key, nil), 202).header.Get("Location"))
	second := ph.expect(ph.do("POST", path, key, map[string]string{"mode": "full"}), 202)
	run := ph.finished(t, key, second.header.Get("Location"))
	if first.Status != "succeeded" || run.ID == first.ID || run.Status != "succeeded" || run.Mode != "full" {
		t.Fatalf("first %+v, second %+v", first, run)
	}
}

func hasRolePrefix(roles []string, prefixes ...string) bool {
	for _, r := range roles {
		for _, p := range prefixes {
			if strings.HasPrefix(r, p) {
				return true
			}
		}
	}
	return false
}

func TestRosterRefusesBadInput(t *testing.T) {
	ph := newRosterHub(t)
	_, key := ph.createKey("uni", "write")
	id := ph.launchCourse(key, "teacher-1")
	course := "/api/v1/tenants/uni/lti/contexts/" + id
	for _, tc := range []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"unknown member status", "GET", course + "/members?status=gone", nil, "status"},
		{"member role too long", "GET", course + "/members?role=" + strings.Repeat("r", 256), nil, "role"},
		{"limit zero", "GET", course + "/members?limit=0", nil, "limit"},
		{"limit over 200", "GET", "/api/v1/tenants/uni/lti/contexts?limit=201", nil, "limit"},
		{"limit not a number", "GET", "/api/v1/tenants/uni/roster-syncs?limit=ten", nil, "limit"},
		{"unknown run status", "GET", "/api/v1/tenants/uni/roster-syncs?status=done", nil, "status"},
		{"run context not an id", "GET", "/api/v1/tenants/uni/roster-syncs?context=course-1", nil, "context"},
		{"unknown sync mode", "POST", course + "/roster-syncs", map[string]string{"mode": "partial"}, "mode"},
		{"interval under a quarter of an hour", "PUT", "/api/v1/tenants/uni/roster-schedule", map[string]any{"interval_minutes": 5}, "interval_minutes"},
		{"interval over a week", "PUT", "/api/v1/tenants/uni/roster-schedule", map[string]any{"interval_minutes": 10081}, "interval_minutes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ph.t = t
			p := ph.problem(ph.do(tc.method, tc.path, key, tc.body), 400, "validation")
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
				t.Fatalf("errors = %+v, want %s", p.Errors, tc.field)
			}
		})
	}
	ph.t = t
	ph.problem(ph.do("POST", course+"/roster-syncs", key, `{"mode": "full", "extra": 1}`), 400, "validation")
	var runs page[rosterRun]
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/roster-syncs", key, nil), 200).json(t, &runs)
	if len(runs.Items) != 0 {
		t.Fatalf("refused requests queued runs: %+v", runs.Items)
	}
	var sc schedule
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/roster-schedule", key, nil), 200).json(t, &sc)
	if sc.UpdatedAt != nil {
		t.Fatalf("a refused schedule was stored: %+v", sc)
	}
}

// TestRosterCourseWithoutEndpointIsConflict: a course whose platform
// sent no NRPS endpoint cannot be synced.
func TestRosterCourseWithoutEndpointIsConflict(t *testing.T) {
	ph := newRosterHub(t)
	_, key := ph.createKey("uni", "write")
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "teacher-1", Claims: map[string]any{lti.ClaimNRPS: nil}}))
	var courses page[course]
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/lti/contexts", key, nil), 200).json(t, &courses)
	if len(courses.Items) != 1 || courses.Items[0].Memberships != nil {
		t.Fatalf("courses = %+v", courses.Items)
	}
	ph.problem(ph.do("POST", "/api/v1/tenants/uni/lti/contexts/"+courses.Items[0].ID+"/roster-syncs", key, nil), 409, "conflict")
}

// TestRosterIsolation: tenant B's key on tenant A's course and run
// answers exactly as for ids that exist nowhere.
func TestRosterIsolation(t *testing.T) {
	ph := newRosterHub(t)
	_, keyA := ph.createKey("uni", "write")
	id := ph.launchCourse(keyA, "teacher-1")
	r := ph.expect(ph.do("POST", "/api/v1/tenants/uni/lti/contexts/"+id+"/roster-syncs", keyA, nil), 202)
	var run rosterRun
	r.json(t, &run)
	ph.createTenant("other", "institution")
	_, keyB := ph.createKey("other", "write")
	nowhere := uuid.NewString()

	for _, tc := range []struct{ name, method, path string }{
		{"course", "GET", "/lti/contexts/%s"},
		{"members", "GET", "/lti/contexts/%s/members"},
		{"sync request", "POST", "/lti/contexts/%s/roster-syncs"},
		{"run", "GET", "/roster-syncs/%s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ph.t = t
			target := id
			if tc.name == "run" {
				target = run.ID
			}
			theirs := ph.problem(ph.do(tc.method, "/api/v1/tenants/other"+strings.Replace(tc.path, "%s", target, 1), keyB, nil), 404, "not-found")
			none := ph.problem(ph.do(tc.method, "/api/v1/tenants/other"+strings.Replace(tc.path, "%s", nowhere, 1), keyB, nil), 404, "not-found")
			if theirs.Title != none.Title || theirs.Detail != none.Detail {
				t.Fatalf("another tenant's id answers %+v, an unknown one %+v", theirs, none)
			}
			// Nor does B's key reach them under A's slug.
			ph.problem(ph.do(tc.method, "/api/v1/tenants/uni"+strings.Replace(tc.path, "%s", target, 1), keyB, nil), 404, "not-found")
		})
	}
	ph.t = t
	var runs page[rosterRun]
	ph.expect(ph.do("GET", "/api/v1/tenants/other/roster-syncs", keyB, nil), 200).json(t, &runs)
	var courses page[course]
	ph.expect(ph.do("GET", "/api/v1/tenants/other/lti/contexts", keyB, nil), 200).json(t, &courses)
	if len(runs.Items) != 0 || len(courses.Items) != 0 {
		t.Fatalf("tenant B lists %+v and %+v", runs.Items, courses.Items)
	}
	if got := ph.getRun(keyA, "/api/v1/tenants/uni/roster-syncs/"+run.ID); got.ID != run.ID {
		t.Fatalf("A's run = %+v", got)
	}
	// B's request was not A's: A's chain has A's request only.
	var audited auditPage
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/audit?action=roster_sync.requested", keyA, nil), 200).json(t, &audited)
	if len(audited.Items) != 1 {
		t.Fatalf("%d sync requests audited in A's chain, want 1", len(audited.Items))
	}
}

func TestRosterSchedule(t *testing.T) {
	ph := newRosterHub(t)
	keyID, key := ph.createKey("uni", "write")
	path := "/api/v1/tenants/uni/roster-schedule"
	get := func() schedule {
		t.Helper()
		var sc schedule
		ph.expect(ph.do("GET", path, key, nil), 200).json(t, &sc)
		return sc
	}
	if sc := get(); !sc.Enabled || sc.IntervalMinutes != 360 || sc.UpdatedAt != nil {
		t.Fatalf("default schedule = %+v", sc)
	}
	var sc schedule
	ph.expect(ph.do("PUT", path, key, map[string]any{"interval_minutes": 60}), 200).json(t, &sc)
	if !sc.Enabled || sc.IntervalMinutes != 60 || sc.UpdatedAt == nil {
		t.Fatalf("PUT 60 = %+v", sc)
	}
	if sc := get(); !sc.Enabled || sc.IntervalMinutes != 60 {
		t.Fatalf("after PUT 60: %+v", sc)
	}
	ph.expect(ph.do("PUT", path, key, map[string]any{"enabled": false}), 200).json(t, &sc)
	if sc.Enabled {
		t.Fatalf("PUT enabled false = %+v", sc)
	}
	if sc := get(); sc.Enabled || sc.IntervalMinutes != 60 || sc.UpdatedAt == nil {
		t.Fatalf("after turning it off (the interval kept): %+v", sc)
	}
	var audited auditPage
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/audit?action=roster_schedule.updated", key, nil), 200).json(t, &audited)
	if len(audited.Items) != 2 {
		t.Fatalf("%d roster_schedule.updated entries, want 2", len(audited.Items))
	}
	if e := audited.Items[0]; e.ActorID != keyID || e.Details["enabled"] != "false" || e.TargetID == "" {
		t.Fatalf("newest entry = %+v", e)
	}
	if e := audited.Items[1]; e.Details["enabled"] != "true" || e.Details["interval_minutes"] != "60" {
		t.Fatalf("first entry = %+v", e)
	}
}

// TestRosterWritesNeedTheWriteScope: a read-only key reads courses, runs
// and the schedule, and may neither request a sync nor set the schedule.
func TestRosterWritesNeedTheWriteScope(t *testing.T) {
	ph := newRosterHub(t)
	_, reader := ph.createKey("uni", "read")
	id := ph.launchCourse(reader, "teacher-1")
	ph.problem(ph.do("POST", "/api/v1/tenants/uni/lti/contexts/"+id+"/roster-syncs", reader, nil), 403, "forbidden")
	ph.problem(ph.do("PUT", "/api/v1/tenants/uni/roster-schedule", reader, map[string]any{"enabled": false}), 403, "forbidden")
	for _, path := range []string{"/lti/contexts/" + id, "/lti/contexts/" + id + "/members", "/roster-syncs", "/roster-schedule"} {
		ph.expect(ph.do("GET", "/api/v1/tenants/uni"+path, reader, nil), 200)
	}
	var runs page[rosterRun]
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/roster-syncs", reader, nil), 200).json(t, &runs)
	var sc schedule
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/roster-schedule", reader, nil), 200).json(t, &sc)
	if len(runs.Items) != 0 || !sc.Enabled || sc.UpdatedAt != nil {
		t.Fatalf("refused writes changed something: runs %+v, schedule %+v", runs.Items, sc)
	}
}

// A member the roster brought, who never launched, is the hub user their
// first launch finds: the same user id, now a member by launch.
func TestRosterMembersFirstLaunchFindsTheirUser(t *testing.T) {
	ph := newRosterHub(t)
	_, key := ph.createKey("uni", "write")
	ph.startJobs(t)
	id := ph.launchCourse(key, "teacher-1")
	run := ph.expect(ph.do("POST", "/api/v1/tenants/uni/lti/contexts/"+id+"/roster-syncs", key, nil), 202)
	ph.finished(t, key, run.header.Get("Location"))
	learner := ph.p.Roster("course-1").Member(7)
	var synced member
	for _, m := range ph.members(key, id, "status=active") {
		if subjectOf(m) == learner.UserID {
			synced = m
		}
	}
	if synced.UserID == "" || synced.Source != "nrps" {
		t.Fatalf("member 7 after the sync: %+v", synced)
	}
	ph.succeeded(ph.launch(ltitest.Launch{Subject: learner.UserID, Roles: []string{lti.RoleLearner}}))
	launches := ph.launches(key, "?outcome=launched")
	if got := str(launches.Items[0].UserID); got != synced.UserID {
		t.Fatalf("the launch was recorded for user %s, the roster made %s", got, synced.UserID)
	}
	for _, m := range ph.members(key, id, "status=active") {
		if subjectOf(m) == learner.UserID && (m.UserID != synced.UserID || m.Source != "launch") {
			t.Fatalf("after the launch: %+v", m)
		}
	}
}
