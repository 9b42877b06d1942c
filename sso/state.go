package sso

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/secrets"
)

// StateTTL is how long a sign-in may take at the provider.
const StateTTL = 10 * time.Minute

// pending is a sign-in in progress, sealed into the browser's state
// cookie: only that browser can finish it. The state's hash is also a row
// of sso_sign_ins, deleted by the callback that uses it, so it finishes
// once.
type pending struct {
	Tenant     uuid.UUID `json:"t"`
	Connection uuid.UUID `json:"c"`
	State      string    `json:"s"`
	Nonce      string    `json:"n"`
	Verifier   string    `json:"v"` // the PKCE code_verifier (RFC 7636 §4.1)
	Expires    time.Time `json:"e"`
}

var stateAAD = []byte("hub sso state")

// errStateUnusable marks a state cookie that is malformed, altered, sealed
// under a key the hub no longer holds, or past its time.
var errStateUnusable = errors.New("sso: state cookie unusable")

func sealState(s *secrets.Sealer, p pending) (string, error) {
	plain, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	sealed, err := s.Seal(plain, stateAAD)
	if err != nil {
		return "", fmt.Errorf("sso: seal state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openState reads a state cookie sealed at or after now-StateTTL.
func openState(s *secrets.Sealer, text string, now time.Time) (pending, error) {
	var p pending
	if len(text) > 4096 {
		return p, fmt.Errorf("%w: too long", errStateUnusable)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return p, fmt.Errorf("%w: %w", errStateUnusable, err)
	}
	plain, err := s.Open(sealed, stateAAD)
	if err != nil {
		return p, fmt.Errorf("%w: %w", errStateUnusable, err)
	}
	if err := json.Unmarshal(plain, &p); err != nil {
		return pending{}, fmt.Errorf("%w: %w", errStateUnusable, err)
	}
	if p.State == "" || p.Nonce == "" || p.Verifier == "" || p.Tenant == uuid.Nil || p.Connection == uuid.Nil {
		return pending{}, fmt.Errorf("%w: incomplete", errStateUnusable)
	}
	if !now.Before(p.Expires) {
		return p, fmt.Errorf("%w: expired at %s", errStateUnusable, p.Expires)
	}
	return p, nil
}
