package api_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestJWKSIsCachedAndShowsRotations: the published keyset tells caches to
// keep it no longer than the hub's own copy lives, and a rotation shows in
// it at once.
func TestJWKSIsCachedAndShowsRotations(t *testing.T) {
	h := newHub(t)
	r := h.expect(h.do("GET", "/.well-known/jwks.json", "", nil), 200)
	m := regexp.MustCompile(`^public, max-age=(\d+)$`).FindStringSubmatch(r.header.Get("Cache-Control"))
	if m == nil {
		t.Fatalf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	if age, _ := strconv.Atoi(m[1]); age < 1 || age > 30 {
		t.Fatalf("max-age %d, want 1–30 (the hub's copy lives 30 s)", age)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if n := strings.Count(string(r.body), `"kid"`); n != 4 {
		t.Fatalf("%d keys published, want 4", n)
	}
	h.expect(h.do("POST", "/api/v1/keys/lti/rotate", adminToken, nil), 200)
	r = h.expect(h.do("GET", "/.well-known/jwks.json", "", nil), 200)
	if n := strings.Count(string(r.body), `"kid"`); n != 5 {
		t.Fatalf("%d keys published after a rotation, want 5 (the new next key at once)", n)
	}
}
