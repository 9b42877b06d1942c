// Package httpx is the hub's one outbound HTTP client. Tenants give the hub
// URLs to call (an LMS's keyset, token and roster endpoints); without a
// guard, a tenant admin could point one at the hub's own network. The guard
// checks the address actually dialled, after DNS resolution, so a name that
// resolves to a private address is refused too. An IPv6 address that
// carries an IPv4 one (mapped, IPv4-compatible, NAT64, 6to4, Teredo) is
// judged by the IPv4 address, an address with a zone is never dialled, and
// a redirect never leaves https for http.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned when a URL resolves to an address the hub
// may not call.
var ErrForbiddenAddress = errors.New("httpx: destination address not allowed")

// ErrInsecureRedirect is returned when an https request is redirected to a
// plain http URL: the rest of the exchange (a bearer token, a keyset) would
// travel unprotected.
var ErrInsecureRedirect = errors.New("httpx: redirect from https to http refused")

// MaxRedirects is how many redirects one request may follow.
const MaxRedirects = 3

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
	netip.MustParsePrefix("fec0::/10"), // site-local (deprecated by RFC 3879, still routed inside some networks)
	netip.MustParsePrefix("ff00::/8"),
	// Local-use NAT64 (RFC 8215): the operator chooses where the IPv4
	// address sits inside the /48, so it cannot be read back; the whole
	// range is refused.
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// IPv6 ranges that carry an IPv4 address, and so reach whatever that IPv4
// address is: a translator or relay forwards the packet to it.
var (
	ipv4Compatible = netip.MustParsePrefix("::/96")           // ::a.b.c.d, deprecated (RFC 4291)
	nat64          = netip.MustParsePrefix("64:ff9b::/96")    // well-known NAT64 prefix (RFC 6052): the last 32 bits
	sixToFour      = netip.MustParsePrefix("2002::/16")       // 6to4 (RFC 3056): bits 16..47
	teredo         = netip.MustParsePrefix("2001::/32")       // Teredo (RFC 4380): server in bits 32..63, client inverted in the last 32
	siit           = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (RFC 2765): the last 32 bits
)

// Allowed reports whether addr may be called when private addresses are not
// allowed. An address with a zone is never allowed: the zone names a local
// interface, and a zoned address matches no prefix. An IPv6 address that
// embeds an IPv4 one is judged by every IPv4 address it embeds.
func Allowed(addr netip.Addr) bool {
	if !addr.IsValid() || addr.Zone() != "" {
		return false
	}
	addr = addr.Unmap()
	for _, p := range blocked {
		if p.Contains(addr) {
			return false
		}
	}
	for _, v4 := range embeddedIPv4(addr) {
		if !Allowed(v4) {
			return false
		}
	}
	return true
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries (none for
// an IPv4 address or an ordinary IPv6 one).
func embeddedIPv4(addr netip.Addr) []netip.Addr {
	if !addr.Is6() {
		return nil
	}
	b := addr.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte(b[i : i+4])) }
	switch {
	case ipv4Compatible.Contains(addr), nat64.Contains(addr), siit.Contains(addr), isISATAP(b):
		return []netip.Addr{v4(12)}
	case sixToFour.Contains(addr):
		return []netip.Addr{v4(2)}
	case teredo.Contains(addr):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{v4(4), netip.AddrFrom4(client)}
	}
	return nil
}

// isISATAP reports an ISATAP interface identifier (RFC 5214), ::0:5efe:a.b.c.d
// or ::200:5efe:a.b.c.d under any prefix: the last 32 bits are an IPv4 address.
func isISATAP(b [16]byte) bool {
	return (b[8]|0x02) == 0x02 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe
}

// CheckHost reports whether a URL host (a name or a literal address, with
// or without a port) may be called: a literal address must pass Allowed
// unless allowPrivate, and a zone is refused either way. A name is left to
// the dial-time check, which sees the addresses it resolves to.
func CheckHost(host string, allowPrivate bool) error {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.Contains(host, "%") {
		return fmt.Errorf("%w: %s (an address with a zone)", ErrForbiddenAddress, host)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || allowPrivate || Allowed(addr) {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrForbiddenAddress, addr)
}

// New returns a client with timeouts, a redirect limit that never goes from
// https to http and, unless allowPrivate, the address guard. Zoned addresses
// are refused even when private addresses are allowed.
func New(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(network, address string, c syscall.RawConn) error {
			return guard(network, address, allowPrivate)
		}}
	transport := &http.Transport{
		Proxy: nil, // a proxy would dial for us, past the guard
		// The address asked for is checked before resolution, so a zone in
		// the URL's host never reaches the resolver; the guard then checks
		// each address actually dialled (DNS rebinding).
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			if err := CheckHost(address, allowPrivate); err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, address)
		},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: transport, Timeout: 15 * time.Second, CheckRedirect: checkRedirect}
}

// checkRedirect bounds the redirects a request follows and refuses one
// that would leave https for http anywhere along the way.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("httpx: stopped after %d redirects", MaxRedirects)
	}
	for _, prev := range via {
		if prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("%w: %s to %s", ErrInsecureRedirect, prev.URL.Redacted(), req.URL.Redacted())
		}
	}
	return nil
}

// guard checks an address about to be dialled: never a zone, and, unless
// allowPrivate, only addresses Allowed accepts.
func guard(_, address string, allowPrivate bool) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
	}
	if ap.Addr().Zone() != "" {
		return fmt.Errorf("%w: %s (an address with a zone)", ErrForbiddenAddress, ap.Addr())
	}
	if !allowPrivate && !Allowed(ap.Addr()) {
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
