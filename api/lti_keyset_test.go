package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/klasterina/hub/lti/ltitest"
)

// TestLaunchesOutliveAKeysetOutage: the platform's keyset endpoint fails
// after the hub's cached copy expired; launches signed with the key the
// hub last saw still succeed.
func TestLaunchesOutliveAKeysetOutage(t *testing.T) {
	ph := newPlatformHub(t)
	ph.succeeded(ph.launch(ltitest.Launch{}))
	ph.p.BreakJWKS(http.StatusServiceUnavailable)
	later := time.Now().Add(time.Hour) // past the keyset's max-age
	ph.deps.Keysets.Now = func() time.Time { return later }
	before := ph.p.JWKSFetches()
	for range 3 {
		ph.succeeded(ph.launch(ltitest.Launch{}))
	}
	if n := ph.p.JWKSFetches() - before; n != 1 {
		t.Fatalf("%d keyset fetches for 3 launches during the outage, want 1", n)
	}
}
