// Package httpx is the hub's one outbound HTTP client. Tenants give the hub
// URLs to call (an LMS's keyset, token and roster endpoints); without a
// guard, a tenant admin could point one at the hub's own network. The guard
// checks the address actually dialled, after DNS resolution, so a name that
// resolves to a private address is refused too.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned when a URL resolves to an address the hub
// may not call.
var ErrForbiddenAddress = errors.New("httpx: destination address not allowed")

// blocked are ranges no outbound call may reach unless private addresses are
// allowed: loopback, RFC 1918, link-local (cloud metadata), CGNAT, unique
// local, and the unspecified/multicast/broadcast oddities.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/3"),
	netip.MustParsePrefix("::/127"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// Allowed reports whether addr may be called when private addresses are not
// allowed.
func Allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range blocked {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// New returns a client with timeouts, a redirect limit and, unless
// allowPrivate, the address guard.
func New(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = guard
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the guard
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   15 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("httpx: too many redirects")
			}
			return nil
		},
	}
}

func guard(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
	}
	if !Allowed(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
	}
	return nil
}

// MaxBody is the most the hub reads of any response it did not write.
const MaxBody = 1 << 20

// ErrTooLarge means a response body exceeded the limit.
var ErrTooLarge = errors.New("httpx: response body too large")

// ReadBody reads at most limit bytes of a response body.
func ReadBody(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

// GetJSON fetches url and returns its body and response headers, refusing
// non-2xx answers and oversized bodies.
func GetJSON(ctx context.Context, c *http.Client, url string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("httpx: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("httpx: GET %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		return nil, nil, fmt.Errorf("httpx: GET %s: status %d", url, res.StatusCode)
	}
	b, err := ReadBody(res.Body, MaxBody)
	if err != nil {
		return nil, nil, fmt.Errorf("httpx: GET %s: %w", url, err)
	}
	return b, res.Header, nil
}
