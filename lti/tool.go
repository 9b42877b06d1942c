package lti

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/handoff"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/secrets"
)

// Tool is the hub's LTI tool: it answers logins and validates launches.
type Tool struct {
	db            *sqlx.DB
	registrations *Registrations
	keysets       *keys.Cache
	sealer        *secrets.Sealer
	log           *slog.Logger
	publicURL     *url.URL

	Metrics *Metrics
	Catalog *Catalog        // the activities instructors deep link to
	Signer  *keys.Store     // signs deep linking responses
	Client  *http.Client    // outbound, guarded (internal/httpx)
	Handoff *handoff.Signer // nil: show the hub's landing page
	// CourseFound hears, after the launch is recorded, of a course whose
	// roster is due (Recorded.RosterDue); it must not block.
	CourseFound func(tenant, contextRef uuid.UUID)

	// LoginLimiter bounds, per source, the registration lookups of logins
	// (the only database reads anonymous callers can cause at will).
	LoginLimiter *SourceLimiter

	Now      func() time.Time
	Leeway   time.Duration // allowed clock skew on exp, iat and nbf
	StateTTL time.Duration // how long a login may take to come back
	CacheTTL time.Duration // how long registration lookups are reused

	// LaunchLogRetention is how long the launch log keeps a row;
	// housekeeping purges older ones.
	LaunchLogRetention time.Duration
	// RefusalLogLimit bounds the refusals each tenant writes to its launch
	// log per minute on this replica; more are counted, not written.
	RefusalLogLimit int

	targets  targetCache
	prepared *pg.Prepared
	refusals refusalBudget
}

// NewTool wires a Tool. publicURL is HUB_PUBLIC_URL: launch and redirect
// URLs are built from it, and target links must live under it.
func NewTool(db *sqlx.DB, regs *Registrations, keysets *keys.Cache, sealer *secrets.Sealer,
	publicURL *url.URL, metrics *Metrics, log *slog.Logger) *Tool {
	t := &Tool{db: db, registrations: regs, keysets: keysets, sealer: sealer, log: log, Metrics: metrics,
		publicURL: publicURL, Now: time.Now, Leeway: 30 * time.Second, StateTTL: 10 * time.Minute, CacheTTL: 2 * time.Second,
		LaunchLogRetention: DefaultLaunchLogRetention, RefusalLogLimit: DefaultRefusalLogLimit,
		LoginLimiter: NewSourceLimiter(DefaultLoginRate, DefaultLoginBurst, DefaultLoginSources), prepared: pg.NewPrepared(db)}
	regs.changed = t.forget
	return t
}

// PublicURL is HUB_PUBLIC_URL, a copy: the pages build their addresses
// and cookie paths from it.
func (t *Tool) PublicURL() url.URL { return *t.publicURL }

// LaunchURL is the redirect_uri the platform posts id_tokens to.
func (t *Tool) LaunchURL() string { return t.publicURL.String() + "/lti/launch" }

// LoginURL is the OIDC login initiation URL shared by every registration:
// it routes by issuer, client_id and deployment id when exactly one
// registration matches.
func (t *Tool) LoginURL() string { return t.publicURL.String() + "/lti/login" }

// origin is the hub's public origin (scheme and host of HUB_PUBLIC_URL),
// what browsers send as Origin from the hub's own pages.
func (t *Tool) origin() string { return t.publicURL.Scheme + "://" + t.publicURL.Host }

// RegistrationLoginURL is a registration's own login initiation URL, which
// routes to it whatever else matches its issuer and client_id. Tool
// configurations and dynamic registration give it to the platform.
func (t *Tool) RegistrationLoginURL(id uuid.UUID) string { return t.LoginURL() + "/" + id.String() }

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
	// Source is the client's address: its registration lookups are rate
	// limited (LoginLimiter), and so are the refusals it writes to a
	// tenant's launch log.
	Source string
	// RequestID is the reference the refusal page shows, under which a
	// refusal once the registration is known goes into its tenant's log.
	RequestID string
}

// Bounds of a login's parameters, in bytes. The hints come back in the
// redirect (and the target link in the sealed state), so these bound the
// response too; maxLoginHeader bounds what they add up to. No web server in
// front of a platform takes a longer request line than that (IIS 16 KB,
// most 8 KB): a hint that would need one is refused here, with a readable
// page, rather than at the platform.
const (
	maxLoginHint   = 4096 // login_hint, lti_message_hint: opaque, often a JWT
	maxLoginHeader = 16 << 10
)

// check refuses parameters that are too long, or not printable text, before
// anything is looked up or echoed.
func (in LoginRequest) check() error {
	for _, p := range []struct {
		name, value string
		max         int
	}{
		{"iss", in.Issuer, MaxURLLength}, {"client_id", in.ClientID, MaxIDLength}, {"login_hint", in.LoginHint, maxLoginHint},
		{"lti_message_hint", in.MessageHint, maxLoginHint}, {"target_link_uri", in.TargetLinkURI, MaxURLLength},
		{"lti_deployment_id", in.DeploymentID, MaxIDLength}, {"lti_storage_target", in.StorageTarget, MaxIDLength},
	} {
		if len(p.value) > p.max {
			return fail(ReasonInvalidParameter, "%s is %d bytes, at most %d", p.name, len(p.value), p.max)
		}
		if !printable(p.value) {
			return fail(ReasonInvalidParameter, "%s is not printable UTF-8 text", p.name)
		}
	}
	return nil
}

// printable reports valid UTF-8 without control characters (NUL, line
// breaks), which no login parameter has reason to hold.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
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
	if err := in.check(); err != nil {
		return LoginResult{}, err
	}
	if in.Issuer == "" || in.LoginHint == "" || in.TargetLinkURI == "" {
		return LoginResult{}, fail(ReasonBadRequest, "iss, login_hint and target_link_uri are required")
	}
	if !t.ours(in.TargetLinkURI) {
		return LoginResult{}, fail(ReasonTargetNotOurs, "target_link_uri %q", in.TargetLinkURI)
	}
	reg, err := t.loginTarget(ctx, in)
	if err != nil {
		return LoginResult{}, err
	}
	if err := reg.usable(in.DeploymentID); err != nil {
		t.logRefusal(ctx, &Launch{target: reg, Registration: reg.Registration}, reasonOf(err), in.RequestID, in.Source)
		return LoginResult{}, err
	}
	st, secret := newLoginState(reg.ID, in.TargetLinkURI, t.StateTTL, t.Now())
	st.Storage = in.StorageTarget
	st.Tenant = reg.TenantID
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
	res := LoginResult{RedirectURL: withQuery(reg.AuthLoginURL, q), CookieName: st.cookieName(),
		CookieValue: secret, State: state, StorageTarget: in.StorageTarget}
	if n := len(res.RedirectURL) + len(res.CookieName) + len(res.CookieValue); n > maxLoginHeader {
		return LoginResult{}, fail(ReasonInvalidParameter, "the redirect would be %d bytes, at most %d", n, maxLoginHeader)
	}
	return res, nil
}

func withQuery(base string, q url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q.Encode()
}

// usable checks the tenant is active and, when given, the deployment known.
func (tg target) usable(deployment string) error {
	if !tg.active() {
		return fail(ReasonTenantSuspended, "tenant %s", tg.TenantSlug)
	}
	if deployment != "" && !tg.deploys(deployment) && !tg.adopts() {
		return fail(ReasonUnknownDeployment, "deployment %q", deployment)
	}
	return nil
}
