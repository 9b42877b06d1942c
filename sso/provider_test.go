package sso

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// discoveryServer serves a provider's metadata, counting the reads, held
// until release is closed, failing (503) while down is set.
type discoveryServer struct {
	*httptest.Server
	reads   atomic.Int64
	down    atomic.Bool
	release chan struct{}
}

func newDiscoveryServer(t *testing.T) *discoveryServer {
	d := &discoveryServer{release: make(chan struct{})}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		d.reads.Add(1)
		<-d.release
		if d.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": d.URL, "authorization_endpoint": d.URL + "/authorize",
			"token_endpoint": d.URL + "/token", "jwks_uri": d.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	t.Cleanup(d.Close)
	return d
}

// TestDiscoveryIsReadOnceAtATime: sign-ins arriving together for a
// connection whose metadata is not cached wait for one read of it, not
// one each (a slow provider would otherwise be asked once per browser).
func TestDiscoveryIsReadOnceAtATime(t *testing.T) {
	d := newDiscoveryServer(t)
	ps := providers{client: d.Client(), ttl: time.Hour, now: time.Now}
	c := Connection{ID: uuid.New(), Issuer: d.URL}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := ps.get(c)
			errs <- err
		})
	}
	for d.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the others arrive meanwhile
	close(d.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := d.reads.Load(); n != 1 {
		t.Fatalf("20 sign-ins read the metadata %d times", n)
	}
}

// TestFailedDiscoveryIsNotRetriedAtOnce: a provider whose discovery fails
// is not asked again by every request for DiscoveryRetry; metadata it gave
// earlier stays in use meanwhile, and is read again once that passes.
func TestFailedDiscoveryIsNotRetriedAtOnce(t *testing.T) {
	d := newDiscoveryServer(t)
	close(d.release)
	now := time.Now()
	ps := providers{client: d.Client(), ttl: time.Hour, now: func() time.Time { return now }}
	c := Connection{ID: uuid.New(), Issuer: d.URL}

	d.down.Store(true)
	for range 5 {
		if _, err := ps.get(c); err == nil {
			t.Fatal("a provider whose discovery fails was used")
		}
	}
	if n := d.reads.Load(); n != 1 {
		t.Fatalf("a failing discovery was read %d times in a row", n)
	}
	d.down.Store(false)
	now = now.Add(DiscoveryRetry + time.Second)
	if _, err := ps.get(c); err != nil {
		t.Fatalf("after the retry delay: %v", err)
	}

	// Cached, expired, and the provider down: the last metadata is used,
	// and the provider asked again only after DiscoveryRetry.
	d.down.Store(true)
	now = now.Add(time.Hour + time.Second)
	reads := d.reads.Load()
	for range 5 {
		if _, err := ps.get(c); err != nil {
			t.Fatalf("the last metadata was not kept through the outage: %v", err)
		}
	}
	if n := d.reads.Load() - reads; n != 1 {
		t.Fatalf("an expired provider down was read %d times in a row", n)
	}
}
