package api_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/klasterina/hub/lti"
)

// pickerHub is a platform hub whose platform verifies deep linking
// responses, with two activities in the catalog.
func pickerHub(t *testing.T) *platformHub {
	ph := newPlatformHub(t)
	ph.p.ToolJWKSURL, ph.p.ToolClient = ph.url+"/.well-known/jwks.json", ph.client
	ph.expect(ph.do("POST", "/api/v1/activities", adminToken, map[string]any{"id": "quiz-1", "title": "Quiz 1", "gradable": true, "max_score": 10}), 201)
	ph.expect(ph.do("POST", "/api/v1/activities", adminToken, map[string]any{"id": "reading-1", "title": "Reading 1"}), 201)
	return ph
}

// otherBrowser is a browser that never saw the picker: it trusts the test
// certificate and keeps cookies of its own.
func (ph *platformHub) otherBrowser() *http.Client {
	c := *ph.client
	c.Jar, _ = cookiejar.New(nil)
	return &c
}

// restoreCookies puts the cookies a response set back into the browser.
func (ph *platformHub) restoreCookies(r response) {
	ph.t.Helper()
	u, _ := url.Parse(ph.url + "/lti/")
	var cookies []*http.Cookie
	for _, raw := range r.header.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(raw); err == nil {
			cookies = append(cookies, c)
		}
	}
	ph.client.Jar.SetCookies(u, cookies)
}

var staffOnly = []string{lti.RoleInstructor}

// TestPickerSessionIsBoundToTheBrowserAndUsedOnce: the picker's session is
// no bearer token. Only the browser that was shown the picker may submit
// it, and only once; a replay answers the platform nothing.
func TestPickerSessionIsBoundToTheBrowserAndUsedOnce(t *testing.T) {
	ph := pickerHub(t)

	t.Run("the picker sets a cookie that binds its session", func(t *testing.T) {
		ph.t = t
		picker := ph.openPicker(nil, staffOnly)
		var bound bool
		for _, raw := range picker.header.Values("Set-Cookie") {
			c, err := http.ParseSetCookie(raw)
			if err == nil && strings.HasPrefix(c.Name, "hub_dl_") {
				bound = c.HttpOnly && c.Secure && c.SameSite == http.SameSiteNoneMode && c.Path == "/lti" && c.Partitioned
			}
		}
		if !bound {
			t.Fatalf("picker cookies %q, want an HttpOnly, Secure, SameSite=None, Partitioned cookie on /lti", picker.header.Values("Set-Cookie"))
		}
	})

	t.Run("another browser cannot submit the session", func(t *testing.T) {
		ph.t = t
		before := len(ph.p.DeepLinks)
		session := pickerSessionOf(ph.openPicker(nil, staffOnly))
		ph.refusedWith(ph.submitPicker(ph.otherBrowser(), url.Values{"session": {session}, "activity": {"quiz-1"}}), lti.ReasonDeepLinkingNotBound)
		if len(ph.p.DeepLinks) != before {
			t.Fatal("a session submitted from another browser reached the platform")
		}
		// The browser that was shown the picker still may.
		ph.submitPicker(ph.client, url.Values{"session": {session}, "activity": {"quiz-1"}})
		if len(ph.p.DeepLinks) != before+1 {
			t.Fatal("the picker's own browser could not submit")
		}
	})

	t.Run("a submitted session cannot be submitted again", func(t *testing.T) {
		ph.t = t
		before := len(ph.p.DeepLinks)
		picker := ph.openPicker(nil, staffOnly)
		session := pickerSessionOf(picker)
		ph.submitPicker(ph.client, url.Values{"session": {session}, "activity": {"quiz-1"}})
		// Even with the cookie put back, as a replaying attacker would.
		ph.restoreCookies(picker)
		ph.refusedWith(ph.submitPicker(ph.client, url.Values{"session": {session}, "activity": {"reading-1"}}), lti.ReasonDeepLinkingUsed)
		if len(ph.p.DeepLinks) != before+1 {
			t.Fatalf("%d responses reached the platform, want 1", len(ph.p.DeepLinks)-before)
		}
	})

	t.Run("a cancelled session cannot be submitted either", func(t *testing.T) {
		ph.t = t
		picker := ph.openPicker(nil, staffOnly)
		session := pickerSessionOf(picker)
		ph.submitPicker(ph.client, url.Values{"session": {session}, "cancel": {"1"}})
		ph.restoreCookies(picker)
		ph.refusedWith(ph.submitPicker(ph.client, url.Values{"session": {session}, "activity": {"quiz-1"}}), lti.ReasonDeepLinkingUsed)
	})
}

// TestPickerCancelAndEmptyAdd: Cancel answers the platform with no items,
// whatever was ticked; Add with nothing ticked says so and sends nothing,
// and the picker can still be used.
func TestPickerCancelAndEmptyAdd(t *testing.T) {
	ph := pickerHub(t)

	t.Run("cancel", func(t *testing.T) {
		ph.t = t
		before := len(ph.p.DeepLinks)
		picker := ph.openPicker(nil, staffOnly)
		if !strings.Contains(string(picker.body), `name="cancel"`) {
			t.Fatalf("the picker has no Cancel:\n%s", picker.body)
		}
		ph.submitPicker(ph.client, url.Values{"session": {pickerSessionOf(picker)}, "activity": {"quiz-1"}, "cancel": {"1"}})
		if len(ph.p.DeepLinks) != before+1 || len(ph.p.DeepLinks[before].Items) != 0 {
			t.Fatal("Cancel did not answer the platform with an empty response")
		}
	})

	t.Run("add with nothing selected", func(t *testing.T) {
		ph.t = t
		before := len(ph.p.DeepLinks)
		session := pickerSessionOf(ph.openPicker(nil, staffOnly))
		r := ph.submitPicker(ph.client, url.Values{"session": {session}})
		if r.status != http.StatusOK || !strings.Contains(string(r.body), "Choose an activity to add") || pickerSessionOf(r) == "" {
			t.Fatalf("an empty Add answered %d:\n%s", r.status, r.body)
		}
		if len(ph.p.DeepLinks) != before {
			t.Fatal("an empty Add reached the platform")
		}
		ph.submitPicker(ph.client, url.Values{"session": {pickerSessionOf(r)}, "activity": {"reading-1"}})
		if len(ph.p.DeepLinks) != before+1 || len(ph.p.DeepLinks[before].Items) != 1 {
			t.Fatal("the picker could not be used after an empty Add")
		}
	})
}

// TestPickerHonoursSuspension: a suspended tenant's staff are neither shown
// the picker nor can submit one they were shown before the suspension.
func TestPickerHonoursSuspension(t *testing.T) {
	ph := pickerHub(t)
	ph.deps.LTI.CacheTTL = 0
	before := len(ph.p.DeepLinks)
	session := pickerSessionOf(ph.openPicker(nil, staffOnly))
	ph.expect(ph.do("POST", "/api/v1/tenants/uni/suspend", adminToken, nil), 200)

	ph.refusedWith(ph.submitPicker(ph.client, url.Values{"session": {session}, "activity": {"quiz-1"}}), lti.ReasonTenantSuspended)
	ph.refusedWith(ph.submitPicker(ph.client, url.Values{"session": {session}, "cancel": {"1"}}), lti.ReasonTenantSuspended)
	ph.refusedWith(ph.openPicker(nil, staffOnly), lti.ReasonTenantSuspended)
	if len(ph.p.DeepLinks) != before {
		t.Fatal("a suspended tenant's picker answered the platform")
	}
}
