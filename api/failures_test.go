package api

import (
	"fmt"
	"testing"
	"time"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct{ name, ip, want string }{
		{"ipv4 on its own", "203.0.113.7", "203.0.113.7"},
		{"ipv4-mapped ipv6 as ipv4", "::ffff:203.0.113.7", "203.0.113.7"},
		{"ipv6 by its /64", "2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"zone dropped", "fe80::1%eth0", "fe80::/64"},
		{"unparsable shares one key", "not an address", "unparsable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sourceKey(tc.ip); got != tc.want {
				t.Fatalf("sourceKey(%q) = %q, want %q", tc.ip, got, tc.want)
			}
		})
	}
}

// admitted counts how many of n refusals from ip at now are admitted.
func admitted(f *failureLimiter, ip string, now time.Time, n int) int {
	ok := 0
	for range n {
		if f.admit(sourceKey(ip), now) == "" {
			ok++
		}
	}
	return ok
}

// TestSourceBoundIsAMinuteWindow: a burst of the whole allowance, then
// nothing until the first of it is a minute old; never more than the
// allowance within any minute.
func TestSourceBoundIsAMinuteWindow(t *testing.T) {
	f := newFailureLimiter(20, 1000, 100, time.Minute, epoch)
	if n := admitted(f, "203.0.113.7", epoch, 100); n != 20 {
		t.Fatalf("burst of 100: %d admitted, want 20", n)
	}
	total := 20
	for s := 1; s < 60; s++ {
		total += admitted(f, "203.0.113.7", epoch.Add(time.Duration(s)*time.Second), 5)
	}
	if total != 20 {
		t.Fatalf("%d admitted within the first minute, want 20", total)
	}
	if n := admitted(f, "203.0.113.7", epoch.Add(time.Minute), 100); n != 20 {
		t.Fatalf("a minute on: %d admitted, want 20", n)
	}
}

func TestIPv6SourcesGroupedBySlash64(t *testing.T) {
	f := newFailureLimiter(3, 1000, 100, time.Minute, epoch)
	for _, tc := range []struct {
		name       string
		ip         string
		sent, want int
	}{
		{"first address of a /64", "2001:db8:1:2::1", 2, 2},
		{"another address in the same /64 shares its bucket", "2001:db8:1:2:ffff:ffff:ffff:fffe", 5, 1},
		{"the same /64 is then full", "2001:db8:1:2::99", 5, 0},
		{"a different /64 has its own", "2001:db8:1:3::1", 5, 3},
		{"ipv4-mapped counts as the ipv4 address", "::ffff:192.0.2.1", 2, 2},
		{"which then has one left", "192.0.2.1", 5, 1},
	} {
		if n := admitted(f, tc.ip, epoch, tc.sent); n != tc.want {
			t.Fatalf("%s: %d of %d admitted, want %d", tc.name, n, tc.sent, tc.want)
		}
	}
}

func TestReplicaBoundAcrossSources(t *testing.T) {
	f := newFailureLimiter(20, 100, 10000, time.Minute, epoch)
	total := 0
	for i := range 500 {
		total += admitted(f, fmt.Sprintf("198.51.%d.%d", i/256, i%256), epoch, 1)
	}
	if total != 100 {
		t.Fatalf("500 sources: %d admitted, want the replica's 100", total)
	}
	if got := f.admit(sourceKey("192.0.2.1"), epoch.Add(59*time.Second)); got != overReplica {
		t.Fatalf("a fresh source within the minute: %q, want %s", got, overReplica)
	}
	if n := admitted(f, "192.0.2.1", epoch.Add(time.Minute), 1); n != 1 {
		t.Fatal("a fresh source a minute on is still refused")
	}
}

// TestSourceTableNeverStartsOver: filling the table past capacity forgets
// the least recently seen source only; a source over its limit that keeps
// sending stays limited.
func TestSourceTableNeverStartsOver(t *testing.T) {
	const capacity = 50
	f := newFailureLimiter(5, 1_000_000, capacity, time.Minute, epoch)
	attacker, quiet := "203.0.113.7", "203.0.113.8"
	admitted(f, quiet, epoch, 5)
	if n := admitted(f, attacker, epoch, 10); n != 5 {
		t.Fatalf("%d admitted, want 5", n)
	}
	for i := range 10 * capacity {
		admitted(f, fmt.Sprintf("198.51.%d.%d", i/256, i%256), epoch, 1)
		if n := admitted(f, attacker, epoch, 1); n != 0 {
			t.Fatalf("after %d other sources the attacker was admitted again", i+1)
		}
	}
	if len(f.sources) != capacity || f.lru.Len() != capacity {
		t.Fatalf("table holds %d sources (list %d), want its capacity %d", len(f.sources), f.lru.Len(), capacity)
	}
	if _, ok := f.sources[quiet]; ok {
		t.Fatal("the least recently seen source was not the one forgotten")
	}
	if n := admitted(f, quiet, epoch, 10); n != 5 {
		t.Fatalf("a forgotten source starts afresh: %d admitted, want 5", n)
	}
}
