package ltitest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/lti"
)

// toolKey is a tool's RSA key published at a keyset URL the platform is
// told of.
type toolKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newToolKey(t *testing.T) *toolKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &toolKey{kid: "tool-" + randomHex(4), priv: priv}
}

// publish serves k's public key as a keyset and points p at it.
func (k *toolKey) publish(t *testing.T, p *Platform) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		pub, _ := jwk.FromRaw(k.priv.Public())
		_ = pub.Set(jwk.KeyIDKey, k.kid)
		_ = pub.Set(jwk.AlgorithmKey, jwa.RS256)
		_ = pub.Set(jwk.KeyUsageKey, "sig")
		set := jwk.NewSet()
		_ = set.AddKey(pub)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	p.ToolJWKSURL, p.ToolClient = srv.URL, srv.Client()
}

func (k *toolKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, k.kid)
	out, err := jws.Sign(payload, jws.WithKey(jwa.RS256, k.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func assertionClaims(p *Platform) map[string]any {
	now := time.Now()
	return map[string]any{"iss": p.ClientID, "sub": p.ClientID, "aud": p.TokenURL(),
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": randomHex(8)}
}

func tokenForm(assertion, scope string) url.Values {
	return url.Values{"grant_type": {grantClientCredentials}, "client_assertion_type": {assertionTypeJWT},
		"client_assertion": {assertion}, "scope": {scope}}
}

type tokenAnswer struct {
	status int
	header http.Header
	body   map[string]any
}

func postToken(t *testing.T, p *Platform, form url.Values) tokenAnswer {
	t.Helper()
	res, err := http.PostForm(p.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := tokenAnswer{status: res.StatusCode, header: res.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil && res.StatusCode < 500 {
		t.Fatalf("token answer %d is not JSON: %s", res.StatusCode, raw)
	}
	return a
}

func TestTokenEndpointGrants(t *testing.T) {
	p := New()
	defer p.Close()
	p.TokenLifetime = 10 * time.Minute
	k := newToolKey(t)
	k.publish(t, p)
	a := postToken(t, p, tokenForm(k.sign(t, assertionClaims(p)), lti.ScopeNRPS+" "+lti.ScopeAGSScore+" "+lti.ScopeNRPS))
	if a.status != http.StatusOK {
		t.Fatalf("token request answered %d %v", a.status, a.body)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if a.body["token_type"] != "Bearer" || a.body["access_token"] == "" || a.body["expires_in"] != float64(600) {
		t.Errorf("token answer %v", a.body)
	}
	if want := lti.ScopeAGSScore + " " + lti.ScopeNRPS; a.body["scope"] != want {
		t.Errorf("scope %q, want %q", a.body["scope"], want)
	}
	if n := p.TokenRequests(); n != 1 {
		t.Errorf("TokenRequests %d, want 1", n)
	}
}

func TestTokenEndpointRefuses(t *testing.T) {
	p := New()
	defer p.Close()
	p.TokenAudience = "https://lms.example/oauth2/token"
	k := newToolKey(t)
	k.publish(t, p)
	stranger := newToolKey(t)
	stranger.kid = k.kid // a key the tool never published, under its kid
	claims := func(change map[string]any) map[string]any {
		c := assertionClaims(p)
		for name, v := range change {
			if v == nil {
				delete(c, name)
			} else {
				c[name] = v
			}
		}
		return c
	}
	now := time.Now()
	for _, tc := range []struct {
		name   string
		form   func() url.Values
		status int
		code   string
	}{
		{"valid", func() url.Values { return tokenForm(k.sign(t, claims(nil)), lti.ScopeNRPS) }, 200, ""},
		{"aud among several", func() url.Values {
			return tokenForm(k.sign(t, claims(map[string]any{"aud": []string{"other", p.TokenURL()}})), lti.ScopeNRPS)
		}, 200, ""},
		{"the platform's own token audience", func() url.Values {
			return tokenForm(k.sign(t, claims(map[string]any{"aud": p.TokenAudience})), lti.ScopeNRPS)
		}, 200, ""},
		{"no grant type", func() url.Values {
			f := tokenForm(k.sign(t, claims(nil)), lti.ScopeNRPS)
			f.Del("grant_type")
			return f
		}, 400, "invalid_request"},
		{"other grant type", func() url.Values {
			f := tokenForm(k.sign(t, claims(nil)), lti.ScopeNRPS)
			f.Set("grant_type", "password")
			return f
		}, 400, "unsupported_grant_type"},
		{"no assertion", func() url.Values { return tokenForm("", lti.ScopeNRPS) }, 400, "invalid_request"},
		{"other assertion type", func() url.Values {
			f := tokenForm(k.sign(t, claims(nil)), lti.ScopeNRPS)
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return f
		}, 401, "invalid_client"},
		{"a client secret too", func() url.Values {
			f := tokenForm(k.sign(t, claims(nil)), lti.ScopeNRPS)
			f.Set("client_secret", "s")
			return f
		}, 400, "invalid_request"},
		{"another client_id", func() url.Values {
			f := tokenForm(k.sign(t, claims(nil)), lti.ScopeNRPS)
			f.Set("client_id", "someone-else")
			return f
		}, 401, "invalid_client"},
		{"not signed by the tool", func() url.Values { return tokenForm(stranger.sign(t, claims(nil)), lti.ScopeNRPS) }, 401, "invalid_client"},
		{"not a JWT", func() url.Values { return tokenForm("not.a.jwt", lti.ScopeNRPS) }, 401, "invalid_client"},
		{"wrong iss", func() url.Values {
			return tokenForm(k.sign(t, claims(map[string]any{"iss": "someone-else"})), lti.ScopeNRPS)
		}, 401, "invalid_client"},
		{"wrong sub", func() url.Values {
			return tokenForm(k.sign(t, claims(map[string]any{"sub": "someone-else"})), lti.ScopeNRPS)
		}, 401, "invalid_client"},
		{"wrong aud", func() url.Values {
			return tokenForm(k.sign(t, claims(map[string]any{"aud": p.Issuer()})), lti.ScopeNRPS)
		}, 401, "invalid_client"},
		{"expired", func() url.Values {
			return tokenForm(k.sign(t, claims(map[string]any{"exp": now.Add(-time.Second).Unix()})), lti.ScopeNRPS)
		}, 401, "invalid_client"},
		{"lives too long", func() url.Values {
			return tokenForm(k.sign(t, claims(map[string]any{"exp": now.Add(2 * time.Hour).Unix()})), lti.ScopeNRPS)
		}, 401, "invalid_client"},
		{"no iat", func() url.Values { return tokenForm(k.sign(t, claims(map[string]any{"iat": nil})), lti.ScopeNRPS) }, 401, "invalid_client"},
		{"no jti", func() url.Values { return tokenForm(k.sign(t, claims(map[string]any{"jti": nil})), lti.ScopeNRPS) }, 401, "invalid_client"},
		{"scope not granted", func() url.Values {
			return tokenForm(k.sign(t, claims(nil)), lti.ScopeNRPS+" https://purl.imsglobal.org/spec/lti/scope/noticehandlers")
		}, 400, "invalid_scope"},
		{"no scope", func() url.Values { return tokenForm(k.sign(t, claims(nil)), "") }, 400, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := postToken(t, p, tc.form())
			if a.status != tc.status || (tc.code != "" && a.body["error"] != tc.code) {
				t.Fatalf("answered %d %v, want %d %s", a.status, a.body, tc.status, tc.code)
			}
			if tc.code != "" && a.header.Get("Cache-Control") != "no-store" {
				t.Errorf("refusal without Cache-Control: no-store")
			}
		})
	}
}

func TestTokenEndpointRefusesReplayedAssertion(t *testing.T) {
	p := New()
	defer p.Close()
	k := newToolKey(t)
	k.publish(t, p)
	assertion := k.sign(t, assertionClaims(p))
	if a := postToken(t, p, tokenForm(assertion, lti.ScopeNRPS)); a.status != http.StatusOK {
		t.Fatalf("first use answered %d %v", a.status, a.body)
	}
	a := postToken(t, p, tokenForm(assertion, lti.ScopeNRPS))
	if a.status != http.StatusUnauthorized || a.body["error"] != "invalid_client" {
		t.Fatalf("replay answered %d %v, want 401 invalid_client", a.status, a.body)
	}
}

func TestFailTokens(t *testing.T) {
	p := New()
	defer p.Close()
	p.TokenRetryAfter = 7 * time.Second
	k := newToolKey(t)
	k.publish(t, p)
	p.FailTokens(http.StatusServiceUnavailable, "", 1)
	p.FailTokens(http.StatusTooManyRequests, "temporarily_unavailable", 2)
	for range 2 {
		a := postToken(t, p, tokenForm(k.sign(t, assertionClaims(p)), lti.ScopeNRPS))
		if a.status != http.StatusTooManyRequests || a.body["error"] != "temporarily_unavailable" || a.header.Get("Retry-After") != "7" {
			t.Fatalf("failed request answered %d %v Retry-After %q", a.status, a.body, a.header.Get("Retry-After"))
		}
	}
	if a := postToken(t, p, tokenForm(k.sign(t, assertionClaims(p)), lti.ScopeNRPS)); a.status != http.StatusOK {
		t.Fatalf("after the failures answered %d %v", a.status, a.body)
	}
	if n := p.TokenRequests(); n != 3 {
		t.Fatalf("TokenRequests %d, want 3", n)
	}
}

func TestAuthorizeService(t *testing.T) {
	p := New()
	defer p.Close()
	k := newToolKey(t)
	k.publish(t, p)
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.authorizeService(w, r, lti.ScopeNRPS) {
			_, _ = io.WriteString(w, "members")
		}
	}))
	defer service.Close()
	issue := func(scope string) string {
		a := postToken(t, p, tokenForm(k.sign(t, assertionClaims(p)), scope))
		tok, _ := a.body["access_token"].(string)
		if tok == "" {
			t.Fatalf("no token: %d %v", a.status, a.body)
		}
		return tok
	}
	nrps, score := issue(lti.ScopeNRPS+" "+lti.ScopeAGSScore), issue(lti.ScopeAGSScore)
	call := func(authorization string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, service.URL, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("WWW-Authenticate")
	}
	for _, tc := range []struct {
		name, authorization string
		status              int
		challenge           string
	}{
		{"token with the scope", "Bearer " + nrps, 200, ""},
		{"scheme in lower case", "bearer " + nrps, 200, ""},
		{"no token", "", 401, ""},
		{"basic credentials", "Basic " + nrps, 401, ""},
		{"unknown token", "Bearer " + randomHex(24), 401, `error="invalid_token"`},
		{"token without the scope", "Bearer " + score, 403, `error="insufficient_scope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, challenge := call(tc.authorization)
			if status != tc.status || !strings.Contains(challenge, tc.challenge) {
				t.Fatalf("answered %d %q, want %d %q", status, challenge, tc.status, tc.challenge)
			}
		})
	}
	t.Run("expired token", func(t *testing.T) {
		p.now = func() time.Time { return time.Now().Add(p.TokenLifetime) }
		defer func() { p.now = time.Now }()
		if status, challenge := call("Bearer " + nrps); status != 401 || !strings.Contains(challenge, "invalid_token") {
			t.Fatalf("answered %d %q, want 401 invalid_token", status, challenge)
		}
	})
	t.Run("revoked token", func(t *testing.T) {
		p.RevokeTokens()
		if status, challenge := call("Bearer " + nrps); status != 401 || !strings.Contains(challenge, "invalid_token") {
			t.Fatalf("answered %d %q, want 401 invalid_token", status, challenge)
		}
		if status, _ := call("Bearer " + issue(lti.ScopeNRPS)); status != 200 {
			t.Fatalf("a token issued after the revocation answered %d", status)
		}
	})
}
