package api_test

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
)

// headerBytes is the size of a response's header block, roughly as sent.
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func (ph *platformHub) loginForm(change func(url.Values)) response {
	ph.t.Helper()
	v := url.Values{"iss": {ph.p.Issuer()}, "client_id": {ph.p.ClientID}, "login_hint": {"u"},
		"target_link_uri": {ph.url + "/lti/launch"}, "lti_deployment_id": {ph.p.DeploymentID}}
	if change != nil {
		change(v)
	}
	res, err := ph.client.PostForm(ph.url+"/lti/login", v)
	if err != nil {
		ph.t.Fatal(err)
	}
	return readResponse(res)
}

// TestLoginParametersAreBounded: a login's parameters are echoed into the
// redirect, the state and a cookie; over-long ones, or ones that are not
// text, are refused with the readable page, and no answer's headers grow
// with what the caller sent.
func TestLoginParametersAreBounded(t *testing.T) {
	ph := newPlatformHub(t)
	t.Run("a 900 KB login hint", func(t *testing.T) {
		ph.t = t
		r := ph.loginForm(func(v url.Values) { v.Set("login_hint", strings.Repeat("h", 900<<10)) })
		ph.refusedWith(r, lti.ReasonInvalidParameter)
		if r.status != 400 || headerBytes(r.header) > 2<<10 || strings.Contains(string(r.body), "hhhh") {
			t.Fatalf("status %d, %d bytes of headers, %d of body", r.status, headerBytes(r.header), len(r.body))
		}
	})
	for name, bound := range map[string]int{"iss": 2048, "client_id": 255, "login_hint": 4096, "lti_message_hint": 4096,
		"target_link_uri": 2048, "lti_deployment_id": 255, "lti_storage_target": 255} {
		t.Run(name+" one byte over", func(t *testing.T) {
			ph.t = t
			ph.refusedWith(ph.loginForm(func(v url.Values) { v.Set(name, sized("https://x.example/", bound+1)) }), lti.ReasonInvalidParameter)
		})
		t.Run(name+" with NUL", func(t *testing.T) {
			ph.t = t
			ph.refusedWith(ph.loginForm(func(v url.Values) { v.Set(name, v.Get(name)+"\x00") }), lti.ReasonInvalidParameter)
		})
		t.Run(name+" not UTF-8", func(t *testing.T) {
			ph.t = t
			ph.refusedWith(ph.loginForm(func(v url.Values) { v.Set(name, v.Get(name)+"\xff") }), lti.ReasonInvalidParameter)
		})
	}
	t.Run("hints at their bounds", func(t *testing.T) {
		ph.t = t
		r := ph.loginForm(func(v url.Values) {
			v.Set("login_hint", sized("eyJ", 4096))
			v.Set("lti_message_hint", sized("eyJ", 4096))
		})
		if r.status != http.StatusFound || headerBytes(r.header) > 32<<10 {
			t.Fatalf("status %d, %d bytes of headers", r.status, headerBytes(r.header))
		}
	})
	t.Run("hints within bounds whose redirect would not be", func(t *testing.T) {
		ph.t = t
		r := ph.loginForm(func(v url.Values) {
			v.Set("login_hint", strings.Repeat(`"`, 4096))
			v.Set("lti_message_hint", strings.Repeat(`<`, 4096))
		})
		ph.refusedWith(r, lti.ReasonInvalidParameter)
		if headerBytes(r.header) > 2<<10 {
			t.Fatalf("%d bytes of headers", headerBytes(r.header))
		}
	})
}

// TestLoginLookupsAreRateLimitedPerSource: a source that makes the hub
// look up registrations faster than its limit gets 429 with Retry-After
// and the readable page; another source, and lookups the cache answers,
// are not held back.
func TestLoginLookupsAreRateLimitedPerSource(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	d := pgtest.New(t)
	h := serveHubWith(t, d, mustOpen(t, d), func(deps *api.Deps) {
		deps.LTI.LoginLimiter = lti.NewSourceLimiter(0.001, 3, 100)
	}, func(c *config.Config) { c.TrustedProxies = []*net.IPNet{loopback} })
	ph := &platformHub{hub: h}
	n := 0
	login := func(from, iss string) response {
		t.Helper()
		if iss == "" {
			n++
			iss = fmt.Sprintf("https://lms-%d.example", n)
		}
		q := url.Values{"iss": {iss}, "login_hint": {"u"}, "target_link_uri": {h.url + "/lti/launch"}}
		req, _ := http.NewRequest("GET", h.url+"/lti/login?"+q.Encode(), nil)
		req.Header.Set("X-Forwarded-For", from)
		return h.send(req)
	}
	for range 3 {
		ph.refusedWith(login("203.0.113.7", ""), lti.ReasonUnknownRegistration)
	}
	r := login("203.0.113.7", "")
	ph.refusedWith(r, lti.ReasonRateLimited)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || r.header.Get("Retry-After") == "0" {
		t.Fatalf("status %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	ph.refusedWith(login("203.0.113.8", ""), lti.ReasonUnknownRegistration)
	// What the cache answers costs no lookup, and is not limited.
	ph.refusedWith(login("203.0.113.7", "https://lms-1.example"), lti.ReasonUnknownRegistration)

	// An IPv6 source is its /64.
	for i := range 3 {
		ph.refusedWith(login(fmt.Sprintf("2001:db8::%x", i+1), ""), lti.ReasonUnknownRegistration)
	}
	ph.refusedWith(login("2001:db8::ff", ""), lti.ReasonRateLimited)
	ph.refusedWith(login("2001:db8:0:1::1", ""), lti.ReasonUnknownRegistration)
}
