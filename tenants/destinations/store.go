package destinations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/tenants/audit"
)

// Store keeps the tenants' destinations. Every change is audited in the
// tenant's chain, in the change's transaction.
type Store struct {
	db     *sqlx.DB
	chain  *audit.Keyring
	sealer *secrets.Sealer
	log    *slog.Logger
	Now    func() time.Time
	// AllowHTTP lets destination URLs be plain http and name private
	// addresses; main sets it from HUB_OUTBOUND_ALLOW_PRIVATE (tests, the
	// demo). Off, they must be https to a public address.
	AllowHTTP bool
}

// NewStore returns the destinations of db; secrets are sealed with sealer
// and changes audited under chain.
func NewStore(db *sqlx.DB, chain *audit.Keyring, sealer *secrets.Sealer, log *slog.Logger) *Store {
	return &Store{db: db, chain: chain, sealer: sealer, log: log, Now: time.Now}
}

// row is a destination as stored.
type row struct {
	ID              uuid.UUID      `db:"id"`
	TenantID        uuid.UUID      `db:"tenant_id"`
	Kind            Kind           `db:"kind"`
	Name            string         `db:"name"`
	URL             string         `db:"url"`
	Enabled         bool           `db:"enabled"`
	DryRun          bool           `db:"dry_run"`
	EventTypes      pq.StringArray `db:"event_types"`
	Secret          []byte         `db:"secret"`
	PreviousSecret  []byte         `db:"previous_secret"`
	PreviousExpires *time.Time     `db:"previous_secret_expires_at"`
	LRSUsername     []byte         `db:"lrs_username"`
	LRSPassword     []byte         `db:"lrs_password"`
	CreatedAt       time.Time      `db:"created_at"`
	UpdatedAt       time.Time      `db:"updated_at"`
}

const columns = `id, tenant_id, kind, name, url, enabled, dry_run, event_types, secret, previous_secret,
	previous_secret_expires_at, lrs_username, lrs_password, created_at, updated_at`

// destination is r without its secrets. A previous secret past its expiry
// signs nothing, and is not shown as a rotation in progress.
func (r row) destination(now time.Time) Destination {
	d := Destination{ID: r.ID, TenantID: r.TenantID, Kind: r.Kind, Name: r.Name, URL: r.URL, Enabled: r.Enabled,
		DryRun: r.DryRun, EventTypes: make([]EventType, len(r.EventTypes)), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	for i, e := range r.EventTypes {
		d.EventTypes[i] = EventType(e)
	}
	if r.rotating(now) {
		d.PreviousSecretExpiresAt = r.PreviousExpires
	}
	return d
}

func (r row) rotating(now time.Time) bool {
	return r.PreviousSecret != nil && r.PreviousExpires != nil && r.PreviousExpires.After(now)
}

// Create stores a destination. A webhook's secret is generated and
// returned in Created.Secret, the one time it is shown.
func (s *Store) Create(ctx context.Context, by audit.Actor, tenant uuid.UUID, in New) (Created, error) {
	if err := in.validate(s.AllowHTTP); err != nil {
		return Created{}, err
	}
	id, now := uuid.New(), s.Now()
	var out Created
	sealed, err := s.sealNew(tenant, id, in, &out.Secret)
	if err != nil {
		return Created{}, err
	}
	enabled := in.Enabled == nil || *in.Enabled
	err = pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var r row
		err := tx.GetContext(ctx, &r, `INSERT INTO destinations (id, tenant_id, kind, name, url, enabled, dry_run, event_types,
				secret, lrs_username, lrs_password, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING `+columns,
			id, tenant, in.Kind, in.Name, in.URL, enabled, in.DryRun, eventTypes(in.EventTypes),
			sealed[slotWebhookSecret], sealed[slotLRSUsername], sealed[slotLRSPassword], now)
		if err != nil {
			return err
		}
		out.Destination = r.destination(now)
		return s.audit(ctx, tx, tenant, by, "destination.created", out.Destination, nil)
	})
	if err != nil {
		return Created{}, mapError(err)
	}
	return out, nil
}

// sealNew seals a new destination's secrets by slot: a generated webhook
// secret (also written to *secret), or the LRS's credentials.
func (s *Store) sealNew(tenant, id uuid.UUID, in New, secret *string) (map[string][]byte, error) {
	plain := map[string]string{}
	if in.Kind == KindWebhook {
		gen, err := newSecret()
		if err != nil {
			return nil, err
		}
		*secret, plain[slotWebhookSecret] = gen, gen
	} else {
		plain[slotLRSUsername], plain[slotLRSPassword] = in.Username, in.Password
	}
	sealed := map[string][]byte{}
	for slot, v := range plain {
		b, err := seal(s.sealer, tenant, id, slot, v)
		if err != nil {
			return nil, err
		}
		sealed[slot] = b
	}
	return sealed, nil
}

// Get is one of the tenant's destinations; NotFound for none.
func (s *Store) Get(ctx context.Context, tenant, id uuid.UUID) (Destination, error) {
	var r row
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		r, err = get(ctx, tx, tenant, id, "")
		return err
	})
	if err != nil {
		return Destination{}, pg.MapError(err)
	}
	return r.destination(s.Now()), nil
}

// Credentials is a destination with its secrets opened, for a sender:
// the webhook's current secret and, while a rotation lasts, the previous
// one; or the LRS's Basic credentials. NotFound for none.
func (s *Store) Credentials(ctx context.Context, tenant, id uuid.UUID) (d Destination, c Credentials, err error) {
	err = pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		d, c, err = s.CredentialsIn(ctx, tx, tenant, id)
		return err
	})
	return d, c, err
}

// CredentialsIn is Credentials read in the caller's transaction tx (in
// tenant): a delivery reads its destination with the record it sends.
func (s *Store) CredentialsIn(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID) (Destination, Credentials, error) {
	r, err := get(ctx, tx, tenant, id, "")
	if err != nil {
		return Destination{}, Credentials{}, pg.MapError(err)
	}
	now := s.Now()
	var c Credentials
	if r.Kind == KindWebhook {
		cur, err := open(s.sealer, tenant, id, slotWebhookSecret, r.Secret)
		if err != nil {
			return Destination{}, Credentials{}, err
		}
		c.Secrets = []string{cur}
		if r.rotating(now) {
			prev, err := open(s.sealer, tenant, id, slotWebhookSecret, r.PreviousSecret)
			if err != nil {
				return Destination{}, Credentials{}, err
			}
			c.Secrets = append(c.Secrets, prev)
		}
	} else {
		if c.Username, err = open(s.sealer, tenant, id, slotLRSUsername, r.LRSUsername); err != nil {
			return Destination{}, Credentials{}, err
		}
		if c.Password, err = open(s.sealer, tenant, id, slotLRSPassword, r.LRSPassword); err != nil {
			return Destination{}, Credentials{}, err
		}
	}
	return r.destination(now), c, nil
}

// List is the tenant's destinations, newest first, optionally of one kind.
func (s *Store) List(ctx context.Context, tenant uuid.UUID, kind Kind, page pg.Page) ([]Destination, *pg.Cursor, error) {
	after := pg.Cursor{At: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: uuid.Max}
	if page.After != nil {
		after = *page.After
	}
	var rows []row
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `SELECT `+columns+` FROM destinations
			WHERE tenant_id = $1 AND ($2 = '' OR kind = $2) AND (created_at, id) < ($3, $4)
			ORDER BY created_at DESC, id DESC LIMIT $5`, tenant, kind, after.At, after.ID, page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("destinations: list: %w", err))
	}
	now := s.Now()
	list := make([]Destination, len(rows))
	for i, r := range rows {
		list[i] = r.destination(now)
	}
	return pg.TrimPage(list, page.Limit, func(d Destination) pg.Cursor { return pg.Cursor{At: d.CreatedAt, ID: d.ID} })
}

// Update changes the settings p names. Credentials given are sealed anew.
func (s *Store) Update(ctx context.Context, by audit.Actor, tenant, id uuid.UUID, p Patch) (Destination, error) {
	var d Destination
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		cur, err := get(ctx, tx, tenant, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if err := p.validate(cur.Kind, s.AllowHTTP); err != nil {
			return err
		}
		next, err := s.patched(cur, p)
		if err != nil {
			return err
		}
		var r row
		err = tx.GetContext(ctx, &r, `UPDATE destinations SET name = $3, url = $4, enabled = $5, dry_run = $6, event_types = $7,
				lrs_username = $8, lrs_password = $9, updated_at = $10
			WHERE tenant_id = $1 AND id = $2 RETURNING `+columns, tenant, id, next.Name, next.URL, next.Enabled, next.DryRun,
			next.EventTypes, next.LRSUsername, next.LRSPassword, s.Now())
		if err != nil {
			return err
		}
		d = r.destination(s.Now())
		return s.audit(ctx, tx, tenant, by, "destination.updated", d, map[string]string{"fields": strings.Join(p.fields(), ",")})
	})
	return d, mapError(err)
}

// patched is cur with p applied; credentials given are sealed.
func (s *Store) patched(cur row, p Patch) (row, error) {
	next := cur
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&next.Name, p.Name)
	set(&next.URL, p.URL)
	if p.Enabled != nil {
		next.Enabled = *p.Enabled
	}
	if p.DryRun != nil {
		next.DryRun = *p.DryRun
	}
	if p.EventTypes != nil {
		next.EventTypes = eventTypes(*p.EventTypes)
	}
	for _, c := range []struct {
		slot  string
		value *string
		to    *[]byte
	}{{slotLRSUsername, p.Username, &next.LRSUsername}, {slotLRSPassword, p.Password, &next.LRSPassword}} {
		if c.value == nil {
			continue
		}
		b, err := seal(s.sealer, cur.TenantID, cur.ID, c.slot, *c.value)
		if err != nil {
			return row{}, err
		}
		*c.to = b
	}
	return next, nil
}

// Delete removes a destination; Conflict while the tenant's active
// agreement names it (the agreement would allow a destination that no
// longer exists: terminate or supersede it first, or disable the
// destination instead). NotFound for none.
func (s *Store) Delete(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) error {
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		cur, err := get(ctx, tx, tenant, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		named := fmt.Sprintf(`[{"kind": %q, "id": %q}]`, cur.Kind, cur.ID)
		var versions []int
		if err := tx.SelectContext(ctx, &versions, `SELECT version FROM agreements
			WHERE tenant_id = $1 AND status = 'active' AND destinations @> $2::jsonb`, tenant, named); err != nil {
			return err
		}
		if len(versions) > 0 {
			return apperr.New(apperr.Conflict, "the active agreement (version %d) names this destination: disable it, or activate a version that does not name it, before deleting it", versions[0])
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM destinations WHERE tenant_id = $1 AND id = $2`, tenant, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, tenant, by, "destination.deleted", cur.destination(s.Now()), nil)
	})
	return mapError(err)
}

// RotateSecret gives a webhook a new secret, returned in Created.Secret
// the one time it is shown. The secret it replaces keeps signing beside it
// until FinishRotation or RotationWindow, so receivers can move over
// without a refused delivery. Conflict for an xapi destination, and while
// an earlier rotation is in progress (finish it first).
func (s *Store) RotateSecret(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) (Created, error) {
	secret, err := newSecret()
	if err != nil {
		return Created{}, err
	}
	sealed, err := seal(s.sealer, tenant, id, slotWebhookSecret, secret)
	if err != nil {
		return Created{}, err
	}
	out := Created{Secret: secret}
	err = pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		cur, err := get(ctx, tx, tenant, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		now := s.Now()
		if err := rotatable(cur, now); err != nil {
			return err
		}
		var r row
		err = tx.GetContext(ctx, &r, `UPDATE destinations SET previous_secret = secret, previous_secret_expires_at = $3,
				secret = $4, updated_at = $5
			WHERE tenant_id = $1 AND id = $2 RETURNING `+columns, tenant, id, now.Add(RotationWindow), sealed, now)
		if err != nil {
			return err
		}
		out.Destination = r.destination(now)
		return s.audit(ctx, tx, tenant, by, "destination.secret_rotated", out.Destination,
			map[string]string{"previous_secret_expires_at": r.PreviousExpires.UTC().Format(time.RFC3339)})
	})
	if err != nil {
		return Created{}, mapError(err)
	}
	return out, nil
}

func rotatable(cur row, now time.Time) error {
	if cur.Kind != KindWebhook {
		return apperr.New(apperr.Conflict, "an xapi destination has no signing secret: change its password with PATCH")
	}
	if cur.rotating(now) {
		return apperr.New(apperr.Conflict, "a rotation is in progress until %s: finish it first (POST …/finish-rotation)",
			cur.PreviousExpires.UTC().Format(time.RFC3339))
	}
	return nil
}

// FinishRotation stops a webhook's previous secret signing: receivers
// have moved to the new one. Conflict when no rotation is in progress.
func (s *Store) FinishRotation(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) (Destination, error) {
	var d Destination
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		cur, err := get(ctx, tx, tenant, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		now := s.Now()
		if !cur.rotating(now) {
			return apperr.New(apperr.Conflict, "no rotation of this destination's secret is in progress")
		}
		var r row
		err = tx.GetContext(ctx, &r, `UPDATE destinations SET previous_secret = NULL, previous_secret_expires_at = NULL, updated_at = $3
			WHERE tenant_id = $1 AND id = $2 RETURNING `+columns, tenant, id, now)
		if err != nil {
			return err
		}
		d = r.destination(now)
		return s.audit(ctx, tx, tenant, by, "destination.rotation_finished", d, nil)
	})
	return d, mapError(err)
}

// Tested records that an admin sent a test event to a destination, and
// how it went (an outcome and the HTTP status, nothing the receiver said).
func (s *Store) Tested(ctx context.Context, by audit.Actor, tenant uuid.UUID, d Destination, outcome string, status int) error {
	details := map[string]string{"outcome": outcome}
	if status != 0 {
		details["status"] = fmt.Sprint(status)
	}
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return s.audit(ctx, tx, tenant, by, "destination.tested", d, details)
	})
	return pg.MapError(err)
}

func get(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID, lock string) (row, error) {
	var r row
	err := tx.GetContext(ctx, &r, `SELECT `+columns+` FROM destinations WHERE tenant_id = $1 AND id = $2 `+lock, tenant, id)
	if pg.IsNoRows(err) {
		return row{}, apperr.New(apperr.NotFound, "no such destination")
	}
	return r, err
}

// audit records a change with the destination's kind, name and host: the
// URL's path and query may hold a receiver's token.
func (s *Store) audit(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, by audit.Actor, action string, d Destination, extra map[string]string) error {
	details := map[string]string{"kind": string(d.Kind), "name": d.Name, "host": hostOf(d.URL)}
	for k, v := range extra {
		details[k] = v
	}
	_, err := s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: action, TargetType: "destination", TargetID: d.ID.String(),
		Details: details}, s.Now())
	return err
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// mapError names the one unique value a tenant can collide on.
func mapError(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Constraint == "destinations_tenant_id_name_key" {
		return apperr.Wrap(apperr.Conflict, err, "the tenant has a destination of that name already")
	}
	return pg.MapError(err)
}

func eventTypes(es []EventType) pq.StringArray {
	out := make(pq.StringArray, len(es))
	for i, e := range es {
		out[i] = string(e)
	}
	return out
}
