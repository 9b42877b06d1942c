package api_test

import (
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/lti/web"
)

type consentLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (ph *platformHub) consentLink(key, user string, body any) consentLink {
	ph.t.Helper()
	var l consentLink
	ph.expect(ph.do("POST", "/api/v1/tenants/uni/learners/"+user+"/consent-links", key, body), 201).json(ph.t, &l)
	return l
}

// browse gets (no answer) or posts (an answer) a choices page.
func (ph *platformHub) browse(link, answer string) response {
	ph.t.Helper()
	if answer == "" {
		res, err := ph.client.Get(link)
		if err != nil {
			ph.t.Fatal(err)
		}
		return readResponse(res)
	}
	res, err := ph.client.PostForm(link, url.Values{"answer": {answer}})
	if err != nil {
		ph.t.Fatal(err)
	}
	return readResponse(res)
}

func has(t *testing.T, r response, status int, wants ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d\n%s", r.status, status, r.body)
	}
	for _, w := range wants {
		if !strings.Contains(string(r.body), w) {
			t.Fatalf("the page lacks %q:\n%s", w, r.body)
		}
	}
}

// TestTheLearnerChangesTheirChoicesThroughALink: the learning app gets a
// short-lived link over REST; the page it opens describes the agreement,
// says where the learner stands, and records their answers as theirs.
func TestTheLearnerChangesTheirChoicesThroughALink(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1"}))
	user := ph.learnerIDs(key)["learner-1"]

	l := ph.consentLink(key, user, nil)
	if !strings.HasPrefix(l.URL, ph.url+"/consent/") || l.ExpiresAt.After(time.Now().Add(web.ConsentLinkTTL+time.Second)) ||
		l.ExpiresAt.Before(time.Now()) {
		t.Fatalf("link %+v", l)
	}
	page := ph.browse(l.URL, "")
	has(t, page, 200, "Your sharing choices", "has no agreement to share your learning records")
	if strings.Contains(string(page.body), "<form") {
		t.Fatalf("with no agreement there is nothing to answer:\n%s", page.body)
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors *") {
		t.Fatalf("the page cannot be framed by the learning app or LMS: %q", csp)
	}

	ph.activateIn("uni", key, map[string]any{"consent": "opt_in", "categories": []string{"scores"}})
	has(t, ph.browse(l.URL, ""), 200, "your scores", "You have not answered yet", ">Allow<", ">Stop sharing<")
	has(t, ph.browse(l.URL, "allow"), 200, "Your choice is saved.", "You allowed sharing.")
	if lc := ph.consent(key, user); lc.Current == nil || lc.Current.Answer != "granted" || lc.Current.Via != "consent_page" {
		t.Fatalf("after allowing: %+v", lc)
	}
	has(t, ph.browse(l.URL, "stop"), 200, "Your choice is saved.", "You stopped sharing")
	if lc := ph.consent(key, user); lc.Current == nil || lc.Current.Answer != "withdrawn" {
		t.Fatalf("after stopping: %+v", lc)
	}
	has(t, ph.browse(l.URL, "stop"), 200, "You stopped sharing")
	if lc := ph.consent(key, user); lc.Current.Answer != "declined" || len(lc.History) != 3 {
		t.Fatalf("stopping again: %+v", lc)
	}
	var audited auditPage
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/audit?action=consent.changed", key, nil), 200).json(t, &audited)
	if len(audited.Items) != 3 || audited.Items[0].ActorType != "learner" || audited.Items[0].ActorID != user {
		t.Fatalf("audited %+v", audited.Items)
	}

	// Under an agreement that does not ask, the page says so and takes no answer.
	ph.activateIn("uni", key, map[string]any{"consent": "not_required"})
	page = ph.browse(l.URL, "")
	has(t, page, 200, "does not ask for your consent")
	if strings.Contains(string(page.body), "<form") {
		t.Fatalf("an answer offered where none counts:\n%s", page.body)
	}
	has(t, ph.browse(l.URL, "allow"), 400, "Please choose again")
}

func TestAConsentLinkCannotBeForgedOrKept(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	ph.activateIn("uni", key, map[string]any{"consent": "opt_in"})
	ph.succeeded(ph.answerConsent(ph.launch(ltitest.Launch{Subject: "learner-1"}), "deny"))
	user := ph.learnerIDs(key)["learner-1"]
	l := ph.consentLink(key, user, map[string]any{"locale": "en-GB"})

	sealed := []byte(strings.TrimPrefix(l.URL, ph.url+"/consent/"))
	sealed[len(sealed)/2] ^= 1
	expired := web.New(ph.deps.LTI, slog.New(slog.NewTextHandler(io.Discard, nil)))
	expired.Sealer = ph.deps.Sealer
	old, _, err := expired.ConsentLink(ph.tenantID(), "T uni", uuid.MustParse(user), "", time.Now().Add(-web.ConsentLinkTTL-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for name, link := range map[string]string{"altered": ph.url + "/consent/" + string(sealed), "expired": old,
		"not base64": ph.url + "/consent/not-base64!", "empty-ish": ph.url + "/consent/AA"} {
		for _, answer := range []string{"", "allow"} {
			r := ph.browse(link, answer)
			if r.status != 404 || !strings.Contains(string(r.body), "This link has expired") {
				t.Fatalf("%s link, answer %q: %d\n%s", name, answer, r.status, r.body)
			}
		}
	}
	has(t, ph.browse(l.URL, "maybe"), 400, "Please choose again")
	if lc := ph.consent(key, user); lc.Current.Answer != "declined" || len(lc.History) != 1 {
		t.Fatalf("a refused link recorded an answer: %+v", lc)
	}

	// An erased learner's link opens nothing.
	ph.expect(ph.do("DELETE", "/api/v1/tenants/uni/learners/"+user, key, nil), 204)
	has(t, ph.browse(l.URL, ""), 404, "This link has expired")
	has(t, ph.browse(l.URL, "allow"), 404, "This link has expired")
}

func TestConsentLinkRefusals(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	_, reader := ph.createKey("uni", "read")
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1"}))
	user := ph.learnerIDs(key)["learner-1"]
	path := "/api/v1/tenants/uni/learners/" + user + "/consent-links"

	ph.problem(ph.do("POST", path, reader, nil), 403, "forbidden")
	ph.problem(ph.do("POST", "/api/v1/tenants/uni/learners/"+uuid.NewString()+"/consent-links", key, nil), 404, "not-found")
	ph.problem(ph.do("POST", "/api/v1/tenants/uni/learners/nobody/consent-links", key, nil), 404, "not-found")
	ph.problem(ph.do("POST", path, key, map[string]any{"locale": strings.Repeat("x", 36)}), 400, "validation")
	ph.problem(ph.do("POST", path, key, map[string]any{"locale": "en\u0000"}), 400, "validation")
	ph.problem(ph.do("POST", path, key, map[string]any{"locale": "en", "extra": true}), 400, "validation")
}
