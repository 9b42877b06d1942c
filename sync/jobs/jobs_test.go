package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/sync/jobs"
)

type echoArgs struct {
	N int `json:"n"`
}

func (echoArgs) Kind() string { return "test.echo" }

type echoWorker struct {
	river.WorkerDefaults[echoArgs]
	sum   atomic.Int64
	block chan struct{}
}

func (w *echoWorker) Work(ctx context.Context, job *river.Job[echoArgs]) error {
	if w.block != nil {
		select {
		case <-w.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.sum.Add(int64(job.Args.N))
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs an engine with w as the application role on a fresh database.
func start(t *testing.T, url string, w *echoWorker, reg prometheus.Registerer) (*jobs.Client, context.CancelFunc, chan error) {
	t.Helper()
	ctx := context.Background()
	db, err := jobs.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := jobs.New(db, jobs.Config{Workers: workers, Queues: map[string]int{river.QueueDefault: 2},
		PollInterval: 100 * time.Millisecond, Registry: reg, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	if err := jobs.Start(runCtx, client); err != nil {
		t.Fatal(err)
	}
	go func() { done <- jobs.Run(runCtx, client, 2*time.Second, quiet()) }()
	t.Cleanup(func() { stop(); <-done })
	return client, stop, done
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestJobsRunAsTheApplicationRole(t *testing.T) {
	d := pgtest.New(t)
	reg := prometheus.NewRegistry()
	w := &echoWorker{}
	client, _, _ := start(t, d.URL, w, reg)
	for _, n := range []int{1, 2, 3} {
		if _, err := client.Insert(context.Background(), echoArgs{N: n}, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three jobs worked", func() bool { return w.sum.Load() == 6 })
	waitFor(t, "River's metrics exported", func() bool {
		n, _ := testutil.GatherAndCount(reg, "river_work_count_total")
		return n > 0
	})
}

func TestShutdownDrainsRunningJobs(t *testing.T) {
	d := pgtest.New(t)
	w := &echoWorker{block: make(chan struct{})}
	client, stop, done := start(t, d.URL, w, nil)
	if _, err := client.Insert(context.Background(), echoArgs{N: 5}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // claimed and blocked
	stop()
	time.AfterFunc(200*time.Millisecond, func() { close(w.block) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
	if w.sum.Load() != 5 {
		t.Fatalf("the running job did not finish before the engine stopped: sum %d", w.sum.Load())
	}
}
