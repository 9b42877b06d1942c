package servicetoken

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// maxBody is how much of a refusal's body an Error keeps.
const maxBody = 512

// Error is the token endpoint's refusal, with the platform's answer
// (RFC 6749 §5.2). A platform that cannot be reached is not an Error: its
// transport error comes back wrapped.
type Error struct {
	Status      int    // the HTTP status
	Code        string // the OAuth error code: invalid_client, invalid_scope, …; "" if none
	Description string // error_description
	Body        string // the first 512 bytes of the answer
	// RetryAfter is the wait the platform asked for (Retry-After), 0 if
	// it asked none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lti token endpoint: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	return b.String()
}

// Temporary reports whether asking again later may succeed: the platform
// is overloaded (429) or failing (5xx). Any other refusal (a client the
// platform does not know, a key it cannot verify, a scope not granted)
// stays until the registration or the platform's set-up changes.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}
