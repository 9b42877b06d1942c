package lti

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/secrets"
)

// The launch validator's HTTP-free steps take untrusted input: the state
// parameter, the id_token's header and its claims. These fuzz targets feed
// them arbitrary bytes; every outcome must be a success or a *Failure with
// a reason, never a panic or an unclassified error.

// fuzzTool returns a Tool with no database and the URL of an empty keyset.
func fuzzTool(tb testing.TB) (*Tool, string) {
	sealer, err := secrets.New(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"keys":[]}`))
	}))
	tb.Cleanup(jwks.Close)
	t := &Tool{sealer: sealer, keysets: keys.NewCache(httpx.New(true)), Now: time.Now, Leeway: 30 * time.Second, StateTTL: time.Minute}
	t.keysets.MinRefetch = time.Hour
	return t, jwks.URL
}

func wantFailure(t *testing.T, err error) {
	var f *Failure
	if err != nil && !errors.As(err, &f) {
		t.Fatalf("unclassified error: %v", err)
	}
	if f != nil && f.Reason == "" {
		t.Fatal("failure without a reason")
	}
}

func FuzzCheckState(f *testing.F) {
	tool, _ := fuzzTool(f)
	st, secret := newLoginState(uuid.New(), "https://hub.example/lti/launch", time.Minute, time.Now())
	sealed, _ := sealState(tool.sealer, st)
	f.Add(sealed, secret)
	f.Add(sealed, "")
	f.Add("", "")
	f.Add("AAAA", "x")
	f.Fuzz(func(t *testing.T, state, secret string) {
		_, err := tool.checkState(LaunchRequest{IDToken: "x", State: state, StorageSecret: secret})
		wantFailure(t, err)
	})
}

// fuzzKeyID names the platform key FuzzVerifySignature signs with: a fixed
// key (testdata/fuzz-platform-key.pem), so the seed corpus can hold tokens
// it genuinely signed.
const fuzzKeyID = "k"

// fuzzPlatform serves a keyset holding the fixed platform key and returns
// the key and the keyset's URL.
func fuzzPlatform(tb testing.TB) (*rsa.PrivateKey, string) {
	raw, err := os.ReadFile("testdata/fuzz-platform-key.pem")
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	priv := parsed.(*rsa.PrivateKey)
	pub, _ := jwk.FromRaw(priv.Public())
	_ = pub.Set(jwk.KeyIDKey, fuzzKeyID)
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	body, _ := json.Marshal(set)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }))
	tb.Cleanup(jwks.Close)
	return priv, jwks.URL
}

// fuzzSign signs claims as the platform does, with extra protected headers.
func fuzzSign(tb testing.TB, priv *rsa.PrivateKey, claims string, header map[string]any, opts ...jws.SignOption) string {
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, fuzzKeyID)
	for k, v := range header {
		_ = hdr.Set(k, v)
	}
	out, err := jws.Sign([]byte(claims), append([]jws.SignOption{jws.WithKey(jwa.RS256, priv, jws.WithProtectedHeaders(hdr))}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

// genuineRS256 checks, without the JOSE library, that token is a compact
// JWS whose header says RS256 and whose signature over its first two parts
// is the key's RSASSA-PKCS1-v1_5 SHA-256 signature, and returns its
// payload.
func genuineRS256(pub *rsa.PublicKey, token string) ([]byte, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	var header struct {
		Alg string `json:"alg"`
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(h, &header) != nil || header.Alg != "RS256" {
		return nil, false
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	return payload, rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
}

// FuzzVerifySignature runs the signature step against a keyset holding a
// real platform key: whatever it accepts must be a genuine RS256 signature
// by that key in compact form, and the payload it returns the signed one.
func FuzzVerifySignature(f *testing.F) {
	tool, _ := fuzzTool(f)
	priv, jwks := fuzzPlatform(f)
	reg := Registration{JWKSURL: jwks}
	claims := `{"iss":"https://lms.example","sub":"u","aud":"client"}`
	genuine := fuzzSign(f, priv, claims, nil)
	parts := strings.Split(genuine, ".")
	for _, seed := range []string{
		genuine,
		parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"someone-else"}`)) + "." + parts[2],
		parts[0] + "." + parts[1] + ".",
		fuzzSign(f, priv, claims, map[string]any{"jwk": map[string]any{"kty": "RSA"}}),
		fuzzSign(f, priv, claims, nil, jws.WithJSON()),
		fuzzSign(f, priv, `{"sub":"u"}`, map[string]any{"b64": false, "crit": []string{"b64"}}),
		fuzzSign(f, priv, `{"sub":"u"}`, map[string]any{"b64": false}),
		"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
		"a.b.c", "", "....", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		payload, err := tool.verifySignature(context.Background(), reg, token)
		if err != nil {
			wantFailure(t, err)
			return
		}
		signed, ok := genuineRS256(&priv.PublicKey, token)
		if !ok {
			t.Fatalf("verified a token the platform key did not sign as compact RS256: %q", token)
		}
		if !bytes.Equal(payload, signed) {
			t.Fatalf("verified payload %q, signed %q", payload, signed)
		}
	})
}

func FuzzClaimChecks(f *testing.F) {
	tool, _ := fuzzTool(f)
	reg := Registration{Issuer: "https://lms.example", ClientID: "client"}
	st := loginState{Nonce: "n", TargetLink: "https://hub.example/lti/launch"}
	valid, _ := json.Marshal(map[string]any{
		"iss": reg.Issuer, "aud": []string{"client", "x"}, "azp": "client", "sub": "u", "nonce": "n",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
		ClaimVersion: Version, ClaimMessageType: MessageResourceLink, ClaimDeploymentID: "d",
		ClaimRoles: []string{"Learner"}, ClaimResourceLink: map[string]any{"id": "r"}, ClaimTargetLinkURI: st.TargetLink,
	})
	f.Add(valid)
	f.Add([]byte(`{"aud":7}`))
	f.Add([]byte(`{"exp":"soon","iat":null}`))
	f.Add([]byte(`{"https://purl.imsglobal.org/spec/lti/claim/roles":"Learner"}`))
	f.Add(bytes.Replace(valid, []byte(`"sub":"u"`), []byte(`"sub":"u\u0000"`), 1))
	f.Add(bytes.Replace(valid, []byte(`"sub":"u"`), []byte(`"sub":"u","name":"Ada\u0000 Lovelace"`), 1))
	f.Fuzz(func(t *testing.T, payload []byte) {
		l := &Launch{Registration: reg, state: st}
		if json.Unmarshal(payload, &l.Claims) != nil {
			return // refused as malformed_claims before these steps
		}
		for _, step := range []func(context.Context, *Launch) error{
			checkText, tool.checkIssuerAudience, tool.checkTimes, checkNonce, checkVersionAndType, checkMessageClaims, checkTargetLink,
		} {
			if err := step(context.Background(), l); err != nil {
				wantFailure(t, err)
				return
			}
		}
		// Everything passed: what Validate then reads must be there.
		if l.Claims.Roles == nil || l.Claims.Subject == nil || l.Claims.ExpiresAt == nil {
			t.Fatalf("passed without roles, sub or exp: %s", payload)
		}
		// ... and be text the database can store.
		if _, bad := l.Claims.invalidIdentifier(); bad || !apperr.IsText(l.Claims.Name+l.Claims.GivenName+l.Claims.FamilyName+l.Claims.Email+l.Claims.Locale) {
			t.Fatalf("passed with a claim that is not text: %s", payload)
		}
		Roles(*l.Claims.Roles)
	})
}
