package sso

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"golang.org/x/sync/singleflight"

	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/keys"
)

// keySet is go-oidc's KeySet over the hub's own cache of other parties'
// JWKS (keys.Cache), so a provider's keys get what an LMS's get: an
// unknown kid refetched at most once per MinRefetch, concurrent refetches
// collapsed, and the last good keys kept through the provider's outage.
// It verifies RS256 only, the algorithm OpenID Connect Core 1.0 §15.1
// requires every provider to offer.
type keySet struct {
	cache *keys.Cache
	url   string
}

// errSignature marks a token whose signature does not verify with the
// provider's keys (or names a key it does not have).
var errSignature = errors.New("sso: signature not verified")

// VerifySignature implements oidc.KeySet.
func (k keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	msg, err := jws.Parse([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSignature, err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", errSignature, len(sigs))
	}
	h := sigs[0].ProtectedHeaders()
	if h.Algorithm() != jwa.RS256 {
		return nil, fmt.Errorf("%w: algorithm %q", errSignature, h.Algorithm())
	}
	key, err := k.cache.RSAKey(ctx, k.url, h.KeyID())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSignature, err)
	}
	payload, err := jws.Verify([]byte(raw), jws.WithKey(jwa.RS256, key))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSignature, err)
	}
	return payload, nil
}

// provider is a connection's provider as discovery describes it.
type provider struct {
	oidc *oidc.Provider
	meta discovery
	// key is what it was discovered for: a changed connection discovers
	// again.
	key     string
	expires time.Time
}

// discovery is what the hub reads of a provider's metadata besides what
// go-oidc reads (OpenID Connect Discovery 1.0 §3, RP-Initiated Logout 1.0
// §2.1, RFC 9207 §3).
type discovery struct {
	JWKSURI            string   `json:"jwks_uri"`
	EndSessionEndpoint string   `json:"end_session_endpoint"`
	ISSParameter       bool     `json:"authorization_response_iss_parameter_supported"`
	CodeChallenge      []string `json:"code_challenge_methods_supported"`
}

// providers caches one go-oidc Provider per connection, keyed by its
// issuer, expected issuer and last change, for DiscoveryTTL. Reads of one
// connection's metadata are collapsed into one, and a failed read is not
// tried again for DiscoveryRetry: a slow or failing provider costs its
// own tenant's sign-ins one wait, not one each.
type providers struct {
	client *http.Client
	ttl    time.Duration
	now    func() time.Time
	mu     sync.Mutex
	byID   map[uuid.UUID]*provider
	failed map[uuid.UUID]failure
	flight singleflight.Group
}

// failure is a connection's last failed discovery: its error is answered
// until retry, unless earlier metadata is kept.
type failure struct {
	key   string
	err   error
	retry time.Time
}

// DiscoveryTTL is how long a provider's metadata is used before it is
// read again; when reading fails, the last metadata stays in use.
const DiscoveryTTL = time.Hour

// DiscoveryRetry is how long after a failed read of a provider's metadata
// the hub reads it again.
const DiscoveryRetry = 30 * time.Second

// get is c's provider, discovered when none is cached for c as it is now.
// Discovery runs with a context of its own, not the request's: the
// Provider keeps it (go-oidc's keysets and clients outlive the request
// that made them).
func (ps *providers) get(c Connection) (*provider, error) {
	key := c.Issuer + "\x00" + c.ExpectedIssuer + "\x00" + c.UpdatedAt.UTC().Format(time.RFC3339Nano)
	now := ps.now()
	ps.mu.Lock()
	cached, failed := ps.byID[c.ID], ps.failed[c.ID]
	ps.mu.Unlock()
	if cached != nil && cached.key != key {
		cached = nil // the connection changed: its old provider is no use
	}
	if cached != nil && now.Before(cached.expires) {
		return cached, nil
	}
	if failed.key == key && now.Before(failed.retry) {
		if cached != nil {
			return cached, nil
		}
		return nil, failed.err
	}
	v, err, _ := ps.flight.Do(c.ID.String()+"\x00"+key, func() (any, error) { return ps.discover(c) })
	if err != nil {
		ps.remember(c.ID, nil, failure{key: key, err: err, retry: now.Add(DiscoveryRetry)})
		if cached != nil {
			return cached, nil // the provider's discovery is down: keep what it said
		}
		return nil, err
	}
	p := *v.(*provider) // each caller's copy: the one cached is not shared while written
	p.key, p.expires = key, now.Add(ps.ttl)
	ps.remember(c.ID, &p, failure{})
	return &p, nil
}

// remember caches p (when not nil) and f (when it names a key) for id.
func (ps *providers) remember(id uuid.UUID, p *provider, f failure) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.byID == nil || len(ps.byID) > 10000 {
		ps.byID = map[uuid.UUID]*provider{}
	}
	if ps.failed == nil || len(ps.failed) > 10000 {
		ps.failed = map[uuid.UUID]failure{}
	}
	if p != nil {
		ps.byID[id] = p
	}
	if f.key != "" {
		ps.failed[id] = f
	} else {
		delete(ps.failed, id)
	}
}

func (ps *providers) discover(c Connection) (*provider, error) {
	ctx := oidc.ClientContext(context.Background(), ps.client)
	if c.ExpectedIssuer != "" {
		ctx = oidc.InsecureIssuerURLContext(ctx, c.ExpectedIssuer)
	}
	op, err := oidc.NewProvider(ctx, c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sso: discover %s: %w", c.Issuer, err)
	}
	var meta discovery
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("sso: read discovery of %s: %w", c.Issuer, err)
	}
	if meta.JWKSURI == "" {
		return nil, fmt.Errorf("sso: discovery of %s names no jwks_uri", c.Issuer)
	}
	if err := keepsToHTTPS(c.Issuer, op, meta); err != nil {
		return nil, err
	}
	return &provider{oidc: op, meta: meta}, nil
}

// keepsToHTTPS refuses the discovery of an https issuer that names a
// plain http endpoint: its keys, the client secret, the code or the
// id_token_hint would travel unprotected (OpenID Connect Core 1.0 §16.17).
func keepsToHTTPS(issuer string, op *oidc.Provider, meta discovery) error {
	if !strings.HasPrefix(strings.ToLower(issuer), "https://") {
		return nil // http on loopback (HUB_OUTBOUND_ALLOW_PRIVATE)
	}
	for _, u := range []string{op.Endpoint().AuthURL, op.Endpoint().TokenURL, op.UserInfoEndpoint(), meta.JWKSURI, meta.EndSessionEndpoint} {
		if u != "" && !strings.HasPrefix(strings.ToLower(u), "https://") {
			return fmt.Errorf("sso: discovery of %s names an endpoint that is not https: %.200s", issuer, u)
		}
	}
	return nil
}

// bounded is client with every answer cut at httpx.MaxBody: go-oidc reads
// discovery and userinfo whole, and a provider is a tenant's to choose.
func bounded(client *http.Client) *http.Client {
	next := client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c := *client
	c.Transport = boundedTransport{next: next}
	return &c
}

type boundedTransport struct{ next http.RoundTripper }

func (b boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := b.next.RoundTrip(r)
	if err == nil {
		res.Body = &boundedBody{ReadCloser: res.Body, left: httpx.MaxBody}
	}
	return res, err
}

// boundedBody reads at most left bytes more, then answers
// httpx.ErrTooLarge for a body that goes on.
type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, httpx.ErrTooLarge
		}
		return 0, err
	}
	n, err := b.ReadCloser.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	return n, err
}
