package lti

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts launches and refusals: by tenant and outcome for the
// launches whose registration was found, by stage and reason for every
// refusal, and the launch log's refusal rows that were not written.
type Metrics struct {
	launches   *prometheus.CounterVec
	refused    *prometheus.CounterVec
	logDropped *prometheus.CounterVec
}

// NewMetrics registers the LTI metrics with reg. Tenants are labelled by
// slug: there are as many series as tenants, not as launches.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		launches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hub", Subsystem: "lti", Name: "launches_total",
			Help: "LTI launches whose registration was found, by tenant slug and outcome (launched or refused).",
		}, []string{"tenant", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hub", Subsystem: "lti", Name: "refusals_total",
			Help: "Refused LTI logins and launches, by stage and reason code.",
		}, []string{"stage", "reason"}),
		logDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hub", Subsystem: "lti", Name: "launch_log_dropped_total",
			Help: "Refusals not written to the tenant's launch log, by tenant slug and cause (over_limit, unavailable, failed).",
		}, []string{"tenant", "cause"}),
	}
	reg.MustRegister(m.launches, m.refused, m.logDropped)
	return m
}

// CountRefusal counts a refused login, launch, picker or registration by
// its stage and reason.
func (m *Metrics) CountRefusal(stage string, r Reason) {
	m.refused.WithLabelValues(stage, string(r)).Inc()
}
