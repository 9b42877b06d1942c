package sso

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/secrets"
)

// FuzzNormalizeDomain feeds domain normalisation what an operator's URL
// or an email may hold: it never panics, what it accepts is a lower-case
// LDH hostname of two labels or more, and normalising it again changes
// nothing.
func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.Example", "xn--bcher-kva.example.", "ＥＸＡＭＰＬＥ.com", "a..b", "127.0.0.1", "*.x.y", "ex\u200dample.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := NormalizeDomain(in)
		if err != nil {
			if !errors.Is(err, ErrDomain) {
				t.Fatalf("%q: %v", in, err)
			}
			return
		}
		if len(d) > MaxDomain || strings.Count(d, ".") < 1 || strings.ToLower(d) != d {
			t.Fatalf("%q accepted as %q", in, d)
		}
		for _, l := range strings.Split(d, ".") {
			if !isLDHLabel(l) {
				t.Fatalf("%q accepted as %q with label %q", in, d, l)
			}
		}
		if again, err := NormalizeDomain(d); err != nil || again != d {
			t.Fatalf("%q: %q normalises again to %q, %v", in, d, again, err)
		}
	})
}

// FuzzCheckLogoutClaims feeds the logout token checks any payload a
// provider's signature could cover: they never panic, and whatever they
// accept names the issuer, the client, a jti, the event and a sub or sid,
// with no nonce.
func FuzzCheckLogoutClaims(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add([]byte(`{"iss":"https://idp","aud":"client","iat":1800000000,"jti":"j","sid":"s","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`))
	f.Add([]byte(`{"iss":"https://idp","aud":["client"],"iat":1800000000,"jti":"j","sub":"u","nonce":"n","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`))
	f.Add([]byte(`{"iss":"https://idp","aud":"client","iat":1e300,"jti":"j","sub":"u","events":{"http://schemas.openid.net/event/backchannel-logout":[]}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := checkLogoutClaims(payload, "https://idp", "client", now)
		if err != nil {
			if !errors.Is(err, errLogoutToken) {
				t.Fatalf("%s: %v", payload, err)
			}
			return
		}
		if c.Issuer != "https://idp" || !hasAudience(c.Audience, "client") || c.JTI == "" || (c.Subject == "" && c.SID == "") ||
			c.Nonce != nil || !isObject(c.Events[backchannelEvent]) {
			t.Fatalf("%s accepted as %+v", payload, c)
		}
	})
}

// FuzzOpenState feeds the state cookie's reader what a browser may send:
// it never panics, and opens only what the hub sealed, complete.
func FuzzOpenState(f *testing.F) {
	sealer, err := secrets.New(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	good, _ := sealState(sealer, pending{Tenant: uuid.New(), Connection: uuid.New(), State: "s", Nonce: "n", Verifier: "v", Expires: now.Add(time.Minute)})
	f.Add(good)
	for _, s := range []string{"", "AA", "not base64!", strings.Repeat("A", 5000), "AQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := openState(sealer, text, now)
		if err != nil {
			if !errors.Is(err, errStateUnusable) {
				t.Fatalf("%q: %v", text, err)
			}
			return
		}
		if p.State == "" || p.Nonce == "" || p.Verifier == "" || !now.Before(p.Expires) {
			t.Fatalf("%q opened as %+v", text, p)
		}
	})
}
