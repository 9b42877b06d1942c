package lti

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/handoff"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/tenants"
)

// Tool is the hub's LTI tool: it answers logins and validates launches.
type Tool struct {
	db            *sqlx.DB
	registrations *Registrations
	tenants       *tenants.Store
	keysets       *keys.Cache
	sealer        *secrets.Sealer
	log           *slog.Logger
	publicURL     *url.URL

	Metrics *Metrics
	Catalog *Catalog        // the activities instructors deep link to
	Signer  *keys.Store     // signs deep linking responses
	Client  *http.Client    // outbound, guarded (internal/httpx)
	Handoff *handoff.Signer // nil: show the hub's landing page

	Now      func() time.Time
	Leeway   time.Duration // allowed clock skew on exp, iat and nbf
	StateTTL time.Duration // how long a login may take to come back
}

// NewTool wires a Tool. publicURL is HUB_PUBLIC_URL: launch and redirect
// URLs are built from it, and target links must live under it.
func NewTool(db *sqlx.DB, regs *Registrations, ts *tenants.Store, keysets *keys.Cache, sealer *secrets.Sealer,
	publicURL *url.URL, metrics *Metrics, log *slog.Logger) *Tool {
	return &Tool{db: db, registrations: regs, tenants: ts, keysets: keysets, sealer: sealer, log: log, Metrics: metrics,
		publicURL: publicURL, Now: time.Now, Leeway: 30 * time.Second, StateTTL: 10 * time.Minute}
}

// LaunchURL is the redirect_uri the platform posts id_tokens to.
func (t *Tool) LaunchURL() string { return t.publicURL.String() + "/lti/launch" }

// LoginURL is the OIDC login initiation URL.
func (t *Tool) LoginURL() string { return t.publicURL.String() + "/lti/login" }

// ours reports whether a target link points at this hub, so the hub never
// redirects a browser to an address a login request chose.
func (t *Tool) ours(target string) bool {
	u, err := url.Parse(target)
	return err == nil && strings.EqualFold(u.Scheme, t.publicURL.Scheme) && strings.EqualFold(u.Host, t.publicURL.Host)
}

// LoginRequest is the platform's third-party initiated login.
type LoginRequest struct {
	Issuer         string
	ClientID       string
	LoginHint      string
	MessageHint    string
	TargetLinkURI  string
	DeploymentID   string
	StorageTarget  string
	RegistrationID string // from a per-registration login URL
}

// LoginResult says where to send the browser and what to bind it with.
type LoginResult struct {
	RedirectURL   string
	CookieName    string
	CookieValue   string
	State         string
	StorageTarget string
}

// Login checks a login initiation and prepares the authentication request.
func (t *Tool) Login(ctx context.Context, in LoginRequest) (LoginResult, error) {
	if in.Issuer == "" || in.LoginHint == "" || in.TargetLinkURI == "" {
		return LoginResult{}, fail(ReasonBadRequest, "iss, login_hint and target_link_uri are required")
	}
	if !t.ours(in.TargetLinkURI) {
		return LoginResult{}, fail(ReasonTargetNotOurs, "target_link_uri %q", in.TargetLinkURI)
	}
	reg, err := t.findRegistration(ctx, in)
	if err != nil {
		return LoginResult{}, err
	}
	if err := t.checkTenant(ctx, reg); err != nil {
		return LoginResult{}, err
	}
	if in.DeploymentID != "" {
		if err := t.checkDeployment(ctx, reg, in.DeploymentID); err != nil {
			return LoginResult{}, err
		}
	}
	st, secret := newLoginState(reg.ID, in.TargetLinkURI, t.StateTTL, t.Now())
	st.LoginHint, st.MessageHint, st.Storage = in.LoginHint, in.MessageHint, in.StorageTarget
	state, err := sealState(t.sealer, st)
	if err != nil {
		return LoginResult{}, err
	}
	q := url.Values{
		"scope": {"openid"}, "response_type": {"id_token"}, "response_mode": {"form_post"}, "prompt": {"none"},
		"client_id": {reg.ClientID}, "redirect_uri": {t.LaunchURL()}, "login_hint": {in.LoginHint},
		"state": {state}, "nonce": {st.Nonce},
	}
	if in.MessageHint != "" {
		q.Set("lti_message_hint", in.MessageHint)
	}
	return LoginResult{RedirectURL: withQuery(reg.AuthLoginURL, q), CookieName: st.cookieName(),
		CookieValue: secret, State: state, StorageTarget: in.StorageTarget}, nil
}

func withQuery(base string, q url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q.Encode()
}

func (t *Tool) findRegistration(ctx context.Context, in LoginRequest) (Registration, error) {
	var reg Registration
	var err error
	if in.RegistrationID != "" {
		id, perr := uuid.Parse(in.RegistrationID)
		if perr != nil {
			return reg, failErr(ReasonUnknownRegistration, perr)
		}
		reg, err = t.registrations.ByID(ctx, id)
		if err == nil && (reg.Issuer != in.Issuer || (in.ClientID != "" && in.ClientID != reg.ClientID)) {
			return reg, fail(ReasonUnknownRegistration, "login URL's registration does not match iss/client_id")
		}
	} else {
		reg, err = t.registrations.Find(ctx, in.Issuer, in.ClientID)
	}
	switch {
	case apperr.Is(err, apperr.NotFound):
		return reg, failErr(ReasonUnknownRegistration, err)
	case apperr.Is(err, apperr.Invalid):
		return reg, failErr(ReasonAmbiguousIssuer, err)
	}
	return reg, err
}

func (t *Tool) checkTenant(ctx context.Context, reg Registration) error {
	tn, err := t.tenants.Get(ctx, reg.TenantID)
	if err != nil {
		return err
	}
	if tn.Status != tenants.Active {
		return fail(ReasonTenantSuspended, "tenant %s", tn.Slug)
	}
	return nil
}

func (t *Tool) checkDeployment(ctx context.Context, reg Registration, deployment string) error {
	var known bool
	err := pg.InTenant(ctx, t.db, reg.TenantID, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &known, `SELECT EXISTS (SELECT 1 FROM lti_deployments WHERE registration_id = $1 AND deployment_id = $2)`, reg.ID, deployment)
	})
	if err != nil {
		return err
	}
	if !known {
		return fail(ReasonUnknownDeployment, "deployment %q", deployment)
	}
	return nil
}
