package lti

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/internal/token"
)

// loginState is what the hub remembers between login and launch. It
// travels sealed (AES-GCM) as the OIDC state parameter, so login writes
// nothing to the database; the nonce's single use is enforced at launch.
type loginState struct {
	ID           string    `json:"i"` // names the browser-binding cookie
	Registration uuid.UUID `json:"r"`
	Tenant       uuid.UUID `json:"t"` // the launch's tenant: a shared registration serves several
	Nonce        string    `json:"n"`
	TargetLink   string    `json:"u"`
	BrowserHash  string    `json:"b"` // SHA-256 of the secret in the cookie
	Expires      int64     `json:"e"`
	Storage      string    `json:"st,omitempty"` // lti_storage_target, when offered
	// No copy of the login's hints: the platform echoes them, and a
	// second copy made the redirect too long for a long hint.
}

var stateAAD = []byte("hub lti login state")

// hashSecret is how a browser secret is kept in a sealed state or session:
// the hex SHA-256 of the bare secret, as states already issued hold it.
func hashSecret(s string) string { return hex.EncodeToString(token.Hash("", s)) }

// newLoginState returns a state and the browser secret bound to it.
func newLoginState(reg uuid.UUID, target string, ttl time.Duration, now time.Time) (loginState, string) {
	secret := token.Random(24)
	return loginState{
		ID: token.Random(9), Registration: reg, Nonce: token.Random(24), TargetLink: target,
		BrowserHash: hashSecret(secret), Expires: now.Add(ttl).Unix(),
	}, secret
}

func sealState(s *secrets.Sealer, st loginState) (string, error) {
	b, _ := json.Marshal(st)
	sealed, err := s.Seal(b, stateAAD)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

func openState(s *secrets.Sealer, raw string) (loginState, error) {
	var st loginState
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return st, err
	}
	b, err := s.Open(sealed, stateAAD)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// boundTo reports whether secret is the browser secret of the state.
func (st loginState) boundTo(secret string) bool {
	return secret != "" && subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(st.BrowserHash)) == 1
}

// cookieName is the browser-binding cookie of this login: one per login, so
// launches in several frames at once do not overwrite each other.
func (st loginState) cookieName() string { return cookiePrefix + st.ID }

// cookiePrefix starts the name of every login cookie.
const cookiePrefix = "hub_lti_"

// IsLoginCookie reports whether name is the name of a login's
// browser-binding cookie.
func IsLoginCookie(name string) bool { return strings.HasPrefix(name, cookiePrefix) }
