package tenants

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Kind is what sort of organisation a tenant is.
type Kind string

const (
	Institution Kind = "institution" // learners arrive by LTI from an LMS
	Employer    Kind = "employer"    // learners arrive by SSO, rosters by SCIM
)

// Status says whether a tenant may be used. A suspended tenant's keys,
// launches and sign-ins are refused; its data is kept.
type Status string

const (
	Active    Status = "active"
	Suspended Status = "suspended"
)

// Tenant is one institution or employer.
type Tenant struct {
	ID          uuid.UUID `db:"id" json:"id"`
	Slug        string    `db:"slug" json:"slug"`
	DisplayName string    `db:"display_name" json:"display_name"`
	Kind        Kind      `db:"kind" json:"kind"`
	Status      Status    `db:"status" json:"status"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
	UpdatedAt   time.Time `db:"updated_at" json:"updated_at"`
}

// NewTenant is what the operator supplies to create a tenant.
type NewTenant struct {
	Slug        string `json:"slug"`
	DisplayName string `json:"display_name"`
	Kind        Kind   `json:"kind"`
}

// Patch changes a tenant's mutable fields; nil leaves a field alone.
type Patch struct {
	DisplayName *string `json:"display_name"`
}

var slugPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate reports every invalid field at once.
func (n NewTenant) Validate() error {
	var v apperr.Validator
	v.Check(slugPattern.MatchString(n.Slug), "slug", "must be 1–63 lowercase letters, digits or inner hyphens")
	checkDisplayName(&v, n.DisplayName)
	v.Check(n.Kind == Institution || n.Kind == Employer, "kind", "must be institution or employer")
	return v.Err()
}

// MaxDisplayName bounds a tenant's display name, in characters.
const MaxDisplayName = 200

func checkDisplayName(v *apperr.Validator, name string) {
	v.CheckName("display_name", name, MaxDisplayName)
}

// Store reads and changes tenants and their API keys.
type Store struct {
	db    *sqlx.DB
	chain *audit.Keyring
	log   *slog.Logger
	Now   func() time.Time
}

// NewStore returns a Store on db; its changes are audited under keys.
func NewStore(db *sqlx.DB, keys *audit.Keyring, log *slog.Logger) *Store {
	return &Store{db: db, chain: keys, log: log, Now: time.Now}
}

// Create makes a tenant and its audit chain's first entry together.
func (s *Store) Create(ctx context.Context, by audit.Actor, in NewTenant) (Tenant, error) {
	if err := in.Validate(); err != nil {
		return Tenant{}, err
	}
	t := Tenant{ID: uuid.New(), Slug: in.Slug, DisplayName: in.DisplayName, Kind: in.Kind, Status: Active}
	err := pg.InTenant(ctx, s.db, t.ID, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &t, `INSERT INTO tenants (id, slug, display_name, kind, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) RETURNING *`, t.ID, t.Slug, t.DisplayName, t.Kind, s.Now())
		if err != nil {
			return pg.MapError(err)
		}
		return s.audit(ctx, tx, t.ID, by, "tenant.created", t, map[string]string{"slug": t.Slug, "kind": string(t.Kind)})
	})
	if apperr.Is(err, apperr.Conflict) {
		return Tenant{}, apperr.Wrap(apperr.Conflict, err, fmt.Sprintf("a tenant with slug %q already exists", in.Slug))
	}
	return t, err
}

func (s *Store) audit(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, by audit.Actor, action string, t Tenant, details map[string]string) error {
	_, err := s.chain.Append(ctx, tx, &tenant, by, audit.Event{
		Action: action, TargetType: "tenant", TargetID: t.ID.String(), Details: details,
	}, s.Now())
	return err
}

// List returns a page of all tenants, oldest first: the operator's view.
func (s *Store) List(ctx context.Context, page pg.Page) ([]Tenant, *pg.Cursor, error) {
	var ts []Tenant
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		args := []any{nil, nil, page.Limit + 1}
		if page.After != nil {
			args[0], args[1] = page.After.At, page.After.ID
		}
		return tx.SelectContext(ctx, &ts, `SELECT * FROM hub_tenants_page($1, $2, $3)`, args...)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("tenants: list: %w", err))
	}
	return pg.TrimPage(ts, page.Limit, func(t Tenant) pg.Cursor { return pg.Cursor{At: t.CreatedAt, ID: t.ID} })
}

// BySlug finds any tenant by slug: the operator's way in, before a tenant
// is known.
func (s *Store) BySlug(ctx context.Context, slug string) (Tenant, error) {
	var t Tenant
	if !slugPattern.MatchString(slug) {
		return t, apperr.New(apperr.NotFound, "tenant %q not found", slug) // no query can find it
	}
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &t, `SELECT * FROM hub_tenant_by_slug($1)`, slug)
	})
	return t, notFound(err, "tenant", slug)
}

func notFound(err error, what, key string) error {
	if pg.IsNoRows(err) {
		return apperr.New(apperr.NotFound, "%s %q not found", what, key)
	}
	return pg.MapError(err)
}

// Update changes a tenant's display name.
func (s *Store) Update(ctx context.Context, by audit.Actor, id uuid.UUID, p Patch) (Tenant, error) {
	var v apperr.Validator
	if p.DisplayName != nil {
		checkDisplayName(&v, *p.DisplayName)
	}
	if err := v.Err(); err != nil {
		return Tenant{}, err
	}
	return s.change(ctx, by, id, "tenant.updated", `UPDATE tenants
		SET display_name = coalesce($2, display_name), updated_at = $3 WHERE id = $1 RETURNING *`, p.DisplayName)
}

// SetStatus suspends or reactivates a tenant.
func (s *Store) SetStatus(ctx context.Context, by audit.Actor, id uuid.UUID, status Status) (Tenant, error) {
	action := map[Status]string{Active: "tenant.reactivated", Suspended: "tenant.suspended"}[status]
	if action == "" {
		return Tenant{}, apperr.InvalidFields(apperr.FieldError{Field: "status", Message: "must be active or suspended"})
	}
	return s.change(ctx, by, id, action, `UPDATE tenants
		SET status = $2, updated_at = $3 WHERE id = $1 RETURNING *`, status)
}

func (s *Store) change(ctx context.Context, by audit.Actor, id uuid.UUID, action, q string, arg any) (Tenant, error) {
	var t Tenant
	err := pg.InTenant(ctx, s.db, id, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &t, q, id, arg, s.Now()); err != nil {
			return notFound(err, "tenant", id.String())
		}
		return s.audit(ctx, tx, id, by, action, t, map[string]string{"status": string(t.Status), "display_name": t.DisplayName})
	})
	return t, err
}
