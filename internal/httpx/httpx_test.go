package httpx_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/klasterina/hub/internal/httpx"
)

func TestAllowed(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": false, "10.1.2.3": false, "172.20.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "::1": false, "fd00::1": false,
		"fe80::1": false, "::ffff:127.0.0.1": false, "0.0.0.0": false,
		"93.184.216.34": true, "2606:4700::1111": true, "8.8.8.8": true,
	} {
		if got := httpx.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestGuardRefusesLoopbackUnlessAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	ctx := context.Background()

	_, _, err := httpx.GetJSON(ctx, httpx.New(false), srv.URL)
	if !errors.Is(err, httpx.ErrForbiddenAddress) {
		t.Fatalf("guarded client reached loopback: %v", err)
	}
	// A name that resolves to loopback is refused the same way.
	_, _, err = httpx.GetJSON(ctx, httpx.New(false), strings.Replace(srv.URL, "127.0.0.1", "localhost", 1))
	if !errors.Is(err, httpx.ErrForbiddenAddress) {
		t.Fatalf("guarded client reached localhost: %v", err)
	}
	body, _, err := httpx.GetJSON(ctx, httpx.New(true), srv.URL)
	if err != nil || string(body) != `{"ok":true}` {
		t.Fatalf("allowed client: %q, %v", body, err)
	}
}

func TestGetJSONRefusesErrorsAndHugeBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/huge" {
			w.Write([]byte(strings.Repeat("x", httpx.MaxBody+1)))
			return
		}
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	c := httpx.New(true)
	if _, _, err := httpx.GetJSON(context.Background(), c, srv.URL+"/fail"); err == nil {
		t.Fatal("a 500 was accepted")
	}
	if _, _, err := httpx.GetJSON(context.Background(), c, srv.URL+"/huge"); !errors.Is(err, httpx.ErrTooLarge) {
		t.Fatalf("huge body: %v", err)
	}
}
