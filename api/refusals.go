package api

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/klasterina/hub/tenants/audit"
)

// RefusalAudit bounds how many refused bearer tokens (unknown, revoked,
// expired keys) are written to the audit log, so that a flood of bad tokens
// can neither grow the append-only log without end nor take the database
// pool from real requests. A refusal over any bound, or one that finds the
// writers busy or the write failing, is counted instead; the count is
// audited once a SummaryEvery as one auth.failures_unaudited entry in the
// operator's chain. Zero fields take the defaults in brackets.
type RefusalAudit struct {
	PerSource   int           // per source (IPv4 address, IPv6 /64), per replica, within Window [20]
	PerReplica  int           // all sources together, per replica, within Window [100]
	PerDatabase int           // per audit chain, all replicas together, within Window [600]
	PerHub      int           // every chain and replica together, within Window [1,200]
	Window      time.Duration // the sliding window the three bounds count over [1m]
	Sources     int           // sources a replica remembers, least recently seen forgotten first [10,000]
	Writers     int           // audit writes of refusals in flight per replica [2]
	Timeout     time.Duration // for one such write, or one summary [2s]

	SummaryEvery time.Duration    // how often Run audits what was not [1m]
	Tick         <-chan time.Time // replaces the SummaryEvery ticker, for tests
}

// defaultRefusalAudit is the bounds a hub runs with unless told otherwise.
var defaultRefusalAudit = RefusalAudit{PerSource: 20, PerReplica: 100, PerDatabase: 600, PerHub: 1200, Window: time.Minute,
	Sources: 10000, Writers: 2, Timeout: 2 * time.Second, SummaryEvery: time.Minute}

func (r RefusalAudit) withDefaults() RefusalAudit {
	d := defaultRefusalAudit
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pickDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&r.PerSource, d.PerSource)
	pick(&r.PerReplica, d.PerReplica)
	pick(&r.PerDatabase, d.PerDatabase)
	pick(&r.PerHub, d.PerHub)
	pick(&r.Sources, d.Sources)
	pick(&r.Writers, d.Writers)
	pickDur(&r.Window, d.Window)
	pickDur(&r.Timeout, d.Timeout)
	pickDur(&r.SummaryEvery, d.SummaryEvery)
	return r
}

// maxSummarySources caps the distinct sources a summary counts.
const maxSummarySources = 1000

// refusalAuditor writes refused tokens to the audit log within the bounds
// of its RefusalAudit, and counts the rest.
type refusalAuditor struct {
	cfg       RefusalAudit
	limits    *failureLimiter
	writers   chan struct{} // a semaphore of cfg.Writers
	audit     *audit.Log
	unaudited prometheus.Counter
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	dropped unaudited
}

// unaudited is the tally of refusals not written since the last summary.
type unaudited struct {
	count    int
	since    time.Time
	reasons  map[string]int
	sources  map[string]struct{}
	overflow bool // more distinct sources than maxSummarySources
}

func newRefusalAuditor(cfg RefusalAudit, log *audit.Log, unaudited prometheus.Counter, logger *slog.Logger) *refusalAuditor {
	cfg = cfg.withDefaults()
	now := time.Now()
	return &refusalAuditor{cfg: cfg, limits: newFailureLimiter(cfg.PerSource, cfg.PerReplica, cfg.Sources, cfg.Window, now),
		writers: make(chan struct{}, cfg.Writers), audit: log, unaudited: unaudited, log: logger, now: time.Now}
}

// record audits ev, a token refused for a client at address ip, in
// tenant's chain (nil: the operator's) when the bounds allow and a writer
// is free; otherwise it counts it. The write does not end with the request
// (a client hanging up must not erase its trace) but has cfg.Timeout to
// finish.
func (r *refusalAuditor) record(ctx context.Context, ip string, tenant *uuid.UUID, who audit.Actor, ev audit.Event) {
	source := sourceKey(ip)
	if over := r.limits.admit(source, r.now()); over != "" {
		r.drop(ctx, source, over)
		return
	}
	select {
	case r.writers <- struct{}{}:
		defer func() { <-r.writers }()
	default:
		r.drop(ctx, source, writersBusy)
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	defer cancel()
	wrote, err := r.audit.RecordBounded(wctx, tenant, who, ev, audit.Bound{Max: r.cfg.PerDatabase, HubMax: r.cfg.PerHub, Window: r.cfg.Window})
	switch {
	case err != nil:
		r.log.ErrorContext(ctx, "audit failed authentication", "err", err)
		r.drop(ctx, source, writeFailed)
	case !wrote:
		r.drop(ctx, source, overDatabase)
	}
}

// drop counts a refusal that was not audited.
func (r *refusalAuditor) drop(ctx context.Context, source, reason string) {
	r.unaudited.Inc()
	r.log.DebugContext(ctx, "refused token not audited", "bound", reason)
	r.mu.Lock()
	defer r.mu.Unlock()
	d := &r.dropped
	if d.count == 0 {
		d.since, d.reasons, d.sources, d.overflow = r.now(), map[string]int{}, map[string]struct{}{}, false
	}
	d.count++
	d.reasons[reason]++
	if _, seen := d.sources[source]; !seen {
		if len(d.sources) < maxSummarySources {
			d.sources[source] = struct{}{}
		} else {
			d.overflow = true
		}
	}
}

// take returns the tally and starts a new one.
func (r *refusalAuditor) take() unaudited {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dropped
	r.dropped = unaudited{}
	return d
}

// putBack returns an unwritten tally, merged with what came since.
func (r *refusalAuditor) putBack(d unaudited) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.dropped
	if now.count > 0 {
		d.count += now.count
		for k, v := range now.reasons {
			d.reasons[k] += v
		}
		for s := range now.sources {
			if len(d.sources) < maxSummarySources {
				d.sources[s] = struct{}{}
			} else {
				d.overflow = true
			}
		}
		d.overflow = d.overflow || now.overflow
	}
	r.dropped = d
}

func (d unaudited) details(until time.Time) map[string]string {
	m := map[string]string{
		"count":   strconv.Itoa(d.count),
		"since":   d.since.UTC().Format(time.RFC3339),
		"until":   until.UTC().Format(time.RFC3339),
		"sources": strconv.Itoa(len(d.sources)),
	}
	if d.overflow {
		m["sources_capped"] = "true" // at least this many
	}
	for reason, n := range d.reasons {
		m[reason] = strconv.Itoa(n)
	}
	return m
}

// summarise audits the refusals counted since the last summary as one
// auth.failures_unaudited entry in the operator's chain, if there were any.
// A tally that could not be written is kept for the next one.
func (r *refusalAuditor) summarise(ctx context.Context, until time.Time) error {
	d := r.take()
	if d.count == 0 {
		return nil
	}
	ev := audit.Event{Action: "auth.failures_unaudited", TargetType: "api_key", Details: d.details(until)}
	wctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := r.audit.Record(wctx, nil, audit.System("auth"), ev); err != nil {
		r.putBack(d)
		return fmt.Errorf("api: audit unaudited refusals: %w", err)
	}
	r.log.WarnContext(ctx, "refused tokens not audited one by one", "count", d.count, "sources", len(d.sources), "since", d.since)
	return nil
}

// run summarises every cfg.SummaryEvery (or on every cfg.Tick) until ctx
// ends, and once more then, so a replica that stops leaves no count
// unaudited.
func (r *refusalAuditor) run(ctx context.Context) error {
	tick := r.cfg.Tick
	if tick == nil {
		t := time.NewTicker(r.cfg.SummaryEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			if err := r.summarise(context.WithoutCancel(ctx), r.now()); err != nil {
				r.log.Error("last summary of unaudited refusals", "err", err)
			}
			return nil
		case at := <-tick:
			if err := r.summarise(ctx, at); err != nil {
				r.log.ErrorContext(ctx, "summary of unaudited refusals", "err", err)
			}
		}
	}
}

// Run does the server's background work until ctx ends: it audits, once a
// minute, the count of refused tokens that were not audited one by one,
// and River's UI keeps its counts of jobs fresh. Nothing of it outlasts
// ctx: the UI's refresh is cancelled with it, unwaited, as it only reads.
func (s *Server) Run(ctx context.Context) error {
	if s.jobsUI != nil {
		if err := s.jobsUI.Start(ctx); err != nil {
			return fmt.Errorf("river ui: start: %w", err)
		}
	}
	return s.refusals.run(ctx)
}
