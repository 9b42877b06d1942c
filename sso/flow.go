package sso

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"golang.org/x/oauth2"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/tenants"
)

// Tenants finds a tenant by the slug a sign-in names.
type Tenants interface {
	BySlug(ctx context.Context, slug string) (tenants.Tenant, error)
}

// Service runs sign-ins, sessions and logouts over a Store.
type Service struct {
	*Store
	sealer    *secrets.Sealer
	keysets   *keys.Cache
	client    *http.Client
	tenants   Tenants
	providers providers
	// Leeway is the clock skew allowed on an id_token's exp.
	Leeway time.Duration
	// Metrics, when set, counts sign-ins and refusals.
	Metrics *Metrics
	// StartLimiter, when set, bounds per source the sign-ins anyone may
	// start: each costs a database write and, uncached, a discovery.
	StartLimiter Limiter
}

// Limiter is a rate limit per source (lti.SourceLimiter).
type Limiter interface {
	Allow(source string, now time.Time) (bool, time.Duration)
}

// NewService returns sign-ins over store: providers reached with client
// (httpx.New), each answer cut at httpx.MaxBody, their keys through
// keysets, state sealed with sealer.
func NewService(store *Store, sealer *secrets.Sealer, keysets *keys.Cache, client *http.Client, ts Tenants) *Service {
	client = bounded(client)
	s := &Service{Store: store, sealer: sealer, keysets: keysets, client: client, tenants: ts, Leeway: 30 * time.Second}
	s.providers = providers{client: client, ttl: DiscoveryTTL, now: func() time.Time { return s.Now() }}
	return s
}

// target is a connection with its tenant, as a sign-in needs it.
type target struct {
	connRow
	TenantSlug   string `db:"tenant_slug"`
	TenantName   string `db:"tenant_name"`
	TenantStatus string `db:"tenant_status"`
}

var targetQuery = `SELECT ` + connColumnsOf("c") + `, t.slug AS tenant_slug, t.display_name AS tenant_name, t.status AS tenant_status
	FROM sso_connections c JOIN tenants t ON t.id = c.tenant_id WHERE c.tenant_id = $1`

// readTarget reads connection id of tenant, or the tenant's only enabled
// connection when id is nil.
func (s *Service) readTarget(ctx context.Context, tenant uuid.UUID, id *uuid.UUID) (target, error) {
	tg, err := s.readAnyTarget(ctx, tenant, id)
	if err == nil && !tg.Enabled {
		return target{}, fail(ReasonUnknownConnection, "connection %s is disabled", tg.ID)
	}
	return tg, err
}

// readAnyTarget is readTarget for a connection enabled or not: a disabled
// one starts no sign-in, but the sessions it opened still log out.
func (s *Service) readAnyTarget(ctx context.Context, tenant uuid.UUID, id *uuid.UUID) (target, error) {
	var found []target
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if id != nil {
			return tx.SelectContext(ctx, &found, targetQuery+` AND c.id = $2`, tenant, *id)
		}
		return tx.SelectContext(ctx, &found, targetQuery+` AND c.enabled ORDER BY c.created_at LIMIT 2`, tenant)
	})
	switch {
	case err != nil:
		return target{}, pg.MapError(fmt.Errorf("sso: read connection: %w", err))
	case id == nil && len(found) > 1:
		return target{}, fail(ReasonNoConnectionChosen, "tenant %s has several enabled connections and the domain names none", tenant)
	case len(found) != 1:
		return target{}, fail(ReasonUnknownConnection, "tenant %s: %d connections found (id %v)", tenant, len(found), id)
	case found[0].TenantStatus != string(tenants.Active):
		return target{}, fail(ReasonTenantSuspended, "tenant %s is %s", tenant, found[0].TenantStatus)
	}
	return found[0], nil
}

// StartRequest is how a sign-in starts: an email whose domain picks the
// tenant and connection (home-realm discovery), or a tenant's slug and
// one of its connections.
type StartRequest struct {
	Email      string
	Tenant     string
	Connection string
	Source     string // the client's address, for StartLimiter
}

// Started is where to send the browser, and the state cookie to set.
type Started struct {
	URL         string
	StateCookie string
}

// Start begins a sign-in (OpenID Connect Core 1.0 §3.1.2.1): the
// authorization request with state, nonce and an S256 PKCE challenge
// (RFC 7636 §4.3), to the connection's provider.
func (s *Service) Start(ctx context.Context, in StartRequest) (Started, error) {
	if s.StartLimiter != nil && in.Source != "" {
		if ok, wait := s.StartLimiter.Allow(in.Source, s.Now()); !ok {
			return Started{}, &Failure{Reason: ReasonRateLimited, Detail: "the source is over its sign-in limit", RetryAfter: wait}
		}
	}
	tg, err := s.startTarget(ctx, in)
	if err != nil {
		return Started{}, err
	}
	c := s.connection(tg.connRow)
	p, err := s.providers.get(c)
	if err != nil {
		return Started{}, failErr(ReasonProviderUnavailable, err, "discovery")
	}
	now := s.Now()
	pend := pending{Tenant: tg.TenantID, Connection: tg.ID, State: token.Random(32), Nonce: token.Random(32),
		Verifier: oauth2.GenerateVerifier(), Expires: now.Add(StateTTL)}
	cookie, err := sealState(s.sealer, pend)
	if err != nil {
		return Started{}, err
	}
	err = pg.InTenant(ctx, s.db, tg.TenantID, func(tx *sqlx.Tx) error {
		// Sign-ins abandoned at the provider: a few go with each new one.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sso_sign_ins WHERE tenant_id = $1 AND state_hash IN (
			SELECT state_hash FROM sso_sign_ins WHERE tenant_id = $1 AND expires_at < $2 LIMIT 20)`, tg.TenantID, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sso_sign_ins (tenant_id, state_hash, connection_id, expires_at) VALUES ($1, $2, $3, $4)`,
			tg.TenantID, token.Hash("sso state", pend.State), tg.ID, pend.Expires)
		return err
	})
	if err != nil {
		return Started{}, pg.MapError(fmt.Errorf("sso: record sign-in: %w", err))
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(pend.Nonce), oauth2.S256ChallengeOption(pend.Verifier)}
	if in.Email != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", in.Email))
	}
	return Started{URL: s.oauth(c, p, "").AuthCodeURL(pend.State, opts...), StateCookie: cookie}, nil
}

func (s *Service) startTarget(ctx context.Context, in StartRequest) (target, error) {
	if in.Email != "" {
		domain, err := DomainOfEmail(in.Email)
		if err != nil || len(in.Email) > 320 {
			return target{}, failErr(ReasonBadRequest, err, "email")
		}
		route, ok, err := s.routeDomain(ctx, domain)
		if err != nil {
			return target{}, err
		}
		if !ok {
			return target{}, fail(ReasonUnknownDomain, "no tenant signs in %s", domain)
		}
		return s.readTarget(ctx, route.Tenant, route.Connection)
	}
	if in.Tenant == "" || in.Connection == "" {
		return target{}, fail(ReasonBadRequest, "neither an email nor a tenant and connection")
	}
	t, err := s.tenants.BySlug(ctx, in.Tenant)
	if apperr.Is(err, apperr.NotFound) {
		return target{}, failErr(ReasonUnknownConnection, err, "tenant")
	}
	if err != nil {
		return target{}, err
	}
	id, err := uuid.Parse(in.Connection)
	if err != nil {
		return target{}, failErr(ReasonUnknownConnection, err, "connection id")
	}
	return s.readTarget(ctx, t.ID, &id)
}

// oauth is c's OAuth 2.0 client configuration; secret "" for a public
// client (the secret is opened only to exchange a code).
func (s *Service) oauth(c Connection, p *provider, secret Secret) *oauth2.Config {
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: string(secret), Endpoint: p.oidc.Endpoint(),
		RedirectURL: c.RedirectURI, Scopes: c.Scopes}
}

// Callback is what the provider's redirect brought to the connection's
// redirect URI, and the browser's state cookie.
type Callback struct {
	Connection       string // the connection id in the path
	State, Code      string
	Error, ErrorDesc string
	// Iss is RFC 9207's iss parameter; HasIss tells it absent from empty.
	Iss         string
	HasIss      bool
	StateCookie string
	RequestID   string // for the audit entry of the sign-in
}

// SignedIn is a finished sign-in: who, where, and their new session.
type SignedIn struct {
	Tenant     uuid.UUID
	TenantSlug string
	TenantName string
	Connection uuid.UUID
	User       User
	Groups     []string
	Created    bool   // the user was created just in time
	MatchedBy  string // identity, employee_id, email or jit
	Session    string // the hub_session cookie's value
	Expires    time.Time
}

// Finish completes a sign-in at the connection's redirect URI (OpenID
// Connect Core 1.0 §3.1.2.5–§3.1.3.7): it consumes the browser's pending
// sign-in once, defends against mix-up (the connection in the path is the
// state's; RFC 9207's iss is the connection's issuer), exchanges the code
// with the PKCE verifier, verifies the id_token, and links the identity to
// one user and opens a session in one transaction. Any refusal writes
// nothing but the consumed state.
func (s *Service) Finish(ctx context.Context, cb Callback) (SignedIn, error) {
	pend, err := s.consume(ctx, cb)
	if err != nil {
		return SignedIn{}, err
	}
	if cb.Error != "" {
		if cb.Error == "access_denied" {
			return SignedIn{}, fail(ReasonAccessDenied, "provider: %.200s", cb.ErrorDesc)
		}
		return SignedIn{}, fail(ReasonProviderError, "provider: %.64s: %.200s", cb.Error, cb.ErrorDesc)
	}
	tg, err := s.readTarget(ctx, pend.Tenant, &pend.Connection)
	if err != nil {
		return SignedIn{}, err
	}
	c := s.connection(tg.connRow)
	p, err := s.providers.get(c)
	if err != nil {
		return SignedIn{}, failErr(ReasonProviderUnavailable, err, "discovery")
	}
	if err := checkISS(cb, c, p.meta); err != nil {
		return SignedIn{}, err
	}
	prof, raw, err := s.redeem(ctx, tg, c, p, cb.Code, pend)
	if err != nil {
		return SignedIn{}, err
	}
	return s.signIn(ctx, tg, c, prof, raw, cb.RequestID)
}

// consume checks the callback against the browser's state cookie and
// deletes the pending sign-in's row: whatever follows, it is used.
func (s *Service) consume(ctx context.Context, cb Callback) (pending, error) {
	if cb.StateCookie == "" {
		return pending{}, fail(ReasonStateMissing, "no state cookie")
	}
	now := s.Now()
	pend, err := openState(s.sealer, cb.StateCookie, now)
	if err != nil {
		return pending{}, failErr(ReasonStateUsed, err, "state cookie")
	}
	if subtle.ConstantTimeCompare([]byte(cb.State), []byte(pend.State)) != 1 {
		return pending{}, fail(ReasonStateInvalid, "the state parameter is not this browser's")
	}
	if cb.Connection != pend.Connection.String() {
		return pending{}, fail(ReasonMixUp, "callback of connection %.64q for a sign-in with %s", cb.Connection, pend.Connection)
	}
	var n int64
	err = pg.InTenant(ctx, s.db, pend.Tenant, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sso_sign_ins WHERE tenant_id = $1 AND state_hash = $2 AND connection_id = $3
			AND expires_at > $4`, pend.Tenant, token.Hash("sso state", pend.State), pend.Connection, now)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return pending{}, pg.MapError(fmt.Errorf("sso: consume state: %w", err))
	}
	if n != 1 {
		return pending{}, fail(ReasonStateUsed, "the sign-in was finished already or expired")
	}
	return pend, nil
}

// checkISS applies RFC 9207 §2.4: an iss parameter must be the
// connection's issuer, and a provider that says it sends one must.
func checkISS(cb Callback, c Connection, meta discovery) error {
	switch {
	case cb.HasIss && cb.Iss != c.TokenIssuer():
		return fail(ReasonMixUp, "iss parameter %.200q is not the connection's issuer", cb.Iss)
	case !cb.HasIss && meta.ISSParameter:
		return fail(ReasonMixUp, "the provider sends iss (RFC 9207) and this response has none")
	}
	return nil
}

// errNoIDToken is a token response without an id_token.
var errNoIDToken = errors.New("sso: token response has no id_token")

// redeem exchanges the code and verifies what comes back: the id_token
// by go-oidc (signature, iss, aud, exp) and then by the checks it leaves
// to its caller; the claims the id_token lacks from userinfo.
func (s *Service) redeem(ctx context.Context, tg target, c Connection, p *provider, code string, pend pending) (profile, string, error) {
	secret, err := s.clientSecret(tg.connRow)
	if err != nil {
		return profile{}, "", err
	}
	octx := oidc.ClientContext(ctx, s.client)
	tok, err := s.oauth(c, p, secret).Exchange(octx, code, oauth2.VerifierOption(pend.Verifier))
	if err != nil {
		return profile{}, "", failErr(ReasonCodeExchange, err, "token endpoint")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return profile{}, "", failErr(ReasonCodeExchange, errNoIDToken, "token endpoint")
	}
	v := oidc.NewVerifier(c.TokenIssuer(), keySet{cache: s.keysets, url: p.meta.JWKSURI},
		&oidc.Config{ClientID: c.ClientID, SupportedSigningAlgs: []string{oidc.RS256}, Now: func() time.Time { return s.Now().Add(-s.Leeway) }})
	idt, err := v.Verify(octx, raw)
	if err != nil {
		return profile{}, "", failErr(ReasonIDToken, err, "id_token")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return profile{}, "", failErr(ReasonIDToken, err, "id_token claims")
	}
	if err := checkIDToken(claims, c.ClientID, pend.Nonce); err != nil {
		return profile{}, "", err
	}
	if err := s.fillFromUserinfo(octx, c, p, tok, idt.Subject, claims); err != nil {
		return profile{}, "", err
	}
	prof, err := profileOf(claims, c)
	return prof, raw, err
}

// checkIDToken is what go-oidc's Verify leaves to its caller (OpenID
// Connect Core 1.0 §3.1.3.7): the nonce is this sign-in's (item 11); with
// several audiences azp is present (item 4), and when present it is this
// client (item 5).
func checkIDToken(claims map[string]any, clientID, nonce string) error {
	got, _ := claims["nonce"].(string)
	if subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return fail(ReasonNonce, "id_token nonce is not this sign-in's")
	}
	azp, hasAZP := claims["azp"]
	if aud, ok := claims["aud"].([]any); ok && len(aud) > 1 && !hasAZP {
		return fail(ReasonAuthorizedParty, "id_token has %d audiences and no azp", len(aud))
	}
	if hasAZP && azp != clientID {
		return fail(ReasonAuthorizedParty, "id_token azp is another client's")
	}
	return nil
}

// fillFromUserinfo asks the userinfo endpoint (OpenID Connect Core 1.0
// §5.3) for the mapped claims the id_token lacks, and adds those. Its sub
// must be the id_token's (§5.3.2).
func (s *Service) fillFromUserinfo(ctx context.Context, c Connection, p *provider, tok *oauth2.Token, subject string, claims map[string]any) error {
	if p.oidc.UserInfoEndpoint() == "" {
		return nil
	}
	wanted := []string{c.Claims.Email, c.Claims.Name, c.Claims.Groups, c.Claims.EmployeeID}
	missing := slices.ContainsFunc(wanted, func(name string) bool { _, ok := claims[name]; return name != "" && !ok })
	if !missing {
		return nil
	}
	info, err := p.oidc.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return failErr(ReasonProviderUnavailable, err, "userinfo")
	}
	if info.Subject != subject {
		return fail(ReasonIDToken, "userinfo sub is not the id_token's")
	}
	more := map[string]any{}
	if err := info.Claims(&more); err != nil {
		return failErr(ReasonProviderError, err, "userinfo claims")
	}
	for k, v := range more {
		if _, ok := claims[k]; !ok && !slices.Contains(registeredClaims, k) {
			claims[k] = v
		}
	}
	return nil
}

// registeredClaims are the id_token's own: userinfo never supplies them.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp", "auth_time", "at_hash", "c_hash", "sid", "jti"}
