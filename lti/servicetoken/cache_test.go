package servicetoken

import (
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
