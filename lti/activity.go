package lti

import (
	"context"
	"regexp"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
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

// Catalog stores the activity catalog.
type Catalog struct {
	db  *sqlx.DB
	Now func() time.Time
}

// NewCatalog returns the catalog store.
func NewCatalog(db *sqlx.DB) *Catalog { return &Catalog{db: db, Now: time.Now} }

// Create adds an activity.
func (c *Catalog) Create(ctx context.Context, a Activity) (Activity, error) {
	if err := a.Validate(); err != nil {
		return Activity{}, err
	}
	a.CreatedAt = c.Now()
	_, err := c.db.NamedExecContext(ctx, `INSERT INTO activities (id, title, description, gradable, max_score, created_at)
		VALUES (:id, :title, :description, :gradable, :max_score, :created_at)`, a)
	if err = pg.MapError(err); apperr.Is(err, apperr.Conflict) {
		return Activity{}, apperr.Wrap(apperr.Conflict, err, "an activity with this id already exists")
	}
	return a, err
}

// Upsert creates or replaces an activity (for seeding).
func (c *Catalog) Upsert(ctx context.Context, a Activity) error {
	if err := a.Validate(); err != nil {
		return err
	}
	a.CreatedAt = c.Now()
	_, err := c.db.NamedExecContext(ctx, `INSERT INTO activities (id, title, description, gradable, max_score, created_at)
		VALUES (:id, :title, :description, :gradable, :max_score, :created_at)
		ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description,
			gradable = excluded.gradable, max_score = excluded.max_score`, a)
	return pg.MapError(err)
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
func (c *Catalog) Delete(ctx context.Context, id string) error {
	if !activityID.MatchString(id) {
		return apperr.New(apperr.NotFound, "activity %q not found", id)
	}
	res, err := c.db.ExecContext(ctx, `DELETE FROM activities WHERE id = $1`, id)
	if err != nil {
		return pg.MapError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.NotFound, "activity %q not found", id)
	}
	return nil
}
