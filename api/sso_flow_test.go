package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/sso/ssotest"
)

// ssoHub is a hub with a tenant "acme" signing in the domain acme.example
// with a real OpenID provider (ssotest) on loopback, and the learning app
// at appURL.
type ssoHub struct {
	*hub
	op   *ssotest.Provider
	conn ssoConnection
	key  string
	// now is the hub's keyset cache's clock.
	mu  sync.Mutex
	now time.Time
}

const appURL = "https://app.example/entry"

var yes, no = true, false

func newSSOHub(t testing.TB, overrides map[string]any) *ssoHub {
	t.Helper()
	app, _ := url.Parse(appURL)
	s := &ssoHub{now: time.Now()}
	d := pgtest.New(t)
	s.hub = serveHubWith(t, d, mustOpen(t, d), func(deps *api.Deps) {
		deps.Keysets.Now = s.clock
		// Every sign-in of the tests comes from one address, faster than a
		// person: the limit has a test of its own.
		deps.SSO.StartLimiter = nil
	}, func(c *config.Config) { c.AppURL = app })
	s.createTenant("acme", "employer")
	_, s.key = s.createKey("acme", "write")
	s.op = ssotest.New(ssotest.WithHTTPClient(&http.Client{Transport: s.client.Transport}))
	t.Cleanup(s.op.Close)
	body := map[string]any{"name": "Acme IdP", "issuer": s.op.Issuer(), "client_id": "hub", "client_secret": "hub-secret",
		"claims": map[string]string{"employee_id": "employee_id"}}
	for k, v := range overrides {
		body[k] = v
	}
	s.expect(s.do("POST", connectionsPath("acme"), s.key, body), 201).json(t, &s.conn)
	s.op.AddClient(ssotest.Client{ID: "hub", Secret: "hub-secret", RedirectURIs: []string{s.conn.RedirectURI},
		BackChannelLogoutURI: s.url + "/sso/backchannel-logout/" + s.conn.ID, PostLogoutRedirectURIs: []string{s.url + "/sso/signed-out"}})
	s.expect(s.do("PUT", domainPath("acme", "acme.example"), adminToken, map[string]any{"connection": s.conn.ID}), 201)
	s.op.AddUser(ssotest.User{Subject: "ana", Email: "ana@acme.example", EmailVerified: &yes, Name: "Ana Ng", GivenName: "Ana",
		FamilyName: "Ng", Groups: []string{"staff", "managers"}})
	s.op.SignInAs("ana")
	return s
}

func (s *ssoHub) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *ssoHub) advance(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

// get is the browser following one step.
func (s *ssoHub) get(u string) response {
	s.t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.send(req)
}

// authorize starts a sign-in at start (a path of the hub) and follows the
// browser to the provider; it returns the provider's redirect to the
// callback.
func (s *ssoHub) authorize(start string) string {
	s.t.Helper()
	r := s.get(s.url + start)
	if r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), s.op.Issuer()+"/authorize?") {
		s.t.Fatalf("start: %d %s\n%s", r.status, r.header.Get("Location"), r.body)
	}
	r = s.get(r.header.Get("Location"))
	if r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), s.conn.RedirectURI+"?") {
		s.t.Fatalf("provider: %d %s\n%s", r.status, r.header.Get("Location"), r.body)
	}
	return r.header.Get("Location")
}

// signIn runs the whole browser flow and returns the callback's answer.
func (s *ssoHub) signIn(start string) response {
	s.t.Helper()
	return s.get(s.authorize(start))
}

var handoffForm = regexp.MustCompile(`action="([^"]+)"[\s\S]*name="hub_token" value="([^"]+)"`)

// handedOff checks r is the handoff to the app and returns its token's claims.
func (s *ssoHub) handedOff(r response) map[string]any {
	s.t.Helper()
	m := handoffForm.FindStringSubmatch(string(r.body))
	if r.status != 200 || m == nil || m[1] != appURL {
		s.t.Fatalf("no handoff: %d\n%s", r.status, r.body)
	}
	claims, err := verifyES256(s.expect(s.do("GET", "/.well-known/jwks.json", "", nil), 200).body, m[2])
	if err != nil {
		s.t.Fatal(err)
	}
	return claims
}

// refused checks r is the refusal page with status and reason, saying
// what to do and showing no internals.
func (s *ssoHub) refused(r response, status int, reason string) {
	s.t.Helper()
	body := string(r.body)
	if r.status != status || !strings.Contains(body, "reason <code>"+reason+"</code>") || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
		s.t.Fatalf("status %d, want %d with reason %s:\n%s", r.status, status, reason, body)
	}
	for _, leak := range []string{"goroutine", "sso:", "oidc:", "panic", "pq:", ".go:"} {
		if strings.Contains(body, leak) {
			s.t.Fatalf("the page shows %q:\n%s", leak, body)
		}
	}
	if !strings.Contains(body, "/sso/start") || !strings.Contains(body, r.header.Get("X-Request-Id")) {
		s.t.Fatalf("the page does not say what to do, or has no reference:\n%s", body)
	}
}

// counts are the rows a sign-in writes.
type counts struct{ Users, Identities, Sessions int }

func (s *ssoHub) counts() counts {
	s.t.Helper()
	var c counts
	s.inTenant("acme", func(tx *sqlx.Tx) error {
		return tx.Get(&c, `SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM sso_identities) AS identities,
			(SELECT count(*) FROM sso_sessions) AS sessions`)
	})
	return c
}

func (s *ssoHub) sessionCookie() string {
	u, _ := url.Parse(s.url + "/sso/session")
	for _, c := range s.client.Jar.Cookies(u) {
		if c.Name == "hub_session" {
			return c.Value
		}
	}
	return ""
}

// TestSSOSignIn: an employee signs in from their email through the
// provider, with PKCE, and reaches the learning app with a handoff token
// naming them; a session is open and its cookie set as it must be.
func TestSSOSignIn(t *testing.T) {
	s := newSSOHub(t, nil)
	before := s.counts()
	start := s.get(s.url + "/sso/start?email=" + url.QueryEscape("Ana@ACME.example"))
	loc, _ := url.Parse(start.header.Get("Location"))
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" ||
		q.Get("redirect_uri") != s.conn.RedirectURI || q.Get("login_hint") != "Ana@ACME.example" || q.Get("scope") != "openid email profile" {
		t.Fatalf("authorization request: %s (%d %s)", loc, start.status, start.body)
	}
	var stateCookie *http.Cookie
	for _, c := range (&http.Response{Header: start.header}).Cookies() {
		if c.Name == "hub_sso_state" {
			stateCookie = c
		}
	}
	if stateCookie == nil || !stateCookie.HttpOnly || !stateCookie.Secure || stateCookie.SameSite != http.SameSiteLaxMode ||
		strings.Contains(stateCookie.Value, q.Get("nonce")) {
		t.Fatalf("state cookie %+v", stateCookie)
	}
	r := s.get(start.header.Get("Location"))
	cb := s.get(r.header.Get("Location"))
	claims := s.handedOff(cb)
	if claims["tenant"] != "acme" || claims["message_type"] != "SSOSignIn" || claims["name"] != "Ana Ng" ||
		claims["email"] != "ana@acme.example" || claims["given_name"] != "Ana" || claims["sub"] == "" {
		t.Fatalf("handoff claims %v", claims)
	}
	if roles, _ := claims["roles"].([]any); len(roles) != 2 || roles[0] != "staff" {
		t.Fatalf("roles %v", claims["roles"])
	}
	var session *http.Cookie
	for _, c := range (&http.Response{Header: cb.header}).Cookies() {
		if c.Name == "hub_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteLaxMode || session.Path != "/" ||
		session.Expires.Before(time.Now().Add(11*time.Hour)) {
		t.Fatalf("session cookie %+v", session)
	}
	if got := s.counts(); got != (counts{before.Users + 1, 1, 1}) {
		t.Fatalf("%+v after %+v", got, before)
	}
	var stored []byte
	s.inTenant("acme", func(tx *sqlx.Tx) error {
		return tx.Get(&stored, `SELECT token_hash FROM sso_sessions`)
	})
	if strings.Contains(string(stored), session.Value) || len(stored) != 32 {
		t.Fatal("the session cookie is stored as it is, not hashed")
	}
	if !strings.Contains(strings.Join(s.auditActions("acme"), " "), "sso.signed_in") {
		t.Fatal("the sign-in is not audited")
	}
	if m := string(s.get(s.url + "/metrics").body); !strings.Contains(m, `hub_sso_sign_ins_total{matched_by="jit"} 1`) {
		t.Fatal("the sign-in is not counted")
	}

	t.Run("the session page", func(t *testing.T) {
		r := s.get(s.url + "/sso/session")
		if r.status != 200 || !strings.Contains(string(r.body), "Ana Ng") || !strings.Contains(string(r.body), "Continue to learning") {
			t.Fatalf("%d %s", r.status, r.body)
		}
		cont := s.send(s.request("POST", "/sso/continue", "", nil))
		if c := s.handedOff(cont); c["sub"] != claims["sub"] || fmt.Sprint(c["roles"]) != "[staff managers]" {
			t.Fatalf("continued as %v with roles %v", c["sub"], c["roles"])
		}
	})
	t.Run("signing in again is the same user, in a new session", func(t *testing.T) {
		s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
		if got := s.counts(); got.Users != before.Users+1 || got.Identities != 1 || got.Sessions != 2 {
			t.Fatalf("%+v", got)
		}
		if live := s.sessions(s.key, "?live=true"); len(live) != 1 {
			t.Fatalf("%d live sessions in one browser", len(live))
		}
	})
	t.Run("a domain naming no connection signs in with the tenant's only one", func(t *testing.T) {
		s.expect(s.do("PUT", domainPath("acme", "acme.example"), adminToken, nil), 200)
		s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
	})
	t.Run("by tenant and connection", func(t *testing.T) {
		s.handedOff(s.signIn("/sso/start?tenant=acme&connection=" + s.conn.ID))
	})
	t.Run("a domain naming no connection, with two, says one must be chosen", func(t *testing.T) {
		var second ssoConnection
		s.expect(s.do("POST", connectionsPath("acme"), s.key, map[string]any{"name": "Partner IdP", "issuer": s.op.Issuer(),
			"client_id": "partner", "client_secret": "partner-secret"}), 201).json(t, &second)
		before := s.counts()
		s.refused(s.get(s.url+"/sso/start?email=ana@acme.example"), 409, "no_connection_chosen")
		s.expect(s.do("PUT", domainPath("acme", "acme.example"), adminToken, map[string]any{"connection": s.conn.ID}), 200)
		s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
		s.expect(s.do("DELETE", connectionsPath("acme")+"/"+second.ID, s.key, nil), 204)
		if after := s.counts(); after.Users != before.Users || after.Identities != before.Identities {
			t.Fatalf("%+v, then %+v", before, after)
		}
	})
	t.Run("the email form", func(t *testing.T) {
		r := s.get(s.url + "/sso/start")
		if r.status != 200 || !strings.Contains(string(r.body), `name="email"`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = s.get(s.url + "/sso/start?email=someone@elsewhere.example")
		if r.status != 404 || !strings.Contains(string(r.body), `name="email"`) || !strings.Contains(string(r.body), "does not know") {
			t.Fatalf("unknown domain: %d %s", r.status, r.body)
		}
		r = s.get(s.url + "/sso/start?email=not-an-email")
		if r.status != 400 || !strings.Contains(string(r.body), `name="email"`) {
			t.Fatalf("not an email: %d %s", r.status, r.body)
		}
		s.refused(s.get(s.url+"/sso/start?tenant=acme&connection=00000000-0000-0000-0000-000000000000"), 404, "unknown_connection")
	})
}

// TestSSOCallbackRefusals: a replayed callback, a lost or foreign state,
// another connection's callback, and the provider's refusal each end on
// the clear page, and create nothing.
func TestSSOCallbackRefusals(t *testing.T) {
	s := newSSOHub(t, nil)
	t.Run("replayed callback", func(t *testing.T) {
		start := s.get(s.url + "/sso/start?email=ana@acme.example")
		cookies := (&http.Response{Header: start.header}).Cookies()
		cb := s.get(start.header.Get("Location")).header.Get("Location")
		s.handedOff(s.get(cb))
		before, tokens := s.counts(), s.op.TokenRequests()
		// The state cookie went with the first use.
		s.refused(s.get(cb), 400, "state_missing")
		// Put back, it finds its sign-in spent.
		u, _ := url.Parse(s.conn.RedirectURI)
		s.client.Jar.SetCookies(u, cookies)
		s.refused(s.get(cb), 400, "state_used")
		if s.counts() != before || s.op.TokenRequests() != tokens {
			t.Fatalf("a replay wrote or exchanged: %+v after %+v", s.counts(), before)
		}
	})
	t.Run("state from another browser", func(t *testing.T) {
		cb := s.authorize("/sso/start?email=ana@acme.example")
		before := s.counts()
		other := &http.Client{Transport: s.client.Transport, CheckRedirect: s.client.CheckRedirect}
		res, err := other.Get(cb)
		if err != nil {
			t.Fatal(err)
		}
		r := readResponse(res)
		s.refused(r, 400, "state_missing")
		if s.counts() != before {
			t.Fatal("wrote")
		}
	})
	t.Run("a wrong state", func(t *testing.T) {
		cb := s.authorize("/sso/start?email=ana@acme.example")
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("state", "forged")
		u.RawQuery = q.Encode()
		s.refused(s.get(u.String()), 400, "state_invalid")
	})
	t.Run("an expired state", func(t *testing.T) {
		cb := s.authorize("/sso/start?email=ana@acme.example")
		s.inTenant("acme", func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`UPDATE sso_sign_ins SET expires_at = now() - interval '1 second'`)
			return err
		})
		s.refused(s.get(cb), 400, "state_used")
	})
	t.Run("another connection's callback", func(t *testing.T) {
		var second ssoConnection
		s.expect(s.do("POST", connectionsPath("acme"), s.key, map[string]any{"name": "Second", "issuer": s.op.Issuer(),
			"client_id": "hub"}), 201).json(t, &second)
		cb := s.authorize("/sso/start?email=ana@acme.example")
		before := s.counts()
		s.refused(s.get(strings.Replace(cb, s.conn.ID, second.ID, 1)), 400, "mix_up")
		if s.counts() != before {
			t.Fatal("wrote")
		}
	})
	t.Run("a wrong iss parameter", func(t *testing.T) {
		s.op.Misbehave(ssotest.WrongISSParam)
		defer s.op.Behave()
		before, tokens := s.counts(), s.op.TokenRequests()
		s.refused(s.signIn("/sso/start?email=ana@acme.example"), 400, "mix_up")
		if s.counts() != before || s.op.TokenRequests() != tokens {
			t.Fatal("wrote or exchanged the code")
		}
	})
	t.Run("iss parameter missing from a provider that sends it", func(t *testing.T) {
		s.op.Misbehave(ssotest.NoISSParam)
		defer s.op.Behave()
		s.refused(s.signIn("/sso/start?email=ana@acme.example"), 400, "mix_up")
	})
	t.Run("access denied", func(t *testing.T) {
		s.op.Deny()
		before := s.counts()
		r := s.signIn("/sso/start?email=ana@acme.example")
		s.refused(r, 403, "access_denied")
		if !strings.Contains(string(r.body), "Sign-in cancelled") || s.counts() != before {
			t.Fatalf("%s", r.body)
		}
		if m := string(s.get(s.url + "/metrics").body); !strings.Contains(m, `hub_sso_refusals_total{reason="access_denied"} 1`) {
			t.Fatal("the refusal is not counted")
		}
	})
}

// TestSSOMisbehavingProvider: every wrong token is refused with the clear
// page, and nothing is created.
func TestSSOMisbehavingProvider(t *testing.T) {
	s := newSSOHub(t, nil)
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example")) // the keyset fetched once
	s.op.AddUser(ssotest.User{Subject: "new", Email: "new@acme.example", EmailVerified: &yes, Name: "New Person"})
	s.op.SignInAs("new")
	for name, tc := range map[string]struct {
		m      ssotest.Misbehaviour
		status int
		reason string
	}{
		"wrong issuer":                  {ssotest.WrongIssuer, 403, "id_token_invalid"},
		"wrong audience":                {ssotest.WrongAudience, 403, "id_token_invalid"},
		"expired token":                 {ssotest.Expired, 403, "id_token_invalid"},
		"bad nonce":                     {ssotest.BadNonce, 403, "nonce_mismatch"},
		"several audiences and no azp":  {ssotest.ExtraAudienceNoAzp, 403, "azp_invalid"},
		"azp another client":            {ssotest.WrongAzp, 403, "azp_invalid"},
		"unsigned token":                {ssotest.Unsigned, 403, "id_token_invalid"},
		"signed with a key not its own": {ssotest.UnknownKey, 403, "id_token_invalid"},
		"email_verified false":          {ssotest.EmailUnverified, 403, "email_unverified"},
	} {
		t.Run(name, func(t *testing.T) {
			s.op.Misbehave(tc.m)
			defer s.op.Behave()
			before := s.counts()
			s.refused(s.signIn("/sso/start?email=new@acme.example"), tc.status, tc.reason)
			if got := s.counts(); got != before {
				t.Fatalf("created %+v after %+v", got, before)
			}
		})
	}
	t.Run("unknown kids refetch the keyset within the limit", func(t *testing.T) {
		s.op.Misbehave(ssotest.UnknownKey)
		defer s.op.Behave()
		s.advance(time.Minute) // past MinRefetch since the first fetch
		fetches := s.op.JWKSFetches()
		for range 3 {
			s.refused(s.signIn("/sso/start?email=new@acme.example"), 403, "id_token_invalid")
		}
		if n := s.op.JWKSFetches() - fetches; n != 1 {
			t.Fatalf("%d keyset fetches for 3 tokens of unknown kids within MinRefetch, want 1", n)
		}
	})
	t.Run("a rotated key is fetched", func(t *testing.T) {
		s.op.RotateKey(true)
		s.advance(time.Minute)
		s.handedOff(s.signIn("/sso/start?email=new@acme.example"))
	})
	t.Run("the keyset down after a first fetch", func(t *testing.T) {
		s.op.JWKSDown(true)
		defer s.op.JWKSDown(false)
		s.advance(3 * time.Hour) // past the keyset's max-age
		s.handedOff(s.signIn("/sso/start?email=new@acme.example"))
		s.handedOff(s.signIn("/sso/start?email=new@acme.example"))
	})
}

// TestSSOOnePersonOneUser: the employee the directory provisioned is the
// user who signs in, by employee id or by verified email; an unverified
// email matches no one; the directory's deactivation refuses the sign-in,
// and without JIT an unlisted employee is refused; refusals write nothing.
func TestSSOOnePersonOneUser(t *testing.T) {
	s := newSSOHub(t, map[string]any{"require_email_verified": false})
	provision := func(userName, externalID, email string, active bool) string {
		id := s.newLearner("acme")
		s.inTenant("acme", func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`UPDATE users SET user_name = $2, external_id = $3, email = nullif($4, ''), active = $5,
				provisioned_at = now(), name = 'From the directory' WHERE id = $1`, id, userName, externalID, email, active)
			return err
		})
		return id
	}
	t.Run("by employee id", func(t *testing.T) {
		id := provision("bo", "E-100", "", true)
		s.op.AddUser(ssotest.User{Subject: "bo", Email: "bo.other@acme.example", EmailVerified: &yes, Claims: map[string]any{"employee_id": "E-100"}})
		s.op.SignInAs("bo")
		if c := s.handedOff(s.signIn("/sso/start?email=bo@acme.example")); c["sub"] != id {
			t.Fatalf("signed in as %v, want the provisioned %s", c["sub"], id)
		}
	})
	t.Run("by verified email", func(t *testing.T) {
		id := provision("cy", "E-200", "Cy@Acme.example", true)
		s.op.AddUser(ssotest.User{Subject: "cy", Email: "cy@acme.example", EmailVerified: &yes})
		s.op.SignInAs("cy")
		if c := s.handedOff(s.signIn("/sso/start?email=cy@acme.example")); c["sub"] != id {
			t.Fatalf("signed in as %v, want %s", c["sub"], id)
		}
	})
	t.Run("an unverified email matches no one", func(t *testing.T) {
		id := provision("di", "E-300", "di@acme.example", true)
		s.op.AddUser(ssotest.User{Subject: "di", Email: "di@acme.example", EmailVerified: &no})
		s.op.SignInAs("di")
		if c := s.handedOff(s.signIn("/sso/start?email=di@acme.example")); c["sub"] == id {
			t.Fatal("matched on an unverified email")
		}
	})
	t.Run("deactivated by the directory", func(t *testing.T) {
		provision("ed", "E-400", "", false)
		s.op.AddUser(ssotest.User{Subject: "ed", Email: "ed@acme.example", EmailVerified: &yes, Claims: map[string]any{"employee_id": "E-400"}})
		s.op.SignInAs("ed")
		before := s.counts()
		r := s.signIn("/sso/start?email=ed@acme.example")
		s.refused(r, 403, "deactivated")
		if !strings.Contains(string(r.body), "deactivated by your organisation") || s.counts() != before {
			t.Fatalf("%s", r.body)
		}
	})
	t.Run("an active user before a deactivated one of the same email", func(t *testing.T) {
		provision("ivy-2019", "E-700", "ivy@acme.example", false)
		id := provision("ivy", "E-701", "ivy@acme.example", true)
		s.op.AddUser(ssotest.User{Subject: "ivy", Email: "ivy@acme.example", EmailVerified: &yes})
		s.op.SignInAs("ivy")
		if c := s.handedOff(s.signIn("/sso/start?email=ivy@acme.example")); c["sub"] != id {
			t.Fatalf("signed in as %v, want the active %s", c["sub"], id)
		}
	})
	t.Run("userinfo fills what the id_token lacks", func(t *testing.T) {
		id := provision("fa", "E-500", "", true)
		s.op.AddUser(ssotest.User{Subject: "fa", Email: "fa@acme.example", EmailVerified: &yes,
			UserinfoOnly: map[string]any{"employee_id": "E-500"}})
		s.op.SignInAs("fa")
		calls := s.op.UserinfoRequests()
		if c := s.handedOff(s.signIn("/sso/start?email=fa@acme.example")); c["sub"] != id {
			t.Fatalf("signed in as %v, want %s (matched by the employee id from userinfo)", c["sub"], id)
		}
		if s.op.UserinfoRequests() != calls+1 {
			t.Fatal("userinfo not asked")
		}
	})
	t.Run("re-hired: the directory's new user, not the deprovisioned one", func(t *testing.T) {
		old := provision("jo", "E-800", "jo@acme.example", true)
		s.op.AddUser(ssotest.User{Subject: "jo", Email: "jo@acme.example", EmailVerified: &yes, Claims: map[string]any{"employee_id": "E-800"}})
		s.op.SignInAs("jo")
		if c := s.handedOff(s.signIn("/sso/start?email=jo@acme.example")); c["sub"] != old {
			t.Fatalf("signed in as %v, want %s", c["sub"], old)
		}
		// The directory deletes Jo (deprovisioned: the row stays, its
		// directory ids cleared, its email kept), then lists them again.
		s.inTenant("acme", func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`UPDATE users SET active = false, deactivated_at = now(), deprovisioned_at = now(),
				user_name = NULL, external_id = NULL WHERE id = $1`, old)
			return err
		})
		rehired := provision("jo", "E-800", "jo@acme.example", true)
		c := s.handedOff(s.signIn("/sso/start?email=jo@acme.example"))
		if c["sub"] != rehired {
			t.Fatalf("signed in as %v, want the new user %s (the old one is %s)", c["sub"], rehired, old)
		}
		var linked string
		s.inTenant("acme", func(tx *sqlx.Tx) error {
			return tx.Get(&linked, `SELECT user_id FROM sso_identities WHERE subject = 'jo'`)
		})
		if linked != rehired {
			t.Fatalf("the identity still names %s, want %s", linked, rehired)
		}
	})
	t.Run("deactivation ends the sessions", func(t *testing.T) {
		id := provision("gu", "E-600", "", true)
		s.op.AddUser(ssotest.User{Subject: "gu", Email: "gu@acme.example", EmailVerified: &yes, Claims: map[string]any{"employee_id": "E-600"}})
		s.op.SignInAs("gu")
		s.handedOff(s.signIn("/sso/start?email=gu@acme.example"))
		if r := s.get(s.url + "/sso/session"); !strings.Contains(string(r.body), "You are signed in") {
			t.Fatalf("%s", r.body)
		}
		s.inTenant("acme", func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`UPDATE users SET active = false, deactivated_at = now() WHERE id = $1`, id)
			return err
		})
		if r := s.get(s.url + "/sso/session"); !strings.Contains(string(r.body), "not signed in") {
			t.Fatalf("still signed in after deactivation: %s", r.body)
		}
		if live := s.sessions(s.key, "?live=true&user="+id); len(live) != 0 {
			t.Fatalf("%d live sessions", len(live))
		}
	})
	t.Run("without JIT, an unlisted employee is refused", func(t *testing.T) {
		s.expect(s.do("PATCH", connectionsPath("acme")+"/"+s.conn.ID, s.key, map[string]any{"jit": false}), 200)
		defer func() {
			s.expect(s.do("PATCH", connectionsPath("acme")+"/"+s.conn.ID, s.key, map[string]any{"jit": true}), 200)
		}()
		s.op.AddUser(ssotest.User{Subject: "hal", Email: "hal@acme.example", EmailVerified: &yes})
		s.op.SignInAs("hal")
		before := s.counts()
		r := s.signIn("/sso/start?email=hal@acme.example")
		s.refused(r, 403, "not_provisioned")
		if !strings.Contains(string(r.body), "has not given you access") || s.counts() != before {
			t.Fatalf("%s", r.body)
		}
		// A provisioned one still signs in.
		s.op.SignInAs("bo")
		s.handedOff(s.signIn("/sso/start?email=bo@acme.example"))
	})
}

// TestSSOLogout: logout ends the session and follows the provider's
// end_session_endpoint with the id_token as hint; back-channel logout
// ends the sessions its token names and refuses a bad token.
func TestSSOLogout(t *testing.T) {
	s := newSSOHub(t, nil)
	t.Run("RP-initiated", func(t *testing.T) {
		s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
		r := s.get(s.url + "/sso/logout")
		if r.status != 200 || !strings.Contains(string(r.body), `method="post"`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
		cross := s.request("POST", "/sso/logout", "", nil)
		cross.Header.Set("Sec-Fetch-Site", "cross-site")
		if r := s.send(cross); r.status != 403 || s.sessionCookie() == "" || len(s.sessions(s.key, "?live=true")) != 1 {
			t.Fatalf("a cross-site sign-out: %d %s", r.status, r.body)
		}
		r = s.send(s.request("POST", "/sso/logout", "", nil))
		loc, _ := url.Parse(r.header.Get("Location"))
		if r.status != http.StatusSeeOther || !strings.HasPrefix(loc.String(), s.op.Issuer()+"/end_session?") {
			t.Fatalf("%d %s", r.status, loc)
		}
		if s.sessionCookie() != "" {
			t.Fatal("the session cookie stays")
		}
		back := s.get(loc.String())
		if back.status != http.StatusFound || !strings.HasPrefix(back.header.Get("Location"), s.url+"/sso/signed-out") {
			t.Fatalf("the provider did not send the browser back: %d %s", back.status, back.header.Get("Location"))
		}
		ends := s.op.EndSessions()
		if len(ends) != 1 || ends[0].IDTokenHint == "" || ends[0].PostLogoutRedirectURI != s.url+"/sso/signed-out" || ends[0].State == "" {
			t.Fatalf("%+v", ends)
		}
		if r := s.get(back.header.Get("Location")); r.status != 200 || !strings.Contains(string(r.body), "signed out") {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if live := s.sessions(s.key, "?live=true"); len(live) != 0 {
			t.Fatalf("%d live sessions after logout", len(live))
		}
	})
	sidOf := func() string {
		var sid string
		s.inTenant("acme", func(tx *sqlx.Tx) error {
			return tx.Get(&sid, `SELECT sid FROM sso_sessions WHERE ended_at IS NULL ORDER BY created_at DESC LIMIT 1`)
		})
		return sid
	}
	live := func() int { return len(s.sessions(s.key, "?live=true")) }
	ctx := context.Background()
	t.Run("back-channel by sid", func(t *testing.T) {
		s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
		s.client.Jar, _ = cookiejar.New(nil) // another browser
		s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
		sid := sidOf()
		status, err := s.op.BackChannelLogout(ctx, "hub", "", sid)
		if err != nil || status != 200 || live() != 1 {
			t.Fatalf("%d %v, %d live", status, err, live())
		}
	})
	t.Run("back-channel by sub", func(t *testing.T) {
		s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
		status, err := s.op.BackChannelLogout(ctx, "hub", "ana", "")
		if err != nil || status != 200 || live() != 0 {
			t.Fatalf("%d %v, %d live", status, err, live())
		}
	})
	post := func(t *testing.T, token string) response {
		t.Helper()
		req, _ := http.NewRequest("POST", s.url+"/sso/backchannel-logout/"+s.conn.ID, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return s.send(req)
	}
	t.Run("refused logout tokens", func(t *testing.T) {
		s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
		for name, m := range map[string]ssotest.Misbehaviour{"wrong aud": ssotest.WrongAudience, "has a nonce": ssotest.BadNonce,
			"wrong issuer": ssotest.WrongIssuer, "unsigned": ssotest.Unsigned, "unknown key": ssotest.UnknownKey} {
			t.Run(name, func(t *testing.T) {
				s.op.Misbehave(m)
				tok, err := s.op.LogoutToken("hub", "ana", "")
				s.op.Behave()
				if err != nil {
					t.Fatal(err)
				}
				r := post(t, tok)
				if r.status != 400 || !strings.Contains(string(r.body), `"invalid_request"`) || live() != 1 {
					t.Fatalf("%d %s, %d live", r.status, r.body, live())
				}
			})
		}
		t.Run("missing events", func(t *testing.T) {
			// An id_token is no logout token: it has no events claim.
			idt := s.op.EndSessions()[0].IDTokenHint
			if r := post(t, idt); r.status != 400 || live() != 1 {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
		t.Run("replayed jti", func(t *testing.T) {
			tok, _ := s.op.LogoutToken("hub", "nobody", "")
			if r := post(t, tok); r.status != 200 {
				t.Fatalf("first: %d %s", r.status, r.body)
			}
			if r := post(t, tok); r.status != 400 {
				t.Fatalf("replayed: %d %s", r.status, r.body)
			}
		})
		t.Run("no token, unknown connection", func(t *testing.T) {
			if r := post(t, ""); r.status != 400 {
				t.Fatalf("%d", r.status)
			}
			req, _ := http.NewRequest("POST", s.url+"/sso/backchannel-logout/nope", strings.NewReader("logout_token=x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if r := s.send(req); r.status != 400 {
				t.Fatalf("%d", r.status)
			}
		})
	})
}

// TestSSOSignInAsksConsentFirst: when the tenant's agreement asks for
// consent, a sign-in shows the consent page before the handoff, as a
// launch does, and the answer continues to the learning app.
func TestSSOSignInAsksConsentFirst(t *testing.T) {
	s := newSSOHub(t, nil)
	var a agreement
	s.expect(s.do("POST", "/api/v1/tenants/acme/agreements", s.key, terms(map[string]any{"consent": "opt_in"})), 201).json(t, &a)
	s.expect(s.do("POST", "/api/v1/tenants/acme/agreements/"+a.ID+"/activate", s.key, signatures), 200)
	page := s.signIn("/sso/start?email=ana@acme.example")
	m := continueField.FindSubmatch(page.body)
	if page.status != 200 || m == nil || !strings.Contains(string(page.body), "Sharing your progress") {
		t.Fatalf("no consent page: %d\n%s", page.status, page.body)
	}
	res, err := s.client.PostForm(s.url+"/lti/consent", url.Values{"continue": {string(m[1])}, "answer": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.handedOff(readResponse(res)); c["message_type"] != "SSOSignIn" || c["tenant"] != "acme" {
		t.Fatalf("%v", c)
	}
	// Answered: the next sign-in goes straight in.
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
}

// TestSSOSessionExpiry: a session ends after HUB_SSO_SESSION_IDLE unused,
// its idle expiry sliding with use, and at HUB_SSO_SESSION_MAX whatever
// happens; a suspended tenant's sign-ins are refused.
func TestSSOSessionExpiry(t *testing.T) {
	s := newSSOHub(t, nil)
	var mu sync.Mutex
	now := time.Now()
	s.deps.SSO.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s.deps.SSO.SessionIdle, s.deps.SSO.SessionMax = 30*time.Minute, 70*time.Minute
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	signedIn := func() bool {
		return strings.Contains(string(s.get(s.url+"/sso/session").body), "You are signed in")
	}
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
	for range 3 { // used every 20 minutes: the idle expiry slides
		advance(20 * time.Minute)
		if !signedIn() {
			t.Fatalf("ended while in use at %s", now)
		}
	}
	advance(20 * time.Minute) // 80 minutes: past the absolute end, 70
	if signedIn() {
		t.Fatal("a session outlived HUB_SSO_SESSION_MAX")
	}
	mu.Lock()
	now = time.Now() // the provider's tokens are issued at the real time
	mu.Unlock()
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
	advance(31 * time.Minute)
	if signedIn() {
		t.Fatal("a session outlived HUB_SSO_SESSION_IDLE unused")
	}

	t.Run("paged", func(t *testing.T) {
		var page struct {
			Items      []ssoSession
			NextCursor string `json:"next_cursor"`
		}
		s.expect(s.do("GET", "/api/v1/tenants/acme/sso/sessions?limit=1", s.key, nil), 200).json(t, &page)
		if len(page.Items) != 1 || page.NextCursor == "" {
			t.Fatalf("%+v", page)
		}
		first, cursor := page.Items[0].ID, page.NextCursor
		page.NextCursor = ""
		s.expect(s.do("GET", "/api/v1/tenants/acme/sso/sessions?limit=1&cursor="+cursor, s.key, nil), 200).json(t, &page)
		if len(page.Items) != 1 || page.Items[0].ID == first || page.NextCursor != "" {
			t.Fatalf("%+v", page)
		}
	})
	t.Run("too many starts from one source", func(t *testing.T) {
		s.deps.SSO.StartLimiter = lti.NewSourceLimiter(0.001, 2, 100)
		defer func() { s.deps.SSO.StartLimiter = nil }()
		for range 2 {
			s.authorize("/sso/start?email=ana@acme.example")
		}
		r := s.get(s.url + "/sso/start?email=ana@acme.example")
		s.refused(r, 429, "rate_limited")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
	t.Run("a suspended tenant", func(t *testing.T) {
		s.expect(s.do("POST", "/api/v1/tenants/acme/suspend", adminToken, nil), 200)
		before := s.counts()
		s.refused(s.get(s.url+"/sso/start?email=ana@acme.example"), 403, "tenant_suspended")
		if s.counts() != before {
			t.Fatal("wrote")
		}
	})
}

// TestSSORowSecurity: another tenant's transaction sees and changes none
// of a tenant's sign-in rows, whatever its query says: row-level security
// scopes them a second time.
func TestSSORowSecurity(t *testing.T) {
	s := newSSOHub(t, nil)
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
	s.authorize("/sso/start?email=ana@acme.example") // a sign-in in progress
	s.createTenant("other", "employer")
	tables := []string{"sso_connections", "tenant_domains", "sso_identities", "sso_sign_ins", "sso_sessions"}
	count := func(slug string) map[string]int {
		n := map[string]int{}
		s.inTenant(slug, func(tx *sqlx.Tx) error {
			for _, table := range tables {
				var k int
				if err := tx.Get(&k, `SELECT count(*) FROM `+table); err != nil {
					return err
				}
				n[table] = k
			}
			return nil
		})
		return n
	}
	for table, k := range count("acme") {
		if k == 0 {
			t.Fatalf("acme has no %s rows to hide", table)
		}
	}
	for table, k := range count("other") {
		if k != 0 {
			t.Fatalf("another tenant sees %d of acme's %s rows", k, table)
		}
	}
	s.inTenant("other", func(tx *sqlx.Tx) error {
		res, err := tx.Exec(`UPDATE sso_sessions SET ended_at = now(), end_reason = 'admin'`)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 0 {
			t.Fatalf("another tenant ended %d of acme's sessions", n)
		}
		return nil
	})
	if live := s.sessions(s.key, "?live=true"); len(live) != 1 {
		t.Fatalf("%d live sessions", len(live))
	}
}

// TestSSOBackchannelLogoutWithAMappedSubject: a connection whose subject
// is another claim (Entra's oid) is still logged out by the sub the
// provider's logout token names.
func TestSSOBackchannelLogoutWithAMappedSubject(t *testing.T) {
	s := newSSOHub(t, map[string]any{"claims": map[string]string{"subject": "oid"}})
	s.op.AddUser(ssotest.User{Subject: "pairwise-7", Email: "ola@acme.example", EmailVerified: &yes, Claims: map[string]any{"oid": "0f7c-oid"}})
	s.op.SignInAs("pairwise-7")
	s.handedOff(s.signIn("/sso/start?email=ola@acme.example"))
	var subject string
	s.inTenant("acme", func(tx *sqlx.Tx) error { return tx.Get(&subject, `SELECT subject FROM sso_identities`) })
	if subject != "0f7c-oid" {
		t.Fatalf("identity subject %q, want the mapped claim's", subject)
	}
	if status, err := s.op.BackChannelLogout(context.Background(), "hub", "pairwise-7", ""); err != nil || status != 200 {
		t.Fatalf("%d %v", status, err)
	}
	if live := s.sessions(s.key, "?live=true"); len(live) != 0 {
		t.Fatalf("%d live sessions", len(live))
	}
}
