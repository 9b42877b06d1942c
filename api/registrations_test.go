package api_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti/ltitest"
)

func TestRegistrationsREST(t *testing.T) {
	ph := newPlatformHub(t)
	ph.createTenant("other", "institution")
	_, keyOther := ph.createKey("other", "write")
	_, keyUni := ph.createKey("uni", "read")
	base := "/api/v1/tenants/uni/lti/registrations/" + ph.reg

	t.Run("read with a key of the tenant", func(t *testing.T) {
		ph.t = t
		r := ph.expect(ph.do("GET", base, keyUni, nil), 200)
		if r.field(t, "client_id") != ph.p.ClientID {
			t.Fatalf("registration %s", r.body)
		}
	})
	t.Run("another tenant's key gets 404", func(t *testing.T) {
		ph.t = t
		ph.problem(ph.do("GET", base, keyOther, nil), 404, "not-found")
		ph.problem(ph.do("GET", "/api/v1/tenants/other/lti/registrations/"+ph.reg, keyOther, nil), 404, "not-found")
		ph.problem(ph.do("DELETE", "/api/v1/tenants/other/lti/registrations/"+ph.reg, keyOther, nil), 404, "not-found")
	})
	t.Run("tool configuration", func(t *testing.T) {
		ph.t = t
		r := ph.expect(ph.do("GET", base+"/tool-configuration", keyUni, nil), 200)
		for _, want := range []string{ph.url + "/lti/login", ph.url + "/.well-known/jwks.json", "canvas.instructure.com", "LtiDeepLinkingRequest"} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("tool configuration lacks %s", want)
			}
		}
		var conf struct {
			Scopes []string `json:"scopes"`
			Canvas struct {
				Scopes []string `json:"scopes"`
			} `json:"canvas"`
		}
		if err := json.Unmarshal(r.body, &conf); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(conf.Scopes, advantageScopes) || !slices.Equal(conf.Canvas.Scopes, advantageScopes) {
			t.Errorf("tool configuration scopes %v, Canvas scopes %v; want %v", conf.Scopes, conf.Canvas.Scopes, advantageScopes)
		}
	})
	t.Run("deployments", func(t *testing.T) {
		ph.t = t
		r := ph.expect(ph.do("POST", base+"/deployments", adminToken, map[string]string{"deployment_id": "second"}), 201)
		if !strings.Contains(string(r.body), `"second"`) {
			t.Fatalf("after adding: %s", r.body)
		}
		ph.problem(ph.do("POST", base+"/deployments", adminToken, map[string]string{"deployment_id": "second"}), 409, "conflict")
		ph.problem(ph.do("POST", base+"/deployments", adminToken, map[string]string{"deployment_id": ""}), 400, "validation")
		ph.expect(ph.do("DELETE", base+"/deployments/second", adminToken, nil), 204)
		ph.problem(ph.do("DELETE", base+"/deployments/second", adminToken, nil), 404, "not-found")
		ph.problem(ph.do("POST", base+"/deployments", keyUni, map[string]string{"deployment_id": "x"}), 403, "forbidden")
	})
	t.Run("validation and uniqueness", func(t *testing.T) {
		ph.t = t
		p := ph.problem(ph.do("POST", "/api/v1/tenants/uni/lti/registrations", adminToken, map[string]any{
			"issuer": "not a url", "client_id": "", "auth_login_url": "ftp://x", "auth_token_url": "https://t.example", "jwks_url": "https://j.example"}), 400, "validation")
		var fields []string
		for _, f := range p.Errors {
			fields = append(fields, f.Field)
		}
		if strings.Join(fields, ",") != "issuer,client_id,auth_login_url" {
			t.Fatalf("fields %v", fields)
		}
		// Unique within a tenant; another tenant's registration of the
		// same pair is no concern (nor business) of this one.
		pair := map[string]any{"issuer": ph.p.Issuer(), "client_id": ph.p.ClientID, "auth_login_url": ph.p.AuthURL(),
			"auth_token_url": ph.p.TokenURL(), "jwks_url": ph.p.JWKSURL()}
		ph.problem(ph.do("POST", "/api/v1/tenants/uni/lti/registrations", adminToken, pair), 409, "conflict")
		ph.expect(ph.do("POST", "/api/v1/tenants/other/lti/registrations", adminToken, pair), 201)
	})
	t.Run("no deployments is an empty list, not null", func(t *testing.T) {
		ph.t = t
		r := ph.expect(ph.do("POST", "/api/v1/tenants/other/lti/registrations", adminToken, map[string]any{
			"issuer": "https://lms.example", "client_id": "c", "auth_login_url": "https://lms.example/a",
			"auth_token_url": "https://lms.example/t", "jwks_url": "https://lms.example/j"}), 201)
		listed := ph.expect(ph.do("GET", "/api/v1/tenants/other/lti/registrations", adminToken, nil), 200)
		if !strings.Contains(string(r.body), `"deployment_ids":[]`) || !strings.Contains(string(listed.body), `"deployment_ids":[]`) {
			t.Fatalf("created %s\nlisted %s", r.body, listed.body)
		}
	})

	t.Run("delete", func(t *testing.T) {
		ph.t = t
		ph.succeeded(ph.launchVia(ph.url+"/lti/login/"+ph.reg, ltitest.Launch{}))
		ph.expect(ph.do("DELETE", base+"?force=true", adminToken, nil), 204)
		ph.problem(ph.do("GET", base, adminToken, nil), 404, "not-found")
		if n := ph.rows("contexts"); n != 0 {
			t.Fatalf("%d contexts left after the registration went", n)
		}
	})
}

// TestPlatformURLsMustBeHTTPS: without HUB_OUTBOUND_ALLOW_PRIVATE a
// registration's login, token and keyset URLs must be https; a plain http
// one answers 400 naming the field and stores nothing. With the setting
// (a platform on loopback) http is accepted.
func TestPlatformURLsMustBeHTTPS(t *testing.T) {
	https := map[string]any{"issuer": "https://lms.example", "client_id": "c",
		"auth_login_url": "https://lms.example/auth", "auth_token_url": "https://lms.example/token",
		"jwks_url": "https://lms.example/jwks"}
	with := func(field, value string) map[string]any {
		m := map[string]any{}
		for k, v := range https {
			m[k] = v
		}
		m[field] = value
		return m
	}
	tests := []struct {
		name         string
		allowPrivate bool
		body         map[string]any
		field        string // "" when accepted
	}{
		{"http keyset URL refused", false, with("jwks_url", "http://lms.example/jwks"), "jwks_url"},
		{"credentials in a URL refused", false, with("auth_token_url", "https://user:pass@lms.example/token"), "auth_token_url"},
		{"fragment refused", false, with("jwks_url", "https://lms.example/jwks#x"), "jwks_url"},
		{"port out of range refused", false, with("jwks_url", "https://lms.example:99999/jwks"), "jwks_url"},
		{"zoned address refused", false, with("auth_login_url", "https://[fe80::1%25eth0]/auth"), "auth_login_url"},
		{"metadata address refused", false, with("jwks_url", "https://169.254.169.254/jwks"), "jwks_url"},
		{"zoned address refused even with private addresses allowed", true, with("jwks_url", "http://[fe80::1%25eth0]/jwks"), "jwks_url"},
		{"http login URL refused", false, with("auth_login_url", "http://lms.example/auth"), "auth_login_url"},
		{"http token URL refused", false, with("auth_token_url", "HTTP://lms.example/token"), "auth_token_url"},
		{"https accepted", false, https, ""},
		{"http keyset URL accepted with private addresses allowed", true, with("jwks_url", "http://127.0.0.1:9/jwks"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := pgtest.New(t)
			h := serveHub(t, d, mustOpen(t, d), func(c *config.Config) { c.OutboundAllowPrivate = tc.allowPrivate })
			h.createTenant("uni", "institution")
			ph := &platformHub{hub: h, slug: "uni"}
			r := h.do("POST", "/api/v1/tenants/uni/lti/registrations", adminToken, tc.body)
			if tc.field == "" {
				h.expect(r, 201)
				return
			}
			p := h.problem(r, 400, "validation")
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field || !strings.Contains(p.Errors[0].Message, "https") {
				t.Fatalf("errors %+v, want one naming %s", p.Errors, tc.field)
			}
			if n := ph.rows("lti_registrations"); n != 0 {
				t.Fatalf("a refused registration stored %d rows", n)
			}
		})
	}
}

// advantageScopes are the LTI Advantage scopes the hub requests: roster
// reads (NRPS) and grade passback (AGS), for the features that use them.
var advantageScopes = []string{
	"https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
	"https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
	"https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
	"https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
	"https://purl.imsglobal.org/spec/lti-ags/scope/score",
}
