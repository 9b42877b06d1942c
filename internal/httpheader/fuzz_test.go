package httpheader

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzLinks feeds arbitrary Link headers to the parser: it never panics
// or loops, and every link it keeps is an absolute http(s) URL.
func FuzzLinks(f *testing.F) {
	f.Add(`<https://lms.example.edu/n?page=2>; rel="next"`)
	base, _ := url.Parse("https://lms.example.edu/nrps/1?limit=10")
	f.Fuzz(func(t *testing.T, header string) {
		for rel, link := range Links(strings.Split(header, "\n"), base) {
			u, err := url.Parse(link)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("rel %q kept %q", rel, link)
			}
		}
	})
}

// FuzzRetryAfter feeds arbitrary Retry-After values to the reader: the
// wait is never negative nor past MaxRetryAfter.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Sat, 01 Mar 2025 12:00:30 GMT", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := RetryAfter(v, now); d < 0 || d > MaxRetryAfter {
			t.Fatalf("RetryAfter(%q) = %s", v, d)
		}
	})
}
