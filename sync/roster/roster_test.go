package roster

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/lti/nrps"
)

func TestFirstSyncStoresTheWholeRoster(t *testing.T) {
	r := newRig(t, 1234)
	run := r.syncNow()
	if run.Status != StatusSucceeded || run.Mode != ModeFull {
		t.Fatalf("run %+v", run)
	}
	if run.Members != 1234 || run.Added != 1234 || run.Changed != 0 || run.Removed != 0 || run.Pages != 25 {
		t.Fatalf("counts: members %d added %d changed %d removed %d pages %d", run.Members, run.Added, run.Changed, run.Removed, run.Pages)
	}
	ms := r.members()
	if n := countStatus(ms)["active"]; n != 1234 {
		t.Fatalf("%d active members, want 1234", n)
	}
	first := r.p.Roster("course-1").Member(0)
	got := ms[first.UserID]
	if got.Name != first.Name || got.Email != first.Email || !strings.Contains(got.Roles, "membership#") {
		t.Fatalf("member 0 stored as %+v, platform has %+v", got, first)
	}
}

func TestFullResyncAppliesExactlyTheChanges(t *testing.T) {
	r := newRig(t, 300)
	r.p.OfferDifferences = false
	r.syncNow()
	ro := r.p.Roster("course-1")
	ro.Add(3)
	ro.Change(5)
	ro.SetRoles(6, "Instructor")
	ro.Deactivate(7)
	ro.Remove(8)
	run := r.syncNow()
	if run.Mode != ModeFull || run.Added != 3 || run.Changed != 3 || run.Removed != 1 || run.Members != 302 {
		t.Fatalf("re-sync: mode %s added %d changed %d removed %d members %d", run.Mode, run.Added, run.Changed, run.Removed, run.Members)
	}
	ms := r.members()
	if got := ms[ro.Member(8).UserID].Status; got != "removed" {
		t.Errorf("removed member is %q", got)
	}
	if got := ms[ro.Member(7).UserID].Status; got != "inactive" {
		t.Errorf("deactivated member is %q", got)
	}
	if got := ms[ro.Member(5).UserID]; got.Name != ro.Member(5).Name || got.Email != ro.Member(5).Email {
		t.Errorf("changed member stored as %+v, platform has %+v", got, ro.Member(5))
	}
	if got := ms[ro.Member(6).UserID].Roles; got != lti.RoleInstructor {
		t.Errorf("member 6 roles %q", got)
	}
	if n := countStatus(ms); n["active"] != 301 || len(ms) != 303 {
		t.Errorf("statuses %v of %d", n, len(ms))
	}
	again := r.syncNow()
	if again.Added+again.Changed+again.Removed != 0 {
		t.Errorf("an unchanged roster re-synced with changes: %+v", again)
	}
}

func TestDifferencesSyncAppliesOnlyWhatChanged(t *testing.T) {
	r := newRig(t, 500)
	first := r.syncNow()
	ro := r.p.Roster("course-1")
	ro.Add(2)
	ro.Change(10)
	ro.Deactivate(11)
	ro.Remove(12)
	run := r.syncNow()
	if run.Mode != ModeDifferences || run.Pages != 1 || run.Members != 5 {
		t.Fatalf("differences run: mode %s pages %d members %d (first run %d pages)", run.Mode, run.Pages, run.Members, first.Pages)
	}
	if run.Added != 2 || run.Changed != 3 || run.Removed != 0 {
		t.Fatalf("counts: added %d changed %d removed %d", run.Added, run.Changed, run.Removed)
	}
	ms := r.members()
	if ms[ro.Member(12).UserID].Status != "deleted" || ms[ro.Member(11).UserID].Status != "inactive" {
		t.Fatalf("statuses: removed %q, deactivated %q", ms[ro.Member(12).UserID].Status, ms[ro.Member(11).UserID].Status)
	}
	if n := countStatus(ms)["active"]; n != 500 {
		t.Fatalf("%d active members, want 500", n)
	}
}

func TestExpiredDifferencesFallBackToAFullSync(t *testing.T) {
	r := newRig(t, 120)
	r.syncNow()
	ro := r.p.Roster("course-1")
	ro.Remove(3)
	r.p.ExpireDifferences()
	run := r.syncNow()
	if run.Status != StatusSucceeded || run.Mode != ModeFull || run.Removed != 1 || run.Members != 119 {
		t.Fatalf("run %+v", run)
	}
	if got := r.members()[ro.Member(3).UserID].Status; got != "removed" {
		t.Fatalf("member 3 is %q", got)
	}
}

func TestFaultStormsEndInACompleteRoster(t *testing.T) {
	r := newRig(t, 400)
	r.p.NRPSSlowDelay = 2 * time.Second
	r.s.PageTimeout = 300 * time.Millisecond
	r.p.InjectNRPSFaults(ltitest.FaultTooMany, ltitest.FaultCanvasThrottle, ltitest.FaultServerError, ltitest.FaultDropConnection,
		ltitest.FaultUnavailable, ltitest.FaultSlow, ltitest.FaultTooManyDate, ltitest.FaultCanvasThrottle, ltitest.FaultServerError)
	run := r.syncNow()
	if run.Status != StatusSucceeded || run.Members != 400 || run.Added != 400 {
		t.Fatalf("run %+v", run)
	}
	if n := countStatus(r.members())["active"]; n != 400 {
		t.Fatalf("%d active members", n)
	}
}

func TestFaultsBeyondThePolicyFailTheRun(t *testing.T) {
	r := newRig(t, 100)
	r.s.Retry.Attempts = 3
	r.p.InjectNRPSFaults(ltitest.FaultServerError, ltitest.FaultServerError, ltitest.FaultServerError)
	run := r.syncNow()
	if run.Status != StatusFailed || *run.ErrorCode != CodeUnavailable || !strings.Contains(*run.Error, "500") {
		t.Fatalf("run %+v", run)
	}
	if len(r.members()) != 0 {
		t.Fatal("a failed run stored members")
	}
}

func TestAMalformedPageFailsAndKeepsTheCompletePages(t *testing.T) {
	r := newRig(t, 200)
	// Two good pages, then a page that is not a membership container.
	r.s.nrpsHook = func(page int) {
		if page == 3 {
			r.p.InjectNRPSFaults(ltitest.FaultMalformed)
		}
	}
	run := r.syncNow()
	if run.Status != StatusFailed || *run.ErrorCode != CodeMalformedPage || run.Pages != 2 {
		t.Fatalf("run %+v", run)
	}
	if n := len(r.members()); n != 100 {
		t.Fatalf("%d members stored, want the two complete pages' 100", n)
	}
}

func TestACourseThePlatformNoLongerKnowsLeavesTheSchedule(t *testing.T) {
	r := newRig(t, 0) // the platform has no roster for course-1: 404
	run := r.syncNow()
	if run.Status != StatusFailed || *run.ErrorCode != CodeContextGone {
		t.Fatalf("run %+v", run)
	}
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET roster_next_sync_at = now() - interval '1 hour' WHERE id = $1`, r.course)
		return err
	})
	if n, err := r.s.QueueDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("queued %d (%v): a gone course was scheduled", n, err)
	}
}

func TestTheTokenEndpointsRefusalIsRecorded(t *testing.T) {
	r := newRig(t, 10)
	r.p.FailTokens(401, "invalid_client", 1)
	run := r.syncNow()
	if run.Status != StatusFailed || *run.ErrorCode != CodeTokenRefused || !strings.Contains(*run.Error, "invalid_client") {
		t.Fatalf("run %+v", run)
	}
}

func TestARevokedTokenIsRefreshedOnce(t *testing.T) {
	r := newRig(t, 60)
	r.syncNow()
	before := r.p.TokenRequests()
	r.p.RevokeTokens()
	r.p.Roster("course-1").Add(1)
	run := r.syncNow()
	if run.Status != StatusSucceeded || run.Added != 1 {
		t.Fatalf("run %+v", run)
	}
	if n := r.p.TokenRequests() - before; n != 1 {
		t.Fatalf("%d token requests after the revocation, want 1", n)
	}
}

func TestAPageDoesNotOverwriteANewerLaunch(t *testing.T) {
	r := newRig(t, 50)
	r.syncNow()
	ro := r.p.Roster("course-1")
	subject := ro.Member(4).UserID
	// The member launched as an instructor after the platform's page
	// (still saying Learner) was fetched.
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE memberships m SET roles = $3, source = 'launch', launched_at = now() + interval '1 hour'
			FROM lti_identities i WHERE m.tenant_id = $1 AND m.context_ref = $2 AND i.tenant_id = m.tenant_id
			AND i.user_id = m.user_id AND i.subject = $4`, r.tenant, r.course, "{"+lti.RoleInstructor+"}", subject)
		return err
	})
	ro.Remove(4)
	r.p.OfferDifferences = false
	r.p.ExpireDifferences()
	r.syncNow()
	got := r.members()[subject]
	if got.Roles != lti.RoleInstructor || got.Status != "active" {
		t.Fatalf("the launch's membership was overwritten by an older page: %+v", got)
	}
}

func TestAStoppedRunResumesFromItsCursor(t *testing.T) {
	r := newRig(t, 1000)
	r.p.NRPSDelay = 5 * time.Millisecond // pages come one at a time
	ctx, cancel := context.WithCancel(context.Background())
	stopAfter := func(run Run) {
		if run.Pages >= 5 {
			cancel() // the process dies after five pages or so were applied
		}
	}
	_, err := r.s.sync(ctx, r.tenant, r.course, nil, TriggerSchedule, "job:1", time.Time{}, stopAfter)
	if err == nil {
		t.Fatal("a cancelled sync ended without error")
	}
	var stopped Run
	r.inTenant(func(tx *sqlx.Tx) error {
		return tx.Get(&stopped, `SELECT `+runColumns+` FROM roster_syncs WHERE context_ref = $1`, r.course)
	})
	if stopped.Status != StatusRunning || stopped.NextURL == nil || stopped.Pages < 3 {
		t.Fatalf("stopped run %+v", stopped)
	}
	if n := len(r.members()); n != stopped.Pages*50 {
		t.Fatalf("%d members stored for %d pages: a page was not atomic", n, stopped.Pages)
	}
	served := r.p.NRPSPages()
	// Another worker must not take the run while its owner may be alive.
	if _, err := r.s.sync(context.Background(), r.tenant, r.course, nil, TriggerSchedule, "job:2", time.Time{}, nil); err != errJoined {
		t.Fatalf("a second worker ran the course's sync while its owner held it: %v", err)
	}
	// River runs the same job again: it resumes where it stopped.
	run, err := r.s.sync(context.Background(), r.tenant, r.course, nil, TriggerSchedule, "job:1", time.Time{}, nil)
	if err != nil || run.Status != StatusSucceeded || run.Members != 1000 || run.Added != 1000 {
		t.Fatalf("resumed run %+v, %v", run, err)
	}
	if refetched := r.p.NRPSPages() - served; refetched > 20-stopped.Pages+1 {
		t.Fatalf("the resumed run fetched %d pages: it started over", refetched)
	}
}

func TestAnAbandonedRunIsTakenOver(t *testing.T) {
	r := newRig(t, 200)
	ctx, cancel := context.WithCancel(context.Background())
	r.s.nrpsHook = func(page int) {
		if page == 2 {
			cancel()
		}
	}
	_, _ = r.s.sync(ctx, r.tenant, r.course, nil, TriggerSchedule, "job:1", time.Time{}, nil)
	r.s.nrpsHook = nil
	r.s.Now = func() time.Time { return time.Now().Add(leaseTTL + time.Second) }
	run, err := r.s.sync(context.Background(), r.tenant, r.course, nil, TriggerSchedule, "command:x", time.Time{}, nil)
	if err != nil || run.Status != StatusSucceeded || run.Members != 200 {
		t.Fatalf("take-over run %+v, %v", run, err)
	}
}

func TestASecondRequestJoinsTheQueuedRun(t *testing.T) {
	r := newRig(t, 10)
	ctx := context.Background()
	a, joinedA, err := r.s.Request(ctx, nil, r.tenant, r.course, TriggerRequest, "")
	if err != nil || joinedA {
		t.Fatal(err, joinedA)
	}
	b, joinedB, err := r.s.Request(ctx, nil, r.tenant, r.course, TriggerSchedule, ModeFull)
	if err != nil || !joinedB || b.ID != a.ID {
		t.Fatalf("second request: run %s joined %v (%v), first %s", b.ID, joinedB, err, a.ID)
	}
	if a.Mode != ModeDifferences || b.Mode != ModeFull {
		t.Fatalf("modes: first %s, after a full sync was asked of it %s", a.Mode, b.Mode)
	}
	var jobsQueued int
	if err := r.jobsDB.Get(&jobsQueued, `SELECT count(*) FROM river_job WHERE kind = 'roster.sync'`); err != nil {
		t.Fatal(err)
	}
	if jobsQueued != 1 {
		t.Fatalf("%d sync jobs queued for one course", jobsQueued)
	}
}

func TestMetricsCountRunsMembersAndPages(t *testing.T) {
	r := newRig(t, 120)
	reg := prometheus.NewRegistry()
	r.s.m = NewMetrics(reg)
	r.syncNow()
	r.p.Roster("course-1").Remove(0)
	r.p.ExpireDifferences()
	r.syncNow()
	for name, want := range map[string]float64{
		`hub_roster_sync_runs_total{outcome="succeeded"}`:   2,
		`hub_roster_members_synced_total{change="added"}`:   120,
		`hub_roster_members_synced_total{change="removed"}`: 1,
		`hub_roster_pages_fetched_total`:                    3 + 3,
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n := metricValue(t, reg, `hub_roster_platform_request_seconds_count{result="ok"}`); n < 6 {
		t.Errorf("%v platform requests timed", n)
	}
}

// metricValue reads one sample of reg in the text exposition format.
func metricValue(t *testing.T, reg *prometheus.Registry, sample string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return 0
}

// A page whose next link leaves the course endpoint's origin ends the
// run: the bearer token is never sent to another host.
func TestALinkToAnotherOriginIsNotFollowed(t *testing.T) {
	r := newRig(t, 0)
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { leaked.Add(1) }))
	defer elsewhere.Close()
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", nrps.MediaType)
		w.Header().Set("Link", "<"+elsewhere.URL+"/nrps/course-1?page=2>; rel=\"next\"")
		_, _ = w.Write([]byte(`{"id": "x", "context": {"id": "course-1"}, "members": [{"user_id": "u1", "roles": ["Learner"]}]}`))
	}))
	defer platform.Close()
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET nrps_url = $2 WHERE id = $1`, r.course, platform.URL+"/nrps/course-1")
		return err
	})
	run := r.syncNow()
	if run.Status != StatusFailed || *run.ErrorCode != CodeMalformedPage || !strings.Contains(*run.Error, "another origin") {
		t.Fatalf("run %+v", run)
	}
	if leaked.Load() != 0 || run.Pages != 1 {
		t.Fatalf("%d requests to the other origin, %d pages", leaked.Load(), run.Pages)
	}
}

// A platform whose next link comes back to a page already fetched would
// hold the worker for ever: the run fails instead.
func TestNextLinksInACircleEndTheRun(t *testing.T) {
	r := newRig(t, 0)
	var requests atomic.Int32
	var base string
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := requests.Add(1)
		next := base + "/nrps/course-1?page=" + strconv.Itoa(int(n%3)+1) // pages 2, 3, 1, 2, …
		w.Header().Set("Content-Type", nrps.MediaType)
		w.Header().Set("Link", "<"+next+">; rel=\"next\"")
		_, _ = w.Write([]byte(`{"id": "x", "members": [{"user_id": "u` + strconv.Itoa(int(n)) + `"}]}`))
	}))
	defer platform.Close()
	base = platform.URL
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET nrps_url = $2 WHERE id = $1`, r.course, platform.URL+"/nrps/course-1?page=1")
		return err
	})
	run := r.syncNow()
	if run.Status != StatusFailed || *run.ErrorCode != CodeMalformedPage || !strings.Contains(*run.Error, "repeat") {
		t.Fatalf("run %+v", run)
	}
	if n := requests.Load(); n > 4 {
		t.Fatalf("%d requests: the circle was followed", n)
	}
}

// A job River runs again after its run ended (a crash between the run's
// end and the job's) does nothing: no second run.
func TestAJobWhoseRunEndedDoesNothing(t *testing.T) {
	r := newRig(t, 30)
	run := r.syncNow()
	served := r.p.NRPSRequests()
	_, err := r.s.sync(context.Background(), r.tenant, r.course, &run.ID, TriggerRequest, "job:7", time.Time{}, nil)
	if !errors.Is(err, errRunDone) || r.p.NRPSRequests() != served {
		t.Fatalf("err %v, %d more requests", err, r.p.NRPSRequests()-served)
	}
	var runs int
	r.inTenant(func(tx *sqlx.Tx) error { return tx.Get(&runs, `SELECT count(*) FROM roster_syncs`) })
	if runs != 1 {
		t.Fatalf("%d runs", runs)
	}
}

// An operator who stops `hubd roster-sync` lets the run go: the next
// worker takes it over at once rather than after the lease runs out.
func TestAStoppedCommandLetsItsRunGo(t *testing.T) {
	r := newRig(t, 600)
	r.p.NRPSDelay = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	run, err := r.s.SyncNow(ctx, r.tenant, r.course, func(run Run) {
		if run.Pages >= 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || run.Status != StatusRunning {
		t.Fatalf("stopped command: %+v, %v", run, err)
	}
	resumed, err := r.s.sync(context.Background(), r.tenant, r.course, &run.ID, TriggerRequest, "job:9", time.Time{}, nil)
	if err != nil || resumed.Status != StatusSucceeded || resumed.Members != 600 {
		t.Fatalf("the next worker: %+v, %v", resumed, err)
	}
}

// A platform that ignores the page size asked for: a large page is applied
// in chunks; one past MaxPageMembers fails the run instead of a
// transaction that cannot finish.
func TestPagesLargerThanAskedFor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members int
		ok      bool
	}{{"5,000 members", 5000, true}, {"past the cap", MaxPageMembers + 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 0)
			body := bigPage(tc.members)
			platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("Content-Type", nrps.MediaType)
				_, _ = w.Write(body)
			}))
			defer platform.Close()
			r.inTenant(func(tx *sqlx.Tx) error {
				_, err := tx.Exec(`UPDATE contexts SET nrps_url = $2 WHERE id = $1`, r.course, platform.URL+"/nrps/course-1")
				return err
			})
			run := r.syncNow()
			if tc.ok && (run.Status != StatusSucceeded || run.Added != tc.members || len(r.members()) != tc.members) {
				t.Fatalf("run %+v, %d members stored", run, len(r.members()))
			}
			if !tc.ok && (run.Status != StatusFailed || *run.ErrorCode != CodeMalformedPage || len(r.members()) != 0) {
				t.Fatalf("run %+v", run)
			}
		})
	}
}

func bigPage(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"id": "x", "members": [`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"user_id": "u` + strconv.Itoa(i) + `", "name": "Member ` + strconv.Itoa(i) + `", "roles": ["Learner"]}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// pageServer serves one membership container, whatever is asked.
func (r *rig) pageServer(t *testing.T, course uuid.UUID, body string) {
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", nrps.MediaType)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(platform.Close)
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET nrps_url = $2, roster_differences_url = NULL WHERE id = $1`, course, platform.URL+"/nrps")
		return err
	})
}

// A course whose platform shares no names (Moodle can, per course) does
// not erase the names another course's roster brought.
func TestAPageWithoutNamesKeepsThem(t *testing.T) {
	r := newRig(t, 10)
	r.syncNow()
	who := r.p.Roster("course-1").Member(3)
	first := r.course
	r.course = r.addCourse("course-2")
	r.pageServer(t, r.course, `{"id": "x", "members": [{"user_id": "`+who.UserID+`", "roles": ["Learner"]}]}`)
	if run := r.syncNow(); run.Status != StatusSucceeded || run.Added != 1 || run.Changed != 0 {
		t.Fatalf("course-2 run %+v", run)
	}
	r.course = first
	got := r.members()[who.UserID]
	if got.Name != who.Name || got.Email != who.Email {
		t.Fatalf("after a roster without names: %+v, want %s <%s>", got, who.Name, who.Email)
	}
	if run := r.syncNow(); run.Changed != 0 {
		t.Fatalf("course-1 re-synced with %d changes: the two rosters fight", run.Changed)
	}
}

// A member listed as Deleted whom the course never had is not added.
func TestADeletedStrangerIsNotAdded(t *testing.T) {
	r := newRig(t, 0)
	r.pageServer(t, r.course, `{"id": "x", "members": [{"user_id": "ghost", "name": "G", "status": "Deleted"},
		{"user_id": "here", "roles": ["Learner"]}]}`)
	run := r.syncNow()
	ms := r.members()
	if run.Status != StatusSucceeded || run.Added != 1 || len(ms) != 1 || ms["here"].Status != "active" {
		t.Fatalf("run %+v, members %v", run, ms)
	}
}

// A course whose endpoint moved to another host: the differences link the
// last sync saved names the old one, so the next sync is a full one.
func TestADifferencesLinkOnAnOldHostFallsBackToAFullSync(t *testing.T) {
	r := newRig(t, 40)
	r.syncNow()
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET nrps_url = replace(nrps_url, '127.0.0.1', 'localhost') WHERE id = $1`, r.course)
		return err
	})
	if run := r.syncNow(); run.Status != StatusSucceeded || run.Mode != ModeFull || run.Members != 40 {
		t.Fatalf("run %+v", run)
	}
}
