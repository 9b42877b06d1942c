package roster

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/nrps"
)

// benchMembers is the roster of the benchmarks: 2,000 pages of 50 (the
// fake platform caps pages at 50, as Canvas does). ROSTER_BENCH_MEMBERS
// makes it smaller for a quick look.
func benchMembers() int {
	if n, err := strconv.Atoi(os.Getenv("ROSTER_BENCH_MEMBERS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// BenchmarkRosterFirstSync syncs a roster the hub has never seen, into a
// fresh tenant each time: every member becomes a user, an identity and a
// membership. It reports members per second, the platform's own time to
// serve the same pages and the sync's time as a multiple of it, and the
// process's peak resident memory during the sync (the in-process platform
// included).
func BenchmarkRosterFirstSync(b *testing.B) {
	r, n := benchRig(b)
	platform := r.platformOnly(b)
	var took time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i > 0 {
			r.addTenant()
			r.pointAt("big")
		}
		resetPeakRSS()
		b.StartTimer()
		start := time.Now()
		run := r.syncNow()
		took += time.Since(start)
		if run.Status != StatusSucceeded || run.Added != n {
			b.Fatalf("run %+v", run)
		}
	}
	report(b, n, took, platform)
}

// BenchmarkRosterUnchangedResync syncs, in full, a roster the hub already
// has: nothing to write but the marks that the members are still listed.
func BenchmarkRosterUnchangedResync(b *testing.B) {
	r, n := benchRig(b)
	r.syncNow()
	platform := r.platformOnly(b)
	var took time.Duration
	b.ResetTimer()
	for b.Loop() {
		resetPeakRSS()
		start := time.Now()
		run := r.syncNow()
		took += time.Since(start)
		if run.Status != StatusSucceeded || run.Members != n || run.Added+run.Changed+run.Removed != 0 {
			b.Fatalf("run %+v", run)
		}
	}
	report(b, n, took, platform)
}

func benchRig(b *testing.B) (*rig, int) {
	n := benchMembers()
	r := newRig(b, 0)
	r.p.OfferDifferences = false // every sync lists the whole roster
	r.p.SetRoster("big", n)
	r.pointAt("big")
	return r, n
}

// pointAt makes the rig's course's membership URL the platform's roster
// of contextID.
func (r *rig) pointAt(contextID string) {
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET nrps_url = $3 WHERE tenant_id = $1 AND id = $2`,
			r.tenant, r.course, r.p.Server.URL+"/nrps/"+contextID)
		return err
	})
}

// platformOnly is the time the platform takes to serve the course's
// pages to a client that only reads them, over the same HTTP client.
func (r *rig) platformOnly(b *testing.B) time.Duration {
	b.Helper()
	var url *string
	r.inTenant(func(tx *sqlx.Tx) error { return tx.Get(&url, `SELECT nrps_url FROM contexts WHERE id = $1`, r.course) })
	first, _ := nrps.PageURL(*url, nrps.Query{Limit: PageLimit})
	r.p.GrantToken("platform-only", lti.ScopeNRPS)
	best := time.Duration(0)
	for range 3 {
		start := time.Now()
		for next := first; next != ""; {
			page, err := r.s.nrps.Fetch(context.Background(), next, "platform-only")
			if err != nil {
				b.Fatal(err)
			}
			next = page.Next
		}
		if took := time.Since(start); best == 0 || took < best {
			best = took
		}
	}
	return best
}

func report(b *testing.B, n int, took, platform time.Duration) {
	per := took / time.Duration(b.N)
	b.ReportMetric(float64(n)/per.Seconds(), "members/s")
	b.ReportMetric(float64(platform.Milliseconds()), "platform-ms")
	b.ReportMetric(per.Seconds()/platform.Seconds(), "x-platform")
	if rss := peakRSS(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
}

// resetPeakRSS starts a new peak of the process's resident memory
// (Linux: clear_refs 5), so peakRSS measures one sync.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is the process's peak resident memory in bytes since the last
// resetPeakRSS (VmHWM), 0 where unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
