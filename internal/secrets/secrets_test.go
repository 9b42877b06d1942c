package secrets_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/klasterina/hub/internal/secrets"
)

func mustKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, secrets.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSealer(t testing.TB, current []byte, previous ...[]byte) *secrets.Sealer {
	t.Helper()
	s, err := secrets.New(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := mustSealer(t, mustKey(t))
	aad := []byte("sso_connections:tenant-1:client_secret")
	sealed, err := s.Seal([]byte("top secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("top secret")) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := s.Open(sealed, aad)
	if err != nil || string(got) != "top secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := s.Seal([]byte("top secret"), aad)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same plaintext are identical: nonce reused")
	}
}

func TestOpenRefuses(t *testing.T) {
	key := mustKey(t)
	s := mustSealer(t, key)
	aad := []byte("row-1")
	sealed, _ := s.Seal([]byte("secret"), aad)
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1

	cases := map[string]struct {
		sealer *secrets.Sealer
		value  []byte
		aad    []byte
	}{
		"other row's aad":  {s, sealed, []byte("row-2")},
		"tampered":         {s, flipped, aad},
		"unknown key":      {mustSealer(t, mustKey(t)), sealed, aad},
		"truncated":        {s, sealed[:10], aad},
		"empty":            {s, nil, aad},
		"wrong format":     {s, append([]byte{9}, sealed[1:]...), aad},
		"zero-length kid":  {s, []byte{1, 0, 1, 2, 3}, aad},
		"kid past the end": {s, []byte{1, 200, 'a'}, aad},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.sealer.Open(tc.value, tc.aad); !errors.Is(err, secrets.ErrOpen) {
				t.Fatalf("Open error = %v, want ErrOpen", err)
			}
		})
	}
}

func TestRotationOpensValuesSealedUnderPreviousKey(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	old := mustSealer(t, oldKey)
	sealed, _ := old.Seal([]byte("kept"), nil)

	rotated := mustSealer(t, newKey, oldKey)
	got, err := rotated.Open(sealed, nil)
	if err != nil || string(got) != "kept" {
		t.Fatalf("Open after rotation = %q, %v", got, err)
	}
	kid, _ := secrets.KeyIDOf(sealed)
	if kid != secrets.KeyID(oldKey) || kid == rotated.CurrentKeyID() {
		t.Fatalf("KeyIDOf = %s, want the old key's id %s", kid, secrets.KeyID(oldKey))
	}
	fresh, _ := rotated.Seal([]byte("new"), nil)
	if kid, _ := secrets.KeyIDOf(fresh); kid != secrets.KeyID(newKey) {
		t.Fatalf("new values sealed under %s, want %s", kid, secrets.KeyID(newKey))
	}
}

func TestNewRejectsShortKey(t *testing.T) {
	if _, err := secrets.New(make([]byte, 10)); err == nil {
		t.Fatal("New accepted a 10-byte key")
	}
}

func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, secrets.KeySize)
	s := mustSealer(f, key)
	sealed, _ := s.Seal([]byte("seed"), []byte("aad"))
	f.Add(sealed, []byte("aad"))
	f.Add([]byte{1, 3, 'a', 'b', 'c'}, []byte{})
	f.Fuzz(func(t *testing.T, value, aad []byte) {
		plain, err := s.Open(value, aad)
		if err == nil {
			// Anything that opens must re-seal and open to the same bytes.
			again, _ := s.Seal(plain, aad)
			if back, err := s.Open(again, aad); err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("round trip failed: %v", err)
			}
		}
	})
}
