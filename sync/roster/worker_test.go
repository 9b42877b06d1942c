package roster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/klasterina/hub/sync/jobs"
)

// startEngine runs a job engine (a replica's worker) for s until the test
// ends.
func startEngine(t *testing.T, s *Service, jobsDB *sqlx.DB) {
	t.Helper()
	workers := river.NewWorkers()
	river.AddWorker(workers, s.Worker())
	river.AddWorker(workers, s.Scheduler())
	client, err := jobs.New(jobsDB, jobs.Config{Workers: workers, PollInterval: 100 * time.Millisecond, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if err := jobs.Start(ctx, client); err != nil {
		t.Fatal(err)
	}
	go func() { done <- jobs.Run(ctx, client, 5*time.Second, quiet()) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func (r *rig) waitRun(id interface{ String() string }) Run {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var run Run
		r.inTenant(func(tx *sqlx.Tx) error {
			return tx.Get(&run, `SELECT `+runColumns+` FROM roster_syncs WHERE id = $1`, id.String())
		})
		if run.Status == StatusSucceeded || run.Status == StatusFailed {
			return run
		}
		time.Sleep(50 * time.Millisecond)
	}
	var states []string
	_ = r.jobsDB.Select(&states, `SELECT state || ' ' || attempt || ' ' || coalesce(errors::text, '') FROM river_job`)
	var run Run
	r.inTenant(func(tx *sqlx.Tx) error {
		return tx.Get(&run, `SELECT `+runColumns+` FROM roster_syncs WHERE id = $1`, id.String())
	})
	r.t.Fatalf("run %s did not finish: %+v; jobs %v", id, run, states)
	return Run{}
}

func TestTheJobEngineRunsARequestedSync(t *testing.T) {
	r := newRig(t, 250)
	startEngine(t, r.s, r.jobsDB)
	run, _, err := r.s.Request(context.Background(), nil, r.tenant, r.course, TriggerRequest, "")
	if err != nil {
		t.Fatal(err)
	}
	done := r.waitRun(run.ID)
	if done.Status != StatusSucceeded || done.Members != 250 || done.Trigger != TriggerRequest {
		t.Fatalf("run %+v", done)
	}
}

func TestTheScheduleQueuesDueCourses(t *testing.T) {
	r := newRig(t, 30)
	other := r.addCourse("course-2")
	r.p.SetRoster("course-2", 20)
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET roster_next_sync_at = now() - interval '1 minute' WHERE id = $1`, r.course)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE contexts SET roster_next_sync_at = now() + interval '1 hour' WHERE id = $1`, other)
		return err
	})
	n, err := r.s.QueueDue(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("queued %d, %v; want the one due course", n, err)
	}
	var next time.Time
	r.inTenant(func(tx *sqlx.Tx) error {
		return tx.Get(&next, `SELECT roster_next_sync_at FROM contexts WHERE id = $1`, r.course)
	})
	if d := time.Until(next); d < DefaultInterval*85/100 || d > DefaultInterval*115/100 {
		t.Fatalf("next sync in %s, want about %s", d, DefaultInterval)
	}
	if n, _ := r.s.QueueDue(context.Background()); n != 0 {
		t.Fatalf("the course was queued again at once (%d)", n)
	}
	// A tenant that turned its schedule off is not scheduled.
	r.inTenant(func(tx *sqlx.Tx) error {
		if _, err := tx.Exec(`INSERT INTO roster_schedules (tenant_id, enabled, interval_minutes, updated_at) VALUES ($1, false, 60, now())`,
			r.tenant); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE contexts SET roster_next_sync_at = now() - interval '1 minute' WHERE tenant_id = $1`, r.tenant)
		return err
	})
	if n, _ := r.s.QueueDue(context.Background()); n != 0 {
		t.Fatalf("queued %d courses of a tenant whose schedule is off", n)
	}
}

func TestTwoReplicasNeverSyncOneCourseAtOnce(t *testing.T) {
	r := newRig(t, 400)
	r.p.NRPSDelay = 100 * time.Millisecond
	second, err := jobs.Open(context.Background(), r.dbt.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	replica := New(r.db, second, r.tokens, r.s.nrps.HTTP, r.s.chain, nil, quiet())
	replica.Jobs = r.s.Jobs
	// Both replicas' membership requests pass one counter of requests in
	// flight: a course's pages are fetched one at a time, so more than one
	// means two syncs of the course at once.
	counter := &inFlight{next: r.s.nrps.HTTP.Transport}
	counted := &http.Client{Transport: counter}
	r.s.nrps.HTTP, replica.nrps.HTTP = counted, counted
	startEngine(t, r.s, r.jobsDB)
	startEngine(t, replica, second)
	// Each replica's job engine keeps one job per course (a request while
	// one is queued joins it); a course's sync jobs still meet when a
	// rescued job's process was not dead after all. Six workers, three on
	// each replica, start the course's sync at once: the run's lease
	// alone must keep them from syncing together.
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		s := r.s
		if i%2 == 1 {
			s = replica
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.sync(ctx, r.tenant, r.course, nil, TriggerRequest, fmt.Sprintf("job:%d", i), time.Time{}, nil)
			if err != nil && !errors.Is(err, errJoined) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// And through the job engines: requests on both replicas.
	for i := 0; i < 4; i++ {
		s := []*Service{r.s, replica}[i%2]
		run, _, err := s.Request(ctx, nil, r.tenant, r.course, TriggerRequest, ModeFull)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			r.p.Roster("course-1").Add(1)
		}
		if i%2 == 1 {
			r.waitRun(run.ID)
		}
	}
	// The last job may have joined a run that was then finishing: one more
	// sync brings the member added meanwhile.
	r.syncNow()
	var runs []Run
	r.inTenant(func(tx *sqlx.Tx) error {
		return tx.Select(&runs, `SELECT `+runColumns+` FROM roster_syncs WHERE context_ref = $1 ORDER BY started_at`, r.course)
	})
	if len(runs) < 2 {
		t.Fatalf("%d runs", len(runs))
	}
	if n := counter.max.Load(); n != 1 {
		t.Fatalf("%d membership requests were in flight at once", n)
	}
	for i := 1; i < len(runs); i++ {
		if runs[i].StartedAt.Before(*runs[i-1].FinishedAt) {
			t.Fatalf("run %d started at %s, before run %d finished at %s", i, runs[i].StartedAt, i-1, runs[i-1].FinishedAt)
		}
	}
	if n := countStatus(r.members())["active"]; n != 401 {
		t.Fatalf("%d active members, want 401", n)
	}
}

// inFlight counts the requests it carries that are in flight at once.
type inFlight struct {
	next     http.RoundTripper
	now, max atomic.Int64
}

func (c *inFlight) RoundTrip(req *http.Request) (*http.Response, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
	}
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		// Held until the body is read: the page is still being served.
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr != nil {
			return nil, rerr
		}
	}
	return resp, err
}
