package httpx_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/klasterina/hub/internal/httpx"
)

// FuzzAllowed checks the address classification against its promises: it
// never panics, a zoned address is never allowed, and an IPv4 address is
// judged the same in every IPv6 form that carries it.
func FuzzAllowed(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::1%lo", "fe80::1%eth0", "64:ff9b::a9fe:a9fe", "2002:7f00:1::",
		"::127.0.0.1", "::ffff:127.0.0.1", "64:ff9b:1::1", "8.8.8.8", "[::1%25lo]:80", "lms.example:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		refused := errors.Is(httpx.CheckHost(s, true), httpx.ErrForbiddenAddress)
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		allowed := httpx.Allowed(addr)
		if addr.Zone() != "" {
			if allowed || !refused {
				t.Fatalf("zoned %s: Allowed %v, CheckHost refused %v", s, allowed, refused)
			}
			return
		}
		if refused {
			t.Fatalf("CheckHost refused %s with private addresses allowed", s)
		}
		if !allowed && httpx.CheckHost(s, false) == nil {
			t.Fatalf("CheckHost let %s through, Allowed refuses it", s)
		}
		if !addr.Is4() {
			return
		}
		v4 := addr.As4()
		for name, form := range map[string]netip.Addr{
			"mapped":          netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}),
			"IPv4-compatible": netip.AddrFrom16([16]byte{12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}),
			"NAT64":           netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}),
			"6to4":            netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: v4[0], 3: v4[1], 4: v4[2], 5: v4[3], 15: 1}),
		} {
			if got := httpx.Allowed(form); got != allowed {
				t.Fatalf("%s: Allowed = %v, but %s form %s: %v", s, allowed, name, form, got)
			}
		}
	})
}
