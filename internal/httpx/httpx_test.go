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
	tests := []struct {
		name string
		addr string
		want bool
	}{
		{"loopback", "127.0.0.1", false},
		{"IPv4-translated metadata", "::ffff:0:169.254.169.254", false},
		{"IPv4-translated loopback", "::ffff:0:127.0.0.1", false},
		{"IPv4-translated public", "::ffff:0:8.8.8.8", true},
		{"ISATAP loopback", "2001:db8::5efe:127.0.0.1", false},
		{"ISATAP global-bit loopback", "2001:db8::200:5efe:127.0.0.1", false},
		{"ISATAP public", "2a00:1450::5efe:8.8.8.8", true},
		{"site-local", "fec0::1", false},
		{"RFC 1918 10/8", "10.1.2.3", false},
		{"RFC 1918 172.16/12", "172.20.0.1", false},
		{"RFC 1918 192.168/16", "192.168.1.1", false},
		{"cloud metadata", "169.254.169.254", false},
		{"CGNAT", "100.64.0.1", false},
		{"unspecified", "0.0.0.0", false},
		{"IPv6 loopback", "::1", false},
		{"unique local", "fd00::1", false},
		{"link-local", "fe80::1", false},
		{"zoned loopback", "::1%lo", false},
		{"zoned link-local", "fe80::1%eth0", false},
		{"zoned link-local metadata", "fe80::a9fe:a9fe%1", false},
		{"zoned public address", "2606:4700::1111%eth0", false},
		{"mapped loopback", "::ffff:127.0.0.1", false},
		{"mapped metadata", "::ffff:169.254.169.254", false},
		{"IPv4-compatible loopback", "::127.0.0.1", false},
		{"IPv4-compatible private", "::10.0.0.1", false},
		{"NAT64 of loopback", "64:ff9b::127.0.0.1", false},
		{"NAT64 of metadata", "64:ff9b::169.254.169.254", false},
		{"NAT64 of private, hex", "64:ff9b::c0a8:101", false},
		{"local-use NAT64", "64:ff9b:1::808:808", false},
		{"local-use NAT64, other embedding", "64:ff9b:1:808:808::", false},
		{"6to4 of loopback", "2002:7f00:1::", false},
		{"6to4 of private", "2002:a00:1::1", false},
		{"6to4 of metadata", "2002:a9fe:a9fe:1::1", false},
		{"Teredo with a private client", "2001:0:4136:e378:8000:63bf:f5ff:fffe", false},
		{"public IPv4", "93.184.216.34", true},
		{"public DNS", "8.8.8.8", true},
		{"public IPv6", "2606:4700::1111", true},
		{"mapped public", "::ffff:8.8.8.8", true},
		{"IPv4-compatible public", "::8.8.8.8", true},
		{"NAT64 of public", "64:ff9b::8.8.8.8", true},
		{"6to4 of public", "2002:808:808::1", true},
		{"Teredo with a public client", "2001:0:4136:e378:8000:63bf:3fff:fdd2", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := httpx.Allowed(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Fatalf("Allowed(%s) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}

func TestCheckHost(t *testing.T) {
	tests := []struct {
		name         string
		host         string
		allowPrivate bool
		refused      bool
	}{
		{"zoned loopback with port", "[::1%lo]:80", false, true},
		{"zoned loopback, private allowed", "[::1%lo]:80", true, true},
		{"zoned link-local without port", "[fe80::1%eth0]", true, true},
		{"zoned, numeric zone", "[fe80::a9fe:a9fe%2]:443", false, true},
		{"literal loopback", "127.0.0.1:8080", false, true},
		{"literal loopback, private allowed", "127.0.0.1:8080", true, false},
		{"literal NAT64 of metadata", "[64:ff9b::a9fe:a9fe]:80", false, true},
		{"literal public", "[2606:4700::1111]:443", false, false},
		{"a name is left to the dial", "lms.example:443", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := httpx.CheckHost(tc.host, tc.allowPrivate)
			if refused := errors.Is(err, httpx.ErrForbiddenAddress); refused != tc.refused {
				t.Fatalf("CheckHost(%q, %v) = %v, want refused %v", tc.host, tc.allowPrivate, err, tc.refused)
			}
		})
	}
}

// TestZonedURLsAreRefused: a zone in the URL's host is refused before any
// connection, whatever the private-address setting, and so is a redirect to
// one.
func TestZonedURLsAreRefused(t *testing.T) {
	ctx := context.Background()
	for _, allowPrivate := range []bool{false, true} {
		for _, u := range []string{"http://[::1%25lo]/", "http://[fe80::1%25eth0]:8080/x", "http://[::1%251]/"} {
			_, _, err := httpx.GetJSON(ctx, httpx.New(allowPrivate), u)
			if !errors.Is(err, httpx.ErrForbiddenAddress) {
				t.Errorf("allowPrivate %v: %s: %v, want ErrForbiddenAddress", allowPrivate, u, err)
			}
		}
	}
	srv := httptest.NewServer(http.RedirectHandler("http://[::1%25lo]/metadata", http.StatusFound))
	defer srv.Close()
	if _, _, err := httpx.GetJSON(ctx, httpx.New(true), srv.URL); !errors.Is(err, httpx.ErrForbiddenAddress) {
		t.Fatalf("redirect to a zoned address: %v", err)
	}
}

// tlsClient is httpx.New trusting srv's certificate.
func tlsClient(srv *httptest.Server, allowPrivate bool) *http.Client {
	c := httpx.New(allowPrivate)
	c.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return c
}

func TestRedirects(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"plain":true}`))
	}))
	defer plain.Close()
	var secure *httptest.Server
	secure = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, plain.URL+"/keys", http.StatusFound)
		case "/to-https":
			http.Redirect(w, r, secure.URL+"/keys", http.StatusMovedPermanently)
		case "/twice-then-http":
			http.Redirect(w, r, secure.URL+"/to-http", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, secure.URL+"/loop", http.StatusFound)
		default:
			w.Write([]byte(`{"secure":true}`))
		}
	}))
	defer secure.Close()
	ctx := context.Background()

	tests := []struct {
		name    string
		url     string
		want    string
		wantErr error
	}{
		{"https to http is refused", secure.URL + "/to-http", "", httpx.ErrInsecureRedirect},
		{"https to https to http is refused", secure.URL + "/twice-then-http", "", httpx.ErrInsecureRedirect},
		{"https to https is followed", secure.URL + "/to-https", `{"secure":true}`, nil},
		{"http to https is followed", "", `{"secure":true}`, nil},
		{"a redirect loop stops", secure.URL + "/loop", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url
			if u == "" {
				up := httptest.NewServer(http.RedirectHandler(secure.URL+"/keys", http.StatusFound))
				defer up.Close()
				u = up.URL
			}
			body, _, err := httpx.GetJSON(ctx, tlsClient(secure, true), u)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), "redirect from https to http") {
					t.Fatalf("got %q, %v; want %v", body, err, tc.wantErr)
				}
			case tc.want == "":
				if err == nil || !strings.Contains(err.Error(), "redirects") {
					t.Fatalf("redirect loop: %q, %v", body, err)
				}
			case err != nil || string(body) != tc.want:
				t.Fatalf("got %q, %v; want %s", body, err, tc.want)
			}
		})
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
