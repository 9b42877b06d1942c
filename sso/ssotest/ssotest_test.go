package ssotest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"golang.org/x/oauth2"

	"github.com/klasterina/hub/sso/ssotest"
)

const (
	clientID    = "hub"
	secret      = "s3cret+/="
	redirectURI = "http://127.0.0.1:9/sso/callback"
)

var verified = true

var ada = ssotest.User{Subject: "ada", Email: "ada@example.com", EmailVerified: &verified,
	Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace", Groups: []string{"staff", "maths"},
	Claims: map[string]any{"employee_id": "E-1"}, UserinfoOnly: map[string]any{"phone_number": "+44 20 0000 0000"}}

// rp is a relying party as the hub is one: go-oidc and x/oauth2.
type rp struct {
	p        *ssotest.Provider
	provider *oidc.Provider
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
	browser  *http.Client // follows no redirects: the test reads them
}

func newProvider(t *testing.T, opts ...ssotest.Option) *ssotest.Provider {
	t.Helper()
	p := ssotest.New(opts...)
	t.Cleanup(p.Close)
	p.AddClient(ssotest.Client{ID: clientID, Secret: secret, RedirectURIs: []string{redirectURI},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1:9/signed-out"}})
	p.AddUser(ada)
	p.SignInAs("ada")
	return p
}

func newRP(t *testing.T, p *ssotest.Provider) *rp {
	t.Helper()
	provider, err := oidc.NewProvider(context.Background(), p.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &rp{p: p, provider: provider,
		config: oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirectURI,
			Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"}},
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID}),
		browser: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}}
}

// login is one authorization request: what the browser is sent back with.
type login struct {
	verifier, nonce, state string
	back                   url.Values // the authorization response's parameters
}

// authorize sends the browser to the authorization endpoint with PKCE
// (S256) and a nonce, and returns the parameters it comes back with.
func (r *rp) authorize(t *testing.T, extra ...oauth2.AuthCodeOption) login {
	t.Helper()
	l := login{verifier: oauth2.GenerateVerifier(), nonce: "n-" + oauth2.GenerateVerifier()[:8], state: "st-" + oauth2.GenerateVerifier()[:8]}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(l.verifier), oidc.Nonce(l.nonce)}, extra...)
	l.back = r.follow(t, r.config.AuthCodeURL(l.state, opts...))
	return l
}

// follow GETs u and returns the query of the redirect it answers.
func (r *rp) follow(t *testing.T, u string) url.Values {
	t.Helper()
	resp, err := r.browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return redirectQuery(t, resp)
}

func redirectQuery(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d, want a redirect: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirectURI) {
		t.Fatalf("redirected to %q", resp.Header.Get("Location"))
	}
	return loc.Query()
}

// signIn runs the whole code flow: the token response and its verified
// id_token.
func (r *rp) signIn(t *testing.T) (login, *oauth2.Token, *oidc.IDToken) {
	t.Helper()
	l := r.authorize(t)
	tok, err := r.config.Exchange(context.Background(), l.back.Get("code"), oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	id, err := r.verifier.Verify(context.Background(), rawIDToken(t, tok))
	if err != nil {
		t.Fatalf("verify id_token: %v", err)
	}
	return l, tok, id
}

func rawIDToken(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		t.Fatal("no id_token in the token response")
	}
	return raw
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	var m map[string]any
	if err := r.provider.Claims(&m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer": p.Issuer(), "end_session_endpoint": p.Issuer() + "/end_session", "userinfo_endpoint": p.Issuer() + "/userinfo",
		"backchannel_logout_supported": true, "backchannel_logout_session_supported": true,
		"authorization_response_iss_parameter_supported": true,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	lists := map[string]string{"code_challenge_methods_supported": "S256", "response_types_supported": "code",
		"id_token_signing_alg_values_supported": "RS256", "token_endpoint_auth_methods_supported": "client_secret_basic client_secret_post"}
	for k, v := range lists {
		if got := join(m[k]); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func join(v any) string {
	var s []string
	for _, x := range v.([]any) {
		s = append(s, x.(string))
	}
	return strings.Join(s, " ")
}

func TestCodeFlow(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	l, tok, id := r.signIn(t)
	if l.back.Get("state") != l.state || l.back.Get("iss") != p.Issuer() {
		t.Errorf("authorization response %v: want state %s and iss %s (RFC 9207)", l.back, l.state, p.Issuer())
	}
	if id.Subject != "ada" || id.Nonce != l.nonce || tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
		t.Errorf("sub %q nonce %q (want %q), token type %q, expiry %v", id.Subject, id.Nonce, l.nonce, tok.TokenType, tok.Expiry)
	}
	var c map[string]any
	if err := id.Claims(&c); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace",
		"given_name": "Ada", "family_name": "Lovelace", "employee_id": "E-1"} {
		if c[k] != v {
			t.Errorf("id_token %s = %v, want %v", k, c[k], v)
		}
	}
	if join(c["groups"]) != "staff maths" || c["sid"] == nil || c["auth_time"] == nil || c["azp"] != nil || c["phone_number"] != nil {
		t.Errorf("id_token claims %v: want groups, sid, auth_time, no azp, no userinfo-only claims", c)
	}
	info, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var ic map[string]any
	_ = info.Claims(&ic)
	if info.Subject != "ada" || ic["phone_number"] != "+44 20 0000 0000" || ic["employee_id"] != "E-1" {
		t.Errorf("userinfo %v", ic)
	}
	if p.TokenRequests() != 1 || p.UserinfoRequests() != 1 {
		t.Errorf("%d token and %d userinfo requests, want 1 and 1", p.TokenRequests(), p.UserinfoRequests())
	}
}

func TestScopesLimitClaims(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	r.config.Scopes = []string{oidc.ScopeOpenID}
	_, _, id := r.signIn(t)
	var c map[string]any
	_ = id.Claims(&c)
	if c["email"] != nil || c["name"] != nil || c["groups"] == nil || c["employee_id"] != "E-1" {
		t.Errorf("claims with scope openid alone: %v; want no email or profile, groups and Claims kept", c)
	}
}

// A code is spent by its first redemption; presenting it again is refused
// and revokes the access token it gave (RFC 6749 §10.5).
func TestCodeIsSingleUse(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	l := r.authorize(t)
	tok, err := r.config.Exchange(context.Background(), l.back.Get("code"), oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.config.Exchange(context.Background(), l.back.Get("code"), oauth2.VerifierOption(l.verifier))
	wantTokenError(t, err, "invalid_grant")
	if _, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("the access token of a replayed code still works")
	}
}

func TestTokenRefusals(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	clock := newClock()
	p2 := newProvider(t, ssotest.WithClock(clock.now))
	p.AddClient(ssotest.Client{ID: "other", Secret: "x", RedirectURIs: []string{redirectURI}})
	tests := []struct {
		name string
		p    *ssotest.Provider
		tune func(c *oauth2.Config, l *login, opts *[]oauth2.AuthCodeOption)
		want string
	}{
		{"wrong verifier", p, func(_ *oauth2.Config, _ *login, o *[]oauth2.AuthCodeOption) {
			*o = []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
		}, "invalid_grant"},
		{"no verifier", p, func(_ *oauth2.Config, _ *login, o *[]oauth2.AuthCodeOption) { *o = nil }, "invalid_grant"},
		{"wrong redirect_uri", p, func(c *oauth2.Config, _ *login, _ *[]oauth2.AuthCodeOption) {
			c.RedirectURL = redirectURI + "/other"
		}, "invalid_grant"},
		{"wrong secret", p, func(c *oauth2.Config, _ *login, _ *[]oauth2.AuthCodeOption) { c.ClientSecret = "guess" }, "invalid_client"},
		{"code of another client", p, func(c *oauth2.Config, _ *login, _ *[]oauth2.AuthCodeOption) {
			c.ClientID, c.ClientSecret = "other", "x"
		}, "invalid_grant"},
		{"unknown code", p, func(_ *oauth2.Config, l *login, _ *[]oauth2.AuthCodeOption) { l.back.Set("code", "forged") }, "invalid_grant"},
		{"expired code", p2, func(*oauth2.Config, *login, *[]oauth2.AuthCodeOption) {
			clock.advance(ssotest.CodeLifetime)
		}, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRP(t, tt.p)
			l := r.authorize(t)
			code := l.back.Get("code")
			opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(l.verifier)}
			tt.tune(&r.config, &l, &opts)
			_, err := r.config.Exchange(context.Background(), l.back.Get("code"), opts...)
			wantTokenError(t, err, tt.want)
			if tt.want == "invalid_client" || code != l.back.Get("code") {
				return // the code was never presented: still good
			}
			// A refused redemption spends the code all the same.
			r = newRP(t, tt.p)
			_, err = r.config.Exchange(context.Background(), code, oauth2.VerifierOption(l.verifier))
			wantTokenError(t, err, "invalid_grant")
		})
	}
}

// clock is a time the test moves on.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestCodeGoodWithinItsLifetime(t *testing.T) {
	t.Parallel()
	clock := newClock()
	p := newProvider(t, ssotest.WithClock(clock.now))
	r := newRP(t, p)
	l := r.authorize(t)
	clock.advance(ssotest.CodeLifetime - time.Second)
	if _, err := r.config.Exchange(context.Background(), l.back.Get("code"), oauth2.VerifierOption(l.verifier)); err != nil {
		t.Errorf("a code %v old: %v", ssotest.CodeLifetime-time.Second, err)
	}
}

func TestClientSecretPost(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	r.config.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	r.signIn(t)
}

func wantTokenError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code {
		t.Fatalf("exchange error %v, want %s", err, code)
	}
}

func TestAuthorizationRefusals(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	tests := []struct {
		name  string
		query func(q url.Values)
		want  string
	}{
		{"plain PKCE", func(q url.Values) {
			q.Set("code_challenge", q.Get("code_challenge")[:43])
			q.Set("code_challenge_method", "plain")
		}, "invalid_request"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		{"no method", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
		{"no openid scope", func(q url.Values) { q.Set("scope", "email profile") }, "invalid_scope"},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "id_token") }, "unsupported_response_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse(r.config.AuthCodeURL("st-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			q := u.Query()
			tt.query(q)
			u.RawQuery = q.Encode()
			back := r.follow(t, u.String())
			if back.Get("error") != tt.want || back.Get("state") != "st-1" || back.Get("iss") != p.Issuer() || back.Has("code") {
				t.Errorf("answer %v, want error %s with state and iss", back, tt.want)
			}
		})
	}
	for name, tune := range map[string]func(q url.Values){
		"unregistered redirect_uri": func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:9/elsewhere") },
		"redirect_uri prefix":       func(q url.Values) { q.Set("redirect_uri", redirectURI+"/more") },
		"unknown client":            func(q url.Values) { q.Set("client_id", "nobody") },
	} {
		t.Run(name, func(t *testing.T) {
			u, _ := url.Parse(r.config.AuthCodeURL("st-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			q := u.Query()
			tune(q)
			u.RawQuery = q.Encode()
			resp, err := r.browser.Get(u.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("status %d, Location %q: want a 400 page, no redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func TestDeny(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	p.Deny()
	l := r.authorize(t)
	if l.back.Get("error") != "access_denied" || l.back.Get("state") != l.state || l.back.Has("code") {
		t.Errorf("denied answer %v", l.back)
	}
	r.signIn(t) // only the next one is denied
}

func TestPromptNone(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	if l := r.authorize(t, oauth2.SetAuthURLParam("prompt", "none")); !l.back.Has("code") {
		t.Errorf("prompt=none while SignInAs: %v", l.back)
	}
	p.SignInAs("")
	if l := r.authorize(t, oauth2.SetAuthURLParam("prompt", "none")); l.back.Get("error") != "login_required" {
		t.Errorf("prompt=none with the sign-in page to show: %v", l.back)
	}
}

// unverified exchanges a code and returns the raw id_token, unverified.
func (r *rp) unverified(t *testing.T) (login, string) {
	t.Helper()
	l := r.authorize(t)
	tok, err := r.config.Exchange(context.Background(), l.back.Get("code"), oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return l, rawIDToken(t, tok)
}

func TestMisbehavioursVerifierRefuses(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	for name, m := range map[string]ssotest.Misbehaviour{"WrongIssuer": ssotest.WrongIssuer,
		"WrongAudience": ssotest.WrongAudience, "Expired": ssotest.Expired, "Unsigned": ssotest.Unsigned,
		"UnknownKey": ssotest.UnknownKey} {
		t.Run(name, func(t *testing.T) {
			p.Misbehave(m)
			_, raw := r.unverified(t)
			p.Behave()
			if _, err := r.verifier.Verify(context.Background(), raw); err == nil {
				t.Errorf("go-oidc accepted the %s id_token", name)
			}
			r.signIn(t) // Behave mends it
		})
	}
}

func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	msg, err := jws.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(msg.Payload(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMisbehavioursInClaims(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	t.Run("BadNonce", func(t *testing.T) {
		p.Misbehave(ssotest.BadNonce)
		defer p.Behave()
		l, raw := r.unverified(t)
		id, err := r.verifier.Verify(context.Background(), raw)
		if err != nil || id.Nonce == "" || id.Nonce == l.nonce {
			t.Errorf("nonce %v (request's %q), err %v: want a signed token with another nonce", id, l.nonce, err)
		}
	})
	t.Run("ExtraAudienceNoAzp", func(t *testing.T) {
		p.Misbehave(ssotest.ExtraAudienceNoAzp)
		defer p.Behave()
		_, raw := r.unverified(t)
		c := claimsOf(t, raw)
		if join(c["aud"]) != clientID+" "+ssotest.OtherClient || c["azp"] != nil {
			t.Errorf("aud %v azp %v", c["aud"], c["azp"])
		}
	})
	t.Run("WrongAzp", func(t *testing.T) {
		p.Misbehave(ssotest.WrongAzp)
		defer p.Behave()
		_, raw := r.unverified(t)
		if c := claimsOf(t, raw); c["azp"] != ssotest.OtherClient {
			t.Errorf("azp %v", c["azp"])
		}
	})
	t.Run("EmailUnverified", func(t *testing.T) {
		p.Misbehave(ssotest.EmailUnverified)
		defer p.Behave()
		_, tok, id := r.signIn(t)
		var c map[string]any
		_ = id.Claims(&c)
		info, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
		if c["email_verified"] != false || err != nil || info.EmailVerified {
			t.Errorf("email_verified %v in the id_token, userinfo %v (%v)", c["email_verified"], info, err)
		}
	})
	t.Run("NoISSParam", func(t *testing.T) {
		p.Misbehave(ssotest.NoISSParam)
		defer p.Behave()
		if l := r.authorize(t); l.back.Has("iss") || !l.back.Has("code") {
			t.Errorf("authorization response %v", l.back)
		}
	})
	t.Run("WrongISSParam", func(t *testing.T) {
		p.Misbehave(ssotest.WrongISSParam)
		defer p.Behave()
		if l := r.authorize(t); l.back.Get("iss") == p.Issuer() || l.back.Get("iss") == "" {
			t.Errorf("authorization response %v", l.back)
		}
	})
}

func TestRotateKey(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	_, old := r.unverified(t)
	oldKid := p.KeyID()
	p.RotateKey(false)
	if p.KeyID() == oldKid {
		t.Fatal("RotateKey kept the kid")
	}
	_, _, id := r.signIn(t) // signed by the new key: go-oidc refetches the JWKS
	if id == nil || keyCount(t, p) != 2 {
		t.Fatalf("JWKS has %d keys after a rotation that keeps the old, want 2", keyCount(t, p))
	}
	if _, err := newRP(t, p).verifier.Verify(context.Background(), old); err != nil {
		t.Errorf("a token of the kept key: %v", err)
	}
	p.RotateKey(true)
	if n := keyCount(t, p); n != 1 {
		t.Errorf("JWKS has %d keys after RotateKey(true), want 1", n)
	}
	if _, err := newRP(t, p).verifier.Verify(context.Background(), old); err == nil {
		t.Error("a token of a dropped key still verifies")
	}
}

func keyCount(t *testing.T, p *ssotest.Provider) int {
	t.Helper()
	set, err := jwk.Fetch(context.Background(), p.Issuer()+"/jwks")
	if err != nil {
		t.Fatal(err)
	}
	return set.Len()
}

func TestJWKSDown(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	_, raw := newRP(t, p).unverified(t)
	r := newRP(t, p) // a fresh verifier holds no keys yet
	before := p.JWKSFetches()
	p.JWKSDown(true)
	if _, err := r.verifier.Verify(context.Background(), raw); err == nil {
		t.Error("verified without a JWKS")
	}
	if p.JWKSFetches() != before+1 {
		t.Errorf("%d JWKS fetches, want %d", p.JWKSFetches(), before+1)
	}
	p.JWKSDown(false)
	if _, err := r.verifier.Verify(context.Background(), raw); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}

func TestBackChannelLogout(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	var mu sync.Mutex
	var got []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		got = append(got, r.PostFormValue("logout_token"))
		w.WriteHeader(http.StatusOK)
	}))
	defer rcv.Close()
	p.AddClient(ssotest.Client{ID: "bcl", Secret: "x", RedirectURIs: []string{redirectURI}, BackChannelLogoutURI: rcv.URL})
	status, err := p.BackChannelLogout(context.Background(), "bcl", "ada", "sid-1")
	if err != nil || status != http.StatusOK || len(got) != 1 {
		t.Fatalf("status %d, err %v, %d tokens received", status, err, len(got))
	}
	set, err := jwk.Fetch(context.Background(), p.Issuer()+"/jwks")
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify([]byte(got[0]), jws.WithKeySet(set, jws.WithRequireKid(true)))
	if err != nil {
		t.Fatalf("logout token does not verify: %v", err)
	}
	msg, _ := jws.Parse([]byte(got[0]))
	if typ := msg.Signatures()[0].ProtectedHeaders().Type(); typ != "logout+jwt" {
		t.Errorf("typ %q", typ)
	}
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	ev, _ := c["events"].(map[string]any)
	_, isLogout := ev[ssotest.BackChannelLogoutEvent].(map[string]any)
	if !isLogout || c["iss"] != p.Issuer() || c["aud"] != "bcl" || c["sub"] != "ada" || c["sid"] != "sid-1" ||
		c["jti"] == nil || c["iat"] == nil || c["exp"] == nil || c["nonce"] != nil {
		t.Errorf("logout token claims %v", c)
	}
	if _, err := p.BackChannelLogout(context.Background(), clientID, "ada", ""); err == nil {
		t.Error("a client without backchannel_logout_uri got a logout token")
	}
	if _, err := p.BackChannelLogout(context.Background(), "bcl", "", ""); err == nil {
		t.Error("a logout token without sub or sid was sent")
	}
	p.Misbehave(ssotest.BadNonce)
	if _, err := p.BackChannelLogout(context.Background(), "bcl", "", "sid-1"); err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(t, got[1]); c["nonce"] == nil || c["sub"] != nil {
		t.Errorf("BadNonce logout token %v: want a nonce and no sub", c)
	}
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	_, tok, _ := r.signIn(t)
	hint := rawIDToken(t, tok)
	end := func(q url.Values) *http.Response {
		resp, err := r.browser.Get(p.Issuer() + "/end_session?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := end(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://127.0.0.1:9/signed-out"}, "state": {"s1"}})
	if loc := resp.Header.Get("Location"); loc != "http://127.0.0.1:9/signed-out?state=s1" {
		t.Errorf("registered post_logout_redirect_uri: status %d, Location %q", resp.StatusCode, loc)
	}
	resp = end(url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {"http://127.0.0.1:9/signed-out"}})
	if loc := resp.Header.Get("Location"); loc != "http://127.0.0.1:9/signed-out" {
		t.Errorf("by client_id: Location %q", loc)
	}
	for name, q := range map[string]url.Values{
		"unregistered uri":   {"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://127.0.0.1:9/evil"}},
		"no client":          {"post_logout_redirect_uri": {"http://127.0.0.1:9/signed-out"}},
		"forged hint":        {"id_token_hint": {hint[:len(hint)-4] + "AAAA"}, "post_logout_redirect_uri": {"http://127.0.0.1:9/signed-out"}},
		"hint of another":    {"id_token_hint": {hint}, "client_id": {"other"}, "post_logout_redirect_uri": {"http://127.0.0.1:9/signed-out"}},
		"no redirect at all": {"id_token_hint": {hint}},
	} {
		if resp := end(q); resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
			t.Errorf("%s: status %d, Location %q; want the signed-out page", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	got := p.EndSessions()
	if len(got) != 7 || got[0] != (ssotest.EndSession{IDTokenHint: hint, PostLogoutRedirectURI: "http://127.0.0.1:9/signed-out", State: "s1"}) {
		t.Errorf("recorded %d end_session requests, first %+v", len(got), got[0])
	}
}

func TestSignInPage(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.SignInAs("")
	p.AddUser(ssotest.User{Subject: "grace", Name: "<Grace & Hopper>", Email: "grace@example.com"})
	r := newRP(t, p)
	authURL := r.config.AuthCodeURL("st-page", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	resp, err := r.browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Ada Lovelace") || !strings.Contains(page, "&lt;Grace &amp; Hopper&gt;") ||
		strings.Contains(page, "<Grace") {
		t.Fatalf("sign-in page (%d):\n%s", resp.StatusCode, page)
	}
	u, _ := url.Parse(authURL)
	pick := func(subject string) url.Values {
		form := u.Query()
		form.Set("ssotest_subject", subject)
		resp, err := r.browser.PostForm(p.Issuer()+"/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return redirectQuery(t, resp)
	}
	if back := pick("grace"); !back.Has("code") || back.Get("state") != "st-page" {
		t.Errorf("picking grace: %v", back)
	}
	if back := pick(""); back.Get("error") != "access_denied" {
		t.Errorf("declining: %v", back)
	}
	if back := pick("nobody"); back.Get("error") != "access_denied" {
		t.Errorf("picking an unknown subject: %v", back)
	}
}

func TestUserinfoRefusesStrangers(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	for name, auth := range map[string]string{"none": "", "unknown token": "Bearer nope", "basic": "Basic eDp5"} {
		req, _ := http.NewRequest(http.MethodGet, p.Issuer()+"/userinfo", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s: status %d", name, resp.StatusCode)
		}
	}
}

// Sign-ins at once, with a misbehaviour toggled meanwhile: run with -race.
func TestConcurrentSignIns(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			l := r.authorize(t)
			if _, err := r.config.Exchange(context.Background(), l.back.Get("code"), oauth2.VerifierOption(l.verifier)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() { p.Misbehave(ssotest.EmailUnverified); p.Behave(); p.RotateKey(false) })
	wg.Wait()
	if p.TokenRequests() != 8 {
		t.Errorf("%d token requests, want 8", p.TokenRequests())
	}
}

// Requests x/oauth2 never makes, posted by hand.
func TestTokenRequestsByHand(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	r := newRP(t, p)
	tests := []struct {
		name      string
		form      url.Values
		basic     bool
		status    int
		errorCode string
	}{
		{"two authentication methods", url.Values{"client_secret": {secret}}, true, http.StatusUnauthorized, "invalid_client"},
		{"body client_id of another", url.Values{"client_id": {"other"}}, true, http.StatusUnauthorized, "invalid_client"},
		{"no authentication", url.Values{"client_id": {clientID}}, false, http.StatusUnauthorized, "invalid_client"},
		{"refresh grant", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, true, http.StatusBadRequest, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := r.authorize(t)
			form := url.Values{"grant_type": {"authorization_code"}, "code": {l.back.Get("code")},
				"redirect_uri": {redirectURI}, "code_verifier": {l.verifier}}
			for k, v := range tt.form {
				form[k] = v
			}
			req, _ := http.NewRequest(http.MethodPost, p.Issuer()+"/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.basic {
				req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.status || body["error"] != tt.errorCode || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("status %d, body %v", resp.StatusCode, body)
			}
			// The code was not spent: its client redeems it.
			if _, err := r.config.Exchange(context.Background(), l.back.Get("code"), oauth2.VerifierOption(l.verifier)); err != nil {
				t.Errorf("the code after a refused request: %v", err)
			}
		})
	}
}
