package servicetoken

import (
	"net/http"
	"testing"
	"time"
)

func TestRefreshAt(t *testing.T) {
	asked := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		want     time.Duration // after asked
	}{
		{"a tenth of a short lifetime", 100 * time.Second, 90 * time.Second},
		{"a minute of an hour", time.Hour, 59 * time.Minute},
		{"a minute of a day", 24 * time.Hour, 24*time.Hour - time.Minute},
		{"no expires_in: five minutes", 0, 4*time.Minute + 30*time.Second},
		{"a second", time.Second, 900 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := refreshAt(asked, tc.lifetime).Sub(asked); got != tc.want {
				t.Fatalf("refreshAt(%s) = asked + %s, want + %s", tc.lifetime, got, tc.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, header string
		want         time.Duration
	}{
		{"none", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"HTTP date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date passed", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"negative", "-5", 0},
		{"garbage", "soon", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.header, now); got != tc.want {
				t.Fatalf("retryAfter(%q) = %s, want %s", tc.header, got, tc.want)
			}
		})
	}
}

func TestScopeParam(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scopes []string
		want   string
	}{
		{"none", nil, ""},
		{"sorted", []string{"b", "a"}, "a b"},
		{"once each", []string{"b", "a", "b", "a"}, "a b"},
		{"no empty ones", []string{"", "a", " "}, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := scopeParam(tc.scopes); got != tc.want {
				t.Fatalf("scopeParam(%q) = %q, want %q", tc.scopes, got, tc.want)
			}
		})
	}
}
