package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/sync/singleflight"

	"github.com/klasterina/hub/internal/httpx"
)

// ErrUnknownKey means the keyset has no usable key with the token's kid,
// even after a refetch (or a refetch was refused by the rate limit).
var ErrUnknownKey = errors.New("keys: no such key in the keyset")

// Cache holds other parties' JWKS (LMS platforms, identity providers).
//
// A keyset is kept as long as its Cache-Control max-age says (within
// bounds). A token naming an unknown kid triggers a refetch, because that
// is how a platform's key rotation shows; concurrent refetches of one URL
// collapse into one, and a URL is refetched for an unknown kid at most once
// per MinRefetch, so tokens with random kids cannot make the hub hammer a
// platform.
//
// When refetching an expired keyset fails (the platform's keyset endpoint
// is down), the last good keys stay in use for StaleIfError past their
// expiry, and the keyset is tried again after RetryBackoff, doubling with
// each failure up to MaxRetryBackoff: an outage of the platform's keyset
// does not refuse every launch, nor does every launch call the platform.
type Cache struct {
	client     *http.Client
	Now        func() time.Time
	MinRefetch time.Duration
	MinAge     time.Duration
	MaxAge     time.Duration
	DefaultAge time.Duration
	// StaleIfError is how long past its expiry a keyset is still used while
	// refetching it fails.
	StaleIfError time.Duration
	// RetryBackoff is the wait before refetching a failing keyset again,
	// doubled with each failure up to MaxRetryBackoff.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Log, when set, hears of each failed refetch answered with the last
	// good keys (at most once per retry), so an operator sees a platform's
	// keyset outage before its StaleIfError runs out.
	Log *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	flight  singleflight.Group
}

type entry struct {
	set       jwk.Set
	fetchedAt time.Time
	expiresAt time.Time
	// failures counts refetches that failed since the last good one; none
	// is tried again before retryAt.
	failures int
	retryAt  time.Time
}

// stale reports whether e may still be used at now, its refetch failing.
func (c *Cache) stale(e *entry, now time.Time) bool {
	return e != nil && now.Before(e.expiresAt.Add(c.StaleIfError))
}

// NewCache returns a Cache fetching with client (use httpx.New).
func NewCache(client *http.Client) *Cache {
	return &Cache{client: client, Now: time.Now, MinRefetch: 10 * time.Second,
		MinAge: time.Minute, MaxAge: 24 * time.Hour, DefaultAge: time.Hour,
		StaleIfError: 24 * time.Hour, RetryBackoff: 10 * time.Second, MaxRetryBackoff: 5 * time.Minute, entries: map[string]*entry{}}
}

// RSAKey returns the RSA public key kid of the keyset at url, for RS256.
// Keys without an alg are taken as RS256 (as D2L publishes them); a key
// declared for another algorithm or for encryption is refused.
func (c *Cache) RSAKey(ctx context.Context, url, kid string) (jwk.Key, error) {
	e, err := c.entry(ctx, url)
	if err != nil {
		return nil, err
	}
	if k, ok := usable(e.set, kid); ok {
		return k, nil
	}
	if now := c.Now(); now.Sub(e.fetchedAt) < c.MinRefetch || now.Before(e.retryAt) {
		return nil, fmt.Errorf("%w: kid %q (refetch rate-limited)", ErrUnknownKey, kid)
	}
	if e, err = c.refetch(ctx, url); err != nil {
		return nil, err
	}
	if k, ok := usable(e.set, kid); ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

func usable(set jwk.Set, kid string) (jwk.Key, bool) {
	k, ok := set.LookupKeyID(kid)
	if !ok || k.KeyType() != "RSA" {
		return nil, false
	}
	if alg := k.Algorithm(); alg != nil && alg.String() != "" && alg.String() != jwa.RS256.String() {
		return nil, false
	}
	if use := k.KeyUsage(); use != "" && use != "sig" {
		return nil, false
	}
	return k, true
}

func (c *Cache) entry(ctx context.Context, url string) (*entry, error) {
	c.mu.Lock()
	e := c.entries[url]
	c.mu.Unlock()
	now := c.Now()
	switch {
	case e != nil && now.Before(e.expiresAt):
		return e, nil
	case c.stale(e, now) && now.Before(e.retryAt):
		return e, nil // failing: keep the last good keys until the next try
	}
	return c.refetch(ctx, url)
}

// refetch fetches url once however many callers ask at the same time. When
// the fetch fails and the last good keyset is recent enough, that keyset
// is returned and the failure only delays the next try.
func (c *Cache) refetch(ctx context.Context, url string) (*entry, error) {
	v, err, _ := c.flight.Do(url, func() (any, error) {
		e, err := c.fetch(ctx, url)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err == nil {
			c.entries[url] = e
			return e, nil
		}
		last, now := c.entries[url], c.Now()
		if !c.stale(last, now) {
			return nil, err
		}
		failed := *last
		failed.failures++
		failed.retryAt = now.Add(c.backoff(failed.failures))
		c.entries[url] = &failed
		if c.Log != nil {
			c.Log.WarnContext(ctx, "platform keyset unreachable: using the last good keys", "url", url,
				"failures", failed.failures, "stale_until", last.expiresAt.Add(c.StaleIfError), "retry_at", failed.retryAt, "err", err)
		}
		return &failed, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

func (c *Cache) fetch(ctx context.Context, url string) (*entry, error) {
	body, header, err := httpx.GetJSON(context.WithoutCancel(ctx), c.client, url)
	if err != nil {
		return nil, fmt.Errorf("keys: fetch keyset: %w", err)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("keys: parse keyset %s: %w", url, err)
	}
	now := c.Now()
	return &entry{set: set, fetchedAt: now, expiresAt: now.Add(c.age(header))}, nil
}

// backoff is the wait after the nth failure in a row: RetryBackoff,
// doubled each time, at most MaxRetryBackoff.
func (c *Cache) backoff(failures int) time.Duration {
	d := c.RetryBackoff
	for i := 1; i < failures && d < c.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, c.MaxRetryBackoff)
}

// age reads max-age from Cache-Control, clamped to [MinAge, MaxAge].
func (c *Cache) age(h http.Header) time.Duration {
	age := c.DefaultAge
	for _, directive := range strings.Split(h.Get("Cache-Control"), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		switch strings.ToLower(name) {
		case "max-age":
			if n, err := strconv.Atoi(value); err == nil {
				age = time.Duration(n) * time.Second
			}
		case "no-cache", "no-store":
			age = 0
		}
	}
	return min(max(age, c.MinAge), c.MaxAge)
}
