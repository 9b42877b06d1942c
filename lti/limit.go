package lti

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the login lookup limit: a source (one client address, or one
// IPv6 /64) may make the hub read registrations from the database ten
// times a second, thirty at once. Logins whose registration is cached cost
// no lookup and are not counted, so a campus behind one address launching
// into its course is not held back.
const (
	DefaultLoginRate    = 10
	DefaultLoginBurst   = 30
	DefaultLoginSources = 10000
)

// SourceLimiter is a token bucket per source, for anonymous callers whose
// requests cost a database read. It tracks at most a fixed number of
// sources, forgetting the one heard from least recently.
type SourceLimiter struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	max     int
	recent  *list.List // of *source, most recently heard first
	sources map[string]*list.Element
}

type source struct {
	key     string
	limiter *rate.Limiter
}

// NewSourceLimiter allows each source perSecond requests, burst at once,
// and remembers at most maxSources sources.
func NewSourceLimiter(perSecond float64, burst, maxSources int) *SourceLimiter {
	return &SourceLimiter{every: rate.Limit(perSecond), burst: burst, max: max(maxSources, 1),
		recent: list.New(), sources: map[string]*list.Element{}}
}

// Allow reports whether addr may make one more request at now, and when
// not, how long until it may.
func (l *SourceLimiter) Allow(addr string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := sourceKey(addr)
	var lim *rate.Limiter
	if e, ok := l.sources[key]; ok {
		l.recent.MoveToFront(e)
		lim = e.Value.(*source).limiter
	} else {
		if l.recent.Len() >= l.max {
			oldest := l.recent.Back()
			l.recent.Remove(oldest)
			delete(l.sources, oldest.Value.(*source).key)
		}
		lim = rate.NewLimiter(l.every, l.burst)
		l.sources[key] = l.recent.PushFront(&source{key: key, limiter: lim})
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sourceKey groups addresses by who controls them: an IPv4 address alone,
// an IPv6 address by its /64, which one subscriber usually holds whole.
func sourceKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		if len(addr) > 64 {
			addr = addr[:64]
		}
		return addr
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
