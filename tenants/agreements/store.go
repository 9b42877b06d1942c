package agreements

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Store keeps the tenants' agreements. Every change is audited in the
// tenant's chain, in the change's transaction.
type Store struct {
	db    *sqlx.DB
	chain *audit.Keyring
	log   *slog.Logger
	Now   func() time.Time
}

// NewStore returns the agreements of db.
func NewStore(db *sqlx.DB, chain *audit.Keyring, log *slog.Logger) *Store {
	return &Store{db: db, chain: chain, log: log, Now: time.Now}
}

// row is an agreement as stored.
type row struct {
	ID                   uuid.UUID      `db:"id"`
	TenantID             uuid.UUID      `db:"tenant_id"`
	Version              int            `db:"version"`
	Status               Status         `db:"status"`
	EffectiveFrom        time.Time      `db:"effective_from"`
	EffectiveUntil       *time.Time     `db:"effective_until"`
	Purposes             []byte         `db:"purposes"`
	Categories           pq.StringArray `db:"categories"`
	Fields               pq.StringArray `db:"fields"`
	Destinations         []byte         `db:"destinations"`
	Consent              ConsentRule    `db:"consent"`
	DisclosureRetention  int            `db:"disclosure_retention_days"`
	CopyRetention        int            `db:"copy_retention_days"`
	OnEnd                OnEnd          `db:"on_end"`
	InstitutionSignatory []byte         `db:"institution_signatory"`
	ProviderSignatory    []byte         `db:"provider_signatory"`
	ActivatedAt          *time.Time     `db:"activated_at"`
	EndedAt              *time.Time     `db:"ended_at"`
	CreatedAt            time.Time      `db:"created_at"`
	UpdatedAt            time.Time      `db:"updated_at"`
}

const columns = `id, tenant_id, version, status, effective_from, effective_until, purposes, categories, fields, destinations,
	consent, disclosure_retention_days, copy_retention_days, on_end, institution_signatory, provider_signatory,
	activated_at, ended_at, created_at, updated_at`

func (r row) agreement() (Agreement, error) {
	a := Agreement{ID: r.ID, TenantID: r.TenantID, Version: r.Version, Status: r.Status, ActivatedAt: r.ActivatedAt,
		EndedAt: r.EndedAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	a.Terms = Terms{EffectiveFrom: r.EffectiveFrom, EffectiveUntil: r.EffectiveUntil, Consent: r.Consent,
		DisclosureRetentionDays: r.DisclosureRetention, CopyRetentionDays: r.CopyRetention, OnEnd: r.OnEnd,
		Categories: make([]Category, len(r.Categories)), Fields: make([]Field, len(r.Fields))}
	for i, c := range r.Categories {
		a.Categories[i] = Category(c)
	}
	for i, f := range r.Fields {
		a.Fields[i] = Field(f)
	}
	for _, j := range []struct {
		raw []byte
		to  any
	}{{r.Purposes, &a.Purposes}, {r.Destinations, &a.Destinations}, {r.InstitutionSignatory, &a.InstitutionSignatory},
		{r.ProviderSignatory, &a.ProviderSignatory}} {
		if len(j.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(j.raw, j.to); err != nil {
			return Agreement{}, fmt.Errorf("agreements: stored agreement %s: %w", r.ID, err)
		}
	}
	return a, nil
}

// Create stores terms as the tenant's next version, a draft.
func (s *Store) Create(ctx context.Context, by audit.Actor, tenant uuid.UUID, t Terms) (Agreement, error) {
	if err := t.Validate(); err != nil {
		return Agreement{}, err
	}
	var a Agreement
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		var next int
		if err := tx.GetContext(ctx, &next, `SELECT coalesce(max(version), 0) + 1 FROM agreements WHERE tenant_id = $1`, tenant); err != nil {
			return err
		}
		now := s.Now()
		purposes, destinations := mustJSON(t.Purposes), mustJSON(t.Destinations)
		var r row
		err := tx.GetContext(ctx, &r, `INSERT INTO agreements (id, tenant_id, version, status, effective_from, effective_until,
				purposes, categories, fields, destinations, consent, disclosure_retention_days, copy_retention_days, on_end,
				created_at, updated_at)
			VALUES ($1, $2, $3, 'draft', $4, $5, $6::jsonb, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $14)
			RETURNING `+columns, uuid.New(), tenant, next, t.EffectiveFrom, t.EffectiveUntil, purposes, categories(t.Categories),
			fields(t.Fields), destinations, t.Consent, t.DisclosureRetentionDays, t.CopyRetentionDays, t.OnEnd, now)
		if err != nil {
			return err
		}
		if a, err = r.agreement(); err != nil {
			return err
		}
		return s.audit(ctx, tx, tenant, by, "agreement.created", a, nil)
	})
	return a, pg.MapError(err)
}

// Update replaces a draft's terms; Conflict for a version that is not a
// draft (active and past versions never change), NotFound for none.
func (s *Store) Update(ctx context.Context, by audit.Actor, tenant, id uuid.UUID, t Terms) (Agreement, error) {
	if err := t.Validate(); err != nil {
		return Agreement{}, err
	}
	var a Agreement
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		cur, err := getForUpdate(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if cur.Status != StatusDraft {
			return apperr.New(apperr.Conflict, "agreement version %d is %s: only a draft can be changed (create a new version)", cur.Version, cur.Status)
		}
		var r row
		err = tx.GetContext(ctx, &r, `UPDATE agreements SET effective_from = $3, effective_until = $4, purposes = $5::jsonb,
				categories = $6, fields = $7, destinations = $8::jsonb, consent = $9, disclosure_retention_days = $10,
				copy_retention_days = $11, on_end = $12, updated_at = $13
			WHERE tenant_id = $1 AND id = $2 RETURNING `+columns, tenant, id, t.EffectiveFrom, t.EffectiveUntil, mustJSON(t.Purposes),
			categories(t.Categories), fields(t.Fields), mustJSON(t.Destinations), t.Consent, t.DisclosureRetentionDays,
			t.CopyRetentionDays, t.OnEnd, s.Now())
		if err != nil {
			return err
		}
		if a, err = r.agreement(); err != nil {
			return err
		}
		return s.audit(ctx, tx, tenant, by, "agreement.updated", a, nil)
	})
	return a, pg.MapError(err)
}

// Signatures are who signed an agreement for each side.
type Signatures struct {
	Institution *Signatory `json:"institution_signatory"`
	Provider    *Signatory `json:"provider_signatory"`
}

// Activate makes a draft the tenant's active agreement, superseding the
// one active until now in the same transaction. Activations of one
// tenant take turns (the tenant's row is locked), so exactly one version
// is active after any number at once. Conflict for a version that is not
// a draft.
func (s *Store) Activate(ctx context.Context, by audit.Actor, tenant, id uuid.UUID, sig Signatures) (Agreement, error) {
	now := s.Now()
	if err := sig.validate(now); err != nil {
		return Agreement{}, err
	}
	var a Agreement
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		cur, err := getForUpdate(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if cur.Status != StatusDraft {
			return apperr.New(apperr.Conflict, "agreement version %d is %s: only a draft can be activated", cur.Version, cur.Status)
		}
		superseded, err := supersede(ctx, tx, tenant, now)
		if err != nil {
			return err
		}
		var r row
		err = tx.GetContext(ctx, &r, `UPDATE agreements SET status = 'active', activated_at = $3, updated_at = $3,
				institution_signatory = $4::jsonb, provider_signatory = $5::jsonb
			WHERE tenant_id = $1 AND id = $2 RETURNING `+columns, tenant, id, now, mustJSON(sig.Institution), mustJSON(sig.Provider))
		if err != nil {
			return err
		}
		if a, err = r.agreement(); err != nil {
			return err
		}
		details := map[string]string{"institution_signatory": sig.Institution.Name, "provider_signatory": sig.Provider.Name}
		if superseded != nil {
			details["superseded_version"] = strconv.Itoa(*superseded)
		}
		return s.audit(ctx, tx, tenant, by, "agreement.activated", a, details)
	})
	return a, pg.MapError(err)
}

// supersede ends the tenant's active version, if any, and returns its
// version number.
func supersede(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, now time.Time) (*int, error) {
	var version int
	err := tx.GetContext(ctx, &version, `UPDATE agreements SET status = 'superseded', ended_at = $2, updated_at = $2
		WHERE tenant_id = $1 AND status = 'active' RETURNING version`, tenant, now)
	if pg.IsNoRows(err) {
		return nil, nil
	}
	return &version, err
}

// Terminate ends the tenant's active agreement: nothing is shared under
// it from now on. Conflict for a version that is not active.
func (s *Store) Terminate(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) (Agreement, error) {
	var a Agreement
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		cur, err := getForUpdate(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if cur.Status != StatusActive {
			return apperr.New(apperr.Conflict, "agreement version %d is %s: only the active agreement can be terminated", cur.Version, cur.Status)
		}
		now := s.Now()
		var r row
		err = tx.GetContext(ctx, &r, `UPDATE agreements SET status = 'terminated', ended_at = $3, updated_at = $3
			WHERE tenant_id = $1 AND id = $2 RETURNING `+columns, tenant, id, now)
		if err != nil {
			return err
		}
		if a, err = r.agreement(); err != nil {
			return err
		}
		return s.audit(ctx, tx, tenant, by, "agreement.terminated", a, nil)
	})
	return a, pg.MapError(err)
}

// Get is one of the tenant's agreement versions; NotFound for none.
func (s *Store) Get(ctx context.Context, tenant, id uuid.UUID) (Agreement, error) {
	var a Agreement
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		a, err = get(ctx, tx, tenant, id, "")
		return err
	})
	return a, pg.MapError(err)
}

// Active is the tenant's active agreement, nil when it has none.
func (s *Store) Active(ctx context.Context, tenant uuid.UUID) (*Agreement, error) {
	var a *Agreement
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var r row
		err := tx.GetContext(ctx, &r, `SELECT `+columns+` FROM agreements WHERE tenant_id = $1 AND status = 'active'`, tenant)
		if pg.IsNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		got, err := r.agreement()
		a = &got
		return err
	})
	return a, pg.MapError(err)
}

// List is the tenant's agreement versions, newest first, optionally of
// one status.
func (s *Store) List(ctx context.Context, tenant uuid.UUID, status Status, page pg.Page) ([]Agreement, *pg.Cursor, error) {
	before := int64(1<<31 - 1)
	if page.After != nil {
		before = page.After.At.Unix()
	}
	var rows []row
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `SELECT `+columns+` FROM agreements
			WHERE tenant_id = $1 AND ($2 = '' OR status = $2) AND version < $3::bigint ORDER BY version DESC LIMIT $4`,
			tenant, status, before, page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("agreements: list: %w", err))
	}
	list := make([]Agreement, 0, len(rows))
	for _, r := range rows {
		a, err := r.agreement()
		if err != nil {
			return nil, nil, err
		}
		list = append(list, a)
	}
	// The cursor carries the version in its time (seconds since the epoch).
	return pg.TrimPage(list, page.Limit, func(a Agreement) pg.Cursor { return pg.Cursor{At: time.Unix(int64(a.Version), 0).UTC(), ID: a.ID} })
}

func get(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID, lock string) (Agreement, error) {
	var r row
	err := tx.GetContext(ctx, &r, `SELECT `+columns+` FROM agreements WHERE tenant_id = $1 AND id = $2 `+lock, tenant, id)
	if pg.IsNoRows(err) {
		return Agreement{}, apperr.New(apperr.NotFound, "no such agreement")
	}
	if err != nil {
		return Agreement{}, err
	}
	return r.agreement()
}

func getForUpdate(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID) (Agreement, error) {
	return get(ctx, tx, tenant, id, "FOR UPDATE")
}

// lockTenant makes the tenant's agreement changes take turns: version
// numbers and the one active version are decided one change at a time.
func lockTenant(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID) error {
	_, err := tx.ExecContext(ctx, `SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE`, tenant)
	return err
}

func (s *Store) audit(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, by audit.Actor, action string, a Agreement, extra map[string]string) error {
	details := map[string]string{"version": strconv.Itoa(a.Version), "status": string(a.Status)}
	for k, v := range extra {
		details[k] = v
	}
	_, err := s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: action, TargetType: "agreement", TargetID: a.ID.String(),
		Details: details}, s.Now())
	return err
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("agreements: marshal %T: %v", v, err)) // only the package's own types reach here
	}
	return string(b)
}

func categories(cs []Category) pq.StringArray {
	out := make(pq.StringArray, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func fields(fs []Field) pq.StringArray {
	out := make(pq.StringArray, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}
