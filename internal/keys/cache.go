package keys

import (
	"context"
	"errors"
	"fmt"
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
type Cache struct {
	client     *http.Client
	Now        func() time.Time
	MinRefetch time.Duration
	MinAge     time.Duration
	MaxAge     time.Duration
	DefaultAge time.Duration

	mu      sync.Mutex
	entries map[string]*entry
	flight  singleflight.Group
}

type entry struct {
	set       jwk.Set
	fetchedAt time.Time
	expiresAt time.Time
}

// NewCache returns a Cache fetching with client (use httpx.New).
func NewCache(client *http.Client) *Cache {
	return &Cache{client: client, Now: time.Now, MinRefetch: 10 * time.Second,
		MinAge: time.Minute, MaxAge: 24 * time.Hour, DefaultAge: time.Hour, entries: map[string]*entry{}}
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
	if c.Now().Sub(e.fetchedAt) < c.MinRefetch {
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
	e, ok := c.entries[url]
	c.mu.Unlock()
	if ok && c.Now().Before(e.expiresAt) {
		return e, nil
	}
	return c.refetch(ctx, url)
}

// refetch fetches url once however many callers ask at the same time.
func (c *Cache) refetch(ctx context.Context, url string) (*entry, error) {
	v, err, _ := c.flight.Do(url, func() (any, error) {
		body, header, err := httpx.GetJSON(context.WithoutCancel(ctx), c.client, url)
		if err != nil {
			return nil, fmt.Errorf("keys: fetch keyset: %w", err)
		}
		set, err := jwk.Parse(body)
		if err != nil {
			return nil, fmt.Errorf("keys: parse keyset %s: %w", url, err)
		}
		now := c.Now()
		e := &entry{set: set, fetchedAt: now, expiresAt: now.Add(c.age(header))}
		c.mu.Lock()
		c.entries[url] = e
		c.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
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
