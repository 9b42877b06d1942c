package delivery_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/klasterina/hub/tenants/destinations"
)

// TestARedrivenDeadDeliveryIsSentAndKeepsItsHistory: a delivery that died
// against a failing receiver, redriven once the receiver recovers, is
// delivered by its new job's run, its attempts numbered on from the old.
func TestARedrivenDeadDeliveryIsSentAndKeepsItsHistory(t *testing.T) {
	r := newRig(t)
	var up atomic.Bool
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			http.Error(w, "down for maintenance", 500)
		}
	})
	hook := r.webhook(rcv.URL, destinations.EventScores)
	r.agree(nil, hook.ID)
	r.noGradeServices()
	r.report(5, nil)
	r.drain(10)
	expectStatuses(t, r, "webhook:dead:attempts_exhausted")

	up.Store(true)
	d, err := r.svc.Redrive(context.Background(), r.admin, r.tenant, r.deliveries()[0].ID)
	if err != nil || d.Status != "pending" || d.Attempts != 0 || d.Reason != nil {
		t.Fatalf("Redrive = %+v, %v", d, err)
	}
	r.drain(2)
	expectStatuses(t, r, "webhook:delivered")
	_, attempts, err := r.svc.Get(context.Background(), r.tenant, d.ID)
	if err != nil || len(attempts) != 5 {
		t.Fatalf("attempts %+v, %v; want the 4 failed and the one delivered", attempts, err)
	}
	for i, a := range attempts {
		want := "retry"
		if i == 4 {
			want = "delivered"
		}
		if a.N != i+1 || a.Outcome != want {
			t.Fatalf("attempt %d = %+v, want n %d %s", i, a, i+1, want)
		}
	}
}
