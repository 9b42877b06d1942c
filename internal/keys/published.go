package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/klasterina/hub/internal/pg"
)

// The published keyset is served to anyone, unauthenticated, so it is
// answered from memory: the database is read at most once per JWKSTTL
// however many ask (concurrent refreshes collapse into one), at once after
// a rotation in this process, and within JWKSTTL of a rotation on another
// replica. While the database is slow or down the last copy is served.

// JWKS is the published keyset as served: the marshalled document and how
// long a client may reuse it before asking again.
type JWKS struct {
	Body   []byte
	MaxAge time.Duration
}

const (
	jwksReadTimeout = 10 * time.Second // one refresh waits no longer on the database
	jwksRetry       = 5 * time.Second  // after a failed refresh, the copy is served this long before trying again
)

// published is the in-memory copy of the keyset.
type published struct {
	mu      sync.Mutex
	body    []byte
	expires time.Time
	gen     uint64 // bumped by invalidate: a read begun earlier is not kept
	flight  singleflight.Group
}

// invalidate makes the next request read the keyset again; the old copy
// stays as the fallback should the database fail.
func (p *published) invalidate() {
	p.mu.Lock()
	p.expires, p.gen = time.Time{}, p.gen+1
	p.mu.Unlock()
}

// fresh returns the copy if it is of generation gen and still fresh at now.
func (p *published) fresh(gen uint64, now time.Time) (JWKS, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.body == nil || p.gen != gen || !now.Before(p.expires) {
		return JWKS{}, false
	}
	return JWKS{Body: p.body, MaxAge: p.expires.Sub(now)}, true
}

// PublicJWKS is the keyset published at /.well-known/jwks.json: active and
// next keys of every purpose, and keys retired less than Overlap ago.
func (s *Store) PublicJWKS(ctx context.Context) ([]byte, error) {
	j, err := s.PublishedJWKS(ctx)
	return j.Body, err
}

// PublishedJWKS returns the published keyset from memory, refreshing it
// when it is older than JWKSTTL. A request that finds the copy expired
// waits up to JWKSWait for the refresh, then is served the old copy (with
// MaxAge zero); without any copy it waits for the database.
func (s *Store) PublishedJWKS(ctx context.Context) (JWKS, error) {
	p := &s.published
	p.mu.Lock()
	body, gen := p.body, p.gen
	p.mu.Unlock()
	if j, ok := p.fresh(gen, s.Now()); ok {
		return j, nil
	}
	ch := p.flight.DoChan(strconv.FormatUint(gen, 10), func() (any, error) {
		return s.refreshJWKS(context.WithoutCancel(ctx), gen)
	})
	var stale <-chan time.Time
	if body != nil {
		timer := time.NewTimer(s.JWKSWait)
		defer timer.Stop()
		stale = timer.C
	}
	select {
	case r := <-ch:
		if r.Err != nil && body != nil {
			return JWKS{Body: body}, nil
		}
		if r.Err != nil {
			return JWKS{}, r.Err
		}
		return r.Val.(JWKS), nil
	case <-stale:
		return JWKS{Body: body}, nil
	case <-ctx.Done():
		return JWKS{}, fmt.Errorf("keys: jwks: %w", ctx.Err())
	}
}

// refreshJWKS reads the keyset and keeps it, unless a rotation happened
// meanwhile. On failure the old copy, if any, is kept for jwksRetry so a
// database outage is not met with a read per request.
func (s *Store) refreshJWKS(ctx context.Context, gen uint64) (JWKS, error) {
	p := &s.published
	if j, ok := p.fresh(gen, s.Now()); ok {
		return j, nil // a refresh that ended just before this one began
	}
	ctx, cancel := context.WithTimeout(ctx, jwksReadTimeout)
	defer cancel()
	body, err := s.readJWKS(ctx)
	now := s.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.body != nil && p.gen == gen {
			p.expires = now.Add(min(jwksRetry, s.JWKSTTL))
		}
		s.log.WarnContext(ctx, "published keyset not refreshed", "err", err)
		return JWKS{}, err
	}
	if p.gen == gen {
		p.body, p.expires = body, now.Add(s.JWKSTTL)
	}
	return JWKS{Body: body, MaxAge: s.JWKSTTL}, nil
}

func (s *Store) readJWKS(ctx context.Context) ([]byte, error) {
	var jwks []json.RawMessage
	err := s.db.SelectContext(ctx, &jwks, `SELECT public_jwk FROM tool_keys
		WHERE state <> 'retired' OR retired_at > $1 ORDER BY purpose, created_at`, s.Now().Add(-s.Overlap))
	if err != nil {
		return nil, pg.MapError(fmt.Errorf("keys: jwks: %w", err))
	}
	if jwks == nil {
		jwks = []json.RawMessage{}
	}
	b, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		return nil, fmt.Errorf("keys: jwks: %w", err)
	}
	return b, nil
}
