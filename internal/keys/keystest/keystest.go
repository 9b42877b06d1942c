// Package keystest serves the hub's published keyset on loopback, for the
// tests whose fake platform verifies the hub's signatures (a token
// endpoint checking the hub's client assertion) without a whole hub.
package keystest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/klasterina/hub/internal/keys"
)

// Serve publishes s's keyset (keys.Store.PublicJWKS, as the hub serves it
// at /.well-known/jwks.json) until the test ends.
func Serve(t testing.TB, s *keys.Store) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, err := s.PublicJWKS(req.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}
