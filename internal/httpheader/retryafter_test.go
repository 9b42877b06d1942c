package httpheader

import (
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, v string
		want    time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"spaces", " 5 ", 5 * time.Second},
		{"negative", "-5", 0},
		{"fraction", "1.5", 0},
		{"garbage", "soon", 0},
		{"huge", "99999999999999999999999", MaxRetryAfter},
		{"over a day", "90000", MaxRetryAfter},
		{"IMF date ahead", "Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second},
		{"IMF date past", "Sat, 01 Mar 2025 11:59:00 GMT", 0},
		{"RFC 850 date", "Saturday, 01-Mar-25 12:01:00 GMT", time.Minute},
		{"asctime date", "Sat Mar  1 12:00:10 2025", 10 * time.Second},
		{"date far ahead", "Sun, 01 Mar 2026 12:00:00 GMT", MaxRetryAfter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetryAfter(tc.v, now); got != tc.want {
				t.Errorf("RetryAfter(%q) = %s, want %s", tc.v, got, tc.want)
			}
		})
	}
}
