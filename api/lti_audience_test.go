package api_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

// registerTrusting registers ph's platform again, under a client id of
// its own, trusting the given extra audiences, and makes the platform
// launch as that client.
func (ph *platformHub) registerTrusting(audiences ...string) {
	ph.t.Helper()
	ph.p.ClientID += "-trusting"
	ph.expect(ph.do("POST", "/api/v1/tenants/"+ph.slug+"/lti/registrations", adminToken, map[string]any{
		"issuer": ph.p.Issuer(), "client_id": ph.p.ClientID, "auth_login_url": ph.p.AuthURL(), "auth_token_url": ph.p.TokenURL(),
		"jwks_url": ph.p.JWKSURL(), "deployment_ids": []string{ph.p.DeploymentID}, "trusted_audiences": audiences,
	}), 201)
}

// audiences makes a launch whose aud is the platform's client id and
// extra, with azp the client id, as Schoology sends it.
func (ph *platformHub) audiences(extra ...string) ltitest.Launch {
	return ltitest.Launch{Tamper: func(_, c map[string]any) {
		c["aud"], c["azp"] = append([]string{ph.p.ClientID}, extra...), ph.p.ClientID
	}}
}

// TestUntrustedAudiencesAreRefused: an id_token whose aud names an
// audience the registration does not trust, besides the hub's client id,
// is refused (Security Framework §5.1.3 step 3); a registration may name
// extra audiences it trusts, and Schoology-style arrays then launch.
func TestUntrustedAudiencesAreRefused(t *testing.T) {
	ph := newPlatformHub(t)
	ph.refusedWith(ph.launch(ph.audiences("https://analytics.example")), lti.ReasonWrongAudience)
	ph.succeeded(ph.launch(ph.audiences(ph.p.ClientID))) // the client id twice is no stranger

	ph.registerTrusting("https://analytics.example", "schoology-app")
	ph.succeeded(ph.launch(ph.audiences("schoology-app")))
	ph.succeeded(ph.launch(ph.audiences("https://analytics.example", "schoology-app")))
	ph.refusedWith(ph.launch(ph.audiences("schoology-app", "someone-else")), lti.ReasonWrongAudience)
	ph.refusedWith(ph.launch(ltitest.Launch{Tamper: func(_, c map[string]any) { c["aud"] = []string{ph.p.ClientID, "schoology-app"} }}),
		lti.ReasonWrongAZP)
	ph.refusedWith(ph.launch(ltitest.Launch{Tamper: func(_, c map[string]any) { c["aud"] = "schoology-app" }}), lti.ReasonWrongAudience)
}

func TestTrustedAudiencesREST(t *testing.T) {
	ph := newPlatformHub(t)
	path := "/api/v1/tenants/uni/lti/registrations"
	reg := func(n int, audiences any) map[string]any {
		return map[string]any{"issuer": "https://lms" + strings.Repeat("x", n) + ".example", "client_id": "c", "auth_login_url": ph.p.AuthURL(),
			"auth_token_url": ph.p.TokenURL(), "jwks_url": ph.p.JWKSURL(), "trusted_audiences": audiences}
	}
	r := ph.expect(ph.do("GET", path+"/"+ph.reg, adminToken, nil), 200)
	var got struct {
		TrustedAudiences []string `json:"trusted_audiences"`
	}
	r.json(t, &got)
	if got.TrustedAudiences == nil || len(got.TrustedAudiences) != 0 {
		t.Fatalf("a registration without trusted audiences: %s", r.body)
	}
	r = ph.expect(ph.do("POST", path, adminToken, reg(1, []string{"a", "b", "a"})), 201)
	r.json(t, &got)
	if !slices.Equal(got.TrustedAudiences, []string{"a", "b"}) {
		t.Fatalf("trusted_audiences stored as %v", got.TrustedAudiences)
	}
	for name, bad := range map[string]any{
		"eleven":     strings.Split("a b c d e f g h i j k", " "),
		"too long":   []string{strings.Repeat("a", 2049)},
		"empty":      []string{""},
		"NUL":        []string{"a\x00b"},
		"not a list": "a",
		"not text":   []any{7},
	} {
		t.Run(name, func(t *testing.T) {
			ph.t = t
			p := ph.problem(ph.do("POST", path, adminToken, reg(2, bad)), 400, "validation")
			if !strings.Contains(p.Detail+" "+fieldsOf(p), "trusted_audiences") {
				t.Fatalf("the refusal does not name trusted_audiences: %+v", p)
			}
		})
	}
	ph.t = t
	ph.expect(ph.do("POST", path, adminToken, reg(3, []string{strings.Repeat("é", 2048)})), 201)
}

func fieldsOf(p api.Problem) string {
	var names []string
	for _, f := range p.Errors {
		names = append(names, f.Field)
	}
	return strings.Join(names, " ")
}

// TestTrustedAudiencesEdited: a registration's trusted audiences can be
// changed in place; launches follow at once.
func TestTrustedAudiencesEdited(t *testing.T) {
	ph := newPlatformHub(t)
	path := "/api/v1/tenants/" + ph.slug + "/lti/registrations/" + ph.reg
	ph.refusedWith(ph.launch(ph.audiences("schoology-app")), lti.ReasonWrongAudience)
	ph.expect(ph.do("PATCH", path, adminToken, map[string]any{"trusted_audiences": []string{"schoology-app"}}), 200)
	ph.succeeded(ph.launch(ph.audiences("schoology-app")))
	ph.problem(ph.do("PATCH", path, adminToken, map[string]any{"trusted_audiences": slices.Repeat([]string{"x"}, 11)}), 400, "validation")
	ph.expect(ph.do("PATCH", path, adminToken, map[string]any{"trusted_audiences": []string{}}), 200)
	ph.refusedWith(ph.launch(ph.audiences("schoology-app")), lti.ReasonWrongAudience)
}
