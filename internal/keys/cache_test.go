package keys_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/lti/ltitest"
)

// TestCacheKeepsLastGoodKeysThroughAnOutage: a platform whose keyset
// endpoint starts failing after the cached keyset expired keeps being
// verified with the last good keys for StaleIfError, refetching with
// backoff rather than on every launch; once mended it is read again, and
// past StaleIfError the outage shows.
func TestCacheKeepsLastGoodKeysThroughAnOutage(t *testing.T) {
	p := ltitest.New()
	defer p.Close()
	p.JWKSCacheControl = "max-age=300"
	c := keys.NewCache(httpx.New(true))
	var logged bytes.Buffer
	c.Log = slog.New(slog.NewJSONHandler(&logged, nil))
	now := time.Now()
	c.Now = func() time.Time { return now }
	kid := p.KeyID()
	if _, err := c.RSAKey(ctx, p.JWKSURL(), kid); err != nil {
		t.Fatal(err)
	}

	p.BreakJWKS(http.StatusBadGateway)
	now = now.Add(301 * time.Second) // the cached keyset has expired
	before := p.JWKSFetches()
	for range 50 {
		if _, err := c.RSAKey(ctx, p.JWKSURL(), kid); err != nil {
			t.Fatalf("during the outage: %v", err)
		}
	}
	if n := p.JWKSFetches() - before; n != 1 {
		t.Fatalf("%d fetches of a failing keyset for 50 launches at once, want 1", n)
	}
	if n := strings.Count(logged.String(), "using the last good keys"); n != 1 {
		t.Fatalf("the outage was logged %d times, want once per failed refetch:\n%s", n, logged.String())
	}

	t.Run("refetches back off", func(t *testing.T) {
		var attempts []time.Duration
		start, last := now, p.JWKSFetches()
		for now.Sub(start) < time.Hour {
			now = now.Add(time.Second)
			if _, err := c.RSAKey(ctx, p.JWKSURL(), kid); err != nil {
				t.Fatalf("%v into the outage: %v", now.Sub(start), err)
			}
			if n := p.JWKSFetches(); n != last {
				attempts, last = append(attempts, now.Sub(start)), n
			}
		}
		if len(attempts) < 5 || len(attempts) > 60 {
			t.Fatalf("%d refetches in an hour of outage (at %v), want backoff", len(attempts), attempts)
		}
		for i := 2; i < len(attempts); i++ {
			if gap, prev := attempts[i]-attempts[i-1], attempts[i-1]-attempts[i-2]; gap < prev {
				t.Fatalf("refetch gaps shrink: %v", attempts)
			}
		}
	})

	t.Run("an unknown kid does not hammer the failing platform", func(t *testing.T) {
		before := p.JWKSFetches()
		for range 20 {
			now = now.Add(time.Second)
			if _, err := c.RSAKey(ctx, p.JWKSURL(), "not-a-key"); err == nil {
				t.Fatal("unknown kid accepted")
			}
		}
		if n := p.JWKSFetches() - before; n > 1 {
			t.Fatalf("%d fetches for unknown kids during the outage", n)
		}
	})

	t.Run("mended: read again", func(t *testing.T) {
		p.BreakJWKS(0)
		p.RotateKey()
		now = now.Add(c.MaxRetryBackoff + time.Second)
		if _, err := c.RSAKey(ctx, p.JWKSURL(), p.KeyID()); err != nil {
			t.Fatalf("after the outage, a rotated-in key: %v", err)
		}
	})

	t.Run("past StaleIfError the outage shows", func(t *testing.T) {
		p.BreakJWKS(http.StatusServiceUnavailable)
		now = now.Add(301*time.Second + c.StaleIfError)
		_, err := c.RSAKey(ctx, p.JWKSURL(), kid)
		if err == nil || errors.Is(err, keys.ErrUnknownKey) {
			t.Fatalf("a day-old keyset of a failing platform: %v, want the fetch error", err)
		}
	})
}

// TestCacheWithoutKeysFailsAtOnce: a keyset never fetched has nothing to
// fall back on.
func TestCacheWithoutKeysFailsAtOnce(t *testing.T) {
	p := ltitest.New()
	defer p.Close()
	p.BreakJWKS(http.StatusInternalServerError)
	if _, err := keys.NewCache(httpx.New(true)).RSAKey(ctx, p.JWKSURL(), p.KeyID()); err == nil {
		t.Fatal("a key from a keyset that never answered")
	}
}
