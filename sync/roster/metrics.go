package roster

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/klasterina/hub/lti/nrps"
)

// Metrics counts roster syncs: runs by outcome, members synced by change,
// pages fetched, and how long the platforms take to answer.
type Metrics struct {
	runs        *prometheus.CounterVec
	members     *prometheus.CounterVec
	pages       prometheus.Counter
	latency     *prometheus.HistogramVec
	launchQueue prometheus.Counter
}

// NewMetrics registers the roster metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hub", Subsystem: "roster", Name: "sync_runs_total",
			Help: "Finished roster sync runs, by outcome (succeeded, or the failure code)."}, []string{"outcome"}),
		members: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hub", Subsystem: "roster", Name: "members_synced_total",
			Help: "Members listed by the platform and applied, by change (added, changed, unchanged, removed)."}, []string{"change"}),
		pages: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "hub", Subsystem: "roster", Name: "pages_fetched_total",
			Help: "Membership pages fetched and applied."}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "hub", Subsystem: "roster", Name: "platform_request_seconds",
			Help:    "Time the platform took to answer a membership page request, by result (ok, throttled, error).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"result"}),
		launchQueue: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "hub", Subsystem: "roster", Name: "launch_queue_full_total",
			Help: "Syncs after a first launch left to the schedule because the queue was full."}),
	}
	reg.MustRegister(m.runs, m.members, m.pages, m.latency, m.launchQueue)
	return m
}

func (m *Metrics) pagesApplied(p progress, pages int) {
	if m == nil {
		return
	}
	m.pages.Add(float64(pages))
	m.members.WithLabelValues("added").Add(float64(p.Added))
	m.members.WithLabelValues("changed").Add(float64(p.Changed))
	m.members.WithLabelValues("unchanged").Add(float64(p.Members - p.Added - p.Changed))
}

func (m *Metrics) removed(n int) {
	if m != nil {
		m.members.WithLabelValues("removed").Add(float64(n))
	}
}

func (m *Metrics) finished(status, code string) {
	if m == nil {
		return
	}
	if code == "" {
		code = status
	}
	m.runs.WithLabelValues(code).Inc()
}

func (m *Metrics) request(took time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	var se *nrps.StatusError
	switch {
	case errors.As(err, &se) && se.Throttled:
		result = "throttled"
	case err != nil:
		result = "error"
	}
	m.latency.WithLabelValues(result).Observe(took.Seconds())
}

func (m *Metrics) launchQueueFull() {
	if m != nil {
		m.launchQueue.Inc()
	}
}
