package servicetoken

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/klasterina/hub/internal/keys"
)

// Signer signs a JWT payload with the hub's key of purpose, naming its kid
// in the header; *keys.Store is one.
type Signer interface {
	Sign(ctx context.Context, p keys.Purpose, payload []byte) ([]byte, error)
}

// Platform is the registration a token is asked of.
type Platform struct {
	RegistrationID uuid.UUID
	ClientID       string // iss and sub of the assertion
	TokenURL       string // where the token is asked for
	Audience       string // the registration's token audience; "" means TokenURL
}

// audience is the assertion's aud.
func (p Platform) audience() string {
	if p.Audience != "" {
		return p.Audience
	}
	return p.TokenURL
}

const (
	// DefaultLifetime is how long a token is taken to live when the
	// platform's answer gives no expires_in.
	DefaultLifetime = 5 * time.Minute
	// MaxMargin caps how long before its expiry a token is replaced.
	MaxMargin = time.Minute
	// AssertionLifetime is how long a client assertion is good for.
	AssertionLifetime = 5 * time.Minute

	defaultFetchTimeout = 30 * time.Second
)

// Source gives out access tokens, fetching each once and keeping it until
// shortly before it expires.
type Source struct {
	// Now is the clock of assertions and of the cache.
	Now func() time.Time
	// FetchTimeout bounds one request to a token endpoint. The request is
	// shared by every caller waiting for the token, so it runs on its own
	// deadline rather than on the first caller's.
	FetchTimeout time.Duration

	signer Signer
	client *http.Client
	flight singleflight.Group

	mu     sync.Mutex
	tokens map[cacheKey]cached
}

// cacheKey names a token: the registration as it was asked (an edited
// client_id or token URL asks again) and its scope set, sorted.
type cacheKey struct {
	platform Platform
	scopes   string
}

func (k cacheKey) String() string {
	return strings.Join([]string{k.platform.RegistrationID.String(), k.platform.ClientID,
		k.platform.TokenURL, k.platform.Audience, k.scopes}, "\x00")
}

type cached struct {
	token     string
	refreshAt time.Time // expiry minus the margin
}

// NewSource returns a Source signing assertions with signer and calling
// token endpoints with client (httpx.New in the hub).
func NewSource(signer Signer, client *http.Client) *Source {
	return &Source{Now: time.Now, FetchTimeout: defaultFetchTimeout, signer: signer, client: client,
		tokens: map[cacheKey]cached{}}
}

// Token returns an access token of p for scopes (their order and
// duplicates do not matter). A token is asked for once per registration
// and scope set and reused until shortly before it expires; callers
// asking at the same time share one request, which the cancellation of one
// caller's ctx does not stop.
func (s *Source) Token(ctx context.Context, p Platform, scopes []string) (string, error) {
	if p.ClientID == "" || p.TokenURL == "" {
		return "", errors.New("servicetoken: registration has no client_id or token URL")
	}
	key := cacheKey{platform: p, scopes: scopeParam(scopes)}
	if tok, ok := s.cached(key); ok {
		return tok, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	ch := s.flight.DoChan(key.String(), func() (any, error) {
		if tok, ok := s.cached(key); ok { // a flight that just ended stored it
			return tok, nil
		}
		timeout := s.FetchTimeout
		if timeout <= 0 {
			timeout = defaultFetchTimeout
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		return s.fetch(ctx, key)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Invalidate drops the kept token of p for scopes if it is still token,
// so the next Token asks for a new one: for a token a service refused with
// 401. A token already replaced stays as it is.
func (s *Source) Invalidate(p Platform, scopes []string, token string) {
	key := cacheKey{platform: p, scopes: scopeParam(scopes)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.tokens[key]; ok && c.token == token {
		delete(s.tokens, key)
	}
}

func (s *Source) cached(key cacheKey) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.tokens[key]
	if !ok || !s.Now().Before(c.refreshAt) {
		return "", false
	}
	return c.token, true
}

// fetch asks for the token and keeps it, dropping tokens past their time.
func (s *Source) fetch(ctx context.Context, key cacheKey) (string, error) {
	asked := s.Now()
	tok, lifetime, err := s.request(ctx, key.platform, key.scopes, asked)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.tokens {
		if !asked.Before(c.refreshAt) {
			delete(s.tokens, k)
		}
	}
	s.tokens[key] = cached{token: tok, refreshAt: refreshAt(asked, lifetime)}
	return tok, nil
}

// refreshAt is when a token asked for at asked and living lifetime is
// replaced: a tenth of its lifetime before it expires, at most MaxMargin
// before. The lifetime counts from when the token was asked for, not
// received, so a slow answer shortens it rather than lengthens it.
func refreshAt(asked time.Time, lifetime time.Duration) time.Time {
	if lifetime <= 0 {
		lifetime = DefaultLifetime
	}
	return asked.Add(lifetime - min(lifetime/10, MaxMargin))
}

// scopeParam is the scope parameter of scopes: sorted, without
// duplicates or empty entries, space-separated.
func scopeParam(scopes []string) string {
	s := slices.DeleteFunc(slices.Clone(scopes), func(v string) bool { return strings.TrimSpace(v) == "" })
	slices.Sort(s)
	return strings.Join(slices.Compact(s), " ")
}
