package api_test

import (
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/klasterina/hub/lti/ltitest"
)

var (
	pageLink    = regexp.MustCompile(`href="([^"]+)"`)
	windowForm  = regexp.MustCompile(`(?s)<form method="post" action="([^"]+)" target="_blank">.*?name="ticket" value="([^"]+)"`)
	framedLogin = http.Header{"Sec-Fetch-Dest": {"iframe"}, "Sec-Fetch-Site": {"cross-site"}}
)

// getWith is a GET with request headers, as a browser sends them.
func (ph *platformHub) getWith(u string, h http.Header) response {
	ph.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := ph.client.Do(req)
	if err != nil {
		ph.t.Fatal(err)
	}
	return readResponse(res)
}

// firstParty is ph's browser in a window of its own: cookies work there,
// and it follows redirects.
func (ph *platformHub) firstParty() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := *ph.client
	c.Jar, c.CheckRedirect = jar, nil
	return &c
}

// TestNewWindowNeverReplaysASpentHint: when a launch arrives without the
// login's cookie and no platform storage, whatever the page offers must
// not send the platform a login hint it already spent.
func TestNewWindowNeverReplaysASpentHint(t *testing.T) {
	ph := newPlatformHub(t)
	ph.client.Jar = nil // a browser blocking third-party cookies, which sent no Sec-Fetch-Dest
	f, _ := ph.authorize(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{}))
	page := ph.post(f, nil)
	if page.status != http.StatusUnauthorized {
		t.Fatalf("status %d, want the page for a lost binding:\n%s", page.status, page.body)
	}
	window := ph.firstParty()
	for _, m := range pageLink.FindAllStringSubmatch(string(page.body), -1) {
		res, err := window.Get(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if n := ph.p.HintReplays(); n != 0 {
		t.Fatalf("the page sent the platform a spent hint %d times", n)
	}
}

// TestFramedLoginWithoutCookies: a login inside the LMS's frame, in a
// browser that blocks third-party cookies, without platform storage. The
// hub finds out before the browser goes to the platform that the cookie
// did not stick, and opens the platform's authentication request in a new
// window (through the hub, where the cookie is first-party); the launch
// succeeds there, and each hint reaches the platform once.
func TestFramedLoginWithoutCookies(t *testing.T) {
	ph := newPlatformHub(t)
	ph.client.Jar = nil // the frame: third-party cookies blocked
	platformOrigin := ph.p.Server.URL

	page := ph.getWith(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{}), framedLogin)
	if page.status != http.StatusOK {
		t.Fatalf("a framed login answered %d, want a page that checks the cookie first:\n%s", page.status, page.body)
	}
	events := runPageWith(t, page.body, platformOrigin, "", map[string]any{"probe": 404})
	probe, _ := events[0]["fetched"].(string)
	if !strings.HasPrefix(probe, ph.url+"/lti/") {
		t.Fatalf("the page did %v, want it to ask the hub whether its cookie arrived", events)
	}
	if end := events[len(events)-1]; len(events) != 2 || end["shown"] == nil || !strings.Contains(strings.Join(asStrings(end["shown"]), " "), "window") {
		t.Fatalf("without the cookie the page did %v, want it to offer the new window and nothing else", events)
	}
	// The same page in a browser whose cookie stuck goes on to the platform.
	events = runPageWith(t, page.body, platformOrigin, "", map[string]any{"probe": 204})
	if next, _ := events[1]["navigated"].(string); !strings.HasPrefix(next, ph.p.AuthURL()+"?") {
		t.Fatalf("with the cookie the page did %v, want the platform's authentication request", events)
	}

	// The learner opens the new window.
	m := windowForm.FindStringSubmatch(string(page.body))
	if m == nil {
		t.Fatalf("no new-window form on the page:\n%s", page.body)
	}
	window := ph.firstParty()
	res, err := window.PostForm(html.UnescapeString(m[1]), url.Values{"ticket": {html.UnescapeString(m[2])}})
	if err != nil {
		t.Fatal(err)
	}
	r := readResponse(res)
	if r.status != 200 || !strings.HasPrefix(res.Request.URL.String(), ph.p.AuthURL()+"?") {
		t.Fatalf("the new window ended at %s with %d:\n%s", res.Request.URL, r.status, r.body)
	}
	f := form{action: html.UnescapeString(formAction.FindStringSubmatch(string(r.body))[1])}
	for _, fm := range formField.FindAllStringSubmatch(string(r.body), -1) {
		if fm[1] == "id_token" {
			f.idToken = html.UnescapeString(fm[2])
		} else {
			f.state = html.UnescapeString(fm[2])
		}
	}
	ph.client = window
	ph.succeeded(ph.post(f, nil))
	if n := ph.p.HintReplays(); n != 0 {
		t.Fatalf("the platform saw a spent hint %d times", n)
	}
}

func asStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// TestLargeHintsKeepTheRedirectShort: the platform echoes its hints, so
// the state carries no copy; a 4,000-character lti_message_hint (Canvas's
// are signed JWTs) makes a redirect under the hint plus 2 KB, within
// common 8 KB request-line limits, and the launch succeeds.
func TestLargeHintsKeepTheRedirectShort(t *testing.T) {
	ph := newPlatformHub(t)
	const hint = 4000
	r := ph.get(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{HintLength: hint}))
	loc := r.header.Get("Location")
	if r.status != http.StatusFound || len(loc) >= hint+2048 {
		t.Fatalf("a %d-character hint made a %d status with a %d-byte redirect, want under %d", hint, r.status, len(loc), hint+2048)
	}
	f, _ := ph.authorizeAt(loc)
	ph.succeeded(ph.post(f, nil))
}
