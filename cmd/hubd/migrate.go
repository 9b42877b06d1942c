package main

import (
	"context"
	"fmt"
	"io"

	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg"
)

// migrate applies pending migrations, or with "status" lists them.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 1 || (len(args) == 1 && args[0] != "status") {
		return &exitError{2, fmt.Errorf("usage: hubd migrate [status]")}
	}
	cfg, err := loadConfig(getenv, config.NeedDatabase)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	db, err := pg.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := pg.NewMigrator(db, log)
	if err != nil {
		return err
	}
	if len(args) == 1 {
		return m.WriteStatus(ctx, stdout)
	}
	if err := m.Up(ctx); err != nil {
		return err
	}
	current, _, err := m.Versions(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", current)
	return nil
}
