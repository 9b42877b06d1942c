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

// migrationLockID is the advisory lock every replica takes before migrating,
// so several hubd processes starting at once apply each migration once.
const migrationLockID = 0x6875622d6d6967 // "hub-mig"

// Migrator applies and reports the embedded migrations.
type Migrator struct{ provider *goose.Provider }

// NewMigrator prepares the embedded migrations for db.
func NewMigrator(db *sqlx.DB, log *slog.Logger) (*Migrator, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID))
	if err != nil {
		return nil, fmt.Errorf("pg: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, migrations.FS,
		goose.WithSessionLocker(locker), goose.WithSlog(log), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("pg: migrations: %w", err)
	}
	return &Migrator{provider: p}, nil
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
	pending, err := m.provider.HasPending(ctx)
	if err != nil {
		return false, MapError(fmt.Errorf("pg: schema version: %w", err))
	}
	return !pending, nil
}

// Versions returns the database's version and the newest embedded one.
func (m *Migrator) Versions(ctx context.Context) (current, target int64, err error) {
	return m.provider.GetVersions(ctx)
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
