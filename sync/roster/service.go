package roster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/lti/nrps"
	"github.com/klasterina/hub/lti/servicetoken"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/tenants/audit"
)

// DefaultInterval is how often a tenant's courses are synced when the
// tenant has not said otherwise.
const DefaultInterval = 6 * time.Hour

// PageLimit is the page size the hub asks for; platforms cap it (Canvas
// at 50).
const PageLimit = 100

// maxPageBytes is the largest membership page the hub reads: about
// 10,000 members as platforms send them (a page of PageLimit is tens of
// kilobytes).
const maxPageBytes = 4 << 20

// Service runs roster syncs and answers for them.
type Service struct {
	db     *sqlx.DB // the hub's pool: pages are applied here
	jobsDB *sqlx.DB // the job engine's pool: runs and their jobs are queued here, together
	Jobs   *jobs.Client
	tokens *servicetoken.Source
	nrps   *nrps.Client
	m      *Metrics
	chain  *audit.Keyring
	log    *slog.Logger
	Now    func() time.Time

	// Faults: how long one page may take, and how the worker retries.
	PageTimeout time.Duration
	Retry       RetryPolicy

	launches chan launched
	// nrpsHook, in tests, hears of each page about to be fetched (from 1).
	nrpsHook func(page int)
}

// RetryPolicy says how a run waits out a failing platform.
type RetryPolicy struct {
	Attempts          int           // per page, for 5xx, timeouts and dropped connections
	ThrottledAttempts int           // per page, for 429, 503 and Canvas's throttle
	BaseDelay         time.Duration // the first backoff; it doubles, with full jitter
	MaxDelay          time.Duration // the longest backoff
	MaxInlineWait     time.Duration // a longer Retry-After snoozes the job instead of holding its worker
}

// DefaultRetry is the hub's policy: about a minute of 5xx, several
// minutes of throttling.
var DefaultRetry = RetryPolicy{Attempts: 6, ThrottledAttempts: 30, BaseDelay: 500 * time.Millisecond,
	MaxDelay: 30 * time.Second, MaxInlineWait: time.Minute}

// New makes the service. db is the hub's pool, jobsDB the job engine's
// (jobs.Open); Jobs must be set before runs are requested.
func New(db, jobsDB *sqlx.DB, tokens *servicetoken.Source, client *http.Client, chain *audit.Keyring, m *Metrics, log *slog.Logger) *Service {
	return &Service{db: db, jobsDB: jobsDB, tokens: tokens, nrps: &nrps.Client{HTTP: client, MaxPageBytes: maxPageBytes}, chain: chain, m: m, log: log, Now: time.Now,
		PageTimeout: 30 * time.Second, Retry: DefaultRetry, launches: make(chan launched, 256)}
}

// Request queues a sync of the tenant's course, or joins the one queued
// or running (joined). mode is ModeFull, or "" for differences when the
// platform offered them at the last sync. NotFound for an unknown course,
// Conflict for a course whose platform sent no NRPS endpoint. A request
// by someone (by not nil) is audited.
func (s *Service) Request(ctx context.Context, by *audit.Actor, tenant, contextRef uuid.UUID, trigger, mode string) (Run, bool, error) {
	if mode == "" {
		mode = ModeDifferences
	}
	var run Run
	var joined bool
	err := pg.InTenant(ctx, s.jobsDB, tenant, func(tx *sqlx.Tx) error {
		if err := requireEndpoint(ctx, tx, tenant, contextRef); err != nil {
			return err
		}
		var err error
		if run, joined, err = queueRun(ctx, tx, tenant, contextRef, trigger, mode, s.Now()); err != nil {
			return err
		}
		if by != nil {
			if _, err := s.chain.Append(ctx, tx, &tenant, *by, audit.Event{Action: "roster_sync.requested", TargetType: "lti_context",
				TargetID: contextRef.String(), Details: map[string]string{"run": run.ID.String(), "mode": mode, "joined": fmt.Sprint(joined)}}, s.Now()); err != nil {
				return err
			}
		}
		return s.insertJob(ctx, tx, tenant, run, trigger)
	})
	return run, joined, err
}

func requireEndpoint(ctx context.Context, tx *sqlx.Tx, tenant, contextRef uuid.UUID) error {
	var url *string
	err := tx.GetContext(ctx, &url, `SELECT nrps_url FROM contexts WHERE tenant_id = $1 AND id = $2`, tenant, contextRef)
	if pg.IsNoRows(err) {
		return apperr.New(apperr.NotFound, "no such course")
	}
	if err != nil {
		return pg.MapError(fmt.Errorf("roster: read course: %w", err))
	}
	if url == nil {
		return apperr.New(apperr.Conflict, "the platform sent no Names and Role Provisioning endpoint for this course: it cannot be synced")
	}
	return nil
}

// insertJob queues run's job, unless it has one queued or running.
func (s *Service) insertJob(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, run Run, trigger string) error {
	if s.Jobs == nil {
		return errors.New("roster: no job engine")
	}
	_, err := s.Jobs.InsertTx(ctx, tx.Tx, SyncArgs{TenantID: tenant, ContextRef: run.ContextRef, RunID: run.ID, Trigger: trigger}, nil)
	if err != nil {
		return pg.MapError(fmt.Errorf("roster: queue job: %w", err))
	}
	return nil
}

// loadCourse reads what a sync needs of the course, its registration (a
// tenant's own or a shared one) and its tenant's schedule.
func loadCourse(ctx context.Context, tx *sqlx.Tx, tenant, contextRef uuid.UUID) (course, error) {
	var c course
	err := tx.GetContext(ctx, &c, `SELECT c.tenant_id, c.id, c.context_id, r.issuer, r.client_id, r.auth_token_url,
			r.token_audience, c.registration_id, c.nrps_url, c.roster_differences_url, s.interval_minutes,
			(s.tenant_id IS NULL OR s.enabled) AS scheduled
		FROM contexts c
		JOIN lti_registrations r ON r.id = c.registration_id AND (r.tenant_id = c.tenant_id OR r.shared)
		LEFT JOIN roster_schedules s ON s.tenant_id = c.tenant_id
		WHERE c.tenant_id = $1 AND c.id = $2`, tenant, contextRef)
	if pg.IsNoRows(err) {
		return course{}, apperr.New(apperr.NotFound, "no such course")
	}
	return c, pg.MapError(err)
}

// interval is the course's tenant's schedule.
func (c course) interval() time.Duration {
	if c.IntervalMinutes != nil {
		return time.Duration(*c.IntervalMinutes) * time.Minute
	}
	return DefaultInterval
}

// nextSync is when the schedule syncs the course again: one interval from
// now, give or take a tenth, so a tenant's courses spread out.
func nextSync(now time.Time, interval time.Duration) time.Time {
	jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(interval))
	return now.Add(interval + jitter)
}
