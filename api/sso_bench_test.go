package api_test

import (
	"testing"
	"time"
)

// BenchmarkSSOSignIn measures whole sign-ins of a returning employee, as a
// browser makes them: /sso/start by email, the provider's authorization
// (ssotest, on loopback), and the callback through the code exchange,
// the id_token's verification, the match, the session and the handoff
// page. The provider's work (its RS256 signature) is in the figure.
func BenchmarkSSOSignIn(b *testing.B) {
	s := newSSOHub(b, nil)
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if r := s.signIn("/sso/start?email=ana@acme.example"); r.status != 200 {
			b.Fatalf("%d %s", r.status, r.body)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sign-ins/s")
}
