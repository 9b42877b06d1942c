package ltitest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

// BenchmarkServeMemberships is the platform alone serving a course of
// 100,000 in 2,000 pages of 50 over loopback to a plain client that reads
// and discards each page: the baseline a roster sync's own cost is
// measured against.
func BenchmarkServeMemberships(b *testing.B) {
	const members, limit = 100_000, 50
	p := ltitest.New()
	defer p.Close()
	p.SetRoster("big", members)
	p.GrantToken("bench", lti.ScopeNRPS)
	client := &http.Client{}
	var pages int
	for b.Loop() {
		url := p.Server.URL + "/nrps/big?limit=50"
		for url != "" {
			url = servePage(b, client, url)
			pages++
		}
	}
	if pages != b.N*members/limit {
		b.Fatalf("%d pages, want %d", pages, b.N*members/limit)
	}
	b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "members/s")
}

// servePage GETs one page, discards it, and returns its next link.
func servePage(b *testing.B, client *http.Client, url string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer bench")
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %d", url, resp.StatusCode)
	}
	for _, link := range resp.Header.Values("Link") {
		if target, ok := strings.CutSuffix(link, `>; rel="next"`); ok {
			return strings.TrimPrefix(target, "<")
		}
	}
	return ""
}
