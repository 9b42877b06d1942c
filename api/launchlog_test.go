package api_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

// launchEntry is a launch log entry as the API answers it.
type launchEntry struct {
	ID           string  `json:"id"`
	At           string  `json:"at"`
	Outcome      string  `json:"outcome"`
	Reason       string  `json:"reason"`
	RequestID    string  `json:"request_id"`
	Registration *string `json:"registration_id"`
	Deployment   *string `json:"deployment_id"`
	ContextID    *string `json:"context_id"`
	ContextTitle *string `json:"context_title"`
	MessageType  *string `json:"message_type"`
	UserID       *string `json:"user_id"`
}

type launchList struct {
	Items      []launchEntry `json:"items"`
	NextCursor string        `json:"next_cursor"`
}

func (ph *platformHub) launches(token, query string) launchList {
	ph.t.Helper()
	var l launchList
	ph.expect(ph.do("GET", "/api/v1/tenants/"+ph.slug+"/lti/launches"+query, token, nil), 200).json(ph.t, &l)
	return l
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestLaunchLogRecordsLaunchesAndRefusals(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "read")

	ok := ph.launch(ltitest.Launch{Subject: "learner-1"})
	ph.succeeded(ok)
	f, r := ph.authorize(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{Subject: "learner-1"}))
	if f.action == "" {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	ph.succeeded(ph.post(f, nil))
	replay := ph.post(f, nil)
	ph.refusedWith(replay, lti.ReasonNonceReplayed)
	wrong := ph.launch(ltitest.Launch{Subject: "learner-2", Claims: map[string]any{lti.ClaimVersion: "1.2.0"}})
	ph.refusedWith(wrong, lti.ReasonWrongVersion)
	unsigned := ph.launch(ltitest.Launch{CorruptSignature: true})
	ph.refusedWith(unsigned, lti.ReasonBadSignature)
	// A state the hub never issued names no registration: no tenant's log.
	forged := ph.post(form{action: ph.url + "/lti/launch", idToken: "x.y.z", state: "forged"}, nil)
	ph.refusedWith(forged, lti.ReasonInvalidState)

	all := ph.launches(key, "")
	if len(all.Items) != 5 {
		t.Fatalf("%d entries, want 5 (two launches, three refusals): %+v", len(all.Items), all.Items)
	}
	byRequest := map[string]launchEntry{}
	for _, e := range all.Items {
		byRequest[e.RequestID] = e
	}
	launched := byRequest[ok.header.Get("X-Request-Id")]
	if launched.Outcome != lti.OutcomeLaunched || launched.Reason != "" || str(launched.Registration) != ph.reg ||
		str(launched.Deployment) != ph.p.DeploymentID || str(launched.ContextID) != "course-1" ||
		str(launched.ContextTitle) != "Mathematics 101" || str(launched.MessageType) != lti.MessageResourceLink || launched.UserID == nil {
		t.Errorf("launch entry: %+v", launched)
	}
	replayed := byRequest[replay.header.Get("X-Request-Id")]
	if replayed.Outcome != lti.OutcomeRefused || replayed.Reason != string(lti.ReasonNonceReplayed) ||
		str(replayed.UserID) != str(launched.UserID) || str(replayed.ContextID) != "course-1" {
		t.Errorf("replayed launch entry: %+v (the user is known: %s)", replayed, str(launched.UserID))
	}
	version := byRequest[wrong.header.Get("X-Request-Id")]
	if version.Reason != string(lti.ReasonWrongVersion) || version.UserID != nil || str(version.Deployment) != ph.p.DeploymentID {
		t.Errorf("wrong version entry: %+v", version)
	}
	badSig := byRequest[unsigned.header.Get("X-Request-Id")]
	if badSig.Reason != string(lti.ReasonBadSignature) || str(badSig.Registration) != ph.reg ||
		badSig.Deployment != nil || badSig.ContextID != nil || badSig.MessageType != nil {
		t.Errorf("a refusal before the signature was checked names what the token claimed: %+v", badSig)
	}
	for i := 1; i < len(all.Items); i++ {
		if all.Items[i-1].At < all.Items[i].At {
			t.Fatalf("not newest first: %v then %v", all.Items[i-1].At, all.Items[i].At)
		}
	}

	t.Run("the reference looks the refusal up", func(t *testing.T) {
		ph.t = t
		got := ph.launches(key, "?request_id="+replay.header.Get("X-Request-Id"))
		if len(got.Items) != 1 || got.Items[0].Reason != string(lti.ReasonNonceReplayed) {
			t.Fatalf("by request id: %+v", got.Items)
		}
	})
	t.Run("outcome filter", func(t *testing.T) {
		ph.t = t
		if got := ph.launches(key, "?outcome=refused"); len(got.Items) != 3 {
			t.Fatalf("%d refusals, want 3", len(got.Items))
		}
		if got := ph.launches(key, "?outcome=launched"); len(got.Items) != 2 {
			t.Fatalf("%d launches, want 2", len(got.Items))
		}
		ph.problem(ph.do("GET", "/api/v1/tenants/uni/lti/launches?outcome=maybe", key, nil), 400, "validation")
	})
	t.Run("since filter", func(t *testing.T) {
		ph.t = t
		if got := ph.launches(key, "?since="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))); len(got.Items) != 0 {
			t.Fatalf("%d entries since an hour ahead", len(got.Items))
		}
		if got := ph.launches(key, "?since="+url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339))); len(got.Items) != 5 {
			t.Fatalf("%d entries since an hour ago, want 5", len(got.Items))
		}
		ph.problem(ph.do("GET", "/api/v1/tenants/uni/lti/launches?since=yesterday", key, nil), 400, "validation")
	})
	t.Run("pages", func(t *testing.T) {
		ph.t = t
		var seen []string
		query := "?limit=2"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			page := ph.launches(key, query)
			for _, e := range page.Items {
				seen = append(seen, e.ID)
			}
			if page.NextCursor == "" {
				break
			}
			query = "?limit=2&cursor=" + url.QueryEscape(page.NextCursor)
		}
		want := []string{}
		for _, e := range all.Items {
			want = append(want, e.ID)
		}
		if strings.Join(seen, ",") != strings.Join(want, ",") {
			t.Fatalf("pages gave %v, want %v", seen, want)
		}
	})
	t.Run("another tenant sees none of it", func(t *testing.T) {
		ph.t = t
		ph.createTenant("other", "institution")
		_, otherKey := ph.createKey("other", "read")
		ph.problem(ph.do("GET", "/api/v1/tenants/uni/lti/launches", otherKey, nil), 404, "not-found")
		var l launchList
		ph.expect(ph.do("GET", "/api/v1/tenants/other/lti/launches", otherKey, nil), 200).json(t, &l)
		if len(l.Items) != 0 {
			t.Fatalf("the other tenant's log lists %d entries", len(l.Items))
		}
	})
	t.Run("metrics count by tenant and outcome", func(t *testing.T) {
		ph.t = t
		body := string(ph.expect(ph.do("GET", "/metrics", "", nil), 200).body)
		for _, want := range []string{`hub_lti_launches_total{outcome="launched",tenant="uni"} 2`,
			`hub_lti_launches_total{outcome="refused",tenant="uni"} 3`, `hub_lti_refusals_total{reason="invalid_state",stage="launch"} 1`} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

// TestLaunchLogRefusalLimit: a flood of refusals at one tenant writes at
// most the limit each minute; the rest are counted.
func TestLaunchLogRefusalLimit(t *testing.T) {
	d := pgtest.New(t)
	h := serveHubWith(t, d, mustOpen(t, d), func(deps *api.Deps) { deps.LTI.RefusalLogLimit = 3 })
	p := ltitest.New()
	t.Cleanup(p.Close)
	ph := &platformHub{hub: h, p: p, slug: "uni"}
	h.createTenant("uni", "institution")
	ph.reg = ph.register(p)
	for range 5 {
		ph.refusedWith(ph.launch(ltitest.Launch{Claims: map[string]any{lti.ClaimVersion: "1.2.0"}}), lti.ReasonWrongVersion)
	}
	ph.succeeded(ph.launch(ltitest.Launch{}))
	if n := ph.rows("lti_launch_log WHERE outcome = 'refused'"); n != 3 {
		t.Fatalf("%d refusals written, want the limit of 3", n)
	}
	if n := ph.rows("lti_launch_log WHERE outcome = 'launched'"); n != 1 {
		t.Fatalf("launches are not limited: %d written, want 1", n)
	}
	body := string(ph.expect(ph.do("GET", "/metrics", "", nil), 200).body)
	for _, want := range []string{`hub_lti_launch_log_dropped_total{cause="over_limit",tenant="uni"} 2`,
		`hub_lti_launches_total{outcome="refused",tenant="uni"} 5`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestLaunchLogRefusalsPerSource: one source cannot spend a tenant's
// whole refusal budget (anyone can start logins and post junk launches),
// so real refusals stay findable by their reference.
func TestLaunchLogRefusalsPerSource(t *testing.T) {
	ph := newPlatformHub(t)
	for range lti.RefusalLogPerSource + 5 {
		ph.refusedWith(ph.launch(ltitest.Launch{Claims: map[string]any{lti.ClaimVersion: "1.2.0"}}), lti.ReasonWrongVersion)
	}
	if n := ph.rows("lti_launch_log WHERE outcome = 'refused'"); n != lti.RefusalLogPerSource {
		t.Fatalf("%d refusals from one source written, want %d", n, lti.RefusalLogPerSource)
	}
	ph.succeeded(ph.launch(ltitest.Launch{}))
}

// TestLaunchLogPurge: housekeeping removes every tenant's rows past the
// retention, in batches, and nothing newer.
func TestLaunchLogPurge(t *testing.T) {
	ph := newPlatformHub(t)
	ph.succeeded(ph.launch(ltitest.Launch{}))
	ph.refusedWith(ph.launch(ltitest.Launch{Claims: map[string]any{lti.ClaimVersion: "1.2.0"}}), lti.ReasonWrongVersion)
	super := pgtest.Superuser(t, ph.dbt)
	// More old rows than one batch, in two tenants, and one row just
	// inside the retention.
	ph.createTenant("other", "institution")
	_, err := super.Exec(`INSERT INTO lti_launch_log (tenant_id, at, id, outcome, request_id)
		SELECT t.id, now() - interval '31 days' - n * interval '1 second', gen_random_uuid(), 'refused', 'old-' || n
		FROM tenants t, generate_series(1, 3000) n`)
	if err != nil {
		t.Fatal(err)
	}
	super.MustExec(`INSERT INTO lti_launch_log (tenant_id, at, id, outcome, request_id)
		SELECT id, now() - interval '29 days', gen_random_uuid(), 'launched', 'recent' FROM tenants WHERE slug = 'uni'`)
	n, err := ph.deps.LTI.PurgeLaunchLog(context.Background())
	if err != nil || n != 6000 {
		t.Fatalf("purged %d, %v; want 6000", n, err)
	}
	if left := ph.rows("lti_launch_log"); left != 3 {
		t.Fatalf("%d rows left, want the 3 within the retention", left)
	}
	if old := ph.rows("lti_launch_log WHERE request_id LIKE 'old-%'"); old != 0 {
		t.Fatalf("%d old rows left", old)
	}
}

// TestLaunchLogRecordsLoginRefusals: a login refused once its registration
// is known (an unknown deployment, a suspended tenant) is in the tenant's
// log under the reference its page showed.
func TestLaunchLogRecordsLoginRefusals(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "read")
	u := ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{})
	u = strings.Replace(u, "lti_deployment_id="+url.QueryEscape(ph.p.DeploymentID), "lti_deployment_id=not-ours", 1)
	if !strings.Contains(u, "lti_deployment_id=not-ours") {
		t.Fatalf("the login URL names no deployment: %s", u)
	}
	r := ph.get(u)
	ph.refusedWith(r, lti.ReasonUnknownDeployment)
	found := ph.launches(key, "?request_id="+r.header.Get("X-Request-Id"))
	if len(found.Items) != 1 || found.Items[0].Outcome != lti.OutcomeRefused || found.Items[0].Reason != string(lti.ReasonUnknownDeployment) {
		t.Fatalf("the login refusal's reference finds %+v", found.Items)
	}
}
