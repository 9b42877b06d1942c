package destinations

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/secrets"
)

// SecretPrefix starts every webhook secret (Standard Webhooks' whsec_),
// so one pasted in the wrong place is recognised.
const SecretPrefix = "whsec_"

// SecretBytes is how much randomness a webhook secret holds: Standard
// Webhooks asks for 24 to 64 bytes.
const SecretBytes = 32

// newSecret makes a webhook signing secret: whsec_ and the standard
// base64 of SecretBytes random bytes, the form Standard Webhooks libraries
// read.
func newSecret() (string, error) {
	b := make([]byte, SecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("destinations: secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// Slots a sealed value may sit in. The current and previous webhook
// secrets share one, so a rotation moves the sealed value as it is.
const (
	slotWebhookSecret = "webhook_secret"
	slotLRSUsername   = "lrs_username"
	slotLRSPassword   = "lrs_password"
)

// aad binds a sealed value to its tenant, row and slot: copied into
// another row or column, it does not open.
func aad(tenant, id uuid.UUID, slot string) []byte {
	return []byte("hub destination\x00" + tenant.String() + "\x00" + id.String() + "\x00" + slot)
}

func seal(s *secrets.Sealer, tenant, id uuid.UUID, slot, value string) ([]byte, error) {
	b, err := s.Seal([]byte(value), aad(tenant, id, slot))
	if err != nil {
		return nil, fmt.Errorf("destinations: seal %s: %w", slot, err)
	}
	return b, nil
}

func open(s *secrets.Sealer, tenant, id uuid.UUID, slot string, sealed []byte) (string, error) {
	b, err := s.Open(sealed, aad(tenant, id, slot))
	if err != nil {
		return "", fmt.Errorf("destinations: open %s of destination %s: %w", slot, id, err)
	}
	return string(b), nil
}
