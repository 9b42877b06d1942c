package api_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

// proxiedPlatformHub is a platform hub whose database connections pass
// through a proxy the test can cut.
func proxiedPlatformHub(t *testing.T) (*platformHub, *proxy) {
	d := pgtest.New(t)
	u, _ := url.Parse(d.URL)
	px := startProxy(t, u.Host)
	u.Host = px.addr
	h := newHubOn(t, d, u.String())
	p := ltitest.New()
	t.Cleanup(p.Close)
	ph := &platformHub{hub: h, p: p, slug: "uni"}
	h.createTenant("uni", "institution")
	ph.reg = ph.register(p)
	return ph, px
}

// unavailable checks the page of the hub's own failure: 503 with
// Retry-After, the temporarily_unavailable reason, a request to try again,
// and no word blaming the LMS.
func (ph *platformHub) unavailable(r response) {
	ph.t.Helper()
	ph.refusedWith(r, lti.ReasonUnavailable)
	body := string(r.body)
	if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(body, "try again") ||
		strings.Contains(body, "LMS sent") || strings.Contains(body, "cannot accept") {
		ph.t.Fatalf("status %d, Retry-After %q, want the hub's own unavailability:\n%s", r.status, r.header.Get("Retry-After"), body)
	}
}

// TestHubFailuresAreNotBlamedOnTheLMS: when the hub's database is gone,
// every page a browser reaches says the hub is temporarily unavailable
// (503), never that the LMS sent something wrong.
func TestHubFailuresAreNotBlamedOnTheLMS(t *testing.T) {
	ph, px := proxiedPlatformHub(t)
	ph.expect(ph.do("POST", "/api/v1/activities", adminToken, map[string]any{"id": "quiz-1", "title": "Quiz 1"}), 201)
	link := ph.expect(ph.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
	picker := ph.openPicker(nil, staffOnly)
	session := pickerSessionOf(picker)
	launchForm, _ := ph.authorize(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{}))
	if session == "" || launchForm.action == "" {
		t.Fatalf("no picker or launch form before the cut:\n%s", picker.body)
	}
	px.stop()

	t.Run("landing", func(t *testing.T) {
		ph.t = t
		ph.unavailable(ph.post(launchForm, nil))
	})
	t.Run("picker submitted", func(t *testing.T) {
		ph.t = t
		ph.unavailable(ph.submitPicker(ph.client, url.Values{"session": {session}, "activity": {"quiz-1"}}))
	})
	t.Run("picker cancelled", func(t *testing.T) {
		ph.t = t
		ph.unavailable(ph.submitPicker(ph.client, url.Values{"session": {session}, "cancel": {"1"}}))
	})
	t.Run("dynamic registration", func(t *testing.T) {
		ph.t = t
		ph.unavailable(ph.get(link + "?" + url.Values{"openid_configuration": {ph.p.OpenIDConfigurationURL()}}.Encode()))
	})
}

// TestPagesSpeakToWhoSeesThem: a learner who reaches a staff-only page is
// told it is for instructors; the landing page names roles in words.
func TestPagesSpeakToWhoSeesThem(t *testing.T) {
	ph := newPlatformHub(t)

	t.Run("a learner on the staff-only picker", func(t *testing.T) {
		ph.t = t
		r := ph.openPicker(nil, []string{lti.RoleLearner})
		ph.refusedWith(r, lti.ReasonDeepLinkingNotAllowed)
		body := string(r.body)
		if r.status != 403 || !strings.Contains(body, "for instructors") || strings.Contains(body, "LMS sent") {
			t.Fatalf("status %d, want a page telling the learner it is for instructors:\n%s", r.status, body)
		}
	})

	t.Run("roles in words", func(t *testing.T) {
		ph.t = t
		r := ph.launch(ltitest.Launch{Roles: []string{lti.RoleInstructor, "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
			"Learner", "urn:example:role:Wizard"}})
		ph.succeeded(r)
		body := string(r.body)
		for _, want := range []string{"Instructor", "Teaching assistant", "Learner", "Wizard"} {
			if !strings.Contains(body, want) {
				t.Errorf("the landing page lacks the role %q", want)
			}
		}
		if strings.Contains(body, "purl.imsglobal.org") || strings.Contains(body, "urn:example") {
			t.Fatalf("the landing page shows role URIs:\n%s", body)
		}
	})
}

// TestBrowserAddressesOpenedDirectly: the launch and picker addresses, and
// the hub's root, opened in a browser's address bar answer a short page
// saying what the address is for, not a JSON problem.
func TestBrowserAddressesOpenedDirectly(t *testing.T) {
	h := newHub(t)
	for path, want := range map[string]string{
		"/lti/launch":    "where your LMS sends launches",
		"/lti/deep-link": "activity picker sends the activities",
		"/":              "LTI 1.3",
	} {
		t.Run(path, func(t *testing.T) {
			h.t = t
			r := h.do("GET", path, "", nil)
			if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), want) {
				t.Fatalf("GET %s: %d %s\n%s", path, r.status, r.header.Get("Content-Type"), r.body)
			}
			if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Fatalf("GET %s: CSP %q", path, csp)
			}
		})
	}
}
