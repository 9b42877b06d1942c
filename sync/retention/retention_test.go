package retention

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
)

// rig is the service over a fresh database as the application role, with
// a job engine that only inserts (no replica works its jobs: the tests
// call the workers).
type rig struct {
	t       *testing.T
	db      *sqlx.DB
	jobsDB  *sqlx.DB
	tenants *tenants.Store
	s       *Service
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	d := pgtest.New(t)
	r := &rig{t: t, db: pgtest.Connect(t, d.URL)}
	var err error
	if r.jobsDB, err = jobs.Open(ctx, d.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.jobsDB.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	chain, _ := audit.NewKeyring(bytes.Repeat([]byte{5}, 32))
	r.tenants = tenants.NewStore(r.db, chain, log)
	r.s = New(r.jobsDB, r.tenants, agreements.NewRetention(r.db, chain, 0), 0, log)
	if r.s.Jobs, err = jobs.New(r.jobsDB, jobs.Config{Log: log}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) tenant(slug string, status tenants.Status) uuid.UUID {
	r.t.Helper()
	ctx, by := context.Background(), audit.System("test")
	t, err := r.tenants.Create(ctx, by, tenants.NewTenant{Slug: slug, DisplayName: slug, Kind: tenants.Institution})
	if err == nil && status != tenants.Active {
		_, err = r.tenants.SetStatus(ctx, by, t.ID, status)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return t.ID
}

func (r *rig) runs(tenant uuid.UUID) []agreements.RetentionRun {
	r.t.Helper()
	runs, _, err := r.s.retention.Runs(context.Background(), tenant, pg.Page{Limit: 50})
	if err != nil {
		r.t.Fatal(err)
	}
	return runs
}

// jobsOf counts the engine's jobs of a kind, as the application role.
func (r *rig) jobsOf(kind string) int {
	r.t.Helper()
	var n int
	if err := r.jobsDB.Get(&n, `SELECT count(*) FROM river_job WHERE kind = $1`, kind); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func TestScheduleQueuesOneRunPerActiveTenant(t *testing.T) {
	r := newRig(t)
	uni, college := r.tenant("uni", tenants.Active), r.tenant("college", tenants.Active)
	closed := r.tenant("closed", tenants.Suspended)
	for round := 1; round <= 2; round++ {
		n, err := r.s.QueueAll(context.Background())
		if err != nil || n != 2 {
			t.Fatalf("round %d: queued %d, %v; want 2", round, n, err)
		}
	}
	for _, tenant := range []uuid.UUID{uni, college} {
		if runs := r.runs(tenant); len(runs) != 1 || runs[0].Status != agreements.RetentionQueued || runs[0].Trigger != "schedule" {
			t.Fatalf("runs of %s: %+v, want one queued by the schedule (the second round joins it)", tenant, runs)
		}
	}
	if runs := r.runs(closed); len(runs) != 0 {
		t.Fatalf("a suspended tenant's runs: %+v", runs)
	}
	if n := r.jobsOf("retention.run"); n != 2 {
		t.Fatalf("%d retention jobs, want one per run", n)
	}
}

func job(args RunArgs, attempt int) *river.Job[RunArgs] {
	return &river.Job[RunArgs]{JobRow: &rivertype.JobRow{ID: 42, Attempt: attempt, MaxAttempts: 5}, Args: args}
}

func TestWorkerWorksItsRun(t *testing.T) {
	r := newRig(t)
	uni := r.tenant("uni", tenants.Active)
	run, joined, err := r.s.Request(context.Background(), audit.System("test"), uni)
	if err != nil || joined {
		t.Fatalf("request: %+v, joined %v, %v", run, joined, err)
	}
	w, args := r.s.Worker(), RunArgs{TenantID: uni, RunID: run.ID}

	near, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var snooze *river.JobSnoozeError
	if err := w.Work(near, job(args, 1)); !errors.As(err, &snooze) {
		t.Fatalf("near the job's timeout: %v, want a snooze", err)
	}
	stopped, stop := context.WithCancel(context.Background())
	stop()
	if err := w.Work(stopped, job(args, 1)); err == nil {
		t.Fatal("a try that could not reach the database succeeded")
	}
	if got := r.runs(uni)[0]; got.Status != agreements.RetentionRunning {
		t.Fatalf("after a failed try: %+v, want it left for the next", got)
	}
	if err := w.Work(context.Background(), job(args, 2)); err != nil {
		t.Fatal(err)
	}
	if got := r.runs(uni)[0]; got.Status != agreements.RetentionSucceeded || got.FinishedAt == nil {
		t.Fatalf("worked: %+v", got)
	}
	if err := w.Work(context.Background(), job(args, 3)); err != nil {
		t.Fatalf("a job of an ended run: %v", err)
	}
}

func TestWorkersLastTryFailsTheRun(t *testing.T) {
	r := newRig(t)
	uni := r.tenant("uni", tenants.Active)
	run, _, err := r.s.Request(context.Background(), audit.System("test"), uni)
	if err != nil {
		t.Fatal(err)
	}
	stopped, stop := context.WithCancel(context.Background())
	stop()
	if err := r.s.Worker().Work(stopped, job(RunArgs{TenantID: uni, RunID: run.ID}, 5)); err != nil {
		t.Fatalf("the last try: %v, want the run failed and the job done", err)
	}
	got := r.runs(uni)[0]
	if got.Status != agreements.RetentionFailed || got.Error == nil || *got.Error != "the run failed after 5 tries; the hub's log has the detail (job 42)" {
		t.Fatalf("after the last try: %+v", got)
	}
	// The next request is a new run.
	next, joined, err := r.s.Request(context.Background(), audit.System("test"), uni)
	if err != nil || joined || next.ID == run.ID {
		t.Fatalf("next request: %+v, joined %v, %v", next, joined, err)
	}
}
