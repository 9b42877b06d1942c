package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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
