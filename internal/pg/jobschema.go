package pg

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

// MigrateJobEngine applies the job engine's (River's) schema migrations as
// owner, after the hub's own, while holding MigrationLockID on a
// connection of its own, so replicas migrating at once take turns. River
// applies each migration in a transaction of its own (one adds an enum
// value a later statement uses, which one transaction cannot). It is
// idempotent.
func MigrateJobEngine(ctx context.Context, owner *sqlx.DB) error {
	m, err := rivermigrate.New(riverdatabasesql.New(owner.DB), nil)
	if err != nil {
		return fmt.Errorf("pg: job engine migrator: %w", err)
	}
	lock, err := owner.Conn(ctx)
	if err != nil {
		return fmt.Errorf("pg: job engine migration lock: %w", err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, MigrationLockID); err != nil {
		return fmt.Errorf("pg: job engine migration lock: %w", err)
	}
	defer lock.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, MigrationLockID) //nolint:errcheck // the connection closes next
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("pg: job engine migrations: %w", err)
	}
	return nil
}

// JobEngineVersion is the newest job engine migration this hubd applies.
func JobEngineVersion() int {
	m, err := rivermigrate.New(riverdatabasesql.New(nil), nil)
	if err != nil {
		return 0
	}
	all := m.AllVersions()
	return all[len(all)-1].Version
}

// JobEngineCurrent reports whether the job engine's schema has every
// migration this hubd has.
func JobEngineCurrent(ctx context.Context, db *sqlx.DB) (bool, error) {
	m, err := rivermigrate.New(riverdatabasesql.New(db.DB), nil)
	if err != nil {
		return false, fmt.Errorf("pg: job engine migrator: %w", err)
	}
	res, err := m.Validate(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("pg: job engine schema: %w", err)
	}
	return res.OK, nil
}
