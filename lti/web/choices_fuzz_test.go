package web

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/secrets"
)

// FuzzOpenLink feeds the choices page's link parser what a browser may
// send: it never panics, opens only what the hub sealed, and a link it
// opens names the learner it was made for.
func FuzzOpenLink(f *testing.F) {
	sealer, err := secrets.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		f.Fatal(err)
	}
	h := &Handlers{Sealer: sealer}
	tenant, user := uuid.MustParse("6f1c0a52-8a6e-4d1e-9b59-0c2f4b7f0a11"), uuid.MustParse("0b8e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4")
	made := func(expires time.Time) string {
		link, err := h.seal(continuation{}) // a continuation: sealed, but not a link
		if err != nil {
			f.Fatal(err)
		}
		f.Add(link)
		plain := []byte(`{"tenant_id":"` + tenant.String() + `","tenant_name":"Uni","user_id":"` + user.String() +
			`","expires":"` + expires.Format(time.RFC3339) + `"}`)
		sealed, err := sealer.Seal(plain, consentLinkAAD)
		if err != nil {
			f.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(sealed)
	}
	f.Add(made(time.Now().Add(time.Hour)))
	f.Add(made(time.Now().Add(-time.Hour)))
	for _, seed := range []string{"", "AA", "not-base64!", "////", "AQ", "AQwxYjAwZDE5NDVmYmI2", "%2e%2e"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		link, err := h.openLink(text)
		if err != nil {
			if !errors.Is(err, errLinkUnusable) {
				t.Fatalf("%q: an error that is not errLinkUnusable: %v", text, err)
			}
			return
		}
		if link.UserID != user || link.TenantID != tenant || time.Now().After(link.Expires) {
			t.Fatalf("%q opened as %+v", text, link)
		}
	})
}
