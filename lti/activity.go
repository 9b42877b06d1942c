package lti

import (
	"context"
	"log/slog"
	"regexp"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Activity is an entry of the hub's catalog that instructors link to.
type Activity struct {
	ID          string    `db:"id" json:"id"`
	Title       string    `db:"title" json:"title"`
	Description string    `db:"description" json:"description"`
	Gradable    bool      `db:"gradable" json:"gradable"`
	MaxScore    *float64  `db:"max_score" json:"max_score"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
}

var activityID = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Bounds of an activity, in characters, documented in the OpenAPI document.
const (
	MaxActivityTitle       = 200
	MaxActivityDescription = 2000
)

// Validate reports every invalid field.
func (a Activity) Validate() error {
	var v apperr.Validator
	v.Check(activityID.MatchString(a.ID), "id", "must be 1–63 lowercase letters, digits or inner hyphens")
	v.CheckName("title", a.Title, MaxActivityTitle)
	v.CheckText("description", a.Description, 0, MaxActivityDescription)
	v.Check(!a.Gradable || (a.MaxScore != nil && *a.MaxScore > 0), "max_score", "a gradable activity needs a positive max_score")
	v.Check(a.MaxScore == nil || *a.MaxScore > 0, "max_score", "must be positive")
	return v.Err()
}

// Catalog stores the activity catalog. Every change commits in one
// transaction with its entry in the operator's audit chain.
type Catalog struct {
	db    *sqlx.DB
	chain *audit.Keyring
	log   *slog.Logger
	Now   func() time.Time
}

// NewCatalog returns the catalog store; its changes are audited under keys.
func NewCatalog(db *sqlx.DB, keys *audit.Keyring, log *slog.Logger) *Catalog {
	return &Catalog{db: db, chain: keys, log: log, Now: time.Now}
}

// Create adds an activity.
func (c *Catalog) Create(ctx context.Context, by audit.Actor, a Activity) (Activity, error) {
	if err := a.Validate(); err != nil {
		return Activity{}, err
	}
	a.CreatedAt = c.Now()
	err := c.change(ctx, by, "activity.created", a.ID, func(tx *sqlx.Tx) error {
		_, err := tx.NamedExecContext(ctx, `INSERT INTO activities (id, title, description, gradable, max_score, created_at)
			VALUES (:id, :title, :description, :gradable, :max_score, :created_at)`, a)
		return pg.MapError(err)
	})
	if apperr.Is(err, apperr.Conflict) {
		return Activity{}, apperr.Wrap(apperr.Conflict, err, "an activity with this id already exists")
	}
	return a, err
}

// Upsert creates or replaces an activity (for seeding).
func (c *Catalog) Upsert(ctx context.Context, by audit.Actor, a Activity) error {
	if err := a.Validate(); err != nil {
		return err
	}
	a.CreatedAt = c.Now()
	return c.change(ctx, by, "activity.upserted", a.ID, func(tx *sqlx.Tx) error {
		_, err := tx.NamedExecContext(ctx, `INSERT INTO activities (id, title, description, gradable, max_score, created_at)
			VALUES (:id, :title, :description, :gradable, :max_score, :created_at)
			ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description,
				gradable = excluded.gradable, max_score = excluded.max_score`, a)
		return pg.MapError(err)
	})
}

// change runs fn and appends its audit entry in one transaction. The
// catalog belongs to no tenant: its entries go to the operator's chain,
// seen only in a transaction with no tenant set.
func (c *Catalog) change(ctx context.Context, by audit.Actor, action, id string, fn func(*sqlx.Tx) error) error {
	return pg.InTx(ctx, c.db, func(tx *sqlx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		_, err := c.chain.Append(ctx, tx, nil, by, audit.Event{Action: action, TargetType: "activity", TargetID: id}, c.Now())
		return err
	})
}

// List returns the whole catalog by title.
func (c *Catalog) List(ctx context.Context) ([]Activity, error) {
	as := []Activity{}
	err := c.db.SelectContext(ctx, &as, `SELECT * FROM activities ORDER BY title, id`)
	return as, pg.MapError(err)
}

// Get returns one activity.
func (c *Catalog) Get(ctx context.Context, id string) (Activity, error) {
	var a Activity
	if !activityID.MatchString(id) {
		return a, apperr.New(apperr.NotFound, "activity %q not found", id)
	}
	err := c.db.GetContext(ctx, &a, `SELECT * FROM activities WHERE id = $1`, id)
	if pg.IsNoRows(err) {
		return a, apperr.New(apperr.NotFound, "activity %q not found", id)
	}
	return a, pg.MapError(err)
}

// Delete removes an activity; links already made keep working as links.
func (c *Catalog) Delete(ctx context.Context, by audit.Actor, id string) error {
	if !activityID.MatchString(id) {
		return apperr.New(apperr.NotFound, "activity %q not found", id)
	}
	return c.change(ctx, by, "activity.deleted", id, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM activities WHERE id = $1`, id)
		if err != nil {
			return pg.MapError(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.New(apperr.NotFound, "activity %q not found", id)
		}
		return nil
	})
}
