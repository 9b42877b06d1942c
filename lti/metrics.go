package lti

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts launches and refusals by reason.
type Metrics struct {
	launches *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

// NewMetrics registers the LTI metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		launches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hub", Subsystem: "lti", Name: "launches_total",
			Help: "Valid LTI launches, by message type.",
		}, []string{"message_type"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hub", Subsystem: "lti", Name: "refusals_total",
			Help: "Refused LTI logins and launches, by stage and reason code.",
		}, []string{"stage", "reason"}),
	}
	reg.MustRegister(m.launches, m.refused)
	return m
}
