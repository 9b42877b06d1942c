package pg

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/klasterina/hub/migrations"
)

// MigrationLockID is the advisory lock every replica takes before migrating,
// so several hubd processes starting at once apply each migration once.
const MigrationLockID = 0x6875622d6d6967 // "hub-mig"

// Migrator applies and reports the embedded migrations.
type Migrator struct {
	db       *sqlx.DB
	provider *goose.Provider
}

// NewMigrator prepares the embedded migrations for db.
func NewMigrator(db *sqlx.DB, log *slog.Logger) (*Migrator, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(MigrationLockID))
	if err != nil {
		return nil, fmt.Errorf("pg: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, migrations.FS,
		goose.WithSessionLocker(locker), goose.WithSlog(log), goose.WithDisableGlobalRegistry(true),
		// Work lands from several branches: a migration numbered below one
		// already applied is applied, not refused.
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return nil, fmt.Errorf("pg: migrations: %w", err)
	}
	return &Migrator{db: db, provider: p}, nil
}

// Up applies every pending migration under the advisory lock.
func (m *Migrator) Up(ctx context.Context) error {
	if _, err := m.provider.Up(ctx); err != nil {
		return fmt.Errorf("pg: migrate: %w", err)
	}
	return nil
}

// Current reports whether the schema has every embedded migration. It takes
// no lock, so a readiness probe never waits on a running migration.
func (m *Migrator) Current(ctx context.Context) (bool, error) {
	if ok, err := m.hasVersionTable(ctx); !ok || err != nil {
		return false, err
	}
	pending, err := m.provider.HasPending(ctx)
	if err != nil {
		return false, MapError(fmt.Errorf("pg: schema version: %w", err))
	}
	return !pending, nil
}

// Versions returns the database's version and the newest embedded one.
func (m *Migrator) Versions(ctx context.Context) (current, target int64, err error) {
	ok, err := m.hasVersionTable(ctx)
	if err != nil || !ok {
		return 0, maxVersion(m.provider), err
	}
	return m.provider.GetVersions(ctx)
}

// hasVersionTable reports whether the database was ever migrated. goose
// would create its table on first use, which the application role may not
// (and should not) do.
func (m *Migrator) hasVersionTable(ctx context.Context) (bool, error) {
	var ok bool
	err := m.db.GetContext(ctx, &ok, `SELECT to_regclass('goose_db_version') IS NOT NULL`)
	return ok, MapError(err)
}

func maxVersion(p *goose.Provider) int64 {
	var v int64
	for _, s := range p.ListSources() {
		v = max(v, s.Version)
	}
	return v
}

// WriteStatus prints one line per migration: applied or pending.
func (m *Migrator) WriteStatus(ctx context.Context, w io.Writer) error {
	statuses, err := m.provider.Status(ctx)
	if err != nil {
		return fmt.Errorf("pg: migration status: %w", err)
	}
	for _, s := range statuses {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "%05d  %-28s %s\n", s.Source.Version, s.Source.Path, applied)
	}
	return nil
}
