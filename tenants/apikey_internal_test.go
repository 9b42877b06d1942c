package tenants

import (
	"strings"
	"testing"
)

func TestNewTokenShape(t *testing.T) {
	token, prefix, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	if prefixOf(token) != prefix || !strings.HasPrefix(prefix, tokenPrefix) || len(token) < 60 {
		t.Fatalf("token %q prefix %q", token, prefix)
	}
	other, _, _ := newToken()
	if other == token {
		t.Fatal("two tokens are equal")
	}
}

// FuzzPrefixOf: bearer tokens are untrusted input; the prefix parser must
// never panic and only return a prefix the token really starts with.
func FuzzPrefixOf(f *testing.F) {
	token, _, _ := newToken()
	for _, seed := range []string{token, "hubk_", "hubk_abcdefghij", "hubk_abcdefghijX", "hubk_abcdefghij_", "x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := prefixOf(s)
		notLookup := func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') }
		if p != "" && (!strings.HasPrefix(s, p+"_") || len(p) != len(tokenPrefix)+10 || strings.IndexFunc(p[len(tokenPrefix):], notLookup) >= 0) {
			t.Fatalf("prefixOf(%q) = %q", s, p)
		}
	})
}
