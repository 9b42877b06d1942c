package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/sync/results"
)

// startRiver works the delivery queue with workers River runs, as hubd
// does, until the test ends; results are routed through the same client.
func (r *rig) startRiver(workers int, poll time.Duration) {
	r.t.Helper()
	ws := river.NewWorkers()
	river.AddWorker(ws, r.svc.Worker())
	client, err := jobs.New(r.jobsDB, jobs.Config{Workers: ws, Queues: map[string]int{jobs.QueueDelivery: workers},
		PollInterval: poll, FetchCooldown: jobs.HubFetchCooldown, Log: quiet()})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := jobs.Start(ctx, client); err != nil {
		r.t.Fatal(err)
	}
	r.svc.Jobs = client
	r.t.Cleanup(func() {
		cancel()
		stop, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		_ = client.Stop(stop)
	})
}

// settle waits until no delivery is pending, or fails the test at the
// deadline.
func (r *rig) settle(deadline time.Duration) []deliveryRow {
	r.t.Helper()
	end := time.Now().Add(deadline)
	for {
		ds := r.deliveries()
		pending := 0
		for _, d := range ds {
			if d.Status == delivery.StatusPending {
				pending++
			}
		}
		if pending == 0 {
			return ds
		}
		if time.Now().After(end) {
			r.t.Fatalf("%d of %d deliveries still pending after %s", pending, len(ds), deadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRiverDeliversThroughAnOutageInOrder: the platform fails and
// throttles while scores keep coming; River's jobs snooze and retry until
// it recovers; everything ends delivered or superseded, the platform's
// scores in order with strictly increasing timestamps, the latest last.
func TestRiverDeliversThroughAnOutageInOrder(t *testing.T) {
	r := newRig(t)
	r.agree(nil)
	r.svc.Policy.MaxAttempts = 50
	r.startRiver(8, 50*time.Millisecond)
	var faults []ltitest.Fault
	for range 6 {
		faults = append(faults, ltitest.FaultServerError, ltitest.FaultTooMany)
	}
	r.p.InjectAGSFaults(faults...)
	base := time.Now().Add(-time.Hour)
	for i := range 20 {
		r.report(float64(i), func(rep *results.Report) { rep.OccurredAt = base.Add(time.Duration(i) * time.Second) })
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range r.settle(60 * time.Second) {
		if d.Status != delivery.StatusDelivered && d.Status != delivery.StatusSuperseded {
			t.Fatalf("delivery ended %s", d.Status)
		}
	}
	scores := r.p.Scores(column(t, r).ID, r.subject)
	if len(scores) == 0 || *scores[len(scores)-1].ScoreGiven != 19 {
		t.Fatalf("the gradebook's last score is not the latest: %+v", scores)
	}
	for i := 1; i < len(scores); i++ {
		if *scores[i].ScoreGiven <= *scores[i-1].ScoreGiven || !scores[i].Timestamp.After(scores[i-1].Timestamp) {
			t.Fatalf("out of order: %+v after %+v", scores[i], scores[i-1])
		}
	}
}
