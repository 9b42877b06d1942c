package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/sync/errgroup"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/sync/jobs"
)

// shutdownGrace is how long in-flight requests get to finish on SIGTERM.
const shutdownGrace = 20 * time.Second

func apiLogHandler(h slog.Handler) slog.Handler { return api.LogHandler{Handler: h} }

// hub is the wired application.
type hub struct {
	cfg      *config.Config
	log      *slog.Logger
	db       *sqlx.DB
	migrator *pg.Migrator
	deps     api.Deps
}

// openHub connects, migrates or checks the schema, and wires the stores.
func openHub(ctx context.Context, getenv func(string) string, stderr io.Writer) (*hub, error) {
	cfg, err := loadConfig(getenv, config.NeedServe)
	if err != nil {
		return nil, err
	}
	h := &hub{cfg: cfg, log: newLogger(stderr, cfg.LogLevel)}
	h.log.Info("starting", "version", version, "config", cfg)
	if h.db, err = pg.Open(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	if err := h.prepareSchema(ctx); err != nil {
		h.db.Close()
		return nil, err
	}
	if h.deps, err = api.Assemble(ctx, h.db, cfg, h.log); err != nil {
		h.db.Close()
		return nil, err
	}
	return h, nil
}

// prepareSchema migrates as the owner when HUB_AUTO_MIGRATE is set, and
// otherwise refuses to serve an outdated schema; either way it then refuses
// to serve as a role that row-level security does not bind.
func (h *hub) prepareSchema(ctx context.Context) error {
	var err error
	if h.migrator, err = pg.NewMigrator(h.db, h.log); err != nil {
		return err
	}
	if h.cfg.AutoMigrate {
		if err := migrateAndGrant(ctx, h.cfg, h.log); err != nil {
			return err
		}
	}
	current, target, err := h.migrator.Versions(ctx)
	if err != nil {
		return err
	}
	if current < target {
		return fmt.Errorf("database schema is at version %d, this hubd needs %d: run `hubd migrate` (or set HUB_AUTO_MIGRATE=true)", current, target)
	}
	jobsCurrent, err := pg.JobEngineCurrent(ctx, h.db)
	if err != nil {
		return err
	}
	if !jobsCurrent {
		return errors.New("the job engine's schema is not current: run `hubd migrate` (or set HUB_AUTO_MIGRATE=true)")
	}
	if err := pg.CheckApplicationRole(ctx, h.db); err != nil {
		return &exitError{2, err}
	}
	return nil
}

// serve runs the HTTP server until ctx ends, then drains in-flight requests
// and stops background work. ready, if not nil, gets the bound address.
func serve(ctx context.Context, getenv func(string) string, stderr io.Writer, ready func(*hub, net.Addr)) error {
	h, err := openHub(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer h.db.Close()
	defer h.deps.CloseJobs()
	return h.serve(ctx, ready)
}

func (h *hub) serve(ctx context.Context, ready func(*hub, net.Addr)) error {
	deps := h.deps
	srv, err := api.New(deps)
	if err != nil {
		return err
	}
	httpSrv := srv.HTTPServer(h.cfg.Addr)
	ln, err := net.Listen("tcp", h.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", h.cfg.Addr, err)
	}
	h.log.Info("listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(h, ln.Addr())
	}
	if err := jobs.Start(ctx, deps.Jobs); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return deps.LTI.RunHousekeeping(gctx, time.Minute) })
	g.Go(func() error { return deps.SSO.RunHousekeeping(gctx, time.Minute) })
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return jobs.Run(gctx, deps.Jobs, shutdownGrace, h.log) })
	g.Go(func() error { return deps.Roster.RunLaunchQueue(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		h.log.Info("shutting down: draining requests", "grace", shutdownGrace)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		return httpSrv.Shutdown(sctx)
	})
	err = g.Wait()
	h.log.Info("stopped")
	return err
}
