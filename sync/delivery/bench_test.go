package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/sync/results"
	"github.com/klasterina/hub/tenants/destinations"
)

// arrivals is a fast webhook receiver on loopback that notes when each
// record arrived.
type arrivals struct {
	*httptest.Server
	mu sync.Mutex
	at map[string]time.Time // by record id
}

func newArrivals(tb testing.TB) *arrivals {
	a := &arrivals{at: map[string]time.Time{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := time.Now()
		body, _ := io.ReadAll(req.Body)
		var ev struct {
			Data struct {
				RecordID string `json:"record_id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		a.mu.Lock()
		if _, seen := a.at[ev.Data.RecordID]; !seen {
			a.at[ev.Data.RecordID] = now
		}
		a.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(a.Close)
	return a
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// webhookRig is a rig whose results go to one webhook at a fast receiver
// only (the course offers no grade services).
func webhookRig(b *testing.B) (*rig, *arrivals) {
	r := newRig(b)
	r.svc.Policy = delivery.DefaultPolicy
	rcv := newArrivals(b)
	hook := r.webhook(rcv.URL, destinations.EventScores)
	r.agree(nil, hook.ID)
	r.noGradeServices()
	if _, err := r.db.Exec(`INSERT INTO activities (id, title, created_at) VALUES ('quiz', 'Quiz', now())`); err != nil {
		b.Fatal(err)
	}
	return r, rcv
}

// learners adds n learners to the rig's tenant, as many employees whose
// results an employer's webhook receives.
func learners(b *testing.B, r *rig, n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	r.inTenant(func(tx *sqlx.Tx) error {
		for i := range ids {
			ids[i] = uuid.New()
			if _, err := tx.Exec(`INSERT INTO users (id, tenant_id, created_at, updated_at) VALUES ($1, $2, now(), now())`,
				ids[i], r.tenant); err != nil {
				return err
			}
		}
		return nil
	})
	return ids
}

// reportMany records n results of 500 learners from 8 goroutines.
func reportMany(b *testing.B, r *rig, n int) {
	var wg sync.WaitGroup
	next := make(chan int)
	who := learners(b, r, 500)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				r.report(float64(i%10), func(rep *results.Report) {
					rep.User, rep.ResourceLink, rep.Activity = who[i%len(who)].String(), "", "quiz"
				})
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// BenchmarkDeliveriesPerSecond: n results queued, then River's workers
// deliver them to a fast local receiver; deliveries/s is from the start
// of the workers to the last receipt.
func BenchmarkDeliveriesPerSecond(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		r, rcv := webhookRig(b)
		reportMany(b, r, n)
		b.StartTimer()
		start := time.Now()
		r.startRiver(jobs.DeliveryWorkers, jobs.HubPollInterval)
		for rcv.count() < n {
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "deliveries/s")
	}
}

// BenchmarkResultToReceipt: the app reports results at a steady rate
// for ten seconds while River delivers them to a fast local webhook; the
// time from each report's recording to its receipt, p50 and p99, and the
// rate the reports were recorded at.
func BenchmarkResultToReceipt(b *testing.B) {
	for _, rate := range []int{500, 250} {
		b.Run(fmt.Sprintf("%d/s", rate), func(b *testing.B) {
			for b.Loop() {
				resultToReceipt(b, rate, 10)
			}
		})
	}
}

func resultToReceipt(b *testing.B, rate, seconds int) {
	r, rcv := webhookRig(b)
	r.startRiver(jobs.DeliveryWorkers, jobs.HubPollInterval)
	who := learners(b, r, 500)
	reported := make(map[string]time.Time, rate*seconds)
	var mu sync.Mutex
	const perTick = 5
	tick := time.NewTicker(time.Second * perTick / time.Duration(rate))
	var wg sync.WaitGroup
	var refused atomic.Int64
	start := time.Now()
	for i := range rate * seconds / perTick {
		<-tick.C
		for j := range perTick {
			wg.Go(func() {
				res, err := r.reportFast(who[(i*perTick+j)%len(who)])
				if err != nil {
					refused.Add(1) // the API answers 503: the database is saturated
					return
				}
				mu.Lock()
				reported[res.ID.String()] = res.ReceivedAt
				mu.Unlock()
			})
		}
	}
	tick.Stop()
	wg.Wait()
	recorded := float64(len(reported)) / time.Since(start).Seconds()
	deadline := time.Now().Add(2 * time.Minute)
	for rcv.count() < len(reported) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var lat []time.Duration
	rcv.mu.Lock()
	for id, at := range rcv.at {
		lat = append(lat, at.Sub(reported[id]))
	}
	rcv.mu.Unlock()
	if len(lat) < len(reported) {
		b.Fatalf("%d of %d results received", len(lat), len(reported))
	}
	slices.Sort(lat)
	b.ReportMetric(recorded, "results/s")
	b.ReportMetric(float64(refused.Load()), "refused")
	b.ReportMetric(float64(lat[len(lat)/2])/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/float64(time.Millisecond), "p99-ms")
}

// reportFast records a result of learner's.
func (r *rig) reportFast(learner uuid.UUID) (results.Result, error) {
	given, max := 5.0, 10.0
	res, _, err := r.results.Record(context.Background(), r.app, results.Report{User: learner.String(), Activity: "quiz",
		ScoreGiven: &given, ScoreMaximum: &max, ActivityProgress: "Completed", GradingProgress: "FullyGraded",
		OccurredAt: time.Now()}, uuid.NewString())
	return res, err
}
