package api

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
)

// TestBodyCutOffIsNotInvalid: a body that stopped arriving (the server's
// read deadline, a cancelled request) is a 408, never a 400 saying a valid
// body was malformed.
func TestBodyCutOffIsNotInvalid(t *testing.T) {
	for name, err := range map[string]error{
		"read deadline":     fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded),
		"context deadline":  context.DeadlineExceeded,
		"request cancelled": context.Canceled,
	} {
		t.Run(name, func(t *testing.T) {
			p, internal := problemFor(decodeError(err))
			if internal || p.Status != http.StatusRequestTimeout {
				t.Fatalf("problem %+v (internal %v), want 408", p, internal)
			}
		})
	}
}
