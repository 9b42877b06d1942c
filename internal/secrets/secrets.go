// Package secrets seals small secrets (SSO client secrets, private signing
// keys) for storage at rest with AES-256-GCM under HUB_SECRET_KEY.
//
// A sealed value names the key that sealed it, so a later rotation can add a
// new current key while older keys still open what they sealed. The caller
// passes associated data (for example the table, tenant and row the secret
// belongs to) so a sealed value copied into another row fails to open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// format is the version byte that opens every sealed value.
const format byte = 1

// KeySize is the length of an AES-256 key.
const KeySize = 32

// ErrOpen means a sealed value is malformed, was sealed under an unknown
// key, or fails authentication. The reasons are deliberately not told apart.
var ErrOpen = errors.New("secrets: cannot open sealed value")

// Sealer seals with its current key and opens with any key it holds.
type Sealer struct {
	current string
	aeads   map[string]cipher.AEAD
}

// New returns a Sealer sealing under current and also opening values sealed
// under any of previous.
func New(current []byte, previous ...[]byte) (*Sealer, error) {
	s := &Sealer{aeads: map[string]cipher.AEAD{}}
	for i, key := range append([][]byte{current}, previous...) {
		id, aead, err := newAEAD(key)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			s.current = id
		}
		s.aeads[id] = aead
	}
	return s, nil
}

func newAEAD(key []byte) (string, cipher.AEAD, error) {
	if len(key) != KeySize {
		return "", nil, fmt.Errorf("secrets: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", nil, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", nil, fmt.Errorf("secrets: %w", err)
	}
	return KeyID(key), aead, nil
}

// KeyID is a short public name for key: a hash prefix that reveals nothing
// useful about the key itself.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("hub secret key id\x00"), key...))
	return hex.EncodeToString(sum[:6])
}

// CurrentKeyID names the key new values are sealed under.
func (s *Sealer) CurrentKeyID() string { return s.current }

// Seal encrypts plaintext bound to aad. Layout:
// format | len(kid) | kid | nonce | ciphertext+tag.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := s.aeads[s.current]
	out := make([]byte, 0, 2+len(s.current)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, format, byte(len(s.current)))
	out = append(out, s.current...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secrets: nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a value from Seal, given the same aad.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	kid, rest, ok := splitHeader(sealed)
	if !ok {
		return nil, ErrOpen
	}
	aead, known := s.aeads[kid]
	if !known || len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrOpen
	}
	nonce, ciphertext := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// KeyIDOf tells which key sealed a value, so a rotation job can find the
// values still sealed under an old key.
func KeyIDOf(sealed []byte) (string, error) {
	kid, _, ok := splitHeader(sealed)
	if !ok {
		return "", ErrOpen
	}
	return kid, nil
}

func splitHeader(sealed []byte) (kid string, rest []byte, ok bool) {
	if len(sealed) < 2 || sealed[0] != format {
		return "", nil, false
	}
	n := int(sealed[1])
	if n == 0 || len(sealed) < 2+n {
		return "", nil, false
	}
	return string(sealed[2 : 2+n]), sealed[2+n:], true
}
