package api_test

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkAuthenticatedRead measures the hub's cost of the commonest admin
// call, a tenant API key reading its tenant: real HTTP on loopback, key
// lookup and tenant read in PostgreSQL.
//
//	go test ./api -run '^$' -bench AuthenticatedRead -benchtime 5s
func BenchmarkAuthenticatedRead(b *testing.B) {
	h := newHub(b)
	h.createTenant("uni", "institution")
	_, key := h.createKey("uni", "read")
	tr := h.client.Transport.(*http.Transport).Clone() // trusts the test certificate
	tr.MaxIdleConnsPerHost = 64
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", h.url+"/api/v1/tenants/uni", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		for pb.Next() {
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			drain(res)
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
