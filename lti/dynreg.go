package lti

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

// LTI Dynamic Registration (1EdTech LTI-DR 1.0): a tenant admin creates a
// one-time link; an LMS admin opens it from their LMS, which adds
// ?openid_configuration=…&registration_token=…; the hub reads the
// platform's configuration, registers itself, stores the resulting client
// and deployment, and tells the LMS window to close.

// Reasons of refused dynamic registrations.
const (
	ReasonRegistrationLink     Reason = "registration_link_invalid"
	ReasonPlatformConfig       Reason = "platform_configuration_invalid"
	ReasonPlatformRegistration Reason = "platform_registration_failed"
	// ReasonRegistrationLinkSpent: the link failed MaxRegistrationAttempts
	// times and registers nothing more.
	ReasonRegistrationLinkSpent Reason = "registration_link_spent"
)

// MaxRegistrationAttempts is how many failed registrations a link allows
// before it is spent.
const MaxRegistrationAttempts = 5

// RegistrationLinkTTL is how long a registration link stays usable.
const RegistrationLinkTTL = 24 * time.Hour

// RegistrationLink is a one-time dynamic registration link; URL carries
// the token and is shown only at creation.
type RegistrationLink struct {
	ID        uuid.UUID `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateRegistrationLink makes a one-time link for tenant.
func (t *Tool) CreateRegistrationLink(ctx context.Context, by audit.Actor, tenant uuid.UUID) (RegistrationLink, error) {
	secret := token.Random(32)
	l := RegistrationLink{ID: uuid.New(), URL: t.publicURL.String() + "/lti/register/" + secret, ExpiresAt: t.Now().Add(RegistrationLinkTTL)}
	err := pg.InTenant(ctx, t.db, tenant, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO lti_registration_links (id, tenant_id, token_hash, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5)`, l.ID, tenant, linkHash(secret), l.ExpiresAt, t.Now()); err != nil {
			return pg.MapError(err)
		}
		_, err := t.registrations.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "lti_registration_link.created",
			TargetType: "lti_registration_link", TargetID: l.ID.String()}, t.Now())
		return err
	})
	return l, err
}

// linkHash is what a registration link is stored and found by.
func linkHash(secret string) []byte { return token.Hash("lti registration link", secret) }

type registrationLink struct {
	ID             uuid.UUID  `db:"id"`
	TenantID       uuid.UUID  `db:"tenant_id"`
	ExpiresAt      time.Time  `db:"expires_at"`
	UsedAt         *time.Time `db:"used_at"`
	RevokedAt      *time.Time `db:"revoked_at"`
	FailedAttempts int        `db:"failed_attempts"`
	TenantStatus   string     `db:"tenant_status"`
}

// OpenedLink is a registration link found usable when its URL was
// opened, not yet claimed.
type OpenedLink struct{ link registrationLink }

// OpenRegistrationLink finds the link a registration URL's secret names,
// refusing unknown, revoked, spent, used and expired links, and links of a
// tenant that is not active.
func (t *Tool) OpenRegistrationLink(ctx context.Context, secret string) (OpenedLink, error) {
	l, err := t.findLink(ctx, secret)
	return OpenedLink{l}, err
}

// Register registers the hub with the platform whose configuration the LMS
// passed when it opened the link, and returns the platform's issuer. The
// link is claimed before the hub talks to the platform, so a link opened
// several times at once registers the hub at the platform once; the other
// openings are refused. A registration that fails gives the link back, for
// another try, MaxRegistrationAttempts times at most. The tenant must be
// active when the link is opened and when the registration is stored.
func (t *Tool) Register(ctx context.Context, o OpenedLink, configURL, registrationToken string) (string, error) {
	link := o.link
	if err := t.claimLink(ctx, &link); err != nil {
		return "", err
	}
	platform, err := t.registerDynamically(ctx, link, configURL, registrationToken)
	if err != nil {
		t.releaseLink(ctx, link, attemptFailed(err))
		return "", err
	}
	return platform, nil
}

// registerDynamically reads the platform's configuration, registers the
// hub there and stores the registration, returning the platform's issuer.
func (t *Tool) registerDynamically(ctx context.Context, link registrationLink, configURL, token string) (string, error) {
	cfg, err := t.platformConfiguration(ctx, configURL, token)
	if err != nil {
		return "", err
	}
	// The registration's id is chosen first: the platform is given the
	// registration's own login URL.
	id := uuid.New()
	answer, err := t.registerWith(ctx, cfg, token, id)
	if err != nil {
		return "", err
	}
	_, err = t.storeDynamic(ctx, link, cfg, answer, id)
	return cfg.Issuer, err
}

// claimLink marks the link used, if no one did first, in a transaction
// of its own: no connection is held while the platform is called.
func (t *Tool) claimLink(ctx context.Context, link *registrationLink) error {
	now := t.Now().Truncate(time.Microsecond) // as PostgreSQL stores it
	var claimed bool
	err := pg.InTenant(ctx, t.db, link.TenantID, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE lti_registration_links SET used_at = $3
			WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3 AND failed_attempts < $4`,
			link.TenantID, link.ID, now, MaxRegistrationAttempts)
		if err != nil {
			return pg.MapError(fmt.Errorf("lti: claim registration link: %w", err))
		}
		n, _ := res.RowsAffected()
		claimed = n == 1
		return nil
	})
	switch {
	case err != nil:
		return err
	case !claimed:
		return fail(ReasonRegistrationLink, "link in use or used by another request")
	}
	link.UsedAt = &now
	return nil
}

// attemptFailed reports whether a failed registration counts against its
// link: the hub's own unavailability and the tenant's suspension do not.
func attemptFailed(err error) bool {
	var f *Failure
	return !apperr.Is(err, apperr.Unavailable) && !(errors.As(err, &f) && f.Reason == ReasonTenantSuspended)
}

// releaseLink gives back a claimed link whose registration failed, counting
// the failure when counted; the link that reaches MaxRegistrationAttempts
// stays claimed, spent. It runs even when the request was cancelled, so
// the link is not left claimed.
func (t *Tool) releaseLink(ctx context.Context, link registrationLink, counted bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	add := 0
	if counted {
		add = 1
	}
	err := pg.InTenant(ctx, t.db, link.TenantID, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE lti_registration_links SET failed_attempts = failed_attempts + $4,
				used_at = CASE WHEN failed_attempts + $4 >= $5 THEN used_at END
			WHERE tenant_id = $1 AND id = $2 AND used_at = $3 AND registration_id IS NULL`,
			link.TenantID, link.ID, link.UsedAt, add, MaxRegistrationAttempts)
		return err
	})
	if err != nil {
		t.log.ErrorContext(ctx, "release registration link", "link_id", link.ID, "err", err)
	}
}

func (t *Tool) findLink(ctx context.Context, token string) (registrationLink, error) {
	var l registrationLink
	var tenant *uuid.UUID
	err := pg.InTx(ctx, t.db, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &tenant, `SELECT hub_registration_link_tenant($1)`, linkHash(token))
	})
	if err == nil && tenant == nil {
		err = sql.ErrNoRows
	}
	if err == nil {
		err = pg.InTenant(ctx, t.db, *tenant, func(tx *sqlx.Tx) error {
			return tx.GetContext(ctx, &l, `SELECT l.id, l.tenant_id, l.expires_at, l.used_at, l.revoked_at, l.failed_attempts,
				t.status AS tenant_status FROM lti_registration_links l JOIN tenants t ON t.id = l.tenant_id
				WHERE l.tenant_id = $1 AND l.token_hash = $2`, *tenant, linkHash(token))
		})
	}
	switch {
	case pg.IsNoRows(err):
		return l, fail(ReasonRegistrationLink, "unknown link")
	case err != nil:
		return l, pg.MapError(fmt.Errorf("lti: find registration link: %w", err))
	case l.RevokedAt != nil:
		return l, fail(ReasonRegistrationLink, "link revoked")
	case l.FailedAttempts >= MaxRegistrationAttempts:
		return l, fail(ReasonRegistrationLinkSpent, "link failed %d times", l.FailedAttempts)
	case l.UsedAt != nil:
		return l, fail(ReasonRegistrationLink, "link already used")
	case t.Now().After(l.ExpiresAt):
		return l, fail(ReasonRegistrationLink, "link expired")
	case l.TenantStatus != string(tenants.Active):
		return l, fail(ReasonTenantSuspended, "tenant %s is %s", l.TenantID, l.TenantStatus)
	}
	return l, nil
}

// PlatformConfiguration is the part of the platform's OpenID configuration
// the hub needs.
type PlatformConfiguration struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	RegistrationEndpoint  string `json:"registration_endpoint"`
	TokenAudience         string `json:"authorization_server"`
	LTI                   *struct {
		ProductFamilyCode string `json:"product_family_code"`
	} `json:"https://purl.imsglobal.org/spec/lti-platform-configuration"`
}

// platformConfiguration fetches and checks the platform's configuration:
// its issuer must have the configuration URL's scheme and host, as the
// specification requires, so a link cannot be pointed at another issuer.
// The registration token goes along as a bearer: Canvas requires it here.
func (t *Tool) platformConfiguration(ctx context.Context, rawURL, token string) (PlatformConfiguration, error) {
	var cfg PlatformConfiguration
	allowHTTP := t.registrations.AllowHTTP
	u, err := url.Parse(rawURL)
	if err != nil || !isURL(rawURL) {
		return cfg, fail(ReasonPlatformConfig, "openid_configuration %q is not a URL", rawURL)
	}
	if !isPlatformURL(rawURL, allowHTTP) {
		return cfg, fail(ReasonPlatformConfig, "openid_configuration %q: %s", rawURL, platformURLMessage(allowHTTP))
	}
	body, err := t.getConfiguration(ctx, rawURL, token)
	if err != nil {
		return cfg, failErr(ReasonPlatformConfig, err)
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return cfg, failErr(ReasonPlatformConfig, err)
	}
	iss, err := url.Parse(cfg.Issuer)
	switch {
	case err != nil || !strings.EqualFold(iss.Scheme, u.Scheme) || !strings.EqualFold(iss.Host, u.Host):
		return cfg, fail(ReasonPlatformConfig, "issuer %q does not match the configuration URL %q", cfg.Issuer, rawURL)
	case !isURL(cfg.AuthorizationEndpoint) || !isURL(cfg.TokenEndpoint) || !isURL(cfg.JWKSURI) || !isURL(cfg.RegistrationEndpoint):
		return cfg, fail(ReasonPlatformConfig, "authorization, token, jwks and registration endpoints are required")
	}
	return cfg, cfg.checkSchemes(allowHTTP)
}

// checkSchemes refuses a configuration naming a plain http endpoint unless
// allowHTTP, before the hub posts anything to it or stores it.
func (cfg PlatformConfiguration) checkSchemes(allowHTTP bool) error {
	for _, e := range []struct{ field, url string }{
		{"authorization_endpoint", cfg.AuthorizationEndpoint}, {"token_endpoint", cfg.TokenEndpoint},
		{"jwks_uri", cfg.JWKSURI}, {"registration_endpoint", cfg.RegistrationEndpoint},
	} {
		if !isPlatformURL(e.url, allowHTTP) {
			return fail(ReasonPlatformConfig, "%s %q: %s", e.field, e.url, platformURLMessage(allowHTTP))
		}
	}
	return nil
}

func (t *Tool) getConfiguration(ctx context.Context, rawURL, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := t.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: status %d", rawURL, res.StatusCode)
	}
	return httpx.ReadBody(res.Body, httpx.MaxBody)
}

// toolRegistration is the client metadata the hub posts for registration
// id, with the registration's own login URL.
func (t *Tool) toolRegistration(id uuid.UUID) map[string]any {
	base := t.publicURL.String()
	return map[string]any{
		"application_type":           "web",
		"response_types":             []string{"id_token"},
		"grant_types":                []string{"implicit", "client_credentials"},
		"initiate_login_uri":         t.RegistrationLoginURL(id),
		"redirect_uris":              []string{t.LaunchURL()},
		"client_name":                "Learning hub",
		"jwks_uri":                   base + "/.well-known/jwks.json",
		"token_endpoint_auth_method": "private_key_jwt",
		"scope":                      strings.Join(Scopes, " "),
		"https://purl.imsglobal.org/spec/lti-tool-configuration": map[string]any{
			"domain":          t.publicURL.Host,
			"target_link_uri": t.LaunchURL(),
			"claims":          []string{"iss", "sub", "name", "given_name", "family_name", "email", "locale"},
			"messages": []map[string]any{
				{"type": MessageResourceLink, "target_link_uri": t.LaunchURL()},
				{"type": MessageDeepLinkingRequest, "target_link_uri": t.LaunchURL(), "label": "Add an activity"},
			},
		},
	}
}

// registrationAnswer is what the platform returns.
type registrationAnswer struct {
	ClientID string `json:"client_id"`
	Config   struct {
		DeploymentID string `json:"deployment_id"`
	} `json:"https://purl.imsglobal.org/spec/lti-tool-configuration"`
}

func (t *Tool) registerWith(ctx context.Context, cfg PlatformConfiguration, token string, id uuid.UUID) (registrationAnswer, error) {
	var a registrationAnswer
	body, _ := json.Marshal(t.toolRegistration(id))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return a, failErr(ReasonPlatformRegistration, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := t.Client.Do(req)
	if err != nil {
		return a, failErr(ReasonPlatformRegistration, err)
	}
	defer res.Body.Close()
	answer, err := httpx.ReadBody(res.Body, httpx.MaxBody)
	if err != nil || res.StatusCode/100 != 2 {
		return a, fail(ReasonPlatformRegistration, "status %d: %.200s", res.StatusCode, answer)
	}
	if err := json.Unmarshal(answer, &a); err != nil || a.ClientID == "" {
		return a, fail(ReasonPlatformRegistration, "no client_id in the answer")
	}
	return a, nil
}

// storeDynamic stores the registration as id and records it on the link
// the request claimed, in one transaction.
func (t *Tool) storeDynamic(ctx context.Context, link registrationLink, cfg PlatformConfiguration, a registrationAnswer, id uuid.UUID) (Registration, error) {
	in := NewRegistration{Issuer: cfg.Issuer, ClientID: a.ClientID, AuthLoginURL: cfg.AuthorizationEndpoint,
		AuthTokenURL: cfg.TokenEndpoint, JWKSURL: cfg.JWKSURI, id: id}
	if a.Config.DeploymentID != "" {
		in.DeploymentIDs = []string{a.Config.DeploymentID}
	} else {
		in.adoptFirstDeployment = true // Canvas: the first launch names it
	}
	if isURL(cfg.TokenAudience) {
		in.TokenAudience = cfg.TokenAudience
	}
	var reg Registration
	err := pg.InTenant(ctx, t.db, link.TenantID, func(tx *sqlx.Tx) error {
		if err := checkTenantActive(ctx, tx, link.TenantID); err != nil {
			return err
		}
		var err error
		reg, err = t.registrations.create(ctx, tx, audit.System("lti dynamic registration"), link.TenantID, in)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE lti_registration_links SET registration_id = $3
			WHERE tenant_id = $1 AND id = $2 AND used_at = $4 AND registration_id IS NULL AND revoked_at IS NULL`, link.TenantID, link.ID, reg.ID, link.UsedAt)
		if err != nil {
			return pg.MapError(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fail(ReasonRegistrationLink, "the link's claim was lost")
		}
		return nil
	})
	if err == nil {
		t.forget(reg.ID)
	}
	if apperr.Is(err, apperr.Conflict) {
		return reg, fail(ReasonPlatformRegistration, "this tenant already registered this platform and client")
	}
	if err != nil && apperr.CodeOf(err) != "" {
		return reg, failErr(ReasonPlatformRegistration, fmt.Errorf("store: %w", err))
	}
	return reg, err
}
