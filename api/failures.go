package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failureLimiter bounds how many refused tokens one source address can
// write to the audit log: a flood of bad tokens is counted and logged, not
// allowed to grow the append-only log without limit.
type failureLimiter struct {
	mu      sync.Mutex
	sources map[string]*rate.Limiter
	every   rate.Limit
	burst   int
}

// maxSources bounds the limiter's memory; past it the table starts over,
// which at worst lets a few more failures be audited.
const maxSources = 10000

func newFailureLimiter(perMinute, burst int) *failureLimiter {
	return &failureLimiter{sources: map[string]*rate.Limiter{}, every: rate.Every(time.Minute / time.Duration(perMinute)), burst: burst}
}

// allow reports whether a failure from source may be audited now.
func (f *failureLimiter) allow(source string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.sources[source]
	if !ok {
		if len(f.sources) >= maxSources {
			f.sources = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(f.every, f.burst)
		f.sources[source] = l
	}
	return l.Allow()
}
