package lti

import (
	"fmt"
	"testing"
	"time"
)

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":          "203.0.113.7",
		"::ffff:203.0.113.7":   "203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::9":      "2001:db8:1:2::/64",
		"2001:db8:1:3::9":      "2001:db8:1:3::/64",
		"fe80::1%eth0":         "fe80::/64",
		"not an address":       "not an address",
	} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSourceLimiter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := NewSourceLimiter(1, 3, 100)
	for i := range 3 {
		if ok, _ := l.Allow("203.0.113.7", now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("203.0.113.7", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("over the burst: %v, wait %v", ok, wait)
	}
	if ok, _ := l.Allow("203.0.113.8", now); !ok {
		t.Fatal("another source was limited")
	}
	if ok, _ := l.Allow("203.0.113.7", now.Add(time.Second)); !ok {
		t.Fatal("not refilled after a second")
	}
	// One IPv6 /64 is one source.
	for i := range 3 {
		l.Allow(fmt.Sprintf("2001:db8::%x", i+1), now)
	}
	if ok, _ := l.Allow("2001:db8::ff", now); ok {
		t.Fatal("a /64 got more than its burst by changing addresses")
	}
	if ok, _ := l.Allow("2001:db8:0:1::1", now); !ok {
		t.Fatal("the next /64 was limited")
	}
}

func TestSourceLimiterIsBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := NewSourceLimiter(1, 1, 50)
	l.Allow("198.51.100.1", now)
	for i := range 1000 {
		l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
		if len(l.sources) > 50 || l.recent.Len() != len(l.sources) {
			t.Fatalf("%d sources tracked, %d in order, at most 50", len(l.sources), l.recent.Len())
		}
	}
	// The source heard from least recently was forgotten: a fresh bucket.
	if ok, _ := l.Allow("198.51.100.1", now); !ok {
		t.Fatal("the oldest source was not forgotten")
	}
}
