package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
)

// DefaultInterval is how often every tenant's retention runs when the
// operator has not said otherwise (HUB_RETENTION_INTERVAL).
const DefaultInterval = 24 * time.Hour

// Service queues retention runs and works them.
type Service struct {
	jobsDB    *sqlx.DB // the job engine's pool: a run and its job are queued here, together
	Jobs      *jobs.Client
	tenants   *tenants.Store
	retention *agreements.Retention
	// Interval is how often the schedule queues every active tenant's run.
	Interval time.Duration
	log      *slog.Logger
}

// New makes the service; jobsDB is the job engine's pool (jobs.Open), and
// Jobs must be set before runs are queued. interval 0 is DefaultInterval.
func New(jobsDB *sqlx.DB, ts *tenants.Store, r *agreements.Retention, interval time.Duration, log *slog.Logger) *Service {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Service{jobsDB: jobsDB, tenants: ts, retention: r, Interval: interval, log: log}
}

// Request queues a run of the tenant's retention now, or joins the one
// queued or running (joined); by is audited as retention.requested.
func (s *Service) Request(ctx context.Context, by audit.Actor, tenant uuid.UUID) (agreements.RetentionRun, bool, error) {
	return s.queue(ctx, &by, tenant, agreements.RetentionByRequest)
}

func (s *Service) queue(ctx context.Context, by *audit.Actor, tenant uuid.UUID, trigger string) (agreements.RetentionRun, bool, error) {
	if s.Jobs == nil {
		return agreements.RetentionRun{}, false, errors.New("retention: no job engine")
	}
	var run agreements.RetentionRun
	var joined bool
	err := pg.InTenant(ctx, s.jobsDB, tenant, func(tx *sqlx.Tx) error {
		var err error
		if run, joined, err = s.retention.QueueTx(ctx, tx, by, tenant, trigger); err != nil {
			return err
		}
		// A joined run's job is already queued (unique per run), unless it
		// was lost: then this one carries the run on.
		if _, err := s.Jobs.InsertTx(ctx, tx.Tx, RunArgs{TenantID: tenant, RunID: run.ID}, nil); err != nil {
			return pg.MapError(fmt.Errorf("retention: queue job: %w", err))
		}
		return nil
	})
	return run, joined, err
}

// RunArgs is the job that works one retention run. It names the run and
// its tenant, nothing else, and is unique per run while queued or running.
type RunArgs struct {
	TenantID uuid.UUID `json:"tenant_id"`
	RunID    uuid.UUID `json:"run_id" river:"unique"`
}

// Kind names the job for River.
func (RunArgs) Kind() string { return "retention.run" }

// activeStates are the job states in which a run's job is unique.
var activeStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled}

// InsertOpts puts the job on the maintenance queue, unique per run.
func (RunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 5,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: activeStates}}
}

// Worker works RunArgs jobs.
type Worker struct {
	river.WorkerDefaults[RunArgs]
	s *Service
}

// Worker is the service's River worker.
func (s *Service) Worker() *Worker { return &Worker{s: s} }

// snoozeAfter is how soon a run paused near its job's timeout carries on.
const snoozeAfter = time.Second

// Work works the job's run to its end. A run that nears the job's
// timeout snoozes the job and the next try carries on; any other error
// is retried with backoff, and on the job's last try the run is recorded
// as failed rather than left running.
func (w *Worker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	deadline, _ := ctx.Deadline()
	tenant, id := job.Args.TenantID, job.Args.RunID
	run, err := w.s.retention.Work(ctx, tenant, id, deadline)
	switch {
	case err == nil:
		w.s.log.InfoContext(ctx, "retention ran", "tenant", tenant, "run", id, "disclosures_deleted", run.DisclosuresDeleted,
			"learners_erased", run.LearnersErased)
		return nil
	case errors.Is(err, agreements.ErrRetentionRunEnded), apperr.Is(err, apperr.NotFound):
		return nil
	case errors.Is(err, agreements.ErrRetentionPaused):
		return river.JobSnooze(snoozeAfter)
	case job.Attempt >= job.MaxAttempts:
		w.s.log.ErrorContext(ctx, "retention run failed", "tenant", tenant, "run", id, "job", job.ID, "attempt", job.Attempt, "err", err)
		detail := fmt.Sprintf("the run failed after %d tries; the hub's log has the detail (job %d)", job.Attempt, job.ID)
		_, ferr := w.s.retention.Fail(context.WithoutCancel(ctx), tenant, id, detail)
		if ferr != nil && !errors.Is(ferr, agreements.ErrRetentionRunEnded) {
			return ferr
		}
		return nil
	}
	w.s.log.WarnContext(ctx, "retention run interrupted, to be tried again", "tenant", tenant, "run", id, "job", job.ID,
		"attempt", job.Attempt, "err", err)
	return err
}

// ScheduleArgs is the periodic job that queues every active tenant's run.
type ScheduleArgs struct{}

// Kind names the job for River.
func (ScheduleArgs) Kind() string { return "retention.schedule" }

// InsertOpts puts the job on the maintenance queue.
func (ScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 5}
}

// Scheduler works ScheduleArgs jobs.
type Scheduler struct {
	river.WorkerDefaults[ScheduleArgs]
	s *Service
}

// Scheduler is the service's schedule worker.
func (s *Service) Scheduler() *Scheduler { return &Scheduler{s: s} }

// PeriodicJob queues the schedule every Interval, and when a replica
// becomes the leader; it is unique within each Interval (counted from
// the epoch, in UTC), so leaders that change often do not run it more.
func (s *Service) PeriodicJob() *river.PeriodicJob {
	every := s.Interval
	return river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
		return ScheduleArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: every}}
	}, &river.PeriodicJobOpts{RunOnStart: true})
}

// Work queues every active tenant's run.
func (w *Scheduler) Work(ctx context.Context, _ *river.Job[ScheduleArgs]) error {
	_, err := w.s.QueueAll(ctx)
	return err
}

// tenantPage is how many tenants the schedule reads at a time.
const tenantPage = 500

// QueueAll queues a run for every active tenant (joining those queued or
// running) and says how many it queued. A tenant it cannot queue is
// logged and the others are queued still; the first such error is
// answered, so the job is tried again.
func (s *Service) QueueAll(ctx context.Context) (int, error) {
	page := pg.Page{Limit: tenantPage}
	var n int
	var first error
	for {
		list, next, err := s.tenants.List(ctx, page)
		if err != nil {
			return n, err
		}
		for _, t := range list {
			if t.Status != tenants.Active {
				continue
			}
			if _, _, err := s.queue(ctx, nil, t.ID, agreements.RetentionBySchedule); err != nil {
				s.log.WarnContext(ctx, "queue retention run", "tenant", t.ID, "err", err)
				if first == nil {
					first = err
				}
				continue
			}
			n++
		}
		if next == nil {
			return n, first
		}
		page.After = next
	}
}
