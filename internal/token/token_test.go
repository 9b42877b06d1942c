package token

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func TestRandom(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes int
		chars int
	}{
		{"login state id", 9, 12},
		{"picker session id", 12, 16},
		{"handoff id", 16, 22},
		{"browser secret", 24, 32},
		{"registration link", 32, 43},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Random(tc.bytes)
			if len(s) != tc.chars {
				t.Fatalf("Random(%d) has %d characters, want %d", tc.bytes, len(s), tc.chars)
			}
			b, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil || len(b) != tc.bytes {
				t.Fatalf("Random(%d) = %q: not %d bytes of unpadded base64url (%v)", tc.bytes, s, tc.bytes, err)
			}
		})
	}
}

func TestRandomIsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s := Random(16)
		if seen[s] {
			t.Fatalf("Random(16) repeated %q", s)
		}
		seen[s] = true
	}
}

func TestHashKnownVectors(t *testing.T) {
	for _, tc := range []struct {
		name, purpose, s, want string
	}{
		// FIPS 180-2's "abc".
		{"bare token", "", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"purpose in front", "a", "bc", hex.EncodeToString(sha256Of("a:bc"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hex.EncodeToString(Hash(tc.purpose, tc.s)); got != tc.want {
				t.Fatalf("Hash(%q, %q) = %s, want %s", tc.purpose, tc.s, got, tc.want)
			}
		})
	}
}

// The registration links already stored were hashed as
// SHA-256("lti registration link:" + token).
func TestHashKeepsStoredLinkHashes(t *testing.T) {
	tok := Random(32)
	if !bytes.Equal(Hash("lti registration link", tok), sha256Of("lti registration link:"+tok)) {
		t.Fatal("a registration link's hash changed")
	}
}

func TestHashSeparatesPurposes(t *testing.T) {
	tok := Random(24)
	a, b, bare := Hash("one", tok), Hash("two", tok), Hash("", tok)
	if bytes.Equal(a, b) || bytes.Equal(a, bare) || bytes.Equal(b, bare) {
		t.Fatal("one token hashes alike under different purposes")
	}
	if !bytes.Equal(a, Hash("one", tok)) {
		t.Fatal("Hash is not deterministic")
	}
}

func sha256Of(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
