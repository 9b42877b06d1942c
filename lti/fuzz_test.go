package lti

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

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

func FuzzVerifySignature(f *testing.F) {
	tool, jwks := fuzzTool(f)
	reg := Registration{JWKSURL: jwks}
	for _, seed := range []string{
		"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
		"a.b.c", "", "....", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		_, err := tool.verifySignature(context.Background(), reg, token)
		if err == nil {
			t.Fatalf("verified a token against an empty keyset: %q", token)
		}
		wantFailure(t, err)
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
