package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/handoff"
	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/servicetoken"
	"github.com/klasterina/hub/sso"
	"github.com/klasterina/hub/sso/scim"
	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/sync/results"
	"github.com/klasterina/hub/sync/retention"
	"github.com/klasterina/hub/sync/roster"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
	"github.com/klasterina/hub/tenants/destinations"
)

// Assemble wires the domain packages from the configuration into Deps, the
// one place main and the tests build the hub the same way. It makes sure the
// hub's signing keys exist.
func Assemble(ctx context.Context, db *sqlx.DB, cfg *config.Config, log *slog.Logger) (Deps, error) {
	m, err := pg.NewMigrator(db, log)
	if err != nil {
		return Deps{}, err
	}
	sealer, err := secrets.New(cfg.SecretKey, cfg.PreviousSecretKeys...)
	if err != nil {
		return Deps{}, err
	}
	chain, err := audit.NewKeyring(cfg.SecretKey, cfg.PreviousSecretKeys...)
	if err != nil {
		return Deps{}, err
	}
	registry := prometheus.NewRegistry()
	d := Deps{DB: db, Migrator: m, Tenants: tenants.NewStore(db, chain, log), Audit: audit.NewLog(db, chain, log),
		Keys: keys.NewStore(db, sealer, log), LTIRegs: lti.NewRegistrations(db, chain, log),
		AdminToken: cfg.AdminToken, TrustedProxies: cfg.TrustedProxies, Log: log, Registry: registry}
	if err := d.Keys.Ensure(ctx); err != nil {
		if errors.Is(err, secrets.ErrOpen) {
			return Deps{}, fmt.Errorf("signing keys were sealed under another HUB_SECRET_KEY: set HUB_SECRET_KEY_PREVIOUS to the old key: %w", err)
		}
		return Deps{}, fmt.Errorf("signing keys: %w", err)
	}
	client := httpx.New(cfg.OutboundAllowPrivate)
	d.LTIRegs.AllowHTTP = cfg.OutboundAllowPrivate
	d.Keysets = keys.NewCache(client)
	d.Keysets.Log = log
	d.LTI = lti.NewTool(db, d.LTIRegs, d.Keysets, sealer, cfg.PublicURL, lti.NewMetrics(registry), log)
	d.LTI.Catalog, d.LTI.Signer, d.LTI.Client = lti.NewCatalog(db, chain, log), d.Keys, client
	d.LTI.Leeway = cfg.LTILeeway
	d.Catalog = d.LTI.Catalog
	d.Agreements, d.Sealer = agreements.NewStore(db, chain, log), sealer
	d.Learners = agreements.NewLearners(db, chain)
	d.Retention = agreements.NewRetention(db, chain, cfg.DisclosureRetentionDays)
	d.Destinations = destinations.NewStore(db, chain, sealer, log)
	d.Destinations.AllowHTTP = cfg.OutboundAllowPrivate
	d.Delivery = delivery.NewSender(client)
	ssoStore := sso.NewStore(db, chain, sealer, cfg.PublicURL, log)
	ssoStore.AllowHTTP = cfg.OutboundAllowPrivate
	if cfg.SSOSessionIdle > 0 && cfg.SSOSessionMax > 0 { // zero: the defaults NewStore set
		ssoStore.SessionIdle, ssoStore.SessionMax = cfg.SSOSessionIdle, cfg.SSOSessionMax
	}
	d.SSO = sso.NewService(ssoStore, sealer, d.Keysets, client, d.Tenants)
	d.SSO.Metrics = sso.NewMetrics(registry)
	d.SSO.StartLimiter = lti.NewSourceLimiter(lti.DefaultLoginRate, lti.DefaultLoginBurst, lti.DefaultLoginSources)
	d.Directory, d.SCIMTokens = scim.NewStore(db, chain, log), scim.NewTokens(db, chain, log)
	d.PublicURL = cfg.PublicURL.String()
	if cfg.AppURL != nil {
		d.LTI.Handoff = handoff.NewSigner(d.Keys, cfg.PublicURL.String(), cfg.AppURL.String())
	}
	if err := assembleJobs(ctx, &d, cfg, chain, client, registry, log); err != nil {
		return Deps{}, err
	}
	return d, nil
}

// assembleJobs opens the job engine's pool and builds its client with the
// workers of the roster sync, of retention and of deliveries, and their
// schedules; the first launch into a course asks for its sync, and a
// result the app reports queues its deliveries.
func assembleJobs(ctx context.Context, d *Deps, cfg *config.Config, chain *audit.Keyring, client *http.Client,
	registry *prometheus.Registry, log *slog.Logger) error {
	jobsDB, err := jobs.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	d.JobsDB = jobsDB
	if d.DeliveryDB, err = jobs.OpenWorkers(ctx, cfg.DatabaseURL, jobs.DeliveryWorkers); err != nil {
		jobsDB.Close()
		return err
	}
	tokens := servicetoken.NewSource(d.Keys, client)
	d.Roster = roster.New(d.DB, jobsDB, tokens, client, chain, roster.NewMetrics(registry), log)
	d.Results = results.NewStore(jobsDB, chain, log)
	d.Deliveries = delivery.New(jobsDB, d.DeliveryDB, client, tokens, d.Destinations, chain, cfg.PublicURL.String(), delivery.NewMetrics(registry), log)
	d.Deliveries.Policy.MaxAttempts = cfg.DeliveryMaxAttempts
	d.Results.Route = d.Deliveries.Route
	d.RetentionJobs = retention.New(jobsDB, d.Tenants, d.Retention, cfg.RetentionInterval, log)
	workers := river.NewWorkers()
	river.AddWorker(workers, d.Roster.Worker())
	river.AddWorker(workers, d.Roster.Scheduler())
	river.AddWorker(workers, d.RetentionJobs.Worker())
	river.AddWorker(workers, d.RetentionJobs.Scheduler())
	river.AddWorker(workers, d.Deliveries.Worker())
	periodic := []*river.PeriodicJob{d.Roster.PeriodicJob(), d.RetentionJobs.PeriodicJob()}
	d.Jobs, err = jobs.New(jobsDB, jobs.Config{Workers: workers, Periodic: periodic,
		RescueAfter: cfg.JobsRescueAfter, PollInterval: jobs.HubPollInterval, FetchCooldown: jobs.HubFetchCooldown,
		Registry: registry, Log: log})
	if err != nil {
		d.CloseJobs()
		return err
	}
	d.Roster.Jobs, d.RetentionJobs.Jobs, d.Deliveries.Jobs = d.Jobs, d.Jobs, d.Jobs
	d.LTI.CourseFound = d.Roster.AfterLaunch
	return nil
}
