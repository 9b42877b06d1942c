package delivery_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/sync/delivery"
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
	r.svc.Policy.PerDestination = 32
	rcv := newArrivals(b)
	hook := r.webhook(rcv.URL, destinations.EventScores)
	r.agree(nil, hook.ID)
	r.noGradeServices()
	return r, rcv
}

// reportMany records n results from 8 goroutines, answering each one's
// report time by id.
func reportMany(b *testing.B, r *rig, n int) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				r.report(float64(i%10), nil)
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
	const n = 5000
	for b.Loop() {
		b.StopTimer()
		r, rcv := webhookRig(b)
		reportMany(b, r, n)
		b.StartTimer()
		start := time.Now()
		r.startRiver(32, 50*time.Millisecond)
		for rcv.count() < n {
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "deliveries/s")
	}
}

// BenchmarkResultToReceipt: the app reports 500 results a second for ten
// seconds while River delivers them; the time from each report's
// recording to its receipt, p50 and p99.
func BenchmarkResultToReceipt(b *testing.B) {
	const rate, seconds = 500, 10
	for b.Loop() {
		r, rcv := webhookRig(b)
		r.startRiver(32, 50*time.Millisecond)
		reported := make(map[string]time.Time, rate*seconds)
		var mu sync.Mutex
		tick := time.NewTicker(10 * time.Millisecond) // 5 results a tick
		var wg sync.WaitGroup
		for range rate * seconds / 5 {
			<-tick.C
			for range 5 {
				wg.Go(func() {
					res := r.reportFast()
					mu.Lock()
					reported[res.ID.String()] = res.ReceivedAt
					mu.Unlock()
				})
			}
		}
		tick.Stop()
		wg.Wait()
		for rcv.count() < len(reported) {
			time.Sleep(5 * time.Millisecond)
		}
		var lat []time.Duration
		rcv.mu.Lock()
		for id, at := range rcv.at {
			lat = append(lat, at.Sub(reported[id]))
		}
		rcv.mu.Unlock()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2])/float64(time.Millisecond), "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100])/float64(time.Millisecond), "p99-ms")
	}
}

// reportFast records a result without failing the benchmark's goroutine.
func (r *rig) reportFast() results.Result {
	given, max := 5.0, 10.0
	res, _, err := r.results.Record(context.Background(), r.app, results.Report{User: r.learner.String(), ResourceLink: linkID,
		ScoreGiven: &given, ScoreMaximum: &max, ActivityProgress: "Completed", GradingProgress: "FullyGraded",
		OccurredAt: time.Now()}, uuid.NewString())
	if err != nil {
		r.t.Error(err)
	}
	return res
}
