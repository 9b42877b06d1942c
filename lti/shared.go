package lti

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Shared registrations: some platforms give a tool one client_id for every
// institution that installs it, told apart only by deployment id
// (Blackboard; Canvas partner, "inherited", developer keys). The operator
// registers such a platform once, for no tenant, and assigns each of its
// deployment ids to the tenant whose institution installed it; a launch
// through it belongs to the tenant of its deployment.
//
// The registration row has no tenant and changes only in a transaction
// with no tenant set (row-level security admits that and nothing else);
// every tenant may read it. Each deployment row names its tenant and is
// written in that tenant's transaction. The operator's view of which
// tenant holds which deployment crosses tenants, through one SECURITY
// DEFINER function (hub_shared_deployments).

// SharedRegistration is a registration the operator made for a platform
// that shares its client_id among institutions.
type SharedRegistration struct {
	ID            uuid.UUID `db:"id" json:"id"`
	Issuer        string    `db:"issuer" json:"issuer"`
	ClientID      string    `db:"client_id" json:"client_id"`
	AuthLoginURL  string    `db:"auth_login_url" json:"auth_login_url"`
	AuthTokenURL  string    `db:"auth_token_url" json:"auth_token_url"`
	TokenAudience string    `db:"token_audience" json:"token_audience"`
	JWKSURL       string    `db:"jwks_url" json:"jwks_url"`
	// TrustedAudiences are the audiences besides ClientID that its
	// id_tokens may name (see Registration).
	TrustedAudiences pq.StringArray `db:"trusted_audiences" json:"trusted_audiences"`
	// LoginURL is the registration's own login initiation URL; the api
	// fills it in.
	LoginURL    string             `db:"-" json:"login_url"`
	Deployments []SharedDeployment `db:"-" json:"deployments"`
	CreatedAt   time.Time          `db:"created_at" json:"created_at"`
	UpdatedAt   time.Time          `db:"updated_at" json:"updated_at"`
}

// SharedDeployment is one deployment of a shared registration and the
// tenant it is assigned to.
type SharedDeployment struct {
	DeploymentID string    `db:"deployment_id" json:"deployment_id"`
	TenantID     uuid.UUID `db:"tenant_id" json:"-"`
	Tenant       string    `db:"tenant_slug" json:"tenant"`
	CreatedAt    time.Time `db:"created_at" json:"created_at"`
}

// NewSharedRegistration is what the operator supplies: the platform, whose
// deployments are then assigned to tenants one by one.
type NewSharedRegistration struct {
	Issuer        string `json:"issuer"`
	ClientID      string `json:"client_id"`
	AuthLoginURL  string `json:"auth_login_url"`
	AuthTokenURL  string `json:"auth_token_url"`
	TokenAudience string `json:"token_audience"`
	JWKSURL       string `json:"jwks_url"`
}

const sharedColumns = `r.id, r.issuer, r.client_id, r.auth_login_url, r.auth_token_url, r.token_audience, r.jwks_url,
	r.trusted_audiences, r.created_at, r.updated_at`

// CreateShared registers a platform for no tenant; (issuer, client_id) is
// unique among shared registrations. It is audited in the operator's chain.
func (s *Registrations) CreateShared(ctx context.Context, by audit.Actor, in NewSharedRegistration) (SharedRegistration, error) {
	n := NewRegistration{Issuer: in.Issuer, ClientID: in.ClientID, AuthLoginURL: in.AuthLoginURL,
		AuthTokenURL: in.AuthTokenURL, TokenAudience: in.TokenAudience, JWKSURL: in.JWKSURL}
	if err := n.validate(s.AllowHTTP); err != nil {
		return SharedRegistration{}, err
	}
	now := s.Now()
	r := Registration{ID: uuid.New(), Shared: true, Issuer: in.Issuer, ClientID: in.ClientID, AuthLoginURL: in.AuthLoginURL,
		AuthTokenURL: in.AuthTokenURL, TokenAudience: in.TokenAudience, JWKSURL: in.JWKSURL, CreatedAt: now, UpdatedAt: now}
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO lti_registrations
			(id, tenant_id, shared, issuer, client_id, auth_login_url, auth_token_url, token_audience, jwks_url, created_at, updated_at)
			VALUES ($1, NULL, true, $2, $3, $4, $5, $6, $7, $8, $8)`,
			r.ID, r.Issuer, r.ClientID, r.AuthLoginURL, r.AuthTokenURL, r.TokenAudience, r.JWKSURL, now)
		if err = pg.MapError(err); apperr.Is(err, apperr.Conflict) {
			return apperr.Wrap(apperr.Conflict, err, "a shared registration with this issuer and client_id already exists")
		}
		if err != nil {
			return fmt.Errorf("lti: create shared registration: %w", err)
		}
		return s.audit(ctx, tx, by, "lti_registration.created", r, map[string]string{"shared": "true"})
	})
	if err != nil {
		return SharedRegistration{}, err
	}
	s.forget(r.ID)
	return s.GetShared(ctx, r.ID)
}

// GetShared reads a shared registration with its deployments' tenants.
func (s *Registrations) GetShared(ctx context.Context, id uuid.UUID) (SharedRegistration, error) {
	var r SharedRegistration
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		r, err = getShared(ctx, tx, id)
		return err
	})
	return r, err
}

func getShared(ctx context.Context, tx *sqlx.Tx, id uuid.UUID) (SharedRegistration, error) {
	var r SharedRegistration
	err := tx.GetContext(ctx, &r, `SELECT `+sharedColumns+` FROM lti_registrations r WHERE r.id = $1 AND r.shared`, id)
	if pg.IsNoRows(err) {
		return r, apperr.New(apperr.NotFound, "shared registration %q not found", id)
	}
	if err != nil {
		return r, pg.MapError(fmt.Errorf("lti: read shared registration: %w", err))
	}
	return r, sharedDeployments(ctx, tx, &r)
}

func sharedDeployments(ctx context.Context, tx *sqlx.Tx, r *SharedRegistration) error {
	r.Deployments = []SharedDeployment{}
	err := tx.SelectContext(ctx, &r.Deployments, `SELECT * FROM hub_shared_deployments($1)`, r.ID)
	return pg.MapError(err)
}

// ListShared returns a page of the shared registrations.
func (s *Registrations) ListShared(ctx context.Context, page pg.Page) ([]SharedRegistration, *pg.Cursor, error) {
	var rs []SharedRegistration
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		q, args := `WHERE r.shared ORDER BY r.created_at, r.id LIMIT $1`, []any{page.Limit + 1}
		if page.After != nil {
			q = `WHERE r.shared AND (r.created_at, r.id) > ($2, $3) ORDER BY r.created_at, r.id LIMIT $1`
			args = append(args, page.After.At, page.After.ID)
		}
		if err := tx.SelectContext(ctx, &rs, `SELECT `+sharedColumns+` FROM lti_registrations r `+q, args...); err != nil {
			return err
		}
		for i := range rs {
			if err := sharedDeployments(ctx, tx, &rs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("lti: list shared registrations: %w", err))
	}
	return pg.TrimPage(rs, page.Limit, func(r SharedRegistration) pg.Cursor { return pg.Cursor{At: r.CreatedAt, ID: r.ID} })
}

// UpdateShared changes a shared registration's endpoints, as Update does a
// tenant's.
func (s *Registrations) UpdateShared(ctx context.Context, by audit.Actor, id uuid.UUID, p RegistrationPatch) (SharedRegistration, error) {
	if err := p.validate(s.AllowHTTP); err != nil {
		return SharedRegistration{}, err
	}
	var out SharedRegistration
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		cur, err := getShared(ctx, tx, id)
		if err != nil {
			return err
		}
		r := cur.registration()
		if err := s.update(ctx, tx, by, &r, p); err != nil {
			return err
		}
		out, err = getShared(ctx, tx, id)
		return err
	})
	if err == nil {
		s.forget(id)
	}
	return out, err
}

func (r SharedRegistration) registration() Registration {
	return Registration{ID: r.ID, Shared: true, Issuer: r.Issuer, ClientID: r.ClientID, AuthLoginURL: r.AuthLoginURL,
		AuthTokenURL: r.AuthTokenURL, TokenAudience: r.TokenAudience, JWKSURL: r.JWKSURL, TrustedAudiences: r.TrustedAudiences,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// DeleteShared removes a shared registration and every tenant's deployment
// of it. When any tenant holds launch records made through it, it is
// refused with a Conflict unless force: the records go with it.
func (s *Registrations) DeleteShared(ctx context.Context, by audit.Actor, id uuid.UUID, force bool) error {
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		cur, err := getShared(ctx, tx, id)
		if err != nil {
			return err
		}
		var records bool
		if err := tx.GetContext(ctx, &records, `SELECT hub_shared_registration_in_use($1)`, id); err != nil {
			return pg.MapError(fmt.Errorf("lti: look for launch records: %w", err))
		}
		if records && !force {
			return errHasRecords("shared registration")
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM lti_registrations WHERE tenant_id IS NULL AND id = $1 AND shared`, id); err != nil {
			return pg.MapError(err)
		}
		return s.audit(ctx, tx, by, "lti_registration.deleted", cur.registration(),
			map[string]string{"shared": "true", "launch_records_erased": fmt.Sprint(records)})
	})
	if err == nil {
		s.forget(id)
	}
	return err
}

// AssignDeployment gives a deployment of a shared registration to tenant:
// its launches are the tenant's. A deployment id belongs to one tenant;
// assigning it again answers Conflict. The change is audited in the
// tenant's chain, where its admin sees it.
func (s *Registrations) AssignDeployment(ctx context.Context, by audit.Actor, id uuid.UUID, deployment string, tenant uuid.UUID) (SharedRegistration, error) {
	if !validDeploymentID(deployment) {
		return SharedRegistration{}, apperr.InvalidFields(apperr.FieldError{Field: "deployment_id", Message: deploymentIDMessage})
	}
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var exists bool
		if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM lti_registrations WHERE id = $1 AND shared)`, id); err != nil {
			return pg.MapError(err)
		}
		if !exists {
			return apperr.New(apperr.NotFound, "shared registration %q not found", id)
		}
		if err := roomForSharedDeployment(ctx, tx, tenant, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, shared, created_at)
			VALUES ($1, $2, $3, true, $4)`, tenant, id, deployment, s.Now())
		if err = pg.MapError(err); apperr.Is(err, apperr.Conflict) {
			return apperr.Wrap(apperr.Conflict, err, "the deployment id is already assigned")
		}
		if err != nil {
			return err
		}
		return s.auditDeployment(ctx, tx, by, tenant, id, "lti_deployment.assigned", deployment)
	})
	if err != nil {
		return SharedRegistration{}, err
	}
	s.forget(id)
	return s.GetShared(ctx, id)
}

// roomForSharedDeployment holds each tenant to MaxDeployments of a shared
// registration; a transaction-scoped lock on the pair keeps two
// assignments at once from both taking the last place.
func roomForSharedDeployment(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::text || $2::text, 0))`, tenant, id); err != nil {
		return pg.MapError(fmt.Errorf("lti: lock deployments: %w", err))
	}
	var n int
	err := tx.GetContext(ctx, &n, `SELECT count(*) FROM lti_deployments WHERE tenant_id = $1 AND registration_id = $2`, tenant, id)
	if err != nil {
		return pg.MapError(fmt.Errorf("lti: count deployments: %w", err))
	}
	if n >= MaxDeployments {
		return apperr.InvalidFields(apperr.FieldError{Field: "deployment_id",
			Message: fmt.Sprintf("cannot be assigned: a tenant holds at most %d deployments of a registration", MaxDeployments)})
	}
	return nil
}

// UnassignDeployment removes a deployment of a shared registration from
// the tenant it was assigned to, asking first (force) when that tenant
// holds launch records made through it.
func (s *Registrations) UnassignDeployment(ctx context.Context, by audit.Actor, id uuid.UUID, deployment string, force bool) error {
	notFound := apperr.New(apperr.NotFound, "deployment %q not found", deployment)
	if !validDeploymentID(deployment) {
		return notFound
	}
	routes, err := route(ctx, s.db, &id, "", "", deployment)
	if err != nil {
		return err
	}
	if len(routes) != 1 || routes[0].Tenant == nil {
		return notFound
	}
	tenant := *routes[0].Tenant
	err = pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var shared bool
		if err := tx.GetContext(ctx, &shared, `SELECT EXISTS (SELECT 1 FROM lti_registrations WHERE id = $1 AND shared)`, id); err != nil {
			return pg.MapError(err)
		}
		if !shared {
			return notFound
		}
		if err := removeDeployment(ctx, tx, tenant, id, deployment, force); err != nil {
			return err
		}
		return s.auditDeployment(ctx, tx, by, tenant, id, "lti_deployment.unassigned", deployment)
	})
	if err == nil {
		s.forget(id)
	}
	return err
}

func (s *Registrations) auditDeployment(ctx context.Context, tx *sqlx.Tx, by audit.Actor, tenant, id uuid.UUID, action, deployment string) error {
	_, err := s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: action, TargetType: "lti_registration",
		TargetID: id.String(), Details: map[string]string{"deployment_id": deployment, "shared": "true"}}, s.Now())
	return err
}
