package destinations

import (
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/klasterina/hub/internal/httpx"
)

// FuzzDestinationURL: a URL a tenant admin gives is accepted only when it
// is absolute, https (or http where allowed), without credentials or a
// fragment, and names no address the guard refuses; anything accepted
// without private addresses is accepted with them.
func FuzzDestinationURL(f *testing.F) {
	for _, s := range []string{"https://hr.example/hooks?token=a", "http://127.0.0.1:8080/", "https://user:pw@hr.example/",
		"https://[fe80::1%25eth0]/", "https://hr.example:0/", "https://hr.example/#x", "https:///path", "HTTPS://HR.EXAMPLE/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		strict := isDestinationURL(s, false)
		if strict && !isDestinationURL(s, true) {
			t.Fatalf("%q accepted without private addresses, refused with them", s)
		}
		for _, allow := range []bool{false, true} {
			if !isDestinationURL(s, allow) {
				continue
			}
			u, err := url.Parse(s)
			if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || utf8.RuneCountInString(s) > MaxURLLength {
				t.Fatalf("%q accepted (allow private %v): %v", s, allow, err)
			}
			if u.Scheme != "https" && (u.Scheme != "http" || !allow) {
				t.Fatalf("%q accepted with scheme %q (allow private %v)", s, u.Scheme, allow)
			}
			if err := httpx.CheckHost(u.Host, allow); err != nil {
				t.Fatalf("%q accepted, and the guard refuses its host: %v", s, err)
			}
		}
	})
}
