package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg"
)

// migrate applies the embedded migrations as the schema owner
// (HUB_MIGRATE_DATABASE_URL) and grants HUB_DATABASE_URL's role what it
// needs; `migrate status` reports them with whichever connection is set.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 1 || (len(args) == 1 && args[0] != "status") {
		return &exitError{2, fmt.Errorf("usage: hubd migrate [status]")}
	}
	need := config.NeedMigrate
	if len(args) == 1 {
		need = config.NeedDatabase
	}
	cfg, err := loadConfig(getenv, need)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	if len(args) == 1 {
		return migrationStatus(ctx, cfg, log, stdout)
	}
	if err := migrateAndGrant(ctx, cfg, log); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "schema migrated; the application role has its grants")
	return nil
}

func migrationStatus(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	url := cfg.MigrateDatabaseURL
	if url == "" {
		url = cfg.DatabaseURL
	}
	db, err := pg.OpenWith(ctx, url, pg.MigrateLimits)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := pg.NewMigrator(db, log)
	if err != nil {
		return err
	}
	return m.WriteStatus(ctx, stdout)
}

// migrateAndGrant migrates under the advisory lock as the owner (the hub's
// migrations, then the job engine's), then
// grants the application role (whoever HUB_DATABASE_URL logs in as) its
// privileges, tables a migration just added included.
func migrateAndGrant(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	app, err := pg.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("application role: %w", err)
	}
	var role string
	err = app.GetContext(ctx, &role, `SELECT current_user`)
	app.Close()
	if err != nil {
		return fmt.Errorf("application role: %w", err)
	}
	owner, err := pg.OpenWith(ctx, cfg.MigrateDatabaseURL, pg.MigrateLimits)
	if err != nil {
		return fmt.Errorf("owner role: %w", err)
	}
	defer owner.Close()
	m, err := pg.NewMigrator(owner, log)
	if err != nil {
		return err
	}
	if err := m.Up(ctx); err != nil {
		return err
	}
	if err := pg.MigrateJobEngine(ctx, owner); err != nil {
		return err
	}
	current, _, err := m.Versions(ctx)
	if err != nil {
		return err
	}
	log.Info("schema migrated", "version", current, "job_engine", "river", "application_role", role)
	return pg.GrantApplication(ctx, owner, role)
}
