// Package handoff signs the short-lived token that hands a signed-in learner
// to the learning app after an LTI launch or SSO sign-in.
//
// The token is a JWT signed ES256 with the hub's handoff key (published at
// /.well-known/jwks.json), addressed to the learning app (aud), valid for a
// minute, with a unique jti the app must accept only once. Besides who and
// where (sub, tenant, roles, context, activity) it carries the learner's
// name, given and family name, email and picture when the LMS sent them.
package handoff

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/token"
)

// SignIn is the message_type of a handoff after an employer's single
// sign-on (a launch's is its LTI message type).
const SignIn = "SSOSignIn"

// TTL is how long a handoff token is valid: long enough for one auto-posted
// form, short enough to be useless when leaked.
const TTL = time.Minute

// Subject is who is handed off, and to what. The personal fields (the
// OpenID Connect standard claims the LMS sent with the launch) let the
// learning app greet the learner; each is left out when the LMS sent none.
type Subject struct {
	UserID      string   `json:"sub"`
	Tenant      string   `json:"tenant"`
	Roles       []string `json:"roles"`
	Context     *Ref     `json:"context,omitempty"`
	Activity    *Ref     `json:"activity,omitempty"`
	MessageType string   `json:"message_type"`
	Locale      string   `json:"locale,omitempty"`
	Name        string   `json:"name,omitempty"`
	GivenName   string   `json:"given_name,omitempty"`
	FamilyName  string   `json:"family_name,omitempty"`
	Email       string   `json:"email,omitempty"`
	Picture     string   `json:"picture,omitempty"` // an http(s) URL
}

// Ref names a course or an activity. For an activity, ID is the LMS's
// resource link and CatalogID the hub catalog activity it was deep linked
// to, when it was.
type Ref struct {
	ID        string `json:"id"`
	Title     string `json:"title,omitempty"`
	CatalogID string `json:"catalog_id,omitempty"`
}

// Signer issues handoff tokens.
type Signer struct {
	keys     *keys.Store
	issuer   string
	audience string
	Now      func() time.Time
}

// NewSigner returns a Signer; issuer is the hub's public URL, audience the
// learning app's URL.
func NewSigner(k *keys.Store, issuer, audience string) *Signer {
	return &Signer{keys: k, issuer: issuer, audience: audience, Now: time.Now}
}

// Audience is the app the tokens are for.
func (s *Signer) Audience() string { return s.audience }

// Sign returns a token for sub.
func (s *Signer) Sign(ctx context.Context, sub Subject) (string, error) {
	now := s.Now()
	claims := struct {
		Subject
		Issuer   string `json:"iss"`
		Audience string `json:"aud"`
		IssuedAt int64  `json:"iat"`
		Expires  int64  `json:"exp"`
		ID       string `json:"jti"`
	}{sub, s.issuer, s.audience, now.Unix(), now.Add(TTL).Unix(), token.Random(16)}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("handoff: %w", err)
	}
	token, err := s.keys.Sign(ctx, keys.Handoff, payload)
	if err != nil {
		return "", fmt.Errorf("handoff: %w", err)
	}
	return string(token), nil
}
