package sso

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestDiscoveryKeepsToHTTPS: a provider reached over https that names a
// plain http endpoint would have the hub fetch its keys, send the client
// secret and the code, or read the userinfo unprotected: a network
// attacker could swap the keys and forge any id_token. Such discovery is
// refused; the same document all in https is used.
func TestDiscoveryKeepsToHTTPS(t *testing.T) {
	var doc map[string]any
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(doc)
	}))
	defer srv.Close()
	good := func() map[string]any {
		return map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"userinfo_endpoint": srv.URL + "/userinfo", "jwks_uri": srv.URL + "/jwks", "end_session_endpoint": srv.URL + "/end",
			"id_token_signing_alg_values_supported": []string{"RS256"}}
	}
	for _, field := range []string{"", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint"} {
		doc = good()
		if field != "" {
			doc[field] = "http://127.0.0.1:1/" + field
		}
		ps := providers{client: srv.Client(), ttl: time.Hour, now: time.Now}
		_, err := ps.get(Connection{ID: uuid.New(), Issuer: srv.URL})
		switch {
		case field == "" && err != nil:
			t.Fatalf("all https: %v", err)
		case field != "" && err == nil:
			t.Errorf("an https provider's %s in plain http was used", field)
		}
	}
}

// TestProviderAnswersAreBounded: go-oidc reads discovery and userinfo
// whole; a tenant's provider answering without end must not fill the
// hub's memory, which every tenant shares. The hub stops reading at
// httpx.MaxBody.
func TestProviderAnswersAreBounded(t *testing.T) {
	const offered = 64 << 20
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer": "`))
		chunk := bytes.Repeat([]byte("a"), 32<<10)
		for written.Load() < offered {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	svc := NewService(&Store{Now: time.Now}, nil, nil, srv.Client(), nil)
	if _, err := svc.providers.get(Connection{ID: uuid.New(), Issuer: srv.URL}); err == nil {
		t.Fatal("an endless discovery document was used")
	}
	srv.CloseClientConnections()
	if n := written.Load(); n > 16<<20 {
		t.Fatalf("the hub read %d MiB of an endless discovery document", n>>20)
	}
}
