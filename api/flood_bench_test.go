package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReadWhileAnotherTenantFloods measures tenant B's reads, one at a
// time, while tenant A's 16 clients each send the largest body the API
// accepts (a new registration with 100 deployments) every 20 ms — 800
// requests a second offered, more than the hub serves of them — and, for
// comparison, with nobody else busy. The flood is paced because its clients
// share this machine's two cores with the hub: unpaced, they would measure
// the load generator's CPU, not the hub's fairness. It stops when the
// benchmark does. Reported: B's p50 and p99 latency in µs, and how many of
// A's requests were answered (most of them 429 once A is over its
// allowance).
func BenchmarkReadWhileAnotherTenantFloods(b *testing.B) {
	for _, flood := range []bool{false, true} {
		name := "quiet"
		if flood {
			name = "flood"
		}
		b.Run(name, func(b *testing.B) { benchReadUnderFlood(b, flood) })
	}
}

func benchReadUnderFlood(b *testing.B, flood bool) {
	h := newHub(b)
	h.createTenant("tenant-a", "institution")
	h.createTenant("tenant-b", "institution")
	_, keyA := h.createKey("tenant-a", "write")
	_, keyB := h.createKey("tenant-b", "read")
	tr := h.client.Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	client := &http.Client{Transport: tr}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	if flood {
		deployments := make([]string, 100)
		for i := range deployments {
			deployments[i] = fmt.Sprintf("%0200d", i) // 200 characters each
		}
		for w := range 16 {
			wg.Go(func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					body := fmt.Sprintf(`{"issuer":"https://lms.a.example","client_id":"c-%d-%d","auth_login_url":"https://lms.a.example/auth",`+
						`"auth_token_url":"https://lms.a.example/token","jwks_url":"https://lms.a.example/jwks","deployment_ids":["%s"]}`,
						w, i, strings.Join(deployments, `","`))
					req, _ := http.NewRequest("POST", h.url+"/api/v1/tenants/tenant-a/lti/registrations", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+keyA)
					req.Header.Set("Content-Type", "application/json")
					if res, err := client.Do(req); err == nil {
						drain(res)
						sent.Add(1)
					}
				}
			})
		}
		time.Sleep(200 * time.Millisecond) // the flood is under way
	}

	latencies := make([]time.Duration, 0, b.N)
	req, _ := http.NewRequest("GET", h.url+"/api/v1/tenants/tenant-b/lti/registrations", nil)
	req.Header.Set("Authorization", "Bearer "+keyB)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		drain(res)
		if res.StatusCode != 200 {
			b.Fatalf("B's read: %d", res.StatusCode)
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	if flood {
		b.ReportMetric(float64(sent.Load()), "flood-requests")
	}
}
