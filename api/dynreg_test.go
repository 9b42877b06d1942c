package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

// TestDynamicRegistrationEndsWithAWorkingLaunch: a tenant admin makes a
// link, an LMS opens it, and the first launch from that LMS succeeds.
func TestDynamicRegistrationEndsWithAWorkingLaunch(t *testing.T) {
	d := pgtest.New(t)
	h := serveHub(t, d, mustOpen(t, d))
	h.createTenant("uni", "institution")
	p := ltitest.New()
	defer p.Close()
	p.RegistrationToken = "registration-token-from-lms"

	link := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201)
	linkURL := link.field(t, "url")
	if !strings.HasPrefix(linkURL, h.url+"/lti/register/") {
		t.Fatalf("link %q", linkURL)
	}
	ph := &platformHub{hub: h, p: p, slug: "uni"}
	open := func(u string) response {
		return ph.get(u + "?" + url.Values{"openid_configuration": {p.OpenIDConfigurationURL()}, "registration_token": {p.RegistrationToken}}.Encode())
	}
	r := open(linkURL)
	if r.status != 200 || !strings.Contains(string(r.body), "org.imsglobal.lti.close") {
		t.Fatalf("registration page: %d\n%s", r.status, r.body)
	}
	if !slices.Equal(p.Registered, advantageScopes) {
		t.Fatalf("the tool asked for scopes %v", p.Registered)
	}
	var regs struct {
		Items []struct {
			ID          string   `json:"id"`
			ClientID    string   `json:"client_id"`
			Deployments []string `json:"deployment_ids"`
		} `json:"items"`
	}
	h.expect(h.do("GET", "/api/v1/tenants/uni/lti/registrations", adminToken, nil), 200).json(t, &regs)
	if len(regs.Items) != 1 || regs.Items[0].ClientID != p.ClientID || len(regs.Items[0].Deployments) != 1 {
		t.Fatalf("registrations after dynamic registration: %+v", regs)
	}
	// The platform launches through the login URL it was given: the
	// registration's own.
	if p.RegisteredLoginURL != h.url+"/lti/login/"+regs.Items[0].ID {
		t.Fatalf("the platform was given the login URL %q", p.RegisteredLoginURL)
	}
	ph.succeeded(ph.launchVia(p.RegisteredLoginURL, ltitest.Launch{}))
	ph.succeeded(ph.launch(ltitest.Launch{}))

	t.Run("a used link is refused", func(t *testing.T) {
		ph.t = t
		ph.refusedWith(open(linkURL), lti.ReasonRegistrationLink)
	})
	t.Run("an unknown link is refused", func(t *testing.T) {
		ph.t = t
		ph.refusedWith(open(h.url+"/lti/register/made-up"), lti.ReasonRegistrationLink)
	})
}

func TestDynamicRegistrationRefusals(t *testing.T) {
	d := pgtest.New(t)
	h := serveHub(t, d, mustOpen(t, d))
	h.createTenant("uni", "institution")
	ph := &platformHub{hub: h, slug: "uni"}
	newLink := func() string {
		return h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
	}
	tests := []struct {
		name   string
		setup  func(p *ltitest.Platform)
		config func(p *ltitest.Platform) string
		reason lti.Reason
	}{
		{"issuer does not match the configuration URL", func(p *ltitest.Platform) { p.ConfigIssuer = "https://other.example" },
			(*ltitest.Platform).OpenIDConfigurationURL, lti.ReasonPlatformConfig},
		{"configuration URL is not a URL", nil, func(*ltitest.Platform) string { return "not a url" }, lti.ReasonPlatformConfig},
		{"configuration unreachable", nil, func(p *ltitest.Platform) string { return p.Server.URL + "/nothing-here" }, lti.ReasonPlatformConfig},
		{"platform refuses the registration token", func(p *ltitest.Platform) { p.RegistrationToken = "expected-other" },
			(*ltitest.Platform).OpenIDConfigurationURL, lti.ReasonPlatformRegistration},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ph.t = t
			p := ltitest.New()
			defer p.Close()
			if tc.setup != nil {
				tc.setup(p)
			}
			u := newLink() + "?" + url.Values{"openid_configuration": {tc.config(p)}, "registration_token": {"wrong"}}.Encode()
			ph.refusedWith(ph.get(u), tc.reason)
		})
	}
	ph.t = t
	if n := ph.rows("lti_registrations"); n != 0 {
		t.Fatalf("refused registrations stored %d rows", n)
	}

	t.Run("an expired link is refused", func(t *testing.T) {
		ph.t = t
		link := newLink()
		pgtest.Superuser(t, h.dbt).MustExec(`UPDATE lti_registration_links SET expires_at = $1`, time.Now().Add(-time.Minute))
		ph.refusedWith(ph.get(link+"?openid_configuration=https://x.example/c"), lti.ReasonRegistrationLink)
	})
}

// TestDynamicRegistrationWithRecordedPlatforms registers with Canvas's,
// Moodle's and Sakai's documented configuration and answers.
func TestDynamicRegistrationWithRecordedPlatforms(t *testing.T) {
	d := pgtest.New(t)
	h := serveHub(t, d, mustOpen(t, d))
	h.createTenant("uni", "institution")
	ph := &platformHub{hub: h, slug: "uni"}
	for lms, want := range map[string]struct{ clientID, deployment string }{
		"canvas": {"10000000000001", ""},
		"moodle": {"EXAMPLEclient01", "2"},
		"sakai":  {"00000000-0000-4000-8000-00000000c5a1", "1"},
	} {
		t.Run(lms, func(t *testing.T) {
			ph.t = t
			r, err := ltitest.NewRecordedRegistrar(lms)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Server.Close()
			link := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
			page := ph.get(link + "?" + url.Values{"openid_configuration": {r.ConfigURL}, "registration_token": {r.Token}}.Encode())
			if page.status != 200 || !strings.Contains(string(page.body), "org.imsglobal.lti.close") {
				t.Fatalf("registration with recorded %s: %d\n%s", lms, page.status, page.body)
			}
			var regs struct {
				Items []struct {
					ID          string   `json:"id"`
					Issuer      string   `json:"issuer"`
					ClientID    string   `json:"client_id"`
					JWKSURL     string   `json:"jwks_url"`
					Deployments []string `json:"deployment_ids"`
				} `json:"items"`
			}
			h.expect(h.do("GET", "/api/v1/tenants/uni/lti/registrations?limit=200", adminToken, nil), 200).json(t, &regs)
			var found bool
			for _, reg := range regs.Items {
				if reg.ClientID == want.clientID && reg.Issuer == r.Server.URL {
					found = true
					if strings.Join(reg.Deployments, ",") != want.deployment || !strings.HasPrefix(reg.JWKSURL, r.Server.URL) {
						t.Fatalf("%s registration %+v", lms, reg)
					}
					// The platform was given the registration's own login URL.
					if r.Received["initiate_login_uri"] != h.url+"/lti/login/"+reg.ID {
						t.Fatalf("%s received %v for registration %s", lms, r.Received, reg.ID)
					}
				}
			}
			if !found {
				t.Fatalf("no %s registration with client %q among %+v", lms, want.clientID, regs.Items)
			}
		})
	}
}

// TestCanvasStyleRegistrationAdoptsTheFirstDeployment: Canvas answers a
// dynamic registration without a deployment id; the first signed launch
// names it, and only that deployment is adopted.
func TestCanvasStyleRegistrationAdoptsTheFirstDeployment(t *testing.T) {
	ph := newLinkHub(t)
	h, p := ph.hub, ph.p
	p.RegisterWithoutDeployment = true
	link := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
	if r := ph.get(link + "?" + url.Values{"openid_configuration": {p.OpenIDConfigurationURL()}}.Encode()); r.status != 200 {
		t.Fatalf("registration: %d %s", r.status, r.body)
	}
	ph.succeeded(ph.launch(ltitest.Launch{}))
	ph.succeeded(ph.launch(ltitest.Launch{}))
	other := ltitest.Launch{Tamper: func(_, c map[string]any) { c[lti.ClaimDeploymentID] = "another-installation" }}
	ph.deps.LTI.CacheTTL = 0
	ph.refusedWith(ph.launch(other), lti.ReasonUnknownDeployment)
	var page auditPage
	h.expect(h.do("GET", "/api/v1/tenants/uni/audit?action=lti_deployment.adopted", adminToken, nil), 200).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Details["deployment_id"] != p.DeploymentID {
		t.Fatalf("adoption audit: %+v", page.Items)
	}
}

// TestDynamicRegistrationRequiresHTTPS: without HUB_OUTBOUND_ALLOW_PRIVATE
// the platform's OpenID configuration and its registration endpoint must be
// https; the hub neither fetches nor posts to a plain http one and stores
// nothing. With the setting, http is accepted. The platform runs on
// loopback over TLS, and the hub's client is let through to it, so the
// scheme rule is what is tested, not the address guard.
func TestDynamicRegistrationRequiresHTTPS(t *testing.T) {
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"client_id":"dyn-client","https://purl.imsglobal.org/spec/lti-tool-configuration":{"deployment_id":"d1"}}`))
	}))
	defer plain.Close()
	var platform *httptest.Server
	platform = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": platform.URL,
			"authorization_endpoint": platform.URL + "/auth", "token_endpoint": platform.URL + "/token",
			"jwks_uri": platform.URL + "/jwks", "registration_endpoint": plain.URL + "/register"})
	}))
	defer platform.Close()

	tests := []struct {
		name         string
		allowPrivate bool
		config       string
		refused      bool
	}{
		{"http openid configuration refused", false, plain.URL + "/.well-known/openid-configuration", true},
		{"http registration endpoint refused", false, platform.URL + "/.well-known/openid-configuration", true},
		{"http registration endpoint accepted with private addresses allowed", true, platform.URL + "/.well-known/openid-configuration", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plainHits.Store(0)
			d := pgtest.New(t)
			h := serveHub(t, d, mustOpen(t, d), func(c *config.Config) { c.OutboundAllowPrivate = tc.allowPrivate })
			client := httpx.New(true)
			client.Transport.(*http.Transport).TLSClientConfig = platform.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			h.deps.LTI.Client = client
			h.createTenant("uni", "institution")
			ph := &platformHub{hub: h, slug: "uni"}
			link := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
			r := ph.get(link + "?" + url.Values{"openid_configuration": {tc.config}, "registration_token": {"tok"}}.Encode())
			if !tc.refused {
				if r.status != 200 || plainHits.Load() != 1 || ph.rows("lti_registrations") != 1 {
					t.Fatalf("status %d, %d calls to the registration endpoint, %d rows\n%s", r.status, plainHits.Load(), ph.rows("lti_registrations"), r.body)
				}
				return
			}
			ph.refusedWith(r, lti.ReasonPlatformConfig)
			if n := plainHits.Load(); n != 0 {
				t.Fatalf("the hub called the plain http platform %d times", n)
			}
			if n := ph.rows("lti_registrations"); n != 0 {
				t.Fatalf("a refused registration stored %d rows", n)
			}
		})
	}
}

// TestRegistrationLinkOpenedManyTimesAtOnce: an LMS admin double-clicking,
// or a page opened in ten tabs, registers the hub at the platform once and
// stores one registration; the other openings are refused.
func TestRegistrationLinkOpenedManyTimesAtOnce(t *testing.T) {
	ph := newLinkHub(t)
	h, p := ph.hub, ph.p
	p.RegisterDelay = 200 * time.Millisecond
	link := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
	u := link + "?" + url.Values{"openid_configuration": {p.OpenIDConfigurationURL()}}.Encode()

	const opens = 10
	pages := make([]response, opens)
	var wg sync.WaitGroup
	for i := range opens {
		wg.Go(func() {
			res, err := h.client.Get(u)
			if err != nil {
				t.Error(err)
				return
			}
			pages[i] = readResponse(res)
		})
	}
	wg.Wait()
	registered := 0
	for _, page := range pages {
		if page.status == 200 && strings.Contains(string(page.body), "org.imsglobal.lti.close") {
			registered++
			continue
		}
		ph.refusedWith(page, lti.ReasonRegistrationLink)
	}
	if registered != 1 || p.Clients() != 1 || ph.rows("lti_registrations") != 1 {
		t.Fatalf("%d pages said registered, the platform made %d clients, the hub stored %d registrations",
			registered, p.Clients(), ph.rows("lti_registrations"))
	}
	ph.refusedWith(ph.get(u), lti.ReasonRegistrationLink)
	if p.Clients() != 1 {
		t.Fatalf("the used link registered again: %d clients", p.Clients())
	}
}

// TestFailedRegistrationGivesTheLinkBack: a link whose registration failed
// (here the platform refused the token) can be used again.
func TestFailedRegistrationGivesTheLinkBack(t *testing.T) {
	ph := newLinkHub(t)
	h, p := ph.hub, ph.p
	p.RegistrationToken = "right"
	link := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
	open := func(token string) response {
		return ph.get(link + "?" + url.Values{"openid_configuration": {p.OpenIDConfigurationURL()}, "registration_token": {token}}.Encode())
	}
	ph.refusedWith(open("wrong"), lti.ReasonPlatformRegistration)
	if r := open("right"); r.status != 200 {
		t.Fatalf("the link after a failed registration: %d\n%s", r.status, r.body)
	}
	if n := ph.rows("lti_registrations"); n != 1 {
		t.Fatalf("%d registrations", n)
	}
	ph.refusedWith(open("right"), lti.ReasonRegistrationLink)
}

// TestDynamicRegistrationHonoursSuspension: a suspended tenant's link
// neither opens nor completes a registration; the link survives for the
// tenant's return.
func TestDynamicRegistrationHonoursSuspension(t *testing.T) {
	ph := newLinkHub(t)
	h, p := ph.hub, ph.p
	link := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
	open := func() response {
		return ph.get(link + "?" + url.Values{"openid_configuration": {p.OpenIDConfigurationURL()}}.Encode())
	}

	t.Run("opened while suspended", func(t *testing.T) {
		ph.t = t
		h.expect(h.do("POST", "/api/v1/tenants/uni/suspend", adminToken, nil), 200)
		ph.refusedWith(open(), lti.ReasonTenantSuspended)
		if p.Clients() != 0 {
			t.Fatal("the hub registered at the platform for a suspended tenant")
		}
		h.expect(h.do("POST", "/api/v1/tenants/uni/reactivate", adminToken, nil), 200)
	})
	t.Run("suspended while the platform registers", func(t *testing.T) {
		ph.t = t
		p.OnRegister = func() { h.expect(h.do("POST", "/api/v1/tenants/uni/suspend", adminToken, nil), 200) }
		ph.refusedWith(open(), lti.ReasonTenantSuspended)
		p.OnRegister = nil
		if n := ph.rows("lti_registrations"); n != 0 {
			t.Fatalf("a suspended tenant's registration was stored: %d rows", n)
		}
		h.expect(h.do("POST", "/api/v1/tenants/uni/reactivate", adminToken, nil), 200)
	})
	t.Run("the link works once the tenant is back", func(t *testing.T) {
		ph.t = t
		if r := open(); r.status != 200 || ph.rows("lti_registrations") != 1 {
			t.Fatalf("after reactivation: %d\n%s", r.status, r.body)
		}
	})
}

// TestRegistrationLinkSpentAfterFailedAttempts: each failed registration
// gives the link back, up to lti.MaxRegistrationAttempts; then the link is
// spent, and the page tells the LMS admin to ask for a new one.
func TestRegistrationLinkSpentAfterFailedAttempts(t *testing.T) {
	ph := newLinkHub(t)
	h, p := ph.hub, ph.p
	p.RegistrationToken = "right"
	link := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
	open := func(token string) response {
		return ph.get(link + "?" + url.Values{"openid_configuration": {p.OpenIDConfigurationURL()}, "registration_token": {token}}.Encode())
	}
	for range lti.MaxRegistrationAttempts {
		ph.refusedWith(open("wrong"), lti.ReasonPlatformRegistration)
	}
	r := open("right")
	ph.refusedWith(r, lti.ReasonRegistrationLinkSpent)
	if !strings.Contains(string(r.body), "new registration link") {
		t.Fatalf("the spent link's page does not say what to do:\n%s", r.body)
	}
	if n := ph.rows("lti_registrations"); n != 0 {
		t.Fatalf("a spent link registered: %d rows", n)
	}
	var attempts int
	pgtest.Superuser(t, h.dbt).Get(&attempts, `SELECT failed_attempts FROM lti_registration_links`)
	if attempts != lti.MaxRegistrationAttempts {
		t.Fatalf("failed_attempts = %d, want %d", attempts, lti.MaxRegistrationAttempts)
	}
	var list struct {
		Items []struct {
			Status         string `json:"status"`
			FailedAttempts int    `json:"failed_attempts"`
		} `json:"items"`
	}
	h.expect(h.do("GET", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 200).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].Status != "spent" || list.Items[0].FailedAttempts != lti.MaxRegistrationAttempts {
		t.Fatalf("the spent link lists as %+v", list.Items)
	}
}

// TestRegistrationLinkOpenedOutsideTheLMS: an LMS admin who opens the link
// in a browser, not from the LMS, is told how to use it; the link is
// neither used nor counted as a failed attempt.
func TestRegistrationLinkOpenedOutsideTheLMS(t *testing.T) {
	ph := newLinkHub(t)
	h, p := ph.hub, ph.p
	link := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201).field(t, "url")
	for range lti.MaxRegistrationAttempts + 1 {
		r := ph.get(link)
		if r.status != 200 || !strings.Contains(string(r.body), "from your LMS") || strings.Contains(string(r.body), "org.imsglobal.lti.close") {
			t.Fatalf("the link opened outside the LMS: %d\n%s", r.status, r.body)
		}
	}
	if r := ph.get(link + "?" + url.Values{"openid_configuration": {p.OpenIDConfigurationURL()}}.Encode()); r.status != 200 || p.Clients() != 1 {
		t.Fatalf("the link after being opened outside the LMS: %d\n%s", r.status, r.body)
	}
}

// TestRegistrationLinkRevokedDuringAnAttempt: an admin revoking a link
// while the LMS registers through it wins: the attempt stores nothing, and
// the link stays revoked.
func TestRegistrationLinkRevokedDuringAnAttempt(t *testing.T) {
	ph := newLinkHub(t)
	h, p := ph.hub, ph.p
	created := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 201)
	link, id := created.field(t, "url"), created.field(t, "id")
	p.OnRegister = func() {
		h.expect(h.do("DELETE", "/api/v1/tenants/uni/lti/registration-links/"+id, adminToken, nil), 204)
	}
	ph.refusedWith(ph.get(link+"?"+url.Values{"openid_configuration": {p.OpenIDConfigurationURL()}}.Encode()), lti.ReasonRegistrationLink)
	p.OnRegister = nil
	if n := ph.rows("lti_registrations"); n != 0 {
		t.Fatalf("a registration through a revoked link was stored: %d rows", n)
	}
	var list struct {
		Items []struct {
			Status string `json:"status"`
		} `json:"items"`
	}
	h.expect(h.do("GET", "/api/v1/tenants/uni/lti/registration-links", adminToken, nil), 200).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].Status != "revoked" {
		t.Fatalf("the link lists as %+v", list.Items)
	}
}

// newLinkHub is a hub with the tenant "uni" and a fake LMS to register
// through dynamic registration links.
func newLinkHub(t *testing.T) *platformHub {
	t.Helper()
	d := pgtest.New(t)
	h := serveHub(t, d, mustOpen(t, d))
	h.createTenant("uni", "institution")
	p := ltitest.New()
	t.Cleanup(p.Close)
	return &platformHub{hub: h, p: p, slug: "uni"}
}
