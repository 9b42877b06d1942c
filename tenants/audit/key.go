package audit

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Keyring holds the keys that hash audit entries and sign checkpoints.
// They are derived from the hub's secret key (HUB_SECRET_KEY), which the
// database never holds: someone with database access alone can neither
// recompute a chain after changing it nor forge a checkpoint. The current
// key writes; previous keys (from HUB_SECRET_KEY_PREVIOUS) still verify
// what they wrote. Each key is named by an id derived from it.
type Keyring struct {
	currentID string
	keys      map[string][]byte
}

// keyInfo separates the audit key from every other use of the secret.
const keyInfo = "hub audit chain v1"

// NewKeyring derives the audit keys from the hub's current secret key and
// its previous ones (each 32 bytes).
func NewKeyring(secret []byte, previous ...[]byte) (*Keyring, error) {
	k := &Keyring{keys: map[string][]byte{}}
	for i, s := range append([][]byte{secret}, previous...) {
		key, err := hkdf.Key(sha256.New, s, nil, keyInfo, sha256.Size)
		if err != nil {
			return nil, fmt.Errorf("audit: derive key: %w", err)
		}
		id := keyID(key)
		if i == 0 {
			k.currentID = id
		}
		k.keys[id] = key
	}
	return k, nil
}

// keyID names a key without revealing it: the first 8 bytes of its hash,
// in hex.
func keyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("key id:"), key...))
	return hex.EncodeToString(sum[:8])
}

// CurrentID is the id of the key new entries are written with.
func (k *Keyring) CurrentID() string { return k.currentID }

// mac is HMAC-SHA256 of parts under the key named id; false when the
// keyring does not hold that key.
func (k *Keyring) mac(id string, parts ...[]byte) ([]byte, bool) {
	key, ok := k.keys[id]
	if !ok {
		return nil, false
	}
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil), true
}
