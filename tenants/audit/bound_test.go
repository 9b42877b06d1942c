package audit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/tenants/audit"
)

func refusal() audit.Event {
	return audit.Event{Action: "auth.failed", TargetType: "api_key", Details: map[string]string{"reason": "unknown"}}
}

// TestRecordBoundedHoldsPerChain: a chain takes at most Max entries of the
// action within the window, counted per chain, other actions aside.
func TestRecordBoundedHoldsPerChain(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.log.Now = func() time.Time { return now }
	uni := f.tenant(t, "uni")
	bound := audit.Bound{Max: 3, Window: time.Minute}
	record := func(tenant *uuid.UUID) bool {
		t.Helper()
		wrote, err := f.log.RecordBounded(context.Background(), tenant, audit.Actor{Type: audit.ActorAnonymous, ID: "192.0.2.1"}, refusal(), bound)
		if err != nil {
			t.Fatal(err)
		}
		return wrote
	}
	for _, chain := range []struct {
		name   string
		tenant *uuid.UUID
	}{{"operator chain", nil}, {"tenant chain", uni}} {
		t.Run(chain.name, func(t *testing.T) {
			f.record(t, chain.tenant, "api_key.created") // another action does not count
			for i := range 3 {
				if !record(chain.tenant) {
					t.Fatalf("refusal %d of 3 not written", i+1)
				}
			}
			if record(chain.tenant) {
				t.Fatal("a fourth refusal within the minute was written")
			}
		})
	}
	now = now.Add(59 * time.Second)
	if record(nil) {
		t.Fatal("written before the window moved past the first three")
	}
	now = now.Add(time.Second)
	if !record(nil) {
		t.Fatal("not written once the window moved on")
	}
	if v := f.verify(t, nil); !v.Valid || v.Checked != 5 {
		t.Fatalf("operator chain = %+v, want 5 valid entries", v)
	}
}

// TestRecordBoundedAcrossReplicas: concurrent writers, each in its own
// session as replicas are, write no more than the bound between them.
func TestRecordBoundedAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	second := audit.NewLog(f.db, testKeys, quiet)
	bound := audit.Bound{Max: 7, Window: time.Minute}
	var wrote atomic.Int64
	var wg sync.WaitGroup
	for _, l := range []*audit.Log{f.log, second, f.log, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				ok, err := l.RecordBounded(context.Background(), nil, audit.Actor{Type: audit.ActorAnonymous, ID: "192.0.2.1"}, refusal(), bound)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					wrote.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	var n int
	if err := f.super.Get(&n, `SELECT count(*) FROM audit_log WHERE tenant_id IS NULL AND action = 'auth.failed'`); err != nil {
		t.Fatal(err)
	}
	if n != 7 || wrote.Load() != 7 {
		t.Fatalf("%d rows, %d reported written, want 7", n, wrote.Load())
	}
	if v := f.verify(t, nil); !v.Valid {
		t.Fatalf("chain broken: %+v", v)
	}
}

// TestRecordBoundedAcrossChains: refusals that name several tenants' keys
// land in several chains; HubMax bounds them all together.
func TestRecordBoundedAcrossChains(t *testing.T) {
	f := newFixture(t)
	chains := []*uuid.UUID{nil, f.tenant(t, "a"), f.tenant(t, "b"), f.tenant(t, "c")}
	bound := audit.Bound{Max: 5, HubMax: 7, Window: time.Minute}
	var wrote atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			ok, err := f.log.RecordBounded(context.Background(), chains[i%len(chains)],
				audit.Actor{Type: audit.ActorAnonymous, ID: "192.0.2.1"}, refusal(), bound)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wrote.Add(1)
			}
		})
	}
	wg.Wait()
	var rows int
	f.super.Get(&rows, `SELECT count(*) FROM audit_log WHERE action = 'auth.failed'`)
	if wrote.Load() != 7 || rows != 7 {
		t.Fatalf("%d reported written, %d rows; want 7 across the four chains", wrote.Load(), rows)
	}
	for _, c := range chains {
		if v := f.verify(t, c); !v.Valid {
			t.Fatalf("chain %v: %+v", c, v)
		}
	}
}

// TestFutureStampedRowsHoldNoBoundShut: refusal rows stamped in the future
// (forged, or from a replica whose clock runs ahead) do not count.
func TestFutureStampedRowsHoldNoBoundShut(t *testing.T) {
	f := newFixture(t)
	bound := audit.Bound{Max: 2, HubMax: 2, Window: time.Minute}
	for range 2 {
		ok, err := f.log.RecordBounded(context.Background(), nil, audit.Actor{Type: audit.ActorAnonymous, ID: "x"}, refusal(), bound)
		if err != nil || !ok {
			t.Fatalf("%v %v", ok, err)
		}
	}
	f.super.MustExec(`UPDATE audit_log SET at = now() + interval '1 day'`)
	ok, err := f.log.RecordBounded(context.Background(), nil, audit.Actor{Type: audit.ActorAnonymous, ID: "x"}, refusal(), bound)
	if err != nil || !ok {
		t.Fatalf("a refusal after two future-stamped ones: written %v, %v", ok, err)
	}
}
