package api

import (
	dlist "container/list"
	"net/netip"
	"sync"
	"time"
)

// failureLimiter decides which refused bearer tokens this replica may write
// to the audit log: at most perSource from one source and at most
// perReplica from all sources together within any span of per. Counts are
// exact sliding windows (a burst of the whole allowance, then nothing until
// the first of it is per old), not token buckets, whose refill would let a
// second allowance through within the same minute.
//
// The table of sources is bounded: when full, the least recently seen
// source is forgotten, never the whole table, so a flood of new addresses
// cannot clear the count of one that is over its limit unless it has gone
// quiet for longer than capacity other sources have been seen.
type failureLimiter struct {
	mu        sync.Mutex
	epoch     time.Time // times are kept as offsets from it: 8 bytes each
	per       time.Duration
	perSource int
	capacity  int
	lru       *dlist.List // of *sourceWindow, most recently seen first
	sources   map[string]*dlist.Element
	replica   window
}

// sourceWindow is one source's remembered admissions.
type sourceWindow struct {
	key string
	w   window
}

// Reasons a refusal is not audited, as the summary entry counts them.
const (
	overSource   = "over_source"
	overReplica  = "over_replica"
	overDatabase = "over_database"
	writersBusy  = "busy"
	writeFailed  = "failed"
)

func newFailureLimiter(perSource, perReplica, capacity int, per time.Duration, epoch time.Time) *failureLimiter {
	return &failureLimiter{epoch: epoch, per: per, perSource: perSource, capacity: capacity,
		lru: dlist.New(), sources: make(map[string]*dlist.Element), replica: newWindow(perReplica)}
}

// admit records a refusal from source (a sourceKey) at now and returns ""
// when it may be audited, or the bound that refuses it. A refusal the
// source's bound refuses does not count against the replica's.
func (f *failureLimiter) admit(source string, now time.Time) string {
	at := now.Sub(f.epoch)
	f.mu.Lock()
	defer f.mu.Unlock()
	sw := f.source(source)
	if !sw.w.full(at, f.per) {
		if f.replica.full(at, f.per) {
			return overReplica
		}
		sw.w.add(at)
		f.replica.add(at)
		return ""
	}
	return overSource
}

// source returns source's window, remembered as the most recently seen,
// forgetting the least recently seen source when the table is full.
func (f *failureLimiter) source(key string) *sourceWindow {
	if e, ok := f.sources[key]; ok {
		f.lru.MoveToFront(e)
		return e.Value.(*sourceWindow)
	}
	if f.lru.Len() >= f.capacity {
		e := f.lru.Back()
		sw := e.Value.(*sourceWindow)
		delete(f.sources, sw.key)
		sw.key, sw.w = key, sw.w.reset()
		f.lru.MoveToFront(e)
		f.sources[key] = e
		return sw
	}
	sw := &sourceWindow{key: key, w: newWindow(f.perSource)}
	f.sources[key] = f.lru.PushFront(sw)
	return sw
}

// window remembers the times of the last len(times) admissions, oldest at
// next, so that at most len(times) fall within any span of per.
type window struct {
	times []time.Duration // a ring
	n     int             // slots used
	next  int
}

func newWindow(max int) window { return window{times: make([]time.Duration, max)} }

// full reports whether an admission at would make more than len(times)
// within per: the oldest remembered one is less than per before at.
func (w *window) full(at, per time.Duration) bool {
	return w.n == len(w.times) && at-w.times[w.next] < per
}

func (w *window) add(at time.Duration) {
	w.times[w.next] = at
	w.next = (w.next + 1) % len(w.times)
	w.n = min(w.n+1, len(w.times))
}

func (w window) reset() window {
	clear(w.times)
	return window{times: w.times}
}

// sourceKey names what a client address counts against: an IPv4 address
// (an IPv4-mapped IPv6 one included) on its own, an IPv6 address by its
// /64, since one host or subscriber is commonly given a whole /64 and could
// otherwise mint a new source with every request. Anything unparsable
// shares one key.
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "unparsable"
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
