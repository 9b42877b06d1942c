package api_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

// platformHub is the hub with a registered fake LMS.
type platformHub struct {
	*hub
	p    *ltitest.Platform
	slug string
	reg  string
}

func newPlatformHub(t testing.TB, configure ...func(*config.Config)) *platformHub {
	d := pgtest.New(t)
	h := serveHub(t, d, mustOpen(t, d), configure...)
	p := ltitest.New()
	t.Cleanup(p.Close)
	ph := &platformHub{hub: h, p: p, slug: "uni"}
	h.createTenant("uni", "institution")
	ph.reg = ph.register(p)
	return ph
}

func (ph *platformHub) register(p *ltitest.Platform) string {
	r := ph.expect(ph.do("POST", "/api/v1/tenants/"+ph.slug+"/lti/registrations", adminToken, map[string]any{
		"issuer": p.Issuer(), "client_id": p.ClientID, "auth_login_url": p.AuthURL(), "auth_token_url": p.TokenURL(),
		"jwks_url": p.JWKSURL(), "deployment_ids": []string{p.DeploymentID},
	}), 201)
	return r.field(ph.t, "id")
}

// form is the platform's self-submitting form_post.
type form struct {
	action, idToken, state string
}

var formField = regexp.MustCompile(`name="(id_token|state)" value="([^"]*)"`)
var formAction = regexp.MustCompile(`action="([^"]*)"`)

// authorize plays the browser through login: the tool's redirect, then
// the platform's authorization endpoint, returning the form it answers.
func (ph *platformHub) authorize(loginURL string) (form, response) {
	ph.t.Helper()
	r := ph.get(loginURL)
	if r.status != http.StatusFound {
		return form{}, r
	}
	return ph.authorizeAt(r.header.Get("Location"))
}

func (ph *platformHub) get(u string) response {
	ph.t.Helper()
	res, err := ph.client.Get(u)
	if err != nil {
		ph.t.Fatal(err)
	}
	return readResponse(res)
}

func readResponse(res *http.Response) response {
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (ph *platformHub) post(f form, extra url.Values) response {
	ph.t.Helper()
	v := url.Values{"id_token": {f.idToken}, "state": {f.state}}
	for k, vs := range extra {
		v[k] = vs
	}
	res, err := ph.client.PostForm(f.action, v)
	if err != nil {
		ph.t.Fatal(err)
	}
	return readResponse(res)
}

// launch runs a whole launch as a browser would, through the shared login
// URL.
func (ph *platformHub) launch(l ltitest.Launch) response {
	ph.t.Helper()
	return ph.launchVia(ph.url+"/lti/login", l)
}

// launchVia runs a whole launch whose login goes to loginURL.
func (ph *platformHub) launchVia(loginURL string, l ltitest.Launch) response {
	ph.t.Helper()
	f, r := ph.authorize(ph.p.LoginURL(loginURL, ph.url+"/lti/launch", l))
	if f.action == "" {
		return r
	}
	return ph.post(f, nil)
}

// refusedWith checks the error page names reason and the request id.
func (ph *platformHub) refusedWith(r response, reason lti.Reason) {
	ph.t.Helper()
	body := string(r.body)
	if r.status < 400 || !strings.Contains(body, "reason <code>"+string(reason)+"</code>") {
		ph.t.Fatalf("status %d, want a refusal with reason %s; page:\n%s", r.status, reason, body)
	}
	if id := r.header.Get("X-Request-Id"); id == "" || !strings.Contains(body, id) {
		ph.t.Fatalf("the error page does not show the reference %q", id)
	}
}

func (ph *platformHub) succeeded(r response) {
	ph.t.Helper()
	if r.status != 200 || !strings.Contains(string(r.body), "<h1>Welcome") {
		ph.t.Fatalf("launch failed: %d\n%s", r.status, r.body)
	}
}

// rows counts a table's rows for every tenant, as the superuser.
func (ph *platformHub) rows(table string) int {
	ph.t.Helper()
	var n int
	if err := pgtest.Superuser(ph.t, ph.dbt).Get(&n, `SELECT count(*) FROM `+table); err != nil {
		ph.t.Fatal(err)
	}
	return n
}

func TestValidLaunchRecordsAndLands(t *testing.T) {
	ph := newPlatformHub(t)
	r := ph.launch(ltitest.Launch{Roles: []string{lti.RoleInstructor}, Subject: "teacher-1"})
	ph.succeeded(r)
	for _, want := range []string{"Ada Lovelace", "Mathematics 101", "Week 1 quiz", "Instructor"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	for table, want := range map[string]int{"users": 1, "lti_identities": 1, "contexts": 1, "resource_links": 1, "memberships": 1, "lti_nonces": 1} {
		if n := ph.rows(table); n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
	var nrps, lineitems string
	pgtest.Superuser(t, ph.dbt).QueryRow(`SELECT nrps_url, ags_lineitems FROM contexts`).Scan(&nrps, &lineitems)
	if !strings.HasSuffix(nrps, "/nrps/course-1") || !strings.HasSuffix(lineitems, "/lineitems") {
		t.Errorf("service endpoints not recorded: %q %q", nrps, lineitems)
	}
	// A second launch by the same person reuses the user.
	ph.succeeded(ph.launch(ltitest.Launch{Roles: []string{"Learner"}, Subject: "teacher-1"}))
	if n := ph.rows("users"); n != 1 {
		t.Fatalf("%d users after two launches of one person", n)
	}
	var roles string
	pgtest.Superuser(t, ph.dbt).QueryRow(`SELECT array_to_string(roles, ' ') FROM memberships`).Scan(&roles)
	if roles != lti.RoleLearner {
		t.Fatalf("membership roles = %q, want the short name expanded", roles)
	}
	// Institution and system roles go to the identity, not the course.
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "teacher-1", Roles: []string{"Learner",
		"http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty", "http://purl.imsglobal.org/vocab/lis/v2/system/person#User"}}))
	var inst, sys string
	pgtest.Superuser(t, ph.dbt).QueryRow(`SELECT array_to_string(institution_roles, ' '), array_to_string(system_roles, ' ') FROM lti_identities`).Scan(&inst, &sys)
	pgtest.Superuser(t, ph.dbt).QueryRow(`SELECT array_to_string(roles, ' ') FROM memberships`).Scan(&roles)
	if !strings.HasSuffix(inst, "#Faculty") || !strings.HasSuffix(sys, "#User") || roles != lti.RoleLearner {
		t.Fatalf("institution %q, system %q, course %q", inst, sys, roles)
	}
	// A changed email is stored; a launch without names keeps the old ones.
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "teacher-1", Claims: map[string]any{"email": "ada@new.example", "name": nil}}))
	var email, name string
	pgtest.Superuser(t, ph.dbt).QueryRow(`SELECT email, name FROM users`).Scan(&email, &name)
	if email != "ada@new.example" || name != "Ada Lovelace" {
		t.Fatalf("user after a changed email: %q %q", email, name)
	}
}

// TestCertificationInvalidLaunches covers the "known bad payloads" of the
// LTI Advantage certification guide, and the other refusals the tool owes.
func TestCertificationInvalidLaunches(t *testing.T) {
	ph := newPlatformHub(t)
	cases := ph.p.BadLaunches(ph.url + "/elsewhere")
	if len(cases) < 16 {
		t.Fatalf("only %d bad launches", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			ph.t = t
			ph.refusedWith(ph.launch(tc.Launch), tc.Reason)
		})
	}
	ph.t = t
	for _, table := range []string{"users", "lti_identities", "contexts", "resource_links", "memberships", "lti_nonces"} {
		if n := ph.rows(table); n != 0 {
			t.Errorf("refused launches wrote %d rows to %s", n, table)
		}
	}
	body := string(ph.expect(ph.do("GET", "/metrics", "", nil), 200).body)
	if !strings.Contains(body, `hub_lti_refusals_total{reason="no_kid",stage="launch"} 1`) {
		t.Error("refusals are not counted by reason")
	}
}

// TestCertificationValidLaunches: the guide's valid launches, for an
// instructor and a student each.
func TestCertificationValidLaunches(t *testing.T) {
	ph := newPlatformHub(t)
	variants := map[string]func(role string) ltitest.Launch{
		"plain": func(r string) ltitest.Launch { return ltitest.Launch{Roles: []string{r}} },
		"multiple roles": func(r string) ltitest.Launch {
			return ltitest.Launch{Roles: []string{r, lti.RoleLearner, "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Staff"}}
		},
		"short role names": func(r string) ltitest.Launch {
			return ltitest.Launch{Roles: []string{strings.TrimPrefix(r, "http://purl.imsglobal.org/vocab/lis/v2/membership#")}}
		},
		"unknown role": func(r string) ltitest.Launch { return ltitest.Launch{Roles: []string{r, "urn:example:role:Wizard"}} },
		"empty roles":  func(string) ltitest.Launch { return ltitest.Launch{Roles: []string{}} },
		"email only": func(r string) ltitest.Launch {
			return ltitest.Launch{Roles: []string{r}, Claims: map[string]any{"name": nil, "given_name": nil, "family_name": nil}}
		},
		"names only": func(r string) ltitest.Launch {
			return ltitest.Launch{Roles: []string{r}, Claims: map[string]any{"email": nil}}
		},
		"no personal data": func(r string) ltitest.Launch {
			return ltitest.Launch{Roles: []string{r}, Claims: map[string]any{"name": nil, "given_name": nil, "family_name": nil, "email": nil}}
		},
		"no context": func(r string) ltitest.Launch {
			return ltitest.Launch{Roles: []string{r}, Claims: map[string]any{lti.ClaimContext: nil}}
		},
	}
	for _, role := range []string{lti.RoleInstructor, lti.RoleLearner} {
		for name, make := range variants {
			t.Run(strings.TrimPrefix(role, "http://purl.imsglobal.org/vocab/lis/v2/membership#")+"/"+name, func(t *testing.T) {
				ph.t = t
				ph.succeeded(ph.launch(make(role)))
			})
		}
	}
}

var pickerSession = regexp.MustCompile(`name="session" value="([^"]+)"`)

// deepLink launches a deep linking request and submits the picker with
// the chosen activities.
func (ph *platformHub) deepLink(settings map[string]any, roles []string, chosen ...string) (picker, returned response) {
	ph.t.Helper()
	picker = ph.openPicker(settings, roles)
	session := pickerSessionOf(picker)
	if session == "" {
		return picker, response{}
	}
	return picker, ph.submitPicker(ph.client, url.Values{"session": {session}, "activity": chosen})
}

// openPicker launches a deep linking request: the hub answers with the
// picker.
func (ph *platformHub) openPicker(settings map[string]any, roles []string) response {
	ph.t.Helper()
	l := ltitest.Launch{Message: lti.MessageDeepLinkingRequest, Roles: roles}
	if settings != nil {
		l.Claims = map[string]any{lti.ClaimDeepLinking: settings}
	}
	return ph.launch(l)
}

func pickerSessionOf(picker response) string {
	m := pickerSession.FindStringSubmatch(string(picker.body))
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// submitPicker posts the picker's form from browser and, when the hub
// answers with the deep linking response, plays the browser's auto-submit
// of it to the platform.
func (ph *platformHub) submitPicker(browser *http.Client, form url.Values) response {
	ph.t.Helper()
	res, err := browser.PostForm(ph.url+"/lti/deep-link", form)
	if err != nil {
		ph.t.Fatal(err)
	}
	returned := readResponse(res)
	b := returned.body
	if jwt := regexp.MustCompile(`name="JWT" value="([^"]+)"`).FindStringSubmatch(string(b)); jwt != nil {
		action := html.UnescapeString(formAction.FindStringSubmatch(string(b))[1])
		r2, err := http.PostForm(action, url.Values{"JWT": {jwt[1]}})
		if err != nil {
			ph.t.Fatal(err)
		}
		body, _ := io.ReadAll(r2.Body)
		r2.Body.Close()
		if r2.StatusCode != 200 {
			ph.t.Fatalf("the platform refused the deep linking response: %s", body)
		}
	}
	return returned
}

func TestDeepLinking(t *testing.T) {
	ph := newPlatformHub(t)
	ph.p.ToolJWKSURL, ph.p.ToolClient = ph.url+"/.well-known/jwks.json", ph.client
	ph.expect(ph.do("POST", "/api/v1/activities", adminToken, map[string]any{"id": "quiz-1", "title": "Quiz 1", "description": "Ten questions", "gradable": true, "max_score": 10}), 201)
	ph.expect(ph.do("POST", "/api/v1/activities", adminToken, map[string]any{"id": "reading-1", "title": "Reading 1"}), 201)
	ph.problem(ph.do("POST", "/api/v1/activities", adminToken, map[string]any{"id": "bad", "title": "Graded without max", "gradable": true}), 400, "validation")
	staff := []string{lti.RoleInstructor}
	settings := func(multiple bool, types ...string) map[string]any {
		return map[string]any{"deep_link_return_url": ph.p.Server.URL + "/deep-link-return", "accept_types": types,
			"accept_presentation_document_targets": []string{"iframe"}, "accept_multiple": multiple, "data": "echo-me"}
	}

	t.Run("instructor picks two activities", func(t *testing.T) {
		ph.t = t
		picker, _ := ph.deepLink(settings(true, "ltiResourceLink"), staff, "quiz-1", "reading-1")
		if !strings.Contains(string(picker.body), "Quiz 1") || !strings.Contains(string(picker.body), `type="checkbox"`) {
			t.Fatalf("picker:\n%s", picker.body)
		}
		got := ph.p.DeepLinks[len(ph.p.DeepLinks)-1]
		if len(got.Items) != 2 || got.Data != "echo-me" {
			t.Fatalf("response items %v data %q", got.Items, got.Data)
		}
		quiz := got.Items[0]
		if quiz["type"] != "ltiResourceLink" || quiz["url"] != ph.url+"/lti/launch" || quiz["lineItem"].(map[string]any)["scoreMaximum"] != 10.0 {
			t.Fatalf("gradable item %v", quiz)
		}
		if _, graded := got.Items[1]["lineItem"]; graded {
			t.Fatal("an ungraded activity got a line item")
		}
	})

	t.Run("single choice only", func(t *testing.T) {
		ph.t = t
		picker, returned := ph.deepLink(settings(false, "ltiResourceLink"), staff, "quiz-1", "reading-1")
		if !strings.Contains(string(picker.body), `type="radio"`) {
			t.Fatal("picker offers several choices to a platform that accepts one")
		}
		ph.refusedWith(returned, lti.ReasonDeepLinkingSession)
	})

	t.Run("no acceptable type: only Cancel, an empty answer", func(t *testing.T) {
		ph.t = t
		before := len(ph.p.DeepLinks)
		_, returned := ph.deepLink(settings(true, "file"), staff, "quiz-1")
		ph.refusedWith(returned, lti.ReasonDeepLinkingSession)
		picker := ph.openPicker(settings(true, "file"), staff)
		if strings.Contains(string(picker.body), ">Add<") || !strings.Contains(string(picker.body), `name="cancel"`) {
			t.Fatalf("a picker with nothing the platform accepts offers:\n%s", picker.body)
		}
		ph.submitPicker(ph.client, url.Values{"session": {pickerSessionOf(picker)}, "cancel": {"1"}})
		if len(ph.p.DeepLinks) != before+1 || len(ph.p.DeepLinks[before].Items) != 0 {
			t.Fatal("an empty deep linking response did not reach the platform")
		}
	})

	t.Run("responses verify across a rotation of the hub's LTI key", func(t *testing.T) {
		ph.t = t
		before := len(ph.p.DeepLinks)
		ph.expect(ph.do("POST", "/api/v1/keys/lti/rotate", adminToken, nil), 200)
		ph.deepLink(settings(true, "ltiResourceLink"), staff, "reading-1")
		if len(ph.p.DeepLinks) != before+1 {
			t.Fatal("the platform did not accept a response signed after the rotation")
		}
	})

	t.Run("learners may not deep link", func(t *testing.T) {
		ph.t = t
		picker, _ := ph.deepLink(nil, []string{lti.RoleLearner})
		ph.refusedWith(picker, lti.ReasonDeepLinkingNotAllowed)
	})

	t.Run("forged session", func(t *testing.T) {
		ph.t = t
		res, err := ph.client.PostForm(ph.url+"/lti/deep-link", url.Values{"session": {"forged"}, "activity": {"quiz-1"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		ph.refusedWith(response{status: res.StatusCode, header: res.Header, body: b}, lti.ReasonDeepLinkingSession)
	})

	t.Run("missing settings claim", func(t *testing.T) {
		ph.t = t
		ph.refusedWith(ph.launch(ltitest.Launch{Message: lti.MessageDeepLinkingRequest, Claims: map[string]any{lti.ClaimDeepLinking: nil}}), lti.ReasonMissingDeepLinking)
	})
}

// TestRecordedPlatformLaunches signs the documented launches of real LMSes
// (with their quirks) and launches them.
func TestRecordedPlatformLaunches(t *testing.T) {
	ph := newPlatformHub(t)
	recorded, err := ltitest.Recorded()
	if err != nil || len(recorded) < 7 {
		t.Fatalf("recorded launches: %d, %v", len(recorded), err)
	}
	for name, payload := range recorded {
		t.Run(name, func(t *testing.T) {
			ph.t = t
			r := ph.launch(ph.p.AsRecorded(payload))
			if strings.Contains(name, "deep-linking") {
				if r.status != 200 || !pickerSession.Match(r.body) {
					t.Fatalf("recorded deep linking request did not reach the picker: %d\n%s", r.status, r.body)
				}
				return
			}
			ph.succeeded(r)
		})
	}
}

func TestReplayedIDTokenIsRefused(t *testing.T) {
	ph := newPlatformHub(t)
	f, _ := ph.authorize(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{}))
	ph.succeeded(ph.post(f, nil))
	ph.refusedWith(ph.post(f, nil), lti.ReasonNonceReplayed)
}

func TestPlatformKeyRotationIsFollowed(t *testing.T) {
	ph := newPlatformHub(t)
	ph.succeeded(ph.launch(ltitest.Launch{}))
	ph.p.RotateKey()
	later := time.Now().Add(time.Minute) // past the refetch rate limit
	ph.deps.Keysets.Now = func() time.Time { return later }
	ph.succeeded(ph.launch(ltitest.Launch{}))
}

func TestLoginRefusals(t *testing.T) {
	ph := newPlatformHub(t)
	// This test changes registrations and the tenant between logins and
	// wants every change seen at once.
	ph.deps.LTI.CacheTTL = 0
	login := func(q url.Values) response { return ph.get(ph.url + "/lti/login?" + q.Encode()) }
	base := func() url.Values {
		return url.Values{"iss": {ph.p.Issuer()}, "client_id": {ph.p.ClientID}, "login_hint": {"u"},
			"target_link_uri": {ph.url + "/lti/launch"}, "lti_deployment_id": {ph.p.DeploymentID}}
	}
	with := func(k, v string) url.Values { q := base(); q.Set(k, v); return q }
	ph.refusedWith(login(with("iss", "https://unknown.example")), lti.ReasonUnknownRegistration)
	ph.refusedWith(login(with("client_id", "nobody")), lti.ReasonUnknownRegistration)
	ph.refusedWith(login(with("lti_deployment_id", "nope")), lti.ReasonUnknownDeployment)
	ph.refusedWith(login(with("target_link_uri", "https://evil.example/phish")), lti.ReasonTargetNotOurs)
	ph.refusedWith(login(with("login_hint", "")), lti.ReasonBadRequest)

	q := base()
	q.Del("client_id")
	if r := login(q); r.status != http.StatusFound {
		t.Fatalf("login without client_id for a single registration: %d", r.status)
	}
	// A second registration on the same issuer makes client_id or the
	// deployment id necessary, unless the registration's own login URL
	// is used.
	second := ltitest.New()
	defer second.Close()
	ph.expect(ph.do("POST", "/api/v1/tenants/uni/lti/registrations", adminToken, map[string]any{
		"issuer": ph.p.Issuer(), "client_id": "second-client", "auth_login_url": ph.p.AuthURL(),
		"auth_token_url": ph.p.TokenURL(), "jwks_url": ph.p.JWKSURL(),
	}), 201)
	if r := login(q); r.status != http.StatusFound {
		t.Fatalf("login without client_id, with the deployment only one registration has: %d", r.status)
	}
	q.Del("lti_deployment_id")
	ph.refusedWith(login(q), lti.ReasonAmbiguousIssuer)
	if r := ph.get(ph.url + "/lti/login/" + ph.reg + "?" + q.Encode()); r.status != http.StatusFound {
		t.Fatalf("per-registration login: %d %s", r.status, r.body)
	}

	ph.expect(ph.do("POST", "/api/v1/tenants/uni/suspend", adminToken, nil), 200)
	ph.refusedWith(login(base()), lti.ReasonTenantSuspended)
}

// TestSuspensionReachesLaunchesWithinTheCacheTTL: registration lookups are
// cached briefly; a suspension is honoured once the entry expires.
func TestSuspensionReachesLaunchesWithinTheCacheTTL(t *testing.T) {
	ph := newPlatformHub(t)
	// The hub's clock runs with the platform's (which stamps iat with the
	// real time), ahead by skip once the cache entry is to have expired.
	var skip atomic.Int64
	ph.deps.LTI.Now = func() time.Time { return time.Now().Add(time.Duration(skip.Load())) }
	ph.succeeded(ph.launch(ltitest.Launch{}))
	ph.expect(ph.do("POST", "/api/v1/tenants/uni/suspend", adminToken, nil), 200)
	skip.Store(int64(ph.deps.LTI.CacheTTL + time.Millisecond))
	ph.refusedWith(ph.launch(ltitest.Launch{}), lti.ReasonTenantSuspended)
}

func TestAuthenticationRequestParameters(t *testing.T) {
	ph := newPlatformHub(t)
	r := ph.get(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{}))
	loc, _ := url.Parse(r.header.Get("Location"))
	q := loc.Query()
	for k, want := range map[string]string{"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
		"prompt": "none", "client_id": ph.p.ClientID, "redirect_uri": ph.url + "/lti/launch"} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Get("state") == "" || q.Get("nonce") == "" || q.Get("lti_message_hint") == "" || q.Get("login_hint") == "" {
		t.Errorf("authentication request lacks state, nonce or hints: %v", q)
	}
	cookie := r.header.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=None"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("login cookie %q lacks %s", cookie, attr)
		}
	}
}

func TestCookielessLaunch(t *testing.T) {
	ph := newPlatformHub(t)
	f, _ := ph.authorize(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{}))

	t.Run("no cookie, no platform storage: offer a new window", func(t *testing.T) {
		ph.t = t
		jar := ph.client.Jar
		ph.client.Jar = nil
		defer func() { ph.client.Jar = jar }()
		r := ph.post(f, nil)
		if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "new window") || strings.Contains(string(r.body), "/lti/login") {
			t.Fatalf("status %d, want the new-window page, without a link replaying the login:\n%s", r.status, r.body)
		}
	})

}

func TestHandoffTokenVerifiesThroughKeyRotation(t *testing.T) {
	app, _ := url.Parse("https://app.example/lti-entry")
	ph := newPlatformHub(t, func(c *config.Config) { c.AppURL = app })
	token := func() string {
		r := ph.launch(ltitest.Launch{Roles: []string{"Learner"}})
		m := regexp.MustCompile(`action="([^"]+)"[\s\S]*name="hub_token" value="([^"]+)"`).FindStringSubmatch(string(r.body))
		if r.status != 200 || m == nil || m[1] != app.String() {
			t.Fatalf("no handoff form to the app: %d\n%s", r.status, r.body)
		}
		return m[2]
	}
	// A link made by deep linking names its catalog activity.
	r := ph.launch(ltitest.Launch{Claims: map[string]any{lti.ClaimCustom: map[string]any{"activity_id": "quiz-1"}}})
	m := regexp.MustCompile(`name="hub_token" value="([^"]+)"`).FindStringSubmatch(string(r.body))
	jwks0 := ph.expect(ph.do("GET", "/.well-known/jwks.json", "", nil), 200).body
	claims, err := verifyES256(jwks0, m[1])
	if err != nil || claims["activity"].(map[string]any)["catalog_id"] != "quiz-1" {
		t.Fatalf("handoff of a deep-linked activity: %v %v", claims, err)
	}
	before := token()
	ph.expect(ph.do("POST", "/api/v1/keys/handoff/rotate", adminToken, nil), 200)
	after := token()
	jwks := ph.expect(ph.do("GET", "/.well-known/jwks.json", "", nil), 200).body
	for name, tok := range map[string]string{"before": before, "after": after} {
		claims, err := verifyES256(jwks, tok)
		if err != nil {
			t.Fatalf("%s rotation: %v", name, err)
		}
		if claims["aud"] != app.String() || claims["tenant"] != "uni" || claims["jti"] == "" || claims["message_type"] != lti.MessageResourceLink {
			t.Fatalf("%s rotation: claims %v", name, claims)
		}
		if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat > 120 {
			t.Fatalf("handoff token lives %v s", exp-iat)
		}
	}
	if kidOf(t, before) == kidOf(t, after) {
		t.Fatal("the token after the rotation names the retired key")
	}
}

func TestClockSkewLeeway(t *testing.T) {
	ph := newPlatformHub(t, func(c *config.Config) { c.LTILeeway = 30 * time.Second })
	skewed := ltitest.Launch{Tamper: func(_, c map[string]any) { c["iat"] = time.Now().Add(20 * time.Second).Unix() }}
	ph.succeeded(ph.launch(skewed))
	ph.deps.LTI.Leeway = 0
	ph.refusedWith(ph.launch(skewed), lti.ReasonIssuedInFuture)
}

func TestExpiredNoncesArePurged(t *testing.T) {
	ph := newPlatformHub(t)
	ph.succeeded(ph.launch(ltitest.Launch{}))
	ph.succeeded(ph.launch(ltitest.Launch{}))
	super := pgtest.Superuser(t, ph.dbt)
	super.MustExec(`UPDATE lti_nonces SET expires_at = now() - interval '1 minute' WHERE ctid IN (SELECT ctid FROM lti_nonces LIMIT 1)`)
	n, err := ph.deps.LTI.PurgeNonces(context.Background())
	if err != nil || n != 1 || ph.rows("lti_nonces") != 1 {
		t.Fatalf("purged %d (%v), %d left; want 1 and 1", n, err, ph.rows("lti_nonces"))
	}
}

// TestCookiePathFollowsThePublicURL: behind a proxy that serves the hub
// under a path (HUB_PUBLIC_URL https://x.example/hub), the browser sees the
// launch at /hub/lti/launch, so the login cookie's path is /hub/lti: a
// cookie scoped to /lti would never come back.
func TestCookiePathFollowsThePublicURL(t *testing.T) {
	for _, tc := range []struct{ name, path, cookiePath string }{
		{"at the root", "", "/lti"},
		{"under a path", "/hub", "/hub/lti"},
		{"under a nested path", "/apps/hub", "/apps/hub/lti"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ph := newPlatformHub(t, func(c *config.Config) { c.PublicURL = c.PublicURL.JoinPath(tc.path) })
			r := ph.get(ph.p.LoginURL(ph.url+"/lti/login", ph.url+tc.path+"/lti/launch", ltitest.Launch{}))
			cookie, err := http.ParseSetCookie(r.header.Get("Set-Cookie"))
			if r.status != http.StatusFound || err != nil || cookie.Path != tc.cookiePath {
				t.Fatalf("login: %d, cookie %q (%v), want Path=%s", r.status, r.header.Get("Set-Cookie"), err, tc.cookiePath)
			}
		})
	}
}

// TestHandoffTokenGreetsTheLearner: the handoff token carries what the
// learning app needs to greet the learner (name, given and family name,
// email, picture) when the platform sent it, and nothing when it did not.
func TestHandoffTokenGreetsTheLearner(t *testing.T) {
	app, _ := url.Parse("https://app.example/lti-entry")
	ph := newPlatformHub(t, func(c *config.Config) { c.AppURL = app })
	claimsOf := func(l ltitest.Launch) map[string]any {
		t.Helper()
		r := ph.launch(l)
		m := regexp.MustCompile(`name="hub_token" value="([^"]+)"`).FindStringSubmatch(string(r.body))
		if m == nil {
			t.Fatalf("no handoff: %d\n%s", r.status, r.body)
		}
		claims, err := verifyES256(ph.expect(ph.do("GET", "/.well-known/jwks.json", "", nil), 200).body, m[1])
		if err != nil {
			t.Fatal(err)
		}
		return claims
	}
	picture := "https://lms.example/avatars/ada.png"
	claims := claimsOf(ltitest.Launch{Claims: map[string]any{"picture": picture}})
	for k, want := range map[string]string{"name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace",
		"email": "ada@example.edu", "picture": picture} {
		if claims[k] != want {
			t.Errorf("%s = %v, want %q", k, claims[k], want)
		}
	}
	claims = claimsOf(ltitest.Launch{Claims: map[string]any{"name": nil, "given_name": nil, "family_name": nil, "email": nil,
		"picture": "javascript:alert(1)"}})
	for _, k := range []string{"name", "given_name", "family_name", "email", "picture"} {
		if v, ok := claims[k]; ok {
			t.Errorf("%s = %v in the token of a launch that sent none (or no web address)", k, v)
		}
	}
}
