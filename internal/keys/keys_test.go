package keys_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/internal/secrets"
)

var ctx = context.Background()

func newStore(t *testing.T) *keys.Store {
	sealer, err := secrets.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := keys.NewStore(pgtest.Open(t), sealer, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func publicSet(t *testing.T, s *keys.Store) jwk.Set {
	t.Helper()
	b, err := s.PublicJWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if priv, _ := jwk.IsPrivateKey(k); priv {
			t.Fatal("the published JWKS holds a private key")
		}
	}
	return set
}

// verify checks token against the published keyset, by its kid.
func verify(t *testing.T, s *keys.Store, token []byte) error {
	t.Helper()
	_, err := jws.Verify(token, jws.WithKeySet(publicSet(t, s), jws.WithRequireKid(true)))
	return err
}

func TestEnsureIsIdempotentAcrossReplicas(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := s.Ensure(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	infos, _ := s.List(ctx)
	if len(infos) != 4 {
		t.Fatalf("%d keys after concurrent Ensure, want 4 (active and next of two purposes)", len(infos))
	}
	if publicSet(t, s).Len() != 4 {
		t.Fatal("JWKS does not publish active and next keys of both purposes")
	}
}

func TestSignWithEachPurpose(t *testing.T) {
	s := newStore(t)
	for p, alg := range map[keys.Purpose]jwa.SignatureAlgorithm{keys.LTI: jwa.RS256, keys.Handoff: jwa.ES256} {
		token, err := s.Sign(ctx, p, []byte(`{"sub":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := jws.Parse(token)
		h := msg.Signatures()[0].ProtectedHeaders()
		if h.Algorithm() != alg || h.KeyID() == "" {
			t.Fatalf("%s: header alg %s kid %q", p, h.Algorithm(), h.KeyID())
		}
		if err := verify(t, s, token); err != nil {
			t.Fatalf("%s: published JWKS does not verify: %v", p, err)
		}
	}
}

func TestRotationKeepsOldSignaturesVerifiableThroughTheOverlap(t *testing.T) {
	s := newStore(t)
	now := time.Now()
	s.Now = func() time.Time { return now }
	before, _ := s.Sign(ctx, keys.LTI, []byte(`{"n":1}`))

	if _, err := s.Rotate(ctx, keys.LTI, nil); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Sign(ctx, keys.LTI, []byte(`{"n":2}`))
	kid := func(tok []byte) string { m, _ := jws.Parse(tok); return m.Signatures()[0].ProtectedHeaders().KeyID() }
	if kid(before) == kid(after) {
		t.Fatal("still signing with the retired key")
	}
	for name, tok := range map[string][]byte{"before rotation": before, "after rotation": after} {
		if err := verify(t, s, tok); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if n := publicSet(t, s).Len(); n != 5 {
		t.Fatalf("JWKS has %d keys during the overlap, want 5 (retired, active, next; two handoff)", n)
	}
	now = now.Add(s.Overlap + time.Minute)
	if err := verify(t, s, before); err == nil {
		t.Fatal("a key retired past the overlap is still published")
	}
	if err := verify(t, s, after); err != nil {
		t.Fatal(err)
	}
}

func TestPrivateKeysAreSealed(t *testing.T) {
	db := pgtest.Open(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sealer, _ := secrets.New(bytes.Repeat([]byte{3}, 32))
	s := keys.NewStore(db, sealer, quiet)
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	var stored [][]byte
	if err := db.Select(&stored, `SELECT private_sealed FROM tool_keys`); err != nil {
		t.Fatal(err)
	}
	for _, b := range stored {
		if _, err := x509.ParsePKCS8PrivateKey(b); err == nil {
			t.Fatal("a private key is stored in the clear")
		}
	}
	otherSealer, _ := secrets.New(bytes.Repeat([]byte{4}, 32))
	if _, err := keys.NewStore(db, otherSealer, quiet).Sign(ctx, keys.LTI, []byte(`{}`)); err == nil {
		t.Fatal("signed with keys sealed under another secret key")
	}
}

// jwksServer serves a keyset of RSA keys, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	set     jwk.Set
	fetches atomic.Int32
	header  string
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{set: jwk.NewSet(), header: "max-age=300"}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.fetches.Add(1)
		time.Sleep(20 * time.Millisecond) // lets concurrent callers pile up
		j.mu.Lock()
		defer j.mu.Unlock()
		w.Header().Set("Cache-Control", j.header)
		json.NewEncoder(w).Encode(j.set)
	}))
	t.Cleanup(j.Close)
	return j
}

func (j *jwksServer) add(t *testing.T, kid string, alg jwa.SignatureAlgorithm) {
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	k, _ := jwk.FromRaw(priv.Public())
	_ = k.Set(jwk.KeyIDKey, kid)
	if alg != "" {
		_ = k.Set(jwk.AlgorithmKey, alg)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.set.AddKey(k)
}

func TestCache(t *testing.T) {
	j := newJWKSServer(t)
	j.add(t, "no-alg", "")
	j.add(t, "rs256", jwa.RS256)
	j.add(t, "hs256", jwa.HS256)
	c := keys.NewCache(httpx.New(true))
	now := time.Now()
	c.Now = func() time.Time { return now }

	for _, kid := range []string{"no-alg", "rs256"} {
		if _, err := c.RSAKey(ctx, j.URL, kid); err != nil {
			t.Fatalf("%s: %v", kid, err)
		}
	}
	if _, err := c.RSAKey(ctx, j.URL, "hs256"); err == nil {
		t.Fatal("a key declared for HS256 was accepted for RS256")
	}
	if n := j.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 while fresh", n)
	}

	t.Run("an unknown kid right after a fetch is rate-limited", func(t *testing.T) {
		if _, err := c.RSAKey(ctx, j.URL, "random-1"); err == nil {
			t.Fatal("unknown kid accepted")
		}
		if n := j.fetches.Load(); n != 1 {
			t.Fatalf("%d fetches, want no refetch inside MinRefetch", n)
		}
	})

	t.Run("a rotated-in key is found by refetching", func(t *testing.T) {
		j.add(t, "rotated", jwa.RS256)
		now = now.Add(c.MinRefetch + time.Second)
		if _, err := c.RSAKey(ctx, j.URL, "rotated"); err != nil {
			t.Fatal(err)
		}
		if n := j.fetches.Load(); n != 2 {
			t.Fatalf("%d fetches, want 2", n)
		}
	})

	t.Run("concurrent unknown kids collapse into one fetch", func(t *testing.T) {
		now = now.Add(c.MinRefetch + time.Second)
		before := j.fetches.Load()
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() { _, _ = c.RSAKey(ctx, j.URL, "random-"+string(rune('a'+i))) })
		}
		wg.Wait()
		if n := j.fetches.Load() - before; n != 1 {
			t.Fatalf("%d fetches for 20 concurrent unknown kids, want 1", n)
		}
	})

	t.Run("max-age expiry refetches", func(t *testing.T) {
		before := j.fetches.Load()
		now = now.Add(301 * time.Second)
		if _, err := c.RSAKey(ctx, j.URL, "rs256"); err != nil {
			t.Fatal(err)
		}
		if n := j.fetches.Load() - before; n != 1 {
			t.Fatalf("%d fetches after max-age, want 1", n)
		}
	})
}
