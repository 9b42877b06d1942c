package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"strings"
)

// Random returns n random bytes as base64url without padding: ceil(4n/3)
// characters, safe in URLs, cookies and form fields. crypto/rand never
// returns an error: a failing system source stops the program.
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash returns the SHA-256 of purpose + ":" + s, or of s alone when
// purpose is "" (the hashes stored before purposes were named).
func Hash(purpose, s string) []byte {
	if purpose != "" {
		s = purpose + ":" + s
	}
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// lookupLen is how many characters of a keyed token's lookup there are:
// 50 bits, enough to keep the visible prefixes unique.
const lookupLen = 10

var lookupEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewKeyed returns a fresh bearer token shaped kind + lookup + "_" +
// secret (kind such as "hubk_"), and its visible prefix kind + lookup,
// which is stored to find the token's record and shown to admins. The
// lookup is 10 and the secret 52 lowercase base32 characters (256 bits).
func NewKeyed(kind string) (tok, prefix string) {
	b := make([]byte, 32+lookupLen)
	_, _ = rand.Read(b)
	prefix = kind + strings.ToLower(lookupEncoding.EncodeToString(b[32:]))[:lookupLen]
	return prefix + "_" + strings.ToLower(lookupEncoding.EncodeToString(b[:32])), prefix
}

// KeyedPrefix is the visible prefix of a token NewKeyed(kind) made, or ""
// when tok is not shaped like one. Only the lookup alphabet passes, so
// whatever a client sends (NUL characters, bytes that are not UTF-8)
// never reaches a query.
func KeyedPrefix(tok, kind string) string {
	if !strings.HasPrefix(tok, kind) || len(tok) < len(kind)+lookupLen+2 {
		return ""
	}
	p := tok[:len(kind)+lookupLen]
	if tok[len(p)] != '_' || strings.IndexFunc(p[len(kind):], notLookup) >= 0 {
		return ""
	}
	return p
}

// notLookup reports a rune outside the lowercase base32 alphabet of
// lookups.
func notLookup(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') }
