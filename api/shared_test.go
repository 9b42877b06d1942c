package api_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

// rowsOf counts a table's rows of the tenant with slug, as the superuser.
func (ph *platformHub) rowsOf(table, slug string) int {
	ph.t.Helper()
	var n int
	err := pgtest.Superuser(ph.t, ph.dbt).Get(&n, `SELECT count(*) FROM `+table+` x JOIN tenants t ON t.id = x.tenant_id WHERE t.slug = $1`, slug)
	if err != nil {
		ph.t.Fatal(err)
	}
	return n
}

// landedIn checks a launch reached the landing page of the tenant slug.
func (ph *platformHub) landedIn(r response, slug string) {
	ph.t.Helper()
	ph.succeeded(r)
	if !strings.Contains(string(r.body), "<dd>T "+slug+"</dd>") {
		ph.t.Fatalf("the launch did not land in %s:\n%s", slug, r.body)
	}
}

// TestSharedRegistrationRoutesEachDeploymentToItsTenant: a platform that
// gives every institution one client_id (Blackboard) is registered once
// by the operator; its two deployments are assigned to two tenants, and
// each deployment's launches land in, and are recorded for, its tenant.
func TestSharedRegistrationRoutesEachDeploymentToItsTenant(t *testing.T) {
	d := pgtest.New(t)
	h := serveHub(t, d, mustOpen(t, d))
	p := ltitest.New()
	t.Cleanup(p.Close)
	ph := &platformHub{hub: h, p: p}
	h.createTenant("uni-a", "institution")
	h.createTenant("uni-b", "institution")
	_, keyA := h.createKey("uni-a", "write")

	body := map[string]any{"issuer": p.Issuer(), "client_id": p.ClientID, "auth_login_url": p.AuthURL(),
		"auth_token_url": p.TokenURL(), "jwks_url": p.JWKSURL()}
	h.problem(h.do("POST", "/api/v1/lti/registrations", keyA, body), 403, "forbidden")
	created := h.expect(h.do("POST", "/api/v1/lti/registrations", adminToken, body), 201)
	var reg struct {
		ID          string `json:"id"`
		LoginURL    string `json:"login_url"`
		Deployments []struct {
			DeploymentID string `json:"deployment_id"`
			Tenant       string `json:"tenant"`
		} `json:"deployments"`
	}
	created.json(t, &reg)
	if reg.LoginURL != h.url+"/lti/login/"+reg.ID || reg.Deployments == nil || len(reg.Deployments) != 0 {
		t.Fatalf("created %s", created.body)
	}
	h.problem(h.do("POST", "/api/v1/lti/registrations", adminToken, body), 409, "conflict")
	base := "/api/v1/lti/registrations/" + reg.ID
	h.expect(h.do("POST", base+"/deployments", adminToken, map[string]string{"deployment_id": "bb-dep-1", "tenant": "uni-a"}), 201)
	h.expect(h.do("POST", base+"/deployments", adminToken, map[string]string{"deployment_id": "bb-dep-2", "tenant": "uni-b"}), 201)
	h.problem(h.do("POST", base+"/deployments", adminToken, map[string]string{"deployment_id": "bb-dep-1", "tenant": "uni-b"}), 409, "conflict")
	prob := h.problem(h.do("POST", base+"/deployments", adminToken, map[string]string{"deployment_id": "bb-dep-3", "tenant": "nobody"}), 400, "validation")
	if len(prob.Errors) != 1 || prob.Errors[0].Field != "tenant" {
		t.Fatalf("errors %+v", prob.Errors)
	}
	h.problem(h.do("POST", base+"/deployments", keyA, map[string]string{"deployment_id": "bb-dep-3", "tenant": "uni-a"}), 403, "forbidden")
	h.expect(h.do("GET", base, adminToken, nil), 200).json(t, &reg)
	if len(reg.Deployments) != 2 || reg.Deployments[0].Tenant != "uni-a" || reg.Deployments[1].Tenant != "uni-b" {
		t.Fatalf("deployments %+v", reg.Deployments)
	}

	from := func(deployment string) ltitest.Launch {
		p.DeploymentID = deployment
		return ltitest.Launch{Subject: "student-of-" + deployment}
	}
	t.Run("each deployment lands in its tenant", func(t *testing.T) {
		ph.t = t
		ph.landedIn(ph.launch(from("bb-dep-1")), "uni-a")
		ph.landedIn(ph.launch(from("bb-dep-2")), "uni-b")
		ph.landedIn(ph.launchVia(reg.LoginURL, from("bb-dep-2")), "uni-b")
		for _, table := range []string{"users", "lti_identities", "contexts", "resource_links", "memberships", "lti_nonces"} {
			if a, b := ph.rowsOf(table, "uni-a"), ph.rowsOf(table, "uni-b"); a != 1 || b < 1 {
				t.Errorf("%s: %d rows of uni-a, %d of uni-b", table, a, b)
			}
		}
	})
	t.Run("an unassigned deployment is unknown", func(t *testing.T) {
		ph.t = t
		ph.refusedWith(ph.launch(from("bb-dep-9")), lti.ReasonUnknownDeployment)
	})
	t.Run("an id_token for another tenant's deployment is refused", func(t *testing.T) {
		ph.t = t
		l := from("bb-dep-1")
		l.Tamper = func(_, c map[string]any) { c[lti.ClaimDeploymentID] = "bb-dep-2" }
		ph.refusedWith(ph.launch(l), lti.ReasonUnknownDeployment)
	})
	t.Run("a tenant's own copy of the shared pair takes none of its logins", func(t *testing.T) {
		ph.t = t
		h.createTenant("intruder", "institution")
		_, keyB := h.createKey("intruder", "write")
		copyOf := map[string]any{"issuer": p.Issuer(), "client_id": p.ClientID, "auth_login_url": p.AuthURL(),
			"auth_token_url": p.TokenURL(), "jwks_url": p.JWKSURL(), "deployment_ids": []string{"bb-dep-new", "bb-dep-1"}}
		h.expect(h.do("POST", "/api/v1/tenants/intruder/lti/registrations", keyB, copyOf), 201)
		// An installation the operator has not assigned yet stays unknown,
		// and one it assigned still reaches its tenant.
		ph.refusedWith(ph.launch(from("bb-dep-new")), lti.ReasonUnknownDeployment)
		ph.landedIn(ph.launch(from("bb-dep-1")), "uni-a")
		if n := ph.rowsOf("users", "intruder"); n != 0 {
			t.Fatalf("the intruder holds %d users", n)
		}
	})
	t.Run("a login without a deployment id is not routed", func(t *testing.T) {
		ph.t = t
		q := url.Values{"iss": {p.Issuer()}, "client_id": {p.ClientID}, "login_hint": {"u"}, "target_link_uri": {h.url + "/lti/launch"}}
		r := ph.get(h.url + "/lti/login?" + q.Encode())
		ph.refusedWith(r, lti.ReasonAmbiguousIssuer)
		if !strings.Contains(string(r.body), h.url+"/lti/login/{registration id}") || strings.Contains(string(r.body), reg.ID) {
			t.Fatalf("the page should name the form of the registration's login URL, and no registration:\n%s", r.body)
		}
	})
	t.Run("editing keeps the deployments", func(t *testing.T) {
		ph.t = t
		r := h.expect(h.do("PATCH", base, adminToken, map[string]string{"token_audience": p.TokenURL() + "/aud"}), 200)
		r.json(t, &reg)
		if r.field(t, "token_audience") != p.TokenURL()+"/aud" || len(reg.Deployments) != 2 {
			t.Fatalf("after the edit: %s", r.body)
		}
		ph.landedIn(ph.launch(from("bb-dep-1")), "uni-a")
	})
	t.Run("unassigning a deployment with records asks first", func(t *testing.T) {
		ph.t = t
		h.problem(h.do("DELETE", base+"/deployments/bb-dep-2", adminToken, nil), 409, "conflict")
		h.expect(h.do("DELETE", base+"/deployments/bb-dep-2?force=true", adminToken, nil), 204)
		h.problem(h.do("DELETE", base+"/deployments/bb-dep-2", adminToken, nil), 404, "not-found")
		if b, a := ph.rowsOf("contexts", "uni-b"), ph.rowsOf("contexts", "uni-a"); b != 0 || a != 1 {
			t.Fatalf("contexts after unassigning: uni-b %d, uni-a %d", b, a)
		}
		ph.refusedWith(ph.launch(from("bb-dep-2")), lti.ReasonUnknownDeployment)
	})
	t.Run("deleting asks first too", func(t *testing.T) {
		ph.t = t
		h.problem(h.do("DELETE", base, adminToken, nil), 409, "conflict")
		h.expect(h.do("DELETE", base+"?force=true", adminToken, nil), 204)
		h.problem(h.do("GET", base, adminToken, nil), 404, "not-found")
		if n := ph.rows("contexts"); n != 0 {
			t.Fatalf("%d contexts after the forced deletion", n)
		}
	})
}

// TestTenantRegisteringAnothersClientIDGetsNoneOfItsLaunches: tenant B
// registers tenant A's issuer and client_id. B gets 201 and answers that
// tell it nothing a fresh client_id would not; A's launches land in A
// through A's own login URL, and the shared login URL, with the pair now
// held by two tenants, routes neither (not even a deployment id B listed
// before A registered it).
func TestTenantRegisteringAnothersClientIDGetsNoneOfItsLaunches(t *testing.T) {
	ph := newPlatformHub(t) // tenant "uni" holds the platform's registration
	ph.createTenant("intruder", "institution")
	_, keyB := ph.createKey("intruder", "write")
	regB := func(clientID string, deployments []string) response {
		return ph.do("POST", "/api/v1/tenants/intruder/lti/registrations", keyB, map[string]any{
			"issuer": ph.p.Issuer(), "client_id": clientID, "auth_login_url": ph.p.AuthURL(),
			"auth_token_url": ph.p.TokenURL(), "jwks_url": ph.p.JWKSURL(), "deployment_ids": deployments})
	}
	taken, fresh := regB(ph.p.ClientID, nil), regB("a-fresh-client", nil)
	ph.expect(taken, 201)
	ph.expect(fresh, 201)
	if shape(t, taken.body) != shape(t, fresh.body) || !strings.Contains(string(taken.body), `"deployment_ids":[]`) {
		t.Fatalf("answers differ:\n%s\n%s", taken.body, fresh.body)
	}
	idB := taken.field(t, "id")
	for _, path := range []string{"", "/tool-configuration"} {
		a := ph.expect(ph.do("GET", "/api/v1/tenants/intruder/lti/registrations/"+idB+path, keyB, nil), 200)
		b := ph.expect(ph.do("GET", "/api/v1/tenants/intruder/lti/registrations/"+fresh.field(t, "id")+path, keyB, nil), 200)
		if shape(t, a.body) != shape(t, b.body) {
			t.Fatalf("GET %s answers differ:\n%s\n%s", path, a.body, b.body)
		}
	}
	// A second registration of the pair within one tenant is refused, as
	// it is for a fresh pair: the tenant's own registrations only.
	ph.problem(regB(ph.p.ClientID, nil), 409, "conflict")
	ph.problem(regB("a-fresh-client", nil), 409, "conflict")

	ownURL := ph.url + "/lti/login/" + ph.reg
	t.Run("A's launches land in A, never in B", func(t *testing.T) {
		ph.t = t
		// The pair is contested: the shared login URL routes neither
		// tenant's registration, whatever deployment id the login names.
		ph.refusedWith(ph.launch(ltitest.Launch{}), lti.ReasonAmbiguousIssuer)
		ph.landedIn(ph.launchVia(ownURL, ltitest.Launch{}), "uni")
		if n := ph.rowsOf("contexts", "intruder") + ph.rowsOf("lti_nonces", "intruder") + ph.rowsOf("users", "intruder"); n != 0 {
			t.Fatalf("the intruder holds %d rows of A's launches", n)
		}
	})
	t.Run("a deployment B listed first, before A registered it, does not route to B", func(t *testing.T) {
		ph.t = t
		ph.expect(ph.do("POST", "/api/v1/tenants/intruder/lti/registrations/"+idB+"/deployments", keyB,
			map[string]string{"deployment_id": "a-new-installation"}), 201)
		orig := ph.p.DeploymentID
		ph.p.DeploymentID = "a-new-installation"
		defer func() { ph.p.DeploymentID = orig }()
		ph.refusedWith(ph.launch(ltitest.Launch{}), lti.ReasonAmbiguousIssuer)
		if n := ph.rowsOf("users", "intruder"); n != 0 {
			t.Fatalf("the intruder holds %d users", n)
		}
	})
	t.Run("a deployment both claim is not routed by the shared login URL", func(t *testing.T) {
		ph.t = t
		ph.expect(ph.do("POST", "/api/v1/tenants/intruder/lti/registrations/"+idB+"/deployments", keyB,
			map[string]string{"deployment_id": ph.p.DeploymentID}), 201)
		ph.refusedWith(ph.launch(ltitest.Launch{}), lti.ReasonAmbiguousIssuer)
		ph.landedIn(ph.launchVia(ownURL, ltitest.Launch{}), "uni")
		if n := ph.rowsOf("contexts", "intruder") + ph.rowsOf("lti_nonces", "intruder"); n != 0 {
			t.Fatalf("the intruder holds %d rows of A's launches", n)
		}
	})
}

// shape is a JSON object's keys, to compare answers whose values differ.
func shape(t *testing.T, body []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return strings.Join(slices.Sorted(maps.Keys(m)), ",")
}

// TestEditingARegistrationKeepsItsDeploymentsAndCourses: PATCH changes the
// platform's endpoints, validated as at creation, and nothing else; the
// change reaches logins at once.
func TestEditingARegistrationKeepsItsDeploymentsAndCourses(t *testing.T) {
	ph := newPlatformHub(t)
	ph.deps.LTI.CacheTTL = 0 // the launches below must reach the database
	ph.succeeded(ph.launch(ltitest.Launch{}))
	ph.deps.LTI.CacheTTL = 1 << 40 // from here on a stale cache would show
	base := "/api/v1/tenants/uni/lti/registrations/" + ph.reg
	loginRedirect := func() string {
		r := ph.get(ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{}))
		if r.status != http.StatusFound {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		return r.header.Get("Location")
	}
	if !strings.HasPrefix(loginRedirect(), ph.p.AuthURL()+"?") {
		t.Fatal("login does not redirect to the platform")
	}

	p := ph.problem(ph.do("PATCH", base, adminToken, map[string]any{"jwks_url": "ftp://x.example/jwks", "auth_token_url": ""}), 400, "validation")
	if len(p.Errors) != 2 {
		t.Fatalf("errors %+v", p.Errors)
	}
	ph.problem(ph.do("PATCH", base, adminToken, map[string]any{"issuer": "https://other.example"}), 400, "validation")
	ph.problem(ph.do("PATCH", "/api/v1/tenants/uni/lti/registrations/00000000-0000-4000-8000-000000000000", adminToken,
		map[string]any{"token_audience": "x"}), 404, "not-found")

	moved := ph.p.AuthURL() + "?moved=1"
	r := ph.expect(ph.do("PATCH", base, adminToken, map[string]any{"auth_login_url": moved, "token_audience": ph.p.TokenURL()}), 200)
	if r.field(t, "auth_login_url") != moved || !strings.Contains(string(r.body), `"deployment_ids":["`+ph.p.DeploymentID+`"]`) {
		t.Fatalf("after PATCH: %s", r.body)
	}
	if loc := loginRedirect(); !strings.HasPrefix(loc, moved+"&") {
		t.Fatalf("a login after the edit redirects to %q: the cached registration was not forgotten", loc)
	}
	if n := ph.rows("contexts"); n != 1 {
		t.Fatalf("%d contexts after the edit", n)
	}
	var audit struct {
		Items []struct {
			Action  string            `json:"action"`
			Details map[string]string `json:"details"`
		} `json:"items"`
	}
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/audit?action=lti_registration.updated", adminToken, nil), 200).json(t, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Details["changed"] != "auth_login_url,token_audience" {
		t.Fatalf("audit %+v", audit.Items)
	}
	ph.succeeded(ph.launchVia(ph.url+"/lti/login/"+ph.reg, ltitest.Launch{}))
}

// TestDeletingARegistrationWithCoursesAsksFirst: launch records are never
// erased unless the caller says so.
func TestDeletingARegistrationWithCoursesAsksFirst(t *testing.T) {
	ph := newPlatformHub(t)
	ph.succeeded(ph.launch(ltitest.Launch{}))
	base := "/api/v1/tenants/uni/lti/registrations/" + ph.reg
	ph.problem(ph.do("DELETE", base, adminToken, nil), 409, "conflict")
	ph.problem(ph.do("DELETE", base+"/deployments/"+ph.p.DeploymentID, adminToken, nil), 409, "conflict")
	ph.problem(ph.do("DELETE", base+"?force=maybe", adminToken, nil), 400, "validation")
	if ph.rows("contexts") != 1 || ph.rows("memberships") != 1 || ph.rows("lti_deployments") != 1 {
		t.Fatal("a refused deletion changed something")
	}
	ph.expect(ph.do("DELETE", base+"?force=true", adminToken, nil), 204)
	for _, table := range []string{"lti_registrations", "lti_deployments", "contexts", "resource_links", "memberships"} {
		if n := ph.rows(table); n != 0 {
			t.Errorf("%s: %d rows after the forced deletion", table, n)
		}
	}
	if ph.rows("users") != 1 {
		t.Error("users went with the registration")
	}
}

// TestRegistrationLinksAreListedAndRevoked: the list shows each link's
// status and never its token; a revoked link registers nothing.
func TestRegistrationLinksAreListedAndRevoked(t *testing.T) {
	ph := newPlatformHub(t)
	ph.createTenant("other", "institution")
	_, keyOther := ph.createKey("other", "write")
	path := "/api/v1/tenants/uni/lti/registration-links"
	first := ph.expect(ph.do("POST", path, adminToken, nil), 201)
	second := ph.expect(ph.do("POST", path, adminToken, nil), 201)
	token := strings.TrimPrefix(first.field(t, "url"), ph.url+"/lti/register/")

	type link struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	list := func() []link {
		r := ph.expect(ph.do("GET", path, adminToken, nil), 200)
		if strings.Contains(string(r.body), token) || strings.Contains(string(r.body), "/lti/register/") {
			t.Fatalf("the list shows a token: %s", r.body)
		}
		var l struct{ Items []link }
		r.json(t, &l)
		return l.Items
	}
	if got := list(); len(got) != 2 || got[0].Status != "active" || got[1].Status != "active" {
		t.Fatalf("links %+v", got)
	}
	ph.problem(ph.do("DELETE", "/api/v1/tenants/other/lti/registration-links/"+first.field(t, "id"), keyOther, nil), 404, "not-found")
	ph.expect(ph.do("DELETE", path+"/"+first.field(t, "id"), adminToken, nil), 204)
	ph.expect(ph.do("DELETE", path+"/"+first.field(t, "id"), adminToken, nil), 204)
	ph.problem(ph.do("DELETE", path+"/00000000-0000-4000-8000-000000000000", adminToken, nil), 404, "not-found")
	pgtest.Superuser(t, ph.dbt).MustExec(`UPDATE lti_registration_links SET expires_at = now() - interval '1 minute' WHERE id = $1`,
		second.field(t, "id"))
	if got := list(); got[0].Status != "revoked" || got[1].Status != "expired" {
		t.Fatalf("links %+v", got)
	}
	p := ltitest.New()
	defer p.Close()
	r := ph.get(first.field(t, "url") + "?" + url.Values{"openid_configuration": {p.OpenIDConfigurationURL()}}.Encode())
	ph.refusedWith(r, lti.ReasonRegistrationLink)
	if p.Clients() != 0 {
		t.Fatal("a revoked link registered the hub with the platform")
	}
	ph.expect(ph.do("GET", "/api/v1/tenants/other/lti/registration-links", keyOther, nil), 200)
}
