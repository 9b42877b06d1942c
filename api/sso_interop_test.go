package api_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"
	"golang.org/x/text/language"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg/pgtest"
)

// zitadelOP is the example OpenID provider of github.com/zitadel/oidc: an
// implementation the hub's own test provider (ssotest) shares nothing
// with, run on loopback with its in-memory storage and login page.
type zitadelOP struct {
	issuer string
	// tokens counts requests to its token endpoint.
	tokens atomic.Int64
}

// zitadelUsers is the example storage's storage.UserStore, holding the
// employees the tests sign in as.
type zitadelUsers map[string]*storage.User

func (u zitadelUsers) GetUserByID(id string) *storage.User { return u[id] }

func (u zitadelUsers) GetUserByUsername(name string) *storage.User {
	for _, user := range u {
		if user.Username == name {
			return user
		}
	}
	return nil
}

func (u zitadelUsers) ExampleClientID() string { return storage.ServiceUserID }

// listenLoopback is a listener for a server whose URL must be known
// before it starts.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// newZitadelOP starts the example provider on ln, its issuer its server's
// URL, with one client: the hub's confidential web client with secret.
func newZitadelOP(t testing.TB, ln net.Listener, users zitadelUsers, clientID, secret string, redirectURIs ...string) *zitadelOP {
	t.Helper()
	p := &zitadelOP{issuer: "http://" + ln.Addr().String()}
	// The clients are this provider's own, not the package's global ones
	// (storage.RegisterClients).
	store := storage.NewStorageWithClients(users, map[string]*storage.Client{
		clientID: storage.WebClient(clientID, secret, redirectURIs...)})
	// The example allows its http issuer itself (op.WithAllowInsecure).
	router := exampleop.SetupServer(p.issuer, store, nil, false)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/oauth/token" {
			p.tokens.Add(1)
		}
		router.ServeHTTP(w, r)
	}))
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	return p
}

var zitadelLoginForm = regexp.MustCompile(`<form method="POST" action="([^"]+)"[\s\S]*name="id" value="([^"]+)"`)

// TestSSOInteropZitadel: an employee signs in through an independent,
// maintained OpenID provider (zitadel's example OP: its own discovery,
// login page, PKCE check, client_secret_basic token endpoint, opaque
// access token and userinfo) and reaches the learning app; the provider
// held the sign-in to its PKCE challenge, and a replayed callback is
// refused and creates nothing.
func TestSSOInteropZitadel(t *testing.T) {
	app, _ := url.Parse(appURL)
	s := &ssoHub{now: time.Now()}
	d := pgtest.New(t)
	s.hub = serveHubWith(t, d, mustOpen(t, d), func(deps *api.Deps) {
		deps.Keysets.Now = s.clock
		deps.SSO.StartLimiter = nil
	}, func(c *config.Config) { c.AppURL = app })
	s.createTenant("acme", "employer")
	_, s.key = s.createKey("acme", "write")

	// The connection first: its redirect_uri is the client's to register.
	const clientID, secret = "hub", "hub-secret-of-at-least-some-length"
	ln := listenLoopback(t)
	s.expect(s.do("POST", connectionsPath("acme"), s.key, map[string]any{"name": "Zitadel", "issuer": "http://" + ln.Addr().String(),
		"client_id": clientID, "client_secret": secret}), 201).json(t, &s.conn)
	users := zitadelUsers{"u-ana": {ID: "u-ana", Username: "ana", Password: "correct horse", FirstName: "Ana", LastName: "Ng",
		Email: "ana@acme.example", EmailVerified: true, PreferredLanguage: language.English}}
	op := newZitadelOP(t, ln, users, clientID, secret, s.conn.RedirectURI)
	s.expect(s.do("PUT", domainPath("acme", "acme.example"), adminToken, map[string]any{"connection": s.conn.ID}), 201)

	// signInAt drives the browser from the hub's start to the provider's
	// redirect back to the callback, and returns the authorization request,
	// the cookies the start set and that redirect.
	signInAt := func(t *testing.T, start string) (authorize *url.URL, cookies []*http.Cookie, callback string) {
		t.Helper()
		r := s.get(s.url + start)
		cookies = (&http.Response{Header: r.header}).Cookies()
		authorize, _ = url.Parse(r.header.Get("Location"))
		if r.status != http.StatusFound || !strings.HasPrefix(authorize.String(), op.issuer+"/") {
			t.Fatalf("start: %d %s\n%s", r.status, authorize, r.body)
		}
		r = s.get(authorize.String())
		if r.status != http.StatusFound {
			t.Fatalf("authorize: %d %s", r.status, r.body)
		}
		login := s.get(resolve(t, authorize, r.header.Get("Location")))
		m := zitadelLoginForm.FindStringSubmatch(string(login.body))
		if login.status != 200 || m == nil {
			t.Fatalf("login page: %d %s", login.status, login.body)
		}
		req, _ := http.NewRequest("POST", resolve(t, authorize, m[1]), strings.NewReader(url.Values{
			"id": {m[2]}, "username": {"ana"}, "password": {"correct horse"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r = s.send(req)
		if r.status != http.StatusFound {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		r = s.get(resolve(t, authorize, r.header.Get("Location")))
		callback = r.header.Get("Location")
		if r.status != http.StatusFound || !strings.HasPrefix(callback, s.conn.RedirectURI+"?") {
			t.Fatalf("provider's redirect: %d %s\n%s", r.status, callback, r.body)
		}
		return authorize, cookies, callback
	}

	before := s.counts()
	authorize, cookies, cb := signInAt(t, "/sso/start?email=ana@acme.example")
	q := authorize.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" ||
		q.Get("client_id") != clientID || q.Get("redirect_uri") != s.conn.RedirectURI {
		t.Fatalf("authorization request %s", authorize)
	}
	claims := s.handedOff(s.get(cb))
	if claims["tenant"] != "acme" || claims["email"] != "ana@acme.example" || claims["name"] != "Ana Ng" || claims["sub"] == "" {
		t.Fatalf("handoff claims %v", claims)
	}
	if got := s.counts(); got != (counts{before.Users + 1, 1, 1}) {
		t.Fatalf("%+v after %+v", got, before)
	}
	var subject string
	s.inTenant("acme", func(tx *sqlx.Tx) error { return tx.Get(&subject, `SELECT subject FROM sso_identities`) })
	if subject != "u-ana" {
		t.Fatalf("identity of subject %q, want the provider's user id", subject)
	}

	t.Run("a replayed callback is refused and creates nothing", func(t *testing.T) {
		before, tokens := s.counts(), op.tokens.Load()
		// The state cookie went with the first use.
		s.refused(s.get(cb), 400, "state_missing")
		// Put back, it finds its sign-in spent: the code is not sent again.
		u, _ := url.Parse(s.conn.RedirectURI)
		s.client.Jar.SetCookies(u, cookies)
		s.refused(s.get(cb), 400, "state_used")
		if s.counts() != before || op.tokens.Load() != tokens {
			t.Fatalf("a replay wrote or exchanged: %+v after %+v", s.counts(), before)
		}
	})
	t.Run("signing in again, by tenant and connection, is the same user", func(t *testing.T) {
		_, _, cb := signInAt(t, "/sso/start?tenant=acme&connection="+s.conn.ID)
		s.handedOff(s.get(cb))
		if got := s.counts(); got.Users != before.Users+1 || got.Identities != 1 || got.Sessions != 2 {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("the provider holds the code to the PKCE challenge", func(t *testing.T) {
		_, _, cb := signInAt(t, "/sso/start?email=ana@acme.example")
		u, _ := url.Parse(cb)
		cfg := oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: s.conn.RedirectURI,
			Endpoint: oauth2.Endpoint{TokenURL: op.issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
		for _, opts := range [][]oauth2.AuthCodeOption{nil, {oauth2.VerifierOption(oauth2.GenerateVerifier())}} {
			_, err := cfg.Exchange(context.Background(), u.Query().Get("code"), opts...)
			if refused := (*oauth2.RetrieveError)(nil); !errors.As(err, &refused) || refused.Response.StatusCode != 400 {
				t.Fatalf("the code was redeemed without its own verifier: %v", err)
			}
		}
	})
}

// resolve is ref (a Location or a form's action) against base.
func resolve(t testing.TB, base *url.URL, ref string) string {
	t.Helper()
	u, err := base.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}
