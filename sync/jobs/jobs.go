package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/rivercontrib/otelriver"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/klasterina/hub/internal/pg"
)

// Queues of the hub and how many jobs of each one replica works at once.
const (
	QueueRoster      = "roster"      // NRPS pulls: each holds a platform's attention for a while
	QueueMaintenance = "maintenance" // schedules and housekeeping: short jobs
	QueueDelivery    = "delivery"    // records sent out: short, many, mostly waiting on a receiver
)

// Defaults an operator may change through Config.
const (
	// DefaultRescueAfter is how long a job may stay running before River
	// takes it for stuck (its process was killed) and runs it again.
	// River's own default is an hour; a roster sync resumes from its last
	// page, so minutes are enough.
	DefaultRescueAfter = 3 * time.Minute
	// CompletedRetention keeps finished jobs for inspection, then deletes
	// them: the hub's own records (sync runs, deliveries) outlive them.
	CompletedRetention = 24 * time.Hour
	// DiscardedRetention keeps jobs that failed for good longer, to be looked into.
	DiscardedRetention = 7 * 24 * time.Hour
	// poolSize is the job engine's own connections per replica: River's
	// producers, leader election and maintenance, and the transactions
	// that insert jobs (a result the app reports, with its deliveries).
	poolSize = 32
	// DeliveryWorkers is how many delivery jobs one replica works at once.
	DeliveryWorkers = 32
	// HubPollInterval is how often hubd's idle queues look for jobs (the
	// database/sql driver has no LISTEN): a result's first delivery waits
	// at most this long for a worker.
	HubPollInterval = 200 * time.Millisecond
	// HubFetchCooldown is the least time between two fetches of a busy
	// queue: River's default (100 ms) would cap a queue of 32 workers at
	// 320 jobs a second.
	HubFetchCooldown = 10 * time.Millisecond
)

// Config is what the engine runs.
type Config struct {
	Workers  *river.Workers
	Periodic []*river.PeriodicJob
	// Queues maps each queue to its worker limit per replica; nil: the
	// hub's queues with their default limits.
	Queues map[string]int
	// RescueAfter: see DefaultRescueAfter; 0 means the default. Jobs
	// should finish (or snooze to continue) within JobTimeout(RescueAfter).
	RescueAfter time.Duration
	// PollInterval is how often an idle replica looks for new jobs (the
	// database/sql driver has no LISTEN); 0: one second.
	PollInterval time.Duration
	// FetchCooldown is the least time between two fetches of one queue
	// when jobs keep coming; 0: River's default (100 ms), or PollInterval
	// when that is shorter.
	FetchCooldown time.Duration
	Registry      prometheus.Registerer
	Log           *slog.Logger
}

// DefaultQueues are the hub's queues and their worker limits per replica.
func DefaultQueues() map[string]int {
	return map[string]int{QueueRoster: 4, QueueMaintenance: 2, QueueDelivery: DeliveryWorkers}
}

// JobTimeout is the longest a job may run before River cancels its
// context: two thirds of rescueAfter, so a job is never rescued while it
// still runs.
func JobTimeout(rescueAfter time.Duration) time.Duration {
	if rescueAfter <= 0 {
		rescueAfter = DefaultRescueAfter
	}
	return rescueAfter * 2 / 3
}

// Client is River's client over the hub's job pool; InsertTx takes a
// *sql.Tx of that pool.
type Client = river.Client[*sql.Tx]

// Open connects the job engine's pool to url: the application role, with
// pg.JobLimits (River's jsonb arguments need text parameters).
func Open(ctx context.Context, url string) (*sqlx.DB, error) {
	return openPool(ctx, url, poolSize)
}

// OpenWorkers connects a pool for n jobs that hold a transaction while
// they call another system (a delivery holds its rows while it sends):
// apart from the engine's own pool, so they cannot starve River or the
// requests that queue jobs. Its limits are the engine's (JobLimits).
func OpenWorkers(ctx context.Context, url string, n int) (*sqlx.DB, error) {
	return openPool(ctx, url, n)
}

// openPool connects n connections with JobLimits.
func openPool(ctx context.Context, url string, n int) (*sqlx.DB, error) {
	db, err := pg.OpenWith(ctx, url, pg.JobLimits)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return db, nil
}

// New builds River's client on db (from Open) for cfg. A client without
// workers only inserts jobs.
func New(db *sqlx.DB, cfg Config) (*Client, error) {
	rescue := cfg.RescueAfter
	if rescue <= 0 {
		rescue = DefaultRescueAfter
	}
	rc := &river.Config{
		Logger:                      cfg.Log,
		JobTimeout:                  JobTimeout(rescue),
		RescueStuckJobsAfter:        rescue,
		CompletedJobRetentionPeriod: CompletedRetention,
		CancelledJobRetentionPeriod: CompletedRetention,
		DiscardedJobRetentionPeriod: DiscardedRetention,
		FetchPollInterval:           cfg.PollInterval,
		FetchCooldown:               fetchCooldown(cfg),
		PeriodicJobs:                cfg.Periodic,
		// River reindexes its tables nightly, which needs the tables'
		// owner; the application role is not, and the schema owner's
		// autovacuum keeps them in shape.
		ReindexerSchedule: neverSchedule{},
	}
	if cfg.Registry != nil {
		mw, err := metricsMiddleware(cfg.Registry)
		if err != nil {
			return nil, err
		}
		rc.Middleware = append(rc.Middleware, mw)
	}
	if cfg.Workers != nil {
		rc.Workers = cfg.Workers
		rc.Queues = queueConfig(cfg.Queues)
	}
	client, err := river.NewClient(riverdatabasesql.New(db.DB), rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: new client: %w", err)
	}
	return client, nil
}

func fetchCooldown(cfg Config) time.Duration {
	const riverDefault = 100 * time.Millisecond
	if cfg.FetchCooldown == 0 && cfg.PollInterval > 0 && cfg.PollInterval < riverDefault {
		return cfg.PollInterval
	}
	return cfg.FetchCooldown
}

func queueConfig(limits map[string]int) map[string]river.QueueConfig {
	if limits == nil {
		limits = DefaultQueues()
	}
	qs := make(map[string]river.QueueConfig, len(limits))
	for name, n := range limits {
		qs[name] = river.QueueConfig{MaxWorkers: max(n, 1)}
	}
	return qs
}

// metricsMiddleware exports River's own metrics (jobs inserted and
// worked, by kind, queue and outcome, and their durations: rivercontrib's
// otelriver) to reg, through OpenTelemetry's Prometheus exporter.
func metricsMiddleware(reg prometheus.Registerer) (*otelriver.Middleware, error) {
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("jobs: metrics exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	return otelriver.NewMiddleware(&otelriver.MiddlewareConfig{MeterProvider: provider, DurationUnit: "s"}), nil
}

// neverSchedule is a periodic schedule that never comes round.
type neverSchedule struct{}

func (neverSchedule) Next(time.Time) time.Time { return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }

// Start starts working jobs. River's client must be started before
// anything inserts jobs through it (an insert signals the client's
// producers, which Start creates), so it is called before the server
// takes requests, and Run then waits for the end.
func Start(ctx context.Context, client *Client) error {
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	return nil
}

// Run waits until ctx ends, then stops fetching and lets running jobs
// finish within grace; jobs still running then are cancelled (a roster
// sync resumes from its last page when River runs it again).
func Run(ctx context.Context, client *Client, grace time.Duration, log *slog.Logger) error {
	<-ctx.Done()
	log.Info("shutting down: draining jobs", "grace", grace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := client.Stop(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		hard, cancelHard := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancelHard()
		err = client.StopAndCancel(hard)
	}
	if err != nil {
		return fmt.Errorf("jobs: stop: %w", err)
	}
	return nil
}
