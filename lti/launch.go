package lti

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/internal/keys"
)

// LaunchRequest is what the browser posts to /lti/launch: the token, the
// state, and the browser secret the state is bound to, from platform
// storage (StorageSecret) or from the login's cookie (Cookie looks one up
// by name). Origin is the post's Origin header: a storage secret is
// accepted only from the hub's own page.
type LaunchRequest struct {
	IDToken       string
	State         string
	StorageSecret string
	Origin        string
	Cookie        func(name string) string
	// Source is the client's address, which bounds the refusals one
	// source can write to a tenant's launch log.
	Source string
}

// browserSecret is the secret the browser holds for st, if any.
func (in LaunchRequest) browserSecret(st loginState) string {
	if in.StorageSecret != "" || in.Cookie == nil {
		return in.StorageSecret
	}
	return in.Cookie(st.cookieName())
}

// Launch is a validated launch.
type Launch struct {
	Registration Registration
	target       target
	Claims       Claims
	Message      string
	Roles        []string // context roles, short names expanded
	Institution  []string
	System       []string
	state        loginState
}

// Validate runs the launch pipeline. Each step is small and HTTP-free and
// fails with a *Failure naming its reason. Nothing is written here: Record
// stores a valid launch, consuming its nonce.
func (t *Tool) Validate(ctx context.Context, in LaunchRequest) (*Launch, error) {
	l := &Launch{}
	if err := t.validate(ctx, in, l); err != nil {
		return nil, err
	}
	return l, nil
}

// validate fills l as the pipeline goes: after a refusal, l holds what was
// learnt before it (the registration once found, the claims once signed),
// which is what the launch log can name.
func (t *Tool) validate(ctx context.Context, in LaunchRequest, l *Launch) error {
	st, err := t.checkState(in)
	if err != nil {
		return err
	}
	l.state = st
	if l.target, err = t.targetOf(ctx, st.Registration, st.Tenant); err != nil {
		return err
	}
	l.Registration = l.target.Registration
	if err := l.target.usable(""); err != nil {
		return err
	}
	payload, err := t.verifySignature(ctx, l.Registration, in.IDToken)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(payload, &l.Claims); err != nil {
		return failErr(ReasonMalformedClaims, err)
	}
	steps := []func(context.Context, *Launch) error{
		checkText, t.checkIssuerAudience, t.checkTimes, checkNonce, t.checkLaunchDeployment,
		checkVersionAndType, checkMessageClaims, checkTargetLink,
	}
	for _, step := range steps {
		if err := step(ctx, l); err != nil {
			return err
		}
	}
	l.Roles, l.Institution, l.System = Roles(*l.Claims.Roles)
	return nil
}

func (t *Tool) checkState(in LaunchRequest) (loginState, error) {
	if in.State == "" || in.IDToken == "" {
		return loginState{}, fail(ReasonBadRequest, "id_token and state are required")
	}
	st, err := openState(t.sealer, in.State)
	if err != nil {
		return st, failErr(ReasonInvalidState, err)
	}
	if t.Now().Unix() > st.Expires {
		return st, fail(ReasonStateExpired, "state expired")
	}
	if in.StorageSecret != "" {
		if err := t.checkStoragePost(st, in.Origin); err != nil {
			return st, err
		}
	}
	if !st.boundTo(in.browserSecret(st)) {
		return st, fail(ReasonStateNotBound, "the state was not issued to this browser")
	}
	return st, nil
}

// sameOrigin compares two origins as browsers do: scheme and host without
// regard to case, and a port equal to the scheme's default left out.
func sameOrigin(a, b string) bool {
	norm := func(s string) string {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return ""
		}
		host, port := strings.ToLower(u.Hostname()), u.Port()
		scheme := strings.ToLower(u.Scheme)
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			port = ""
		}
		if port != "" {
			host = net.JoinHostPort(host, port)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return scheme + "://" + host
	}
	na := norm(a)
	return na != "" && na == norm(b)
}

// checkStoragePost admits a secret from platform storage only when the
// login stored one there, and only posted by the hub's own launch page (its
// Origin is the hub's). Anyone who started a login of their own knows that
// login's secret: without these checks a cross-site form could post their
// launch, with their secret, into someone else's browser.
func (t *Tool) checkStoragePost(st loginState, origin string) error {
	if st.Storage == "" {
		return fail(ReasonStorageSecretUnexpected, "a storage secret was posted, but the login did not use platform storage")
	}
	if !sameOrigin(origin, t.origin()) {
		return fail(ReasonStorageSecretCrossOrigin, "the post's Origin is %.100q, not the hub's", origin)
	}
	return nil
}

// verifySignature accepts RS256 only, with a kid naming a key of the
// platform's keyset: no "none", no HMAC, no key carried in the token. An
// id_token is a compact JWS (OpenID Connect): the JSON serialization and
// the unencoded payload option (b64, which needs crit) are refused.
func (t *Tool) verifySignature(ctx context.Context, reg Registration, token string) ([]byte, error) {
	if !compactJWS(token) {
		return nil, fail(ReasonNotAJWT, "not a compact JWS")
	}
	msg, err := jws.Parse([]byte(token), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, fail(ReasonNotAJWT, "not a compact JWS")
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if h.Algorithm() != jwa.RS256 {
		return nil, fail(ReasonBadAlgorithm, "alg %q", h.Algorithm())
	}
	if len(h.Critical()) > 0 {
		return nil, fail(ReasonNotAJWT, "crit %v", h.Critical())
	}
	if _, ok := h.Get("b64"); ok {
		return nil, fail(ReasonNotAJWT, "b64 in the header")
	}
	if h.KeyID() == "" {
		return nil, fail(ReasonNoKID, "no kid in the header")
	}
	key, err := t.keysets.RSAKey(ctx, reg.JWKSURL, h.KeyID())
	if err != nil {
		if errors.Is(err, keys.ErrUnknownKey) {
			return nil, failErr(ReasonUnknownKID, err)
		}
		return nil, failErr(ReasonKeysetUnavailable, err)
	}
	payload, err := jws.Verify([]byte(token), jws.WithKey(jwa.RS256, key), jws.WithCompact())
	if err != nil {
		return nil, failErr(ReasonBadSignature, err)
	}
	return payload, nil
}

// checkIssuerAudience follows the Security Framework (§5.1.3): the issuer
// is the platform's, aud holds the hub's client id and no audience the
// registration does not trust, and with several audiences azp names the
// hub.
// compactJWS reports three base64url parts joined by dots and nothing
// else. The JOSE library skips line breaks inside the parts, so without
// this check one signature would verify many different token strings.
func compactJWS(token string) bool {
	dots := 0
	for _, r := range token {
		switch {
		case r == '.':
			dots++
		case r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		default:
			return false
		}
	}
	return dots == 2
}

func (t *Tool) checkIssuerAudience(_ context.Context, l *Launch) error {
	c, reg := l.Claims, l.Registration
	untrusted := func(aud string) bool { return aud != reg.ClientID && !slices.Contains(reg.TrustedAudiences, aud) }
	switch {
	case c.Issuer != reg.Issuer:
		return fail(ReasonWrongIssuer, "iss %q", c.Issuer)
	case !slices.Contains(c.Audience, reg.ClientID):
		return fail(ReasonWrongAudience, "aud %v", c.Audience)
	case slices.ContainsFunc(c.Audience, untrusted):
		return fail(ReasonWrongAudience, "aud %v names an audience the registration does not trust", c.Audience)
	case len(c.Audience) > 1 && c.AuthorizedParty != reg.ClientID:
		return fail(ReasonWrongAZP, "aud has several values and azp is %q", c.AuthorizedParty)
	case c.AuthorizedParty != "" && c.AuthorizedParty != reg.ClientID:
		return fail(ReasonWrongAZP, "azp %q", c.AuthorizedParty)
	}
	return nil
}

func (t *Tool) checkTimes(_ context.Context, l *Launch) error {
	c := l.Claims
	if c.ExpiresAt == nil || c.IssuedAt == nil {
		return fail(ReasonMissingTimestamps, "exp and iat are required")
	}
	now := t.Now()
	switch {
	case now.Add(-t.Leeway).After(unix(*c.ExpiresAt)):
		return fail(ReasonExpired, "exp %v", *c.ExpiresAt)
	case now.Add(t.Leeway).Before(unix(*c.IssuedAt)):
		return fail(ReasonIssuedInFuture, "iat %v", *c.IssuedAt)
	case c.NotBefore != nil && now.Add(t.Leeway).Before(unix(*c.NotBefore)):
		return fail(ReasonIssuedInFuture, "nbf %v", *c.NotBefore)
	}
	return nil
}

func unix(f float64) time.Time { return time.Unix(int64(f), 0) }

func checkNonce(_ context.Context, l *Launch) error {
	if l.Claims.Nonce == "" || l.Claims.Nonce != l.state.Nonce {
		return fail(ReasonNonceMismatch, "nonce does not match the login's")
	}
	return nil
}

func (t *Tool) checkLaunchDeployment(_ context.Context, l *Launch) error {
	if l.Claims.DeploymentID == nil || *l.Claims.DeploymentID == "" {
		return fail(ReasonMissingDeployment, "no deployment_id claim")
	}
	return l.target.usable(*l.Claims.DeploymentID)
}

func checkVersionAndType(_ context.Context, l *Launch) error {
	c := l.Claims
	switch {
	case c.Version == nil:
		return fail(ReasonMissingVersion, "no version claim")
	case *c.Version != Version:
		return fail(ReasonWrongVersion, "version %q", *c.Version)
	case c.MessageType == nil:
		return fail(ReasonMissingMessageType, "no message_type claim")
	case *c.MessageType != MessageResourceLink && *c.MessageType != MessageDeepLinkingRequest:
		return fail(ReasonUnsupportedMessage, "message_type %q", *c.MessageType)
	}
	l.Message = *c.MessageType
	return nil
}

// checkMessageClaims checks what each message type requires. An empty roles
// array is valid (anonymous or role-less launches); an absent one is not.
func checkMessageClaims(_ context.Context, l *Launch) error {
	c := l.Claims
	switch {
	case c.Subject == nil || *c.Subject == "":
		return fail(ReasonMissingSubject, "no sub claim")
	case c.Roles == nil:
		return fail(ReasonMissingRoles, "no roles claim")
	case l.Message == MessageResourceLink && (c.ResourceLink == nil || c.ResourceLink.ID == ""):
		return fail(ReasonMissingResourceLink, "no resource_link id")
	case l.Message == MessageDeepLinkingRequest && (c.DeepLinking == nil || c.DeepLinking.ReturnURL == ""):
		return fail(ReasonMissingDeepLinking, "no deep_linking_settings return URL")
	}
	return nil
}

// checkTargetLink compares the signed target_link_uri with the login's;
// the hub then uses only the signed one.
func checkTargetLink(_ context.Context, l *Launch) error {
	switch {
	case l.Claims.TargetLinkURI == "":
		return fail(ReasonMissingTargetLink, "no target_link_uri claim")
	case l.Claims.TargetLinkURI != l.state.TargetLink:
		return fail(ReasonTargetLinkMismatch, "signed %q, login %q", l.Claims.TargetLinkURI, l.state.TargetLink)
	}
	return nil
}
