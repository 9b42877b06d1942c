package sso

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/secrets"
)

func TestNormalizeDomain(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM":                            "example.com",
		"example.com.":                           "example.com",
		"sub.example.co.uk":                      "sub.example.co.uk",
		"bücher.example":                         "xn--bcher-kva.example",
		"XN--BCHER-KVA.example":                  "xn--bcher-kva.example",
		"ＥＸＡＭＰＬＥ.com":                            "example.com", // full-width, mapped by UTS #46
		"a-b.example":                            "a-b.example",
		"localhost":                              "",
		"example":                                "",
		"":                                       "",
		"127.0.0.1":                              "",
		"[::1]":                                  "",
		"1.2.3.4.5":                              "",
		"-a.example":                             "",
		"a-.example":                             "",
		"*.example.com":                          "",
		"exa mple.com":                           "",
		"example..com":                           "",
		"user@example.com":                       "",
		"example.com/path":                       "",
		strings.Repeat("a", 64) + ".com":         "",
		strings.Repeat("abcdefghi.", 26) + "com": "",
	} {
		got, err := NormalizeDomain(in)
		if want == "" {
			if err == nil || !errors.Is(err, ErrDomain) {
				t.Errorf("%q: accepted as %q", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestConsumerDomains(t *testing.T) {
	for _, d := range []string{"gmail.com", "GMail.com", "outlook.com", "yahoo.com", "proton.me", "qq.com", "163.com", "web.de"} {
		n, err := NormalizeDomain(d)
		if err != nil || !IsConsumerDomain(n) {
			t.Errorf("%s: not refused as a public mail provider's", d)
		}
	}
	if IsConsumerDomain("example.com") {
		t.Fatal("example.com refused")
	}
}

func TestDomainOfEmail(t *testing.T) {
	if d, err := DomainOfEmail("Ana.Ng@Corp.Example.com"); err != nil || d != "corp.example.com" {
		t.Fatalf("%q %v", d, err)
	}
	for _, bad := range []string{"", "ana", "ana@", "@example.com", "ana@localhost"} {
		if _, err := DomainOfEmail(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckIDToken(t *testing.T) {
	for name, tc := range map[string]struct {
		claims string
		want   Reason
	}{
		"good":                   {`{"nonce":"n1","aud":"client"}`, ""},
		"good with azp":          {`{"nonce":"n1","aud":["client","other"],"azp":"client"}`, ""},
		"one audience in a list": {`{"nonce":"n1","aud":["client"]}`, ""},
		"another nonce":          {`{"nonce":"n2","aud":"client"}`, ReasonNonce},
		"no nonce":               {`{"aud":"client"}`, ReasonNonce},
		"nonce not text":         {`{"nonce":1,"aud":"client"}`, ReasonNonce},
		"two audiences, no azp":  {`{"nonce":"n1","aud":["client","other"]}`, ReasonAuthorizedParty},
		"azp another client":     {`{"nonce":"n1","aud":"client","azp":"other"}`, ReasonAuthorizedParty},
		"azp not text":           {`{"nonce":"n1","aud":"client","azp":7}`, ReasonAuthorizedParty},
	} {
		t.Run(name, func(t *testing.T) {
			var claims map[string]any
			if err := json.Unmarshal([]byte(tc.claims), &claims); err != nil {
				t.Fatal(err)
			}
			err := checkIDToken(claims, "client", "n1")
			if got := reasonOrEmpty(err); got != tc.want {
				t.Fatalf("reason %q, want %q (%v)", got, tc.want, err)
			}
		})
	}
}

func reasonOrEmpty(err error) Reason {
	if err == nil {
		return ""
	}
	return ReasonOf(err)
}

func TestCheckISS(t *testing.T) {
	c := Connection{Issuer: "https://login.example.com/common/v2.0", ExpectedIssuer: "https://login.example.com/tid/v2.0"}
	for name, tc := range map[string]struct {
		cb        Callback
		supported bool
		ok        bool
	}{
		"the expected issuer":                {Callback{Iss: "https://login.example.com/tid/v2.0", HasIss: true}, true, true},
		"the discovery issuer, not expected": {Callback{Iss: "https://login.example.com/common/v2.0", HasIss: true}, true, false},
		"another issuer":                     {Callback{Iss: "https://evil.example", HasIss: true}, false, false},
		"empty iss":                          {Callback{Iss: "", HasIss: true}, false, false},
		"absent, not supported":              {Callback{}, false, true},
		"absent, supported":                  {Callback{}, true, false},
	} {
		t.Run(name, func(t *testing.T) {
			err := checkISS(tc.cb, c, discovery{ISSParameter: tc.supported})
			if (err == nil) != tc.ok || (err != nil && ReasonOf(err) != ReasonMixUp) {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestProfileOf(t *testing.T) {
	c := Connection{Claims: Claims{Subject: "oid", Email: "email", Name: "name", Groups: "roles", EmployeeID: "emp"}.withDefaults(),
		RequireEmailVerified: true}
	var claims map[string]any
	_ = json.Unmarshal([]byte(`{"iss":"https://i","oid":"u-1","sub":"ignored","email":"a@b.example","email_verified":"true",
		"mail":"a@b.example","name":"  Ana  ","roles":["x","y"],"emp":12345,"sid":"s1"}`), &claims)
	p, err := profileOf(claims, c)
	if err != nil || p.Subject != "u-1" || p.Email != "a@b.example" || !p.EmailVerified || p.Name != "Ana" ||
		len(p.Groups) != 2 || p.EmployeeID != "12345" || p.SID != "s1" {
		t.Fatalf("%+v %v", p, err)
	}
	// email_verified speaks of the email claim only (OpenID Connect Core
	// 1.0 §5.1), never of another claim mapped as the email.
	mapped := c
	mapped.Claims.Email = "mail"
	if _, err := profileOf(claims, mapped); ReasonOf(err) != ReasonEmailUnverified {
		t.Fatalf("email_verified taken for another claim: %v", err)
	}
	claims["email_verified"] = false
	if _, err := profileOf(claims, c); ReasonOf(err) != ReasonEmailUnverified {
		t.Fatalf("unverified email: %v", err)
	}
	c.RequireEmailVerified = false
	if p, err := profileOf(claims, c); err != nil || p.EmailVerified {
		t.Fatalf("unverified email, not required: %+v %v", p, err)
	}
	delete(claims, "oid")
	if _, err := profileOf(claims, c); ReasonOf(err) != ReasonSubjectMissing {
		t.Fatalf("no subject: %v", err)
	}
}

func TestStateCookie(t *testing.T) {
	sealer, _ := secrets.New(bytes.Repeat([]byte{3}, 32))
	now := time.Now()
	p := pending{Tenant: uuid.New(), Connection: uuid.New(), State: "s", Nonce: "n", Verifier: "v", Expires: now.Add(StateTTL)}
	text, err := sealState(sealer, p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openState(sealer, text, now); err != nil || got.State != "s" || got.Connection != p.Connection {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := openState(sealer, text, now.Add(StateTTL)); !errors.Is(err, errStateUnusable) {
		t.Fatalf("expired: %v", err)
	}
	other, _ := secrets.New(bytes.Repeat([]byte{4}, 32))
	if _, err := openState(other, text, now); !errors.Is(err, errStateUnusable) {
		t.Fatalf("another key: %v", err)
	}
	if _, err := openState(sealer, text[:len(text)-2]+"AA", now); !errors.Is(err, errStateUnusable) {
		t.Fatalf("altered: %v", err)
	}
}

func TestCheckLogoutClaims(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good := map[string]any{"iss": "https://idp", "aud": "client", "iat": now.Unix(), "jti": "j1", "sub": "u1", "sid": "s1",
		"events": map[string]any{backchannelEvent: map[string]any{}}}
	for name, tc := range map[string]struct {
		change func(m map[string]any)
		ok     bool
	}{
		"good":                {func(map[string]any) {}, true},
		"aud a list":          {func(m map[string]any) { m["aud"] = []string{"other", "client"} }, true},
		"sid only":            {func(m map[string]any) { delete(m, "sub") }, true},
		"sub only":            {func(m map[string]any) { delete(m, "sid") }, true},
		"exp ahead":           {func(m map[string]any) { m["exp"] = now.Add(time.Minute).Unix() }, true},
		"wrong aud":           {func(m map[string]any) { m["aud"] = "other" }, false},
		"no aud":              {func(m map[string]any) { delete(m, "aud") }, false},
		"wrong iss":           {func(m map[string]any) { m["iss"] = "https://evil" }, false},
		"has a nonce":         {func(m map[string]any) { m["nonce"] = "n" }, false},
		"null nonce":          {func(m map[string]any) { m["nonce"] = nil }, false},
		"no events":           {func(m map[string]any) { delete(m, "events") }, false},
		"another event":       {func(m map[string]any) { m["events"] = map[string]any{"urn:other": map[string]any{}} }, false},
		"event not an object": {func(m map[string]any) { m["events"] = map[string]any{backchannelEvent: "yes"} }, false},
		"neither sub nor sid": {func(m map[string]any) { delete(m, "sub"); delete(m, "sid") }, false},
		"no jti":              {func(m map[string]any) { delete(m, "jti") }, false},
		"no iat":              {func(m map[string]any) { delete(m, "iat") }, false},
		"iat an hour ago":     {func(m map[string]any) { m["iat"] = now.Add(-time.Hour).Unix() }, false},
		"iat in the future":   {func(m map[string]any) { m["iat"] = now.Add(time.Hour).Unix() }, false},
		"expired":             {func(m map[string]any) { m["exp"] = now.Add(-time.Hour).Unix() }, false},
	} {
		t.Run(name, func(t *testing.T) {
			m := map[string]any{}
			for k, v := range good {
				m[k] = v
			}
			tc.change(m)
			b, _ := json.Marshal(m)
			_, err := checkLogoutClaims(b, "https://idp", "client", now)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errLogoutToken)) {
				t.Fatalf("%s: %v", b, err)
			}
		})
	}
}

// jwksServer serves a keyset of keys, counting fetches, failing while down.
type jwksServer struct {
	*httptest.Server
	set     jwk.Set
	fetches atomic.Int32
	down    atomic.Bool
}

func newJWKS(t *testing.T) (*jwksServer, jwk.Key) {
	s := &jwksServer{set: jwk.NewSet()}
	priv := addKey(t, s, "k1")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		_ = json.NewEncoder(w).Encode(s.set)
	}))
	t.Cleanup(s.Close)
	return s, priv
}

func addKey(t *testing.T, s *jwksServer, kid string) jwk.Key {
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := jwk.FromRaw(raw)
	_ = priv.Set(jwk.KeyIDKey, kid)
	_ = priv.Set(jwk.AlgorithmKey, jwa.RS256)
	pub, _ := priv.PublicKey()
	_ = s.set.AddKey(pub)
	return priv
}

func sign(t *testing.T, priv jwk.Key, payload string) string {
	b, err := jws.Sign([]byte(payload), jws.WithKey(jwa.RS256, priv))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The provider's keys go through the hub's JWKS cache: a token naming an
// unknown kid refetches the keyset at most once per MinRefetch, and an
// outage of the keyset endpoint after a first fetch does not stop tokens
// signed with a known key.
func TestKeySetOverTheHubsCache(t *testing.T) {
	srv, priv := newJWKS(t)
	cache := keys.NewCache(httpx.New(true))
	now := time.Now()
	cache.Now = func() time.Time { return now }
	ks := keySet{cache: cache, url: srv.URL}
	ctx := context.Background()
	if p, err := ks.VerifySignature(ctx, sign(t, priv, `{"a":1}`)); err != nil || string(p) != `{"a":1}` {
		t.Fatalf("%s %v", p, err)
	}
	t.Run("unknown kids are refetched within the limit", func(t *testing.T) {
		raw, _ := rsa.GenerateKey(rand.Reader, 2048)
		other, _ := jwk.FromRaw(raw)
		_ = other.Set(jwk.KeyIDKey, "unknown")
		before := srv.fetches.Load()
		for range 20 {
			if _, err := ks.VerifySignature(ctx, sign(t, other, `{}`)); !errors.Is(err, errSignature) {
				t.Fatalf("a token of an unknown key: %v", err)
			}
		}
		if n := srv.fetches.Load() - before; n > 1 {
			t.Fatalf("%d refetches for 20 tokens of an unknown kid within MinRefetch", n)
		}
	})
	t.Run("a rotated key is found by a refetch", func(t *testing.T) {
		next := addKey(t, srv, "k2")
		now = now.Add(cache.MinRefetch + time.Second)
		if _, err := ks.VerifySignature(ctx, sign(t, next, `{}`)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an outage keeps the last good keys", func(t *testing.T) {
		srv.down.Store(true)
		now = now.Add(2 * time.Hour) // past the keyset's max-age
		for range 5 {
			if _, err := ks.VerifySignature(ctx, sign(t, priv, `{}`)); err != nil {
				t.Fatalf("during the outage: %v", err)
			}
		}
	})
	t.Run("not RS256", func(t *testing.T) {
		if _, err := ks.VerifySignature(ctx, "eyJhbGciOiJub25lIn0.e30."); !errors.Is(err, errSignature) {
			t.Fatalf("alg none: %v", err)
		}
	})
}
