package api_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

var inlineScript = regexp.MustCompile(`(?s)<script nonce="[^"]+">(.*?)</script>`)

// runPage runs a page's inline script in node against a fake LMS frame
// that answers the LTI postMessage protocol, returning what it did.
func runPage(t *testing.T, page []byte, platformOrigin, stored string) []map[string]any {
	t.Helper()
	return runPageWith(t, page, platformOrigin, stored, nil)
}

// runPageWith is runPage with the harness's options (see
// testdata/platform-storage-harness.js).
func runPageWith(t *testing.T, page []byte, platformOrigin, stored string, options map[string]any) []map[string]any {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed to run the platform-storage pages' scripts")
	}
	m := inlineScript.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no inline script in:\n%s", page)
	}
	file := filepath.Join(t.TempDir(), "page.js")
	if err := os.WriteFile(file, m[1], 0o600); err != nil {
		t.Fatal(err)
	}
	opts, _ := json.Marshal(options)
	out, err := exec.Command(node, "testdata/platform-storage-harness.js", file, platformOrigin, stored, string(opts)).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var events []map[string]any
	if err := json.Unmarshal(out, &events); err != nil {
		t.Fatalf("harness output %s: %v", out, err)
	}
	return events
}

// TestPlatformStoragePagesSpeakTheProtocol runs the pages of a cookie-less
// launch as a browser would, with an LMS frame that offers platform
// storage: the login page stores the state's secret and then continues to
// the platform, the launch page fetches it back and posts it with the
// launch, and the launch succeeds.
func TestPlatformStoragePagesSpeakTheProtocol(t *testing.T) {
	ph := newPlatformHub(t)
	jar := ph.client.Jar
	ph.client.Jar = nil // the browser blocks third-party cookies
	defer func() { ph.client.Jar = jar }()
	platformOrigin := ph.p.Server.URL

	login := ph.get(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{}) + "&lti_storage_target=_parent")
	events := runPage(t, login.body, platformOrigin, "")
	if len(events) < 2 {
		t.Fatalf("login page did: %v", events)
	}
	put, _ := events[0]["sent"].(map[string]any)
	if put["subject"] != "lti.put_data" || events[0]["targetOrigin"] != platformOrigin || put["key"] == "" || put["value"] == "" {
		t.Fatalf("login page sent %v", events[0])
	}
	next, _ := events[1]["navigated"].(string)
	if !strings.HasPrefix(next, ph.p.AuthURL()+"?") {
		t.Fatalf("after storing, the page went to %q", next)
	}

	f, _ := ph.authorizeAt(next)
	fetch := ph.post(f, nil)
	events = runPage(t, fetch.body, platformOrigin, put["value"].(string))
	get, _ := events[0]["sent"].(map[string]any)
	if get["subject"] != "lti.get_data" || get["key"] != put["key"] || events[0]["targetOrigin"] != platformOrigin {
		t.Fatalf("launch page sent %v", events[0])
	}
	if events[1]["submitted"] != put["value"] {
		t.Fatalf("launch page posted %v, want the stored secret", events[1])
	}
	if policy := fetch.header.Get("Referrer-Policy"); policy != "same-origin" {
		t.Fatalf("the launch page's Referrer-Policy is %q: its post would carry no Origin the hub can check", policy)
	}
	ph.succeeded(ph.postFrom(f, ph.url, url.Values{"lti_storage_secret": {put["value"].(string)}}))

	// A platform storage that has nothing makes the page offer a new window.
	events = runPage(t, fetch.body, platformOrigin, "")
	if last := events[len(events)-1]; last["slowShown"] != true {
		t.Fatalf("with nothing stored the page did %v", events)
	}
}

// TestPlatformStorageInATabTheLMSOpened: an LMS that opens the tool in a
// new tab offers platform storage through window.opener, there being no
// parent frame. Both pages find it and continue at once, not after their
// timeout.
func TestPlatformStorageInATabTheLMSOpened(t *testing.T) {
	ph := newPlatformHub(t)
	ph.client.Jar = nil
	platformOrigin := ph.p.Server.URL
	tab := map[string]any{"tab": true, "wait": 4000}
	const prompt = 100 // ms

	login := ph.get(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{}) + "&lti_storage_target=_parent")
	events := runPageWith(t, login.body, platformOrigin, "", tab)
	put, _ := events[0]["sent"].(map[string]any)
	if put["subject"] != "lti.put_data" || events[0]["targetOrigin"] != platformOrigin {
		t.Fatalf("login page in a tab did %v, want lti.put_data to its opener", events)
	}
	last := events[len(events)-2]
	next, _ := last["navigated"].(string)
	if !strings.HasPrefix(next, ph.p.AuthURL()+"?") || last["at"].(float64) >= prompt {
		t.Fatalf("login page in a tab went to %q after %v ms, want the platform within %d ms", next, last["at"], prompt)
	}

	f, _ := ph.authorizeAt(next)
	events = runPageWith(t, ph.post(f, nil).body, platformOrigin, put["value"].(string), tab)
	get, _ := events[0]["sent"].(map[string]any)
	if get["subject"] != "lti.get_data" || get["key"] != put["key"] {
		t.Fatalf("launch page in a tab did %v, want lti.get_data to its opener", events)
	}
	last = events[len(events)-2]
	if last["submitted"] != put["value"] || last["at"].(float64) >= prompt {
		t.Fatalf("launch page in a tab posted %v after %v ms, want the stored secret within %d ms", last["submitted"], last["at"], prompt)
	}
	ph.succeeded(ph.postFrom(f, ph.url, url.Values{"lti_storage_secret": {put["value"].(string)}}))
}

// authorizeAt follows the platform's authorization URL to its form post.
func (ph *platformHub) authorizeAt(authURL string) (form, response) {
	ph.t.Helper()
	res, err := ph.client.Get(authURL)
	if err != nil {
		ph.t.Fatal(err)
	}
	r := readResponse(res)
	if r.status != 200 {
		ph.t.Fatalf("platform refused the authentication request: %d %s", r.status, r.body)
	}
	f := form{action: html.UnescapeString(formAction.FindStringSubmatch(string(r.body))[1])}
	for _, m := range formField.FindAllStringSubmatch(string(r.body), -1) {
		if m[1] == "id_token" {
			f.idToken = html.UnescapeString(m[2])
		} else {
			f.state = html.UnescapeString(m[2])
		}
	}
	return f, r
}

// postFrom posts the launch form as a page of origin would ("" sends no
// Origin header).
func (ph *platformHub) postFrom(f form, origin string, extra url.Values) response {
	ph.t.Helper()
	v := url.Values{"id_token": {f.idToken}, "state": {f.state}}
	for k, vs := range extra {
		v[k] = vs
	}
	req, err := http.NewRequest(http.MethodPost, f.action, strings.NewReader(v.Encode()))
	if err != nil {
		ph.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := ph.client.Do(req)
	if err != nil {
		ph.t.Fatal(err)
	}
	return readResponse(res)
}

var scriptNext = regexp.MustCompile(`var next = ("(?:[^"\\]|\\.)*")`)

// cookielessLogin runs a login in a browser that keeps no cookies, with or
// without platform storage, and returns the platform's form post and the
// browser secret the login issued (what its cookie or platform storage
// would hold).
func (ph *platformHub) cookielessLogin(storage bool) (form, string) {
	ph.t.Helper()
	jar := ph.client.Jar
	ph.client.Jar = nil
	defer func() { ph.client.Jar = jar }()
	u := ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{})
	if storage {
		u += "&lti_storage_target=_parent"
	}
	r := ph.get(u)
	cookies, err := http.ParseSetCookie(r.header.Get("Set-Cookie"))
	if err != nil {
		ph.t.Fatalf("login cookie: %v", err)
	}
	next := r.header.Get("Location")
	if storage {
		m := scriptNext.FindSubmatch(r.body)
		if m == nil || json.Unmarshal(m[1], &next) != nil {
			ph.t.Fatalf("no next URL in the storage page:\n%s", r.body)
		}
	}
	f, _ := ph.authorizeAt(next)
	return f, cookies.Value
}

// TestStorageSecretOnlyFromTheHubsOwnPage: a posted lti_storage_secret
// stands in for the login cookie only when the login used platform storage
// and the post comes from the hub's own page. Otherwise a cross-site form
// could post an attacker's launch, with the secret of the attacker's own
// login, into a victim's browser (login CSRF).
func TestStorageSecretOnlyFromTheHubsOwnPage(t *testing.T) {
	ph := newPlatformHub(t)
	jar := ph.client.Jar
	ph.client.Jar = nil
	defer func() { ph.client.Jar = jar }()
	t.Run("the hub's own page with the stored secret", func(t *testing.T) {
		ph.t = t
		f, secret := ph.cookielessLogin(true)
		ph.succeeded(ph.postFrom(f, ph.url, url.Values{"lti_storage_secret": {secret}}))
	})
	t.Run("a wrong secret", func(t *testing.T) {
		ph.t = t
		f, _ := ph.cookielessLogin(true)
		r := ph.postFrom(f, ph.url, url.Values{"lti_storage_secret": {"not-the-secret"}})
		if r.status != http.StatusUnauthorized || strings.Contains(string(r.body), "<h1>Welcome") {
			t.Fatalf("status %d, want the launch refused:\n%s", r.status, r.body)
		}
	})
	for name, origin := range map[string]string{"a cross-origin post": "https://attacker.example", "a post without Origin": "",
		"an Origin of null": "null"} {
		t.Run(name, func(t *testing.T) {
			ph.t = t
			f, secret := ph.cookielessLogin(true)
			ph.refusedWith(ph.postFrom(f, origin, url.Values{"lti_storage_secret": {secret}}), lti.ReasonStorageSecretCrossOrigin)
		})
	}
	t.Run("a secret when the login offered no platform storage", func(t *testing.T) {
		ph.t = t
		f, secret := ph.cookielessLogin(false)
		ph.refusedWith(ph.postFrom(f, ph.url, url.Values{"lti_storage_secret": {secret}}), lti.ReasonStorageSecretUnexpected)
	})
	ph.t = t
	if n := ph.rows("lti_nonces"); n != 1 {
		t.Fatalf("%d launches recorded, want only the hub's own page's", n)
	}
}
