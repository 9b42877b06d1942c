package api_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klasterina/hub/internal/keys"
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

// TestKeyRotationWaitsForTheJWKSCacheLifetime: a second rotation within the
// JWKS cache lifetime answers 409, saying when rotation becomes possible,
// and changes no key; afterwards it succeeds. Each rotation is audited.
func TestKeyRotationWaitsForTheJWKSCacheLifetime(t *testing.T) {
	h := newHub(t)
	now := time.Now().Truncate(time.Second) // PostgreSQL keeps microseconds: times round-trip exactly
	h.deps.Keys.Now = func() time.Time { return now }
	h.expect(h.do("POST", "/api/v1/keys/lti/rotate", adminToken, nil), 200)
	keysBefore := h.expect(h.do("GET", "/api/v1/keys", adminToken, nil), 200).body
	now = now.Add(time.Minute)
	r := h.do("POST", "/api/v1/keys/lti/rotate", adminToken, nil)
	p := h.problem(r, 409, "conflict")
	possible := now.Add(keys.JWKSMaxAge - time.Minute).UTC().Format(time.RFC3339)
	if !strings.Contains(p.Detail, possible) || r.header.Get("Retry-After") != strconv.Itoa(int((keys.JWKSMaxAge-time.Minute).Seconds())) {
		t.Fatalf("409 detail %q, Retry-After %q; want rotation possible from %s", p.Detail, r.header.Get("Retry-After"), possible)
	}
	if keysAfter := h.expect(h.do("GET", "/api/v1/keys", adminToken, nil), 200).body; string(keysAfter) != string(keysBefore) {
		t.Fatalf("a refused rotation changed the keys:\n%s\n%s", keysBefore, keysAfter)
	}

	now = now.Add(keys.JWKSMaxAge)
	h.expect(h.do("POST", "/api/v1/keys/lti/rotate", adminToken, nil), 200)
	var page auditPage
	h.expect(h.do("GET", "/api/v1/audit?action=tool_key.rotated", adminToken, nil), 200).json(t, &page)
	if len(page.Items) != 2 {
		t.Fatalf("audited rotations %+v, want the two that happened", page.Items)
	}
}
