package httpheader

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps what RetryAfter returns, so a broken or hostile
// header cannot park a sync or a delivery for ever.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter reads a Retry-After header value: delay-seconds or an
// HTTP-date (RFC 9110 §10.2.3); 0 when absent or unreadable; never
// negative. A date in the past is 0; anything past MaxRetryAfter is
// MaxRetryAfter.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if isDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter // only overflow fails: all digits
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(t.Sub(now), 0), MaxRetryAfter)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
