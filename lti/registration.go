package lti

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Registration is one LMS platform registered by a tenant: unique within
// the tenant by (issuer, client_id), whatever other tenants registered.
// Read as the target of a launch through a shared registration, TenantID
// is the tenant of the launch's deployment and DeploymentIDs are that
// tenant's.
type Registration struct {
	ID       uuid.UUID `db:"id" json:"id"`
	TenantID uuid.UUID `db:"tenant_id" json:"tenant_id"`
	// Shared: the operator's registration, which belongs to no tenant
	// (see SharedRegistration).
	Shared        bool           `db:"shared" json:"shared"`
	Issuer        string         `db:"issuer" json:"issuer"`
	ClientID      string         `db:"client_id" json:"client_id"`
	AuthLoginURL  string         `db:"auth_login_url" json:"auth_login_url"`
	AuthTokenURL  string         `db:"auth_token_url" json:"auth_token_url"`
	TokenAudience string         `db:"token_audience" json:"token_audience"`
	JWKSURL       string         `db:"jwks_url" json:"jwks_url"`
	DeploymentIDs pq.StringArray `db:"deployment_ids" json:"deployment_ids"`
	// TrustedAudiences are the audiences besides ClientID that the
	// platform's id_tokens may list in aud; any other refuses the launch.
	TrustedAudiences pq.StringArray `db:"trusted_audiences" json:"trusted_audiences"`
	// AdoptFirstDeployment: registered dynamically without a deployment
	// id, the registration takes the first one a signed launch names.
	AdoptFirstDeployment bool      `db:"adopt_first_deployment" json:"adopt_first_deployment"`
	CreatedAt            time.Time `db:"created_at" json:"created_at"`
	UpdatedAt            time.Time `db:"updated_at" json:"updated_at"`
}

// NewRegistration is what a tenant admin supplies.
type NewRegistration struct {
	Issuer        string   `json:"issuer"`
	ClientID      string   `json:"client_id"`
	AuthLoginURL  string   `json:"auth_login_url"`
	AuthTokenURL  string   `json:"auth_token_url"`
	TokenAudience string   `json:"token_audience"`
	JWKSURL       string   `json:"jwks_url"`
	DeploymentIDs []string `json:"deployment_ids"`
	// TrustedAudiences are other audiences the platform names in id_tokens'
	// aud besides the client id (Schoology sends an array).
	TrustedAudiences []string `json:"trusted_audiences"`

	adoptFirstDeployment bool      // set by dynamic registration only
	id                   uuid.UUID // set by dynamic registration, which names it to the platform first
}

// Bounds of a registration, documented in the OpenAPI document. They keep
// one request short: a registration is written in one transaction, and a
// request naming tens of thousands of deployments held a pooled connection
// for half a minute.
const (
	MaxIDLength              = 255  // client_id and each deployment id, in characters
	MaxURLLength             = 2048 // issuer, the platform's endpoints and the token audience
	MaxDeploymentsPerRequest = 100  // deployment_ids of one new registration
	MaxDeployments           = 1000 // deployments of one registration, however added
	MaxTrustedAudiences      = 10   // trusted_audiences of a registration, each at most MaxURLLength characters
)

// Validate reports every invalid field at once. The platform's login, token
// and keyset URLs must be https; Registrations lets them be plain http when
// private addresses are allowed.
func (n NewRegistration) Validate() error { return n.validate(false) }

func (n NewRegistration) validate(allowHTTP bool) error {
	var v apperr.Validator
	msg := platformURLMessage(allowHTTP)
	v.Check(isURL(n.Issuer), "issuer", fmt.Sprintf("must be the platform's issuer URL, at most %d characters", MaxURLLength))
	v.CheckText("client_id", n.ClientID, 1, MaxIDLength)
	v.Check(isPlatformURL(n.AuthLoginURL, allowHTTP), "auth_login_url", msg)
	v.Check(isPlatformURL(n.AuthTokenURL, allowHTTP), "auth_token_url", msg)
	v.CheckText("token_audience", n.TokenAudience, 0, MaxURLLength)
	v.Check(isPlatformURL(n.JWKSURL, allowHTTP), "jwks_url", msg)
	checkDeploymentIDs(&v, n.DeploymentIDs)
	checkTrustedAudiences(&v, n.TrustedAudiences)
	return v.Err()
}

// checkTrustedAudiences reports the list once, however many of its items
// are wrong.
func checkTrustedAudiences(v *apperr.Validator, audiences []string) {
	ok := len(audiences) <= MaxTrustedAudiences && !slices.ContainsFunc(audiences, func(a string) bool {
		return a == "" || !apperr.IsText(a) || utf8.RuneCountInString(a) > MaxURLLength
	})
	v.Check(ok, "trusted_audiences", fmt.Sprintf("must hold at most %d audiences, each 1–%d characters of UTF-8 text without NUL characters",
		MaxTrustedAudiences, MaxURLLength))
}

// checkDeploymentIDs reports the list once, however many of its ids are
// wrong, so a refusal stays as small as the request should have been.
func checkDeploymentIDs(v *apperr.Validator, ids []string) {
	if len(ids) > MaxDeploymentsPerRequest {
		v.Check(false, "deployment_ids", fmt.Sprintf("must hold at most %d deployment ids; add more one at a time, up to %d per registration",
			MaxDeploymentsPerRequest, MaxDeployments))
		return
	}
	for _, d := range ids {
		if !validDeploymentID(d) {
			v.Check(false, "deployment_ids", deploymentIDMessage)
			return
		}
	}
}

var deploymentIDMessage = fmt.Sprintf("each must be 1–%d characters of UTF-8 text without NUL characters", MaxIDLength)

func validDeploymentID(d string) bool {
	return apperr.IsText(d) && d != "" && utf8.RuneCountInString(d) <= MaxIDLength
}

func isURL(s string) bool {
	if len(s) > MaxURLLength*utf8.UTFMax || utf8.RuneCountInString(s) > MaxURLLength || !apperr.IsText(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// isPlatformURL reports whether the hub may call s: an absolute https URL,
// or http too when allowHTTP (a platform on loopback in tests and the demo).
// Over plain http anyone on the path could swap the platform's keys.
//
// It also refuses what the hub would never call, so a tenant learns at once
// rather than at the first launch: credentials or a fragment in the URL, a
// port out of range, an address with a zone, and (unless allowHTTP, which
// follows HUB_OUTBOUND_ALLOW_PRIVATE) a literal loopback, private or
// link-local address, as the outbound guard judges them.
func isPlatformURL(s string, allowHTTP bool) bool {
	u, err := url.Parse(s)
	if !isURL(s) || err != nil || (u.Scheme != "https" && !allowHTTP) || u.User != nil || u.Fragment != "" {
		return false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return httpx.CheckHost(u.Host, allowHTTP) == nil
}

func platformURLMessage(allowHTTP bool) string {
	if allowHTTP {
		return fmt.Sprintf("must be an absolute https or http URL of at most %d characters, without credentials or fragment", MaxURLLength)
	}
	return fmt.Sprintf("must be an absolute https URL of at most %d characters, without credentials or fragment, to a public address", MaxURLLength)
}

// Registrations stores platform registrations.
type Registrations struct {
	db    *sqlx.DB
	chain *audit.Keyring
	log   *slog.Logger
	// changed is told of every registration that changed, after its
	// transaction committed: the Tool forgets its cached lookups of it.
	changed func(uuid.UUID)
	Now     func() time.Time
	// AllowHTTP lets a platform's URLs be plain http; main sets it from
	// HUB_OUTBOUND_ALLOW_PRIVATE, with which the hub may call loopback
	// platforms (tests, the demo). Off, they must be https.
	AllowHTTP bool
}

// NewRegistrations returns the store; its changes are audited under keys.
func NewRegistrations(db *sqlx.DB, keys *audit.Keyring, log *slog.Logger) *Registrations {
	return &Registrations{db: db, chain: keys, log: log, Now: time.Now}
}

// Create registers a platform for tenant.
func (s *Registrations) Create(ctx context.Context, by audit.Actor, tenant uuid.UUID, in NewRegistration) (Registration, error) {
	var r Registration
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		r, err = s.create(ctx, tx, by, tenant, in)
		return err
	})
	if err == nil {
		s.forget(r.ID) // it may take logins cached as another's
	}
	return r, err
}

// create validates and stores a registration inside tx.
func (s *Registrations) create(ctx context.Context, tx *sqlx.Tx, by audit.Actor, tenant uuid.UUID, in NewRegistration) (Registration, error) {
	if err := in.validate(s.AllowHTTP); err != nil {
		return Registration{}, err
	}
	now := s.Now()
	id := in.id
	if id == uuid.Nil {
		id = uuid.New()
	}
	r := Registration{ID: id, TenantID: tenant, Issuer: in.Issuer, ClientID: in.ClientID,
		AuthLoginURL: in.AuthLoginURL, AuthTokenURL: in.AuthTokenURL, TokenAudience: in.TokenAudience,
		JWKSURL: in.JWKSURL, CreatedAt: now, UpdatedAt: now, DeploymentIDs: dedupe(in.DeploymentIDs), TrustedAudiences: dedupe(in.TrustedAudiences),
		AdoptFirstDeployment: in.adoptFirstDeployment && len(in.DeploymentIDs) == 0}
	_, err := tx.NamedExecContext(ctx, `INSERT INTO lti_registrations
		(id, tenant_id, issuer, client_id, auth_login_url, auth_token_url, token_audience, jwks_url, trusted_audiences, adopt_first_deployment, created_at, updated_at)
		VALUES (:id, :tenant_id, :issuer, :client_id, :auth_login_url, :auth_token_url, :token_audience, :jwks_url, :trusted_audiences, :adopt_first_deployment, :created_at, :updated_at)`, r)
	if err = pg.MapError(err); apperr.Is(err, apperr.Conflict) {
		// Unique within the tenant only: this says nothing of other tenants.
		return Registration{}, apperr.Wrap(apperr.Conflict, err, "this tenant already has a registration with this issuer and client_id")
	}
	if err != nil {
		return Registration{}, err
	}
	if len(r.DeploymentIDs) > 0 {
		_, err := tx.ExecContext(ctx, `INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, created_at)
			SELECT $1, $2, d, $4 FROM unnest($3::text[]) AS d`, r.TenantID, r.ID, pq.StringArray(r.DeploymentIDs), now)
		if err != nil {
			return Registration{}, pg.MapError(fmt.Errorf("lti: add deployments: %w", err))
		}
	}
	return r, s.audit(ctx, tx, by, "lti_registration.created", r, nil)
}

func dedupe(ids []string) []string {
	out := []string{}
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func addDeployment(ctx context.Context, tx *sqlx.Tx, r Registration, deployment string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, created_at)
		VALUES ($1, $2, $3, $4)`, r.TenantID, r.ID, deployment, now)
	return pg.MapError(err)
}

func (s *Registrations) audit(ctx context.Context, tx *sqlx.Tx, by audit.Actor, action string, r Registration, extra map[string]string) error {
	details := map[string]string{"issuer": r.Issuer, "client_id": r.ClientID}
	for k, v := range extra {
		details[k] = v
	}
	var tenant *uuid.UUID // a shared registration's changes go to the operator's chain
	if !r.Shared {
		tenant = &r.TenantID
	}
	_, err := s.chain.Append(ctx, tx, tenant, by, audit.Event{Action: action, TargetType: "lti_registration",
		TargetID: r.ID.String(), Details: details}, s.Now())
	return err
}

// Get reads one of tenant's registrations with its deployments.
func (s *Registrations) Get(ctx context.Context, tenant, id uuid.UUID) (Registration, error) {
	var r Registration
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		r, err = getRegistration(ctx, tx, tenant, id)
		return err
	})
	return r, err
}

// registrationColumns reads a registration with its deployment ids in one
// row, for every query that returns registrations.
const registrationColumns = `r.*, array(SELECT d.deployment_id FROM lti_deployments d
	WHERE d.tenant_id = r.tenant_id AND d.registration_id = r.id ORDER BY d.created_at, d.deployment_id) AS deployment_ids`

// getRegistration reads one of tenant's own registrations (never a shared
// one, though the tenant may read those).
func getRegistration(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID) (Registration, error) {
	var r Registration
	err := tx.GetContext(ctx, &r, `SELECT `+registrationColumns+` FROM lti_registrations r
		WHERE r.tenant_id = $1 AND r.id = $2 AND NOT r.shared`, tenant, id)
	if pg.IsNoRows(err) {
		return r, apperr.New(apperr.NotFound, "registration %q not found", id)
	}
	return r, pg.MapError(err)
}

// List returns a page of tenant's registrations.
func (s *Registrations) List(ctx context.Context, tenant uuid.UUID, page pg.Page) ([]Registration, *pg.Cursor, error) {
	var rs []Registration
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		q, args := `WHERE r.tenant_id = $1 ORDER BY r.created_at, r.id LIMIT $2`, []any{tenant, page.Limit + 1}
		if page.After != nil {
			q = `WHERE r.tenant_id = $1 AND (r.created_at, r.id) > ($3, $4) ORDER BY r.created_at, r.id LIMIT $2`
			args = append(args, page.After.At, page.After.ID)
		}
		return tx.SelectContext(ctx, &rs, `SELECT `+registrationColumns+` FROM lti_registrations r `+q, args...)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("lti: list registrations: %w", err))
	}
	return pg.TrimPage(rs, page.Limit, func(r Registration) pg.Cursor { return pg.Cursor{At: r.CreatedAt, ID: r.ID} })
}

// Delete removes a registration. One whose launches left records (courses
// with their members, resource links) is refused with a Conflict unless
// force: the records go with it. Users outlive it.
func (s *Registrations) Delete(ctx context.Context, by audit.Actor, tenant, id uuid.UUID, force bool) error {
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		r, err := getRegistration(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		records, err := hasLaunchRecords(ctx, tx, tenant, id, "")
		if err != nil {
			return err
		}
		if records && !force {
			return errHasRecords("registration")
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM lti_registrations WHERE tenant_id = $1 AND id = $2`, tenant, id); err != nil {
			return pg.MapError(err)
		}
		return s.audit(ctx, tx, by, "lti_registration.deleted", r, map[string]string{"launch_records_erased": fmt.Sprint(records)})
	})
	if err == nil {
		s.forget(id)
	}
	return err
}

// hasLaunchRecords reports whether tenant holds courses or resource links
// made through the registration (and deployment, unless "").
func hasLaunchRecords(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID, deployment string) (bool, error) {
	var found bool
	err := tx.GetContext(ctx, &found, `SELECT
		EXISTS (SELECT 1 FROM contexts WHERE tenant_id = $1 AND registration_id = $2 AND ($3 = '' OR deployment_id = $3))
		OR EXISTS (SELECT 1 FROM resource_links WHERE tenant_id = $1 AND registration_id = $2 AND ($3 = '' OR deployment_id = $3))`,
		tenant, id, deployment)
	if err != nil {
		return false, pg.MapError(fmt.Errorf("lti: look for launch records: %w", err))
	}
	return found, nil
}

// errHasRecords refuses to erase launch records unless asked to.
func errHasRecords(what string) error {
	return apperr.New(apperr.Conflict, "the %s has launch records (courses, their members, resource links); removing it erases them, so it must be forced", what)
}

// forget tells the Tool a registration changed.
func (s *Registrations) forget(id uuid.UUID) {
	if s.changed != nil {
		s.changed(id)
	}
}

// AddDeployment allows one more deployment id (Canvas and Blackboard make
// one per installation).
func (s *Registrations) AddDeployment(ctx context.Context, by audit.Actor, tenant, id uuid.UUID, deployment string) (Registration, error) {
	if !validDeploymentID(deployment) {
		return Registration{}, apperr.InvalidFields(apperr.FieldError{Field: "deployment_id",
			Message: fmt.Sprintf("must be 1–%d characters of UTF-8 text without NUL characters", MaxIDLength)})
	}
	return s.changeDeployments(ctx, by, tenant, id, "lti_deployment.added", deployment, func(tx *sqlx.Tx, r Registration) error {
		if err := roomForDeployment(ctx, tx, r); err != nil {
			return err
		}
		err := addDeployment(ctx, tx, r, deployment, s.Now())
		if apperr.Is(err, apperr.Conflict) {
			return apperr.Wrap(apperr.Conflict, err, "the deployment id is already registered")
		}
		return err
	})
}

// roomForDeployment refuses a deployment past MaxDeployments. The
// registration's row stays locked to the end of the transaction, so two
// additions at once cannot both take the last place.
func roomForDeployment(ctx context.Context, tx *sqlx.Tx, r Registration) error {
	var n int
	err := tx.GetContext(ctx, &n, `SELECT (SELECT count(*) FROM lti_deployments d WHERE d.registration_id = r.id)
		FROM lti_registrations r WHERE r.id = $1 FOR UPDATE`, r.ID)
	if err != nil {
		return pg.MapError(fmt.Errorf("lti: count deployments: %w", err))
	}
	if n >= MaxDeployments {
		return apperr.InvalidFields(apperr.FieldError{Field: "deployment_id",
			Message: fmt.Sprintf("cannot be added: a registration holds at most %d deployments", MaxDeployments)})
	}
	return nil
}

// RemoveDeployment stops accepting launches from a deployment. One whose
// launches left records is refused with a Conflict unless force: the
// records go with it.
func (s *Registrations) RemoveDeployment(ctx context.Context, by audit.Actor, tenant, id uuid.UUID, deployment string, force bool) (Registration, error) {
	if !validDeploymentID(deployment) {
		return Registration{}, apperr.New(apperr.NotFound, "deployment %q not found", deployment)
	}
	return s.changeDeployments(ctx, by, tenant, id, "lti_deployment.removed", deployment, func(tx *sqlx.Tx, r Registration) error {
		return removeDeployment(ctx, tx, tenant, r.ID, deployment, force)
	})
}

// removeDeployment deletes one of tenant's deployments of a registration
// (its own or a shared one), asking first when it has launch records.
func removeDeployment(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID, deployment string, force bool) error {
	var known bool
	err := tx.GetContext(ctx, &known, `SELECT EXISTS (SELECT 1 FROM lti_deployments
		WHERE tenant_id = $1 AND registration_id = $2 AND deployment_id = $3)`, tenant, id, deployment)
	if err != nil {
		return pg.MapError(fmt.Errorf("lti: find deployment: %w", err))
	}
	if !known {
		return apperr.New(apperr.NotFound, "deployment %q not found", deployment)
	}
	records, err := hasLaunchRecords(ctx, tx, tenant, id, deployment)
	if err != nil {
		return err
	}
	if records && !force {
		return errHasRecords("deployment")
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM lti_deployments WHERE tenant_id = $1 AND registration_id = $2 AND deployment_id = $3`,
		tenant, id, deployment)
	return pg.MapError(err)
}

func (s *Registrations) changeDeployments(ctx context.Context, by audit.Actor, tenant, id uuid.UUID, action, deployment string, change func(*sqlx.Tx, Registration) error) (Registration, error) {
	var r Registration
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		if r, err = getRegistration(ctx, tx, tenant, id); err != nil {
			return err
		}
		if err := change(tx, r); err != nil {
			return err
		}
		if r, err = getRegistration(ctx, tx, tenant, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, action, r, map[string]string{"deployment_id": deployment})
	})
	if err == nil {
		s.forget(id)
	}
	return r, err
}

// RegistrationPatch changes a registration's platform endpoints: the
// fields given, each validated as at creation. Issuer and client_id name
// the registration and do not change; deployments, courses and the login
// URL stay.
type RegistrationPatch struct {
	AuthLoginURL  *string `json:"auth_login_url"`
	AuthTokenURL  *string `json:"auth_token_url"`
	JWKSURL       *string `json:"jwks_url"`
	TokenAudience *string `json:"token_audience"`
	// TrustedAudiences, when given, replaces the list whole.
	TrustedAudiences *[]string `json:"trusted_audiences"`
}

func (p RegistrationPatch) validate(allowHTTP bool) error {
	var v apperr.Validator
	msg := platformURLMessage(allowHTTP)
	for _, f := range []struct {
		name  string
		value *string
	}{{"auth_login_url", p.AuthLoginURL}, {"auth_token_url", p.AuthTokenURL}, {"jwks_url", p.JWKSURL}} {
		if f.value != nil {
			v.Check(isPlatformURL(*f.value, allowHTTP), f.name, msg)
		}
	}
	if p.TokenAudience != nil {
		v.CheckText("token_audience", *p.TokenAudience, 0, MaxURLLength)
	}
	if p.TrustedAudiences != nil {
		checkTrustedAudiences(&v, *p.TrustedAudiences)
	}
	return v.Err()
}

// apply changes r as p says and names the fields that changed.
func (p RegistrationPatch) apply(r *Registration) []string {
	var changed []string
	for _, f := range []struct {
		name string
		from *string
		to   *string
	}{{"auth_login_url", p.AuthLoginURL, &r.AuthLoginURL}, {"auth_token_url", p.AuthTokenURL, &r.AuthTokenURL},
		{"jwks_url", p.JWKSURL, &r.JWKSURL}, {"token_audience", p.TokenAudience, &r.TokenAudience}} {
		if f.from != nil && *f.from != *f.to {
			*f.to = *f.from
			changed = append(changed, f.name)
		}
	}
	if p.TrustedAudiences != nil {
		if to := dedupe(*p.TrustedAudiences); !slices.Equal(to, r.TrustedAudiences) {
			r.TrustedAudiences, changed = to, append(changed, "trusted_audiences")
		}
	}
	return changed
}

// Update changes one of tenant's registrations, audited in the same
// transaction; cached lookups of it are forgotten.
func (s *Registrations) Update(ctx context.Context, by audit.Actor, tenant, id uuid.UUID, p RegistrationPatch) (Registration, error) {
	if err := p.validate(s.AllowHTTP); err != nil {
		return Registration{}, err
	}
	var r Registration
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		if r, err = getRegistration(ctx, tx, tenant, id); err != nil {
			return err
		}
		return s.update(ctx, tx, by, &r, p)
	})
	if err == nil {
		s.forget(id)
	}
	return r, err
}

// update writes p to r inside tx, naming r's tenant (none: shared).
func (s *Registrations) update(ctx context.Context, tx *sqlx.Tx, by audit.Actor, r *Registration, p RegistrationPatch) error {
	changed := p.apply(r)
	if len(changed) == 0 {
		return nil
	}
	r.UpdatedAt = s.Now()
	res, err := tx.ExecContext(ctx, `UPDATE lti_registrations SET auth_login_url = $3, auth_token_url = $4, jwks_url = $5,
		token_audience = $6, updated_at = $7, trusted_audiences = $9 WHERE tenant_id IS NOT DISTINCT FROM $1 AND id = $2 AND shared = $8`,
		ownerOf(*r), r.ID, r.AuthLoginURL, r.AuthTokenURL, r.JWKSURL, r.TokenAudience, r.UpdatedAt, r.Shared, pq.StringArray(dedupe(r.TrustedAudiences)))
	if err != nil {
		return pg.MapError(fmt.Errorf("lti: update registration: %w", err))
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return apperr.New(apperr.NotFound, "registration %q not found", r.ID)
	}
	return s.audit(ctx, tx, by, "lti_registration.updated", *r, map[string]string{"changed": strings.Join(changed, ",")})
}

// ownerOf is r's tenant, or nil for a shared registration.
func ownerOf(r Registration) *uuid.UUID {
	if r.Shared {
		return nil
	}
	return &r.TenantID
}
