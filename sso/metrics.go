package sso

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts sign-ins by how the user was found, and refusals by
// reason; a nil *Metrics counts nothing.
type Metrics struct {
	signIns *prometheus.CounterVec
	refused *prometheus.CounterVec
}

// NewMetrics registers the sign-in metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hub", Subsystem: "sso", Name: "sign_ins_total",
			Help: "Finished employer sign-ins, by how the user was found (identity, employee_id, email or jit).",
		}, []string{"matched_by"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hub", Subsystem: "sso", Name: "refusals_total",
			Help: "Refused employer sign-ins, by reason code.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.signIns, m.refused)
	return m
}

func (m *Metrics) signedIn(by string) {
	if m != nil {
		m.signIns.WithLabelValues(by).Inc()
	}
}

func (m *Metrics) refusal(r Reason) {
	if m != nil {
		m.refused.WithLabelValues(string(r)).Inc()
	}
}
