package roster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/sync/jobs"
)

// SyncArgs is the job that runs a course's sync. It names the run it was
// queued for and is unique per run while queued or running: a second
// request for the course joins the run (one is active per course) and its
// job. A run queued while the last one's job is still finishing gets a job
// of its own.
type SyncArgs struct {
	TenantID   uuid.UUID `json:"tenant_id"`
	ContextRef uuid.UUID `json:"context_ref"`
	RunID      uuid.UUID `json:"run_id" river:"unique"`
	Trigger    string    `json:"trigger"`
}

// Kind names the job for River.
func (SyncArgs) Kind() string { return "roster.sync" }

// activeStates are the job states in which a course's sync job is unique.
var activeStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled}

// InsertOpts puts the job on the roster queue, unique per run.
func (SyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueRoster, MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: activeStates}}
}

// Worker works SyncArgs jobs.
type Worker struct {
	river.WorkerDefaults[SyncArgs]
	s *Service
}

// Worker is the service's River worker.
func (s *Service) Worker() *Worker { return &Worker{s: s} }

// Work runs the course's sync as the job's owner. A failed run is
// recorded, not retried: the schedule or a request starts another. A job
// that nears its timeout, or that the platform asks to wait long, snoozes
// and resumes from the run's cursor; the database being unavailable is
// an error, so River retries with backoff.
func (w *Worker) Work(ctx context.Context, job *river.Job[SyncArgs]) error {
	deadline, _ := ctx.Deadline()
	owner := fmt.Sprintf("job:%d", job.ID)
	var runID *uuid.UUID
	if job.Args.RunID != uuid.Nil {
		runID = &job.Args.RunID
	}
	run, err := w.s.sync(ctx, job.Args.TenantID, job.Args.ContextRef, runID, job.Args.Trigger, owner, deadline, nil)
	var f *failure
	var sn *snooze
	switch {
	case err == nil, errors.Is(err, errRunDone), errors.Is(err, errLeaseLost), errors.As(err, &f), apperr.Is(err, apperr.NotFound):
		return nil
	case errors.Is(err, errJoined): // another worker has it: look again when its lease would have run out
		return river.JobSnooze(leaseTTL)
	case errors.As(err, &sn):
		return river.JobSnooze(sn.after)
	case job.Attempt >= job.MaxAttempts && run.ID != uuid.Nil:
		// The job's last try: the run is not left running with no one behind it.
		return w.s.fail(ctx, course{TenantID: job.Args.TenantID, Ref: job.Args.ContextRef}, run, owner, &failure{CodeInternal, err.Error()})
	}
	return err
}

// ScheduleArgs is the periodic job that queues the syncs the tenants'
// schedules say are due.
type ScheduleArgs struct{}

// Kind names the job for River.
func (ScheduleArgs) Kind() string { return "roster.schedule" }

// InsertOpts puts the job on the maintenance queue.
func (ScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 1,
		UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
}

// Scheduler works ScheduleArgs jobs.
type Scheduler struct {
	river.WorkerDefaults[ScheduleArgs]
	s *Service
}

// Scheduler is the service's schedule worker.
func (s *Service) Scheduler() *Scheduler { return &Scheduler{s: s} }

// PeriodicJob runs the schedule every minute (on the leader replica only).
func (s *Service) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
		func() (river.JobArgs, *river.InsertOpts) { return ScheduleArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true})
}

// scheduleBatch is how many due courses one schedule run queues.
const scheduleBatch = 500

// Work queues the due courses' syncs.
func (w *Scheduler) Work(ctx context.Context, _ *river.Job[ScheduleArgs]) error {
	_, err := w.s.QueueDue(ctx)
	return err
}

type due struct {
	TenantID   uuid.UUID `db:"tenant_id"`
	ContextRef uuid.UUID `db:"context_ref"`
}

// QueueDue queues a sync of every course whose scheduled time has come,
// in any tenant, and moves each course's next time on. It returns how
// many it queued.
func (s *Service) QueueDue(ctx context.Context) (int, error) {
	var list []due
	err := pg.InTx(ctx, s.jobsDB, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &list, `SELECT tenant_id, context_ref FROM hub_roster_due($1, $2)`, s.Now(), scheduleBatch)
	})
	if err != nil {
		return 0, pg.MapError(fmt.Errorf("roster: due courses: %w", err))
	}
	for i, d := range list {
		if err := s.queueScheduled(ctx, d); err != nil {
			return i, err
		}
	}
	return len(list), nil
}

func (s *Service) queueScheduled(ctx context.Context, d due) error {
	return pg.InTenant(ctx, s.jobsDB, d.TenantID, func(tx *sqlx.Tx) error {
		c, err := loadCourse(ctx, tx, d.TenantID, d.ContextRef)
		if err != nil {
			return err
		}
		now := s.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE contexts SET roster_next_sync_at = $3 WHERE tenant_id = $1 AND id = $2`,
			d.TenantID, d.ContextRef, nextSync(now, c.interval())); err != nil {
			return pg.MapError(err)
		}
		run, _, err := queueRun(ctx, tx, d.TenantID, d.ContextRef, TriggerSchedule, ModeDifferences, now)
		if err != nil {
			return err
		}
		return s.insertJob(ctx, tx, d.TenantID, run, TriggerSchedule)
	})
}

// launched is a course a launch found new (or back from gone).
type launched struct{ tenant, contextRef uuid.UUID }

// AfterLaunch asks for a sync of a course a launch just found new. It
// never blocks the launch: the request waits in a queue that
// RunLaunchQueue drains, and when that queue is full the course's
// schedule (which a new course has due in minutes) picks it up instead.
func (s *Service) AfterLaunch(tenant, contextRef uuid.UUID) {
	select {
	case s.launches <- launched{tenant, contextRef}:
	default:
		s.m.launchQueueFull()
	}
}

// RunLaunchQueue queues the syncs AfterLaunch asked for until ctx ends.
func (s *Service) RunLaunchQueue(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-s.launches:
			if _, _, err := s.Request(ctx, nil, l.tenant, l.contextRef, TriggerLaunch, ""); err != nil {
				s.log.WarnContext(ctx, "queue roster sync after launch", "tenant", l.tenant, "context", l.contextRef, "err", err)
			}
		}
	}
}
