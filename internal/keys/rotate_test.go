package keys_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/keys"
)

// keyStates is every key as "kid state", to compare before and after.
func keyStates(t *testing.T, s *keys.Store) []string {
	t.Helper()
	infos, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range infos {
		out = append(out, i.KID+" "+i.State)
	}
	slices.Sort(out)
	return out
}

// TestRotationWaitsForTheJWKSCacheLifetime: a second rotation would promote
// the key the first one published, which verifiers holding a cached keyset
// have never seen; it is refused until the cache lifetime has passed.
func TestRotationWaitsForTheJWKSCacheLifetime(t *testing.T) {
	s := newStore(t)
	now := time.Now().Truncate(time.Second) // PostgreSQL keeps microseconds: times round-trip exactly
	s.Now = func() time.Time { return now }
	if _, err := s.Rotate(ctx, keys.LTI, nil); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	rotatedAt := now

	now = now.Add(keys.JWKSMaxAge - time.Second)
	before := keyStates(t, s)
	_, err := s.Rotate(ctx, keys.LTI, nil)
	var soon *keys.TooSoonError
	if !apperr.Is(err, apperr.Conflict) || !errors.As(err, &soon) {
		t.Fatalf("second rotation: %v, want a Conflict with a TooSoonError", err)
	}
	if want := rotatedAt.Add(keys.JWKSMaxAge); !soon.NotBefore.Round(time.Millisecond).Equal(want.Round(time.Millisecond)) || soon.Wait.Round(time.Millisecond) != time.Second {
		t.Fatalf("not before %v (wait %v), want %v (wait 1s)", soon.NotBefore, soon.Wait, want)
	}
	if after := keyStates(t, s); !slices.Equal(before, after) {
		t.Fatalf("a refused rotation changed the keys:\n%v\n%v", before, after)
	}
	if _, err := s.Rotate(ctx, keys.Handoff, nil); err != nil {
		t.Fatalf("the other purpose's first rotation: %v", err)
	}

	now = rotatedAt.Add(keys.JWKSMaxAge)
	if _, err := s.Rotate(ctx, keys.LTI, nil); err != nil {
		t.Fatalf("rotation after the cache lifetime: %v", err)
	}
}

// TestRotationCommitsWithItsRecord: when the caller's record of the
// rotation fails, the rotation does not happen.
func TestRotationCommitsWithItsRecord(t *testing.T) {
	s := newStore(t)
	before := keyStates(t, s)
	signedBefore, _ := s.Sign(ctx, keys.LTI, []byte(`{"n":1}`))
	failed := errors.New("audit append failed")
	var seen keys.Info
	_, err := s.Rotate(ctx, keys.LTI, func(_ *sqlx.Tx, active keys.Info) error {
		seen = active
		return failed
	})
	if !errors.Is(err, failed) || seen.KID == "" || seen.State != "active" {
		t.Fatalf("Rotate = %v (record saw %+v), want the record's error", err, seen)
	}
	if after := keyStates(t, s); !slices.Equal(before, after) {
		t.Fatalf("a rotation whose record failed changed the keys:\n%v\n%v", before, after)
	}
	signedAfter, _ := s.Sign(ctx, keys.LTI, []byte(`{"n":2}`))
	kid := func(tok []byte) string { m, _ := jws.Parse(tok); return m.Signatures()[0].ProtectedHeaders().KeyID() }
	if kid(signedBefore) != kid(signedAfter) {
		t.Fatal("signing with another key after a failed rotation")
	}
	if _, err := s.Rotate(ctx, keys.LTI, nil); err != nil {
		t.Fatalf("a failed rotation counted as the last one: %v", err)
	}
}
