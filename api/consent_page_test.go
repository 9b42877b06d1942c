package api_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti/ltitest"
)

var continueField = regexp.MustCompile(`name="continue" value="([^"]+)"`)

// answerConsent posts the consent page's form with answer.
func (ph *platformHub) answerConsent(page response, answer string) response {
	ph.t.Helper()
	m := continueField.FindSubmatch(page.body)
	if m == nil {
		ph.t.Fatalf("not a consent page: %d\n%s", page.status, page.body)
	}
	res, err := ph.client.PostForm(ph.url+"/lti/consent", url.Values{"continue": {string(m[1])}, "answer": {answer}})
	if err != nil {
		ph.t.Fatal(err)
	}
	return readResponse(res)
}

func TestAnOptInAgreementAsksBeforeTheHandoff(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	ph.activateIn("uni", key, map[string]any{"consent": "opt_in", "categories": []string{"completion", "scores"},
		"fields": []string{"email"}, "purposes": []map[string]any{{"code": "gradebook", "description": "Your grades reach your teachers"}}})

	page := ph.launch(ltitest.Launch{Subject: "learner-1"})
	body := string(page.body)
	for _, want := range []string{"Sharing your progress", "your scores", "whether you completed activities", "with your email address",
		"your institution&#39;s gradebook", "Your grades reach your teachers", "kept for 365 days", "Declining only stops sharing",
		">Allow<", ">Don&#39;t allow<"} {
		if !strings.Contains(body, want) {
			t.Fatalf("the consent page lacks %q:\n%s", want, body)
		}
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors *") {
		t.Fatalf("the page cannot be framed by the LMS: %q", csp)
	}
	ph.succeeded(ph.answerConsent(page, "allow"))

	// Answered: the next launch goes straight in.
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1"}))
	users := ph.learnerIDs(key)
	lc := ph.consent(key, users["learner-1"])
	if lc.Current == nil || lc.Current.Answer != "granted" || lc.Current.Via != "consent_page" || lc.MustAsk {
		t.Fatalf("after allowing: %+v", lc)
	}
	var audited auditPage
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/audit?action=consent.changed", key, nil), 200).json(t, &audited)
	if len(audited.Items) != 1 || audited.Items[0].ActorType != "learner" || audited.Items[0].ActorID != users["learner-1"] {
		t.Fatalf("audited %+v", audited.Items)
	}

	// Declining continues into the course too, and is recorded.
	ph.succeeded(ph.answerConsent(ph.launch(ltitest.Launch{Subject: "learner-2"}), "deny"))
	if lc := ph.consent(key, ph.learnerIDs(key)["learner-2"]); lc.Current == nil || lc.Current.Answer != "declined" || lc.MustAsk {
		t.Fatalf("after declining: %+v", lc)
	}
}

func TestTheConsentPageRefusesAForgedContinuation(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	ph.activateIn("uni", key, map[string]any{"consent": "opt_in"})
	page := ph.launch(ltitest.Launch{Subject: "learner-1"})
	m := continueField.FindSubmatch(page.body)
	if m == nil {
		t.Fatalf("no consent page:\n%s", page.body)
	}
	forged := []byte(string(m[1]))
	forged[len(forged)/2] ^= 1
	for _, cont := range []string{string(forged), "", "not-base64!"} {
		res, err := ph.client.PostForm(ph.url+"/lti/consent", url.Values{"continue": {cont}, "answer": {"allow"}})
		if err != nil {
			t.Fatal(err)
		}
		r := readResponse(res)
		if r.status != 400 || !strings.Contains(string(r.body), "start again") {
			t.Fatalf("continuation %q: %d\n%s", cont, r.status, r.body)
		}
	}
	if lc := ph.consent(key, ph.learnerIDs(key)["learner-1"]); lc.Current != nil {
		t.Fatalf("a forged answer was recorded: %+v", lc)
	}
}

// No agreement, or one that does not ask for consent, shows no page.
func TestNoConsentPageWhereConsentIsNotAsked(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1"}))
	ph.activateIn("uni", key, map[string]any{"consent": "not_required"})
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1"}))
}

// An opt-out agreement is shown once per version as a notice, with a way
// to object; continuing records no answer, objecting declines, and a
// version that shares more is shown again.
func TestAnOptOutAgreementIsNoticedOnce(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	ph.activateIn("uni", key, map[string]any{"consent": "opt_out", "categories": []string{"completion"}})

	notice := ph.launch(ltitest.Launch{Subject: "learner-1"})
	for _, want := range []string{"How your progress is shared", "unless you object", "whether you completed activities",
		"You can object now or at any time", ">Continue<", ">Object to sharing<"} {
		if !strings.Contains(string(notice.body), want) {
			t.Fatalf("the notice lacks %q:\n%s", want, notice.body)
		}
	}
	ph.succeeded(ph.answerConsent(notice, "continue"))
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1"}))
	one := ph.learnerIDs(key)["learner-1"]
	if lc := ph.consent(key, one); lc.Current != nil || lc.MustNotify || lc.MustAsk {
		t.Fatalf("after reading the notice: %+v", lc)
	}
	if e := ph.export(key, one); len(e.ConsentNotices) != 1 || e.ConsentNotices[0].AgreementVersion != 1 {
		t.Fatalf("the notice is not in the export: %+v", e.ConsentNotices)
	}
	if d := ph.disclose(one); d.Outcome == "withhold" {
		t.Fatalf("under opt-out, a learner who did not object: %+v", d)
	}

	ph.succeeded(ph.answerConsent(ph.launch(ltitest.Launch{Subject: "learner-2"}), "object"))
	two := ph.learnerIDs(key)["learner-2"]
	if lc := ph.consent(key, two); lc.Current == nil || lc.Current.Answer != "declined" || lc.Current.Via != "consent_page" || lc.MustNotify {
		t.Fatalf("after objecting: %+v", lc)
	}
	if d := ph.disclose(two); d.Outcome != "withhold" || d.Reason != "consent_declined" {
		t.Fatalf("under opt-out, a learner who objected: %+v", d)
	}
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-2"}))

	// A version that shares scores too is noticed again; one who objected
	// is not told again (their objection stands).
	ph.activateIn("uni", key, map[string]any{"consent": "opt_out", "categories": []string{"completion", "scores"}})
	ph.succeeded(ph.answerConsent(ph.launch(ltitest.Launch{Subject: "learner-1"}), "continue"))
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-2"}))
}

func (ph *platformHub) activateIn(slug, key string, overrides map[string]any) {
	ph.t.Helper()
	var a agreement
	ph.expect(ph.do("POST", "/api/v1/tenants/"+slug+"/agreements", key, terms(overrides)), 201).json(ph.t, &a)
	ph.expect(ph.do("POST", "/api/v1/tenants/"+slug+"/agreements/"+a.ID+"/activate", key, signatures), 200)
}

// learnerIDs maps the platform subjects of launches to hub users, read
// as the superuser.
func (ph *platformHub) learnerIDs(string) map[string]string {
	ph.t.Helper()
	var rows []struct {
		Subject string `db:"subject"`
		UserID  string `db:"user_id"`
	}
	if err := pgtest.Superuser(ph.t, ph.dbt).Select(&rows, `SELECT subject, user_id::text FROM lti_identities`); err != nil {
		ph.t.Fatal(err)
	}
	ids := map[string]string{}
	for _, r := range rows {
		ids[r.Subject] = r.UserID
	}
	return ids
}

// A launch whose locale has a translation gets its consent page in that
// language; the choices link too.
func TestConsentPagesSpeakTheLaunchLanguage(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	ph.activateIn("uni", key, map[string]any{"consent": "opt_in", "categories": []string{"scores"}})

	page := ph.launch(ltitest.Launch{Subject: "learner-1", Claims: map[string]any{"locale": "fr-CA"}})
	for _, want := range []string{`<html lang="fr">`, "Partage de votre progression", "vos notes", ">Autoriser<", ">Ne pas autoriser<"} {
		if !strings.Contains(string(page.body), want) {
			t.Fatalf("the French page lacks %q:\n%s", want, page.body)
		}
	}
	ph.succeeded(ph.answerConsent(page, "allow"))
	user := ph.learnerIDs(key)["learner-1"]
	has(t, ph.browse(ph.consentLink(key, user, map[string]any{"locale": "fr"}).URL, ""), 200, "Vos choix de partage",
		"Vous avez autorisé le partage.")
	// A language with no translation is English.
	has(t, ph.browse(ph.consentLink(key, user, map[string]any{"locale": "de-DE"}).URL, ""), 200, `<html lang="en">`,
		"Your sharing choices")
}
