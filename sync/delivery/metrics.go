package delivery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts deliveries by destination kind (lms, webhook, xapi):
// queued, each end or attempt by outcome (delivered, dry_run, retried,
// throttled, failed, dead, withheld, superseded), and those an admin
// redrove; how long receivers take to answer; and how long a result takes
// from its report to its receipt.
type Metrics struct {
	events  *prometheus.CounterVec
	latency *prometheus.HistogramVec
	receipt *prometheus.HistogramVec
}

// NewMetrics registers the delivery metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600}
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hub", Subsystem: "delivery", Name: "events_total",
			Help: "Deliveries queued, and their attempts and ends, by destination kind and outcome " +
				"(queued, delivered, dry_run, retried, throttled, failed, dead, withheld, superseded, redriven)."}, []string{"kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "hub", Subsystem: "delivery", Name: "attempt_seconds",
			Help: "Time a receiver took to answer one attempt, by destination kind.", Buckets: buckets}, []string{"kind"}),
		receipt: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "hub", Subsystem: "delivery", Name: "result_to_receipt_seconds",
			Help:    "Time from the learning app's report of a result to its receipt by a destination, by destination kind.",
			Buckets: buckets}, []string{"kind"}),
	}
	reg.MustRegister(m.events, m.latency, m.receipt)
	return m
}

func (m *Metrics) count(kind, outcome string, n int) {
	if m != nil && n > 0 {
		m.events.WithLabelValues(kind, outcome).Add(float64(n))
	}
}

func (m *Metrics) attempted(kind string, latency time.Duration) {
	if m != nil && latency > 0 {
		m.latency.WithLabelValues(kind).Observe(latency.Seconds())
	}
}

func (m *Metrics) received(kind string, since time.Duration) {
	if m != nil {
		m.receipt.WithLabelValues(kind).Observe(since.Seconds())
	}
}
