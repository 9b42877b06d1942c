package api_test

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
)

type ssoConnection struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	Issuer               string            `json:"issuer"`
	ExpectedIssuer       string            `json:"expected_issuer"`
	ClientID             string            `json:"client_id"`
	ClientSecret         *string           `json:"client_secret"`
	HasClientSecret      bool              `json:"has_client_secret"`
	SecretSetAt          *string           `json:"secret_set_at"`
	Scopes               []string          `json:"scopes"`
	Claims               map[string]string `json:"claims"`
	RequireEmailVerified bool              `json:"require_email_verified"`
	JIT                  bool              `json:"jit"`
	Enabled              bool              `json:"enabled"`
	RedirectURI          string            `json:"redirect_uri"`
}

func connectionsPath(slug string) string { return "/api/v1/tenants/" + slug + "/sso/connections" }

// inTenant runs fn in slug's transaction, as the application role.
func (h *hub) inTenant(slug string, fn func(tx *sqlx.Tx) error) {
	h.t.Helper()
	if err := pg.InTenant(context.Background(), h.db, h.tenantID(slug), fn); err != nil {
		h.t.Fatal(err)
	}
}

func (h *hub) auditActions(slug string) []string {
	h.t.Helper()
	var actions []string
	h.inTenant(slug, func(tx *sqlx.Tx) error {
		return tx.Select(&actions, `SELECT action FROM audit_log WHERE tenant_id = hub_tenant_id() ORDER BY seq`)
	})
	return actions
}

func TestSSOConnectionsREST(t *testing.T) {
	h := newHub(t)
	h.createTenant("acme", "employer")
	h.createTenant("other", "employer")
	_, writer := h.createKey("acme", "write")
	_, reader := h.createKey("acme", "read")
	_, otherKey := h.createKey("other", "write")
	body := map[string]any{"name": "Corporate IdP", "issuer": "https://login.example.com", "client_id": "hub-client",
		"client_secret": "s3cret-value-123"}

	var c ssoConnection
	r := h.expect(h.do("POST", connectionsPath("acme"), writer, body), 201)
	r.json(t, &c)
	if c.ClientSecret != nil || strings.Contains(string(r.body), "s3cret") || !c.HasClientSecret || c.SecretSetAt == nil {
		t.Fatalf("the secret shows: %s", r.body)
	}
	if c.RedirectURI != h.url+"/sso/callback/"+c.ID || r.header.Get("Location") != connectionsPath("acme")+"/"+c.ID {
		t.Fatalf("redirect_uri %q, Location %q", c.RedirectURI, r.header.Get("Location"))
	}
	if strings.Join(c.Scopes, " ") != "openid email profile" || c.Claims["subject"] != "sub" || c.Claims["email"] != "email" ||
		c.Claims["groups"] != "groups" || c.Claims["employee_id"] != "" || !c.RequireEmailVerified || !c.JIT || !c.Enabled {
		t.Fatalf("defaults: %+v", c)
	}
	t.Run("the secret is sealed at rest", func(t *testing.T) {
		var sealed []byte
		h.inTenant("acme", func(tx *sqlx.Tx) error {
			return tx.Get(&sealed, `SELECT client_secret FROM sso_connections WHERE id = $1`, c.ID)
		})
		if len(sealed) == 0 || bytes.Contains(sealed, []byte("s3cret")) {
			t.Fatalf("stored %q", sealed)
		}
	})
	t.Run("read, list", func(t *testing.T) {
		var got ssoConnection
		h.expect(h.do("GET", connectionsPath("acme")+"/"+c.ID, reader, nil), 200).json(t, &got)
		if got.ID != c.ID || got.ClientSecret != nil {
			t.Fatalf("%+v", got)
		}
		var page struct{ Items []ssoConnection }
		h.expect(h.do("GET", connectionsPath("acme"), reader, nil), 200).json(t, &page)
		if len(page.Items) != 1 {
			t.Fatalf("%d items", len(page.Items))
		}
	})
	t.Run("rotate the secret", func(t *testing.T) {
		var got ssoConnection
		r := h.expect(h.do("PATCH", connectionsPath("acme")+"/"+c.ID, writer, map[string]any{"client_secret": "rotated-secret-456",
			"name": "IdP", "claims": map[string]string{"employee_id": "employee_id"}}), 200)
		r.json(t, &got)
		if strings.Contains(string(r.body), "rotated-secret") || got.Name != "IdP" ||
			got.Claims["employee_id"] != "employee_id" || got.Claims["subject"] != "sub" {
			t.Fatalf("%s", r.body)
		}
		actions := strings.Join(h.auditActions("acme"), " ")
		for _, a := range []string{"sso_connection.created", "sso_connection.updated", "sso_connection.secret_rotated"} {
			if !strings.Contains(actions, a) {
				t.Fatalf("audit lacks %s: %s", a, actions)
			}
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for name, tc := range map[string]struct {
			body  map[string]any
			field string
		}{
			"no name":                   {map[string]any{"name": nil}, "name"},
			"http issuer, not loopback": {map[string]any{"issuer": "http://login.example.com"}, "issuer"},
			"issuer with a query":       {map[string]any{"issuer": "https://login.example.com/?tenant=1"}, "issuer"},
			"not a URL":                 {map[string]any{"issuer": "login.example.com"}, "issuer"},
			"bad expected issuer":       {map[string]any{"expected_issuer": "ftp://x"}, "expected_issuer"},
			"no openid scope":           {map[string]any{"scopes": []string{"email"}}, "scopes"},
			"scope with a space":        {map[string]any{"scopes": []string{"openid", "a b"}}, "scopes[1]"},
			"no client id":              {map[string]any{"client_id": ""}, "client_id"},
		} {
			t.Run(name, func(t *testing.T) {
				b := map[string]any{}
				for k, v := range body {
					b[k] = v
				}
				for k, v := range tc.body {
					if v == nil {
						delete(b, k)
					} else {
						b[k] = v
					}
				}
				p := h.problem(h.do("POST", connectionsPath("acme"), writer, b), 400, "validation")
				if !names(p, tc.field) {
					t.Fatalf("%+v does not name %s", p, tc.field)
				}
			})
		}
		h.problem(h.do("POST", connectionsPath("acme"), writer, map[string]any{"name": "x", "issuer": "https://a.example", "client_id": "c", "secret": "s"}), 400, "validation")
	})
	t.Run("loopback http when private addresses are allowed", func(t *testing.T) {
		b := map[string]any{"name": "Local", "issuer": "http://127.0.0.1:9999/realm", "client_id": "c"}
		var got ssoConnection
		h.expect(h.do("POST", connectionsPath("acme"), writer, b), 201).json(t, &got)
		if got.HasClientSecret {
			t.Fatal("a public client with a secret")
		}
		h.expect(h.do("DELETE", connectionsPath("acme")+"/"+got.ID, writer, nil), 204)
	})
	t.Run("a read key writes nothing", func(t *testing.T) {
		h.problem(h.do("POST", connectionsPath("acme"), reader, body), 403, "forbidden")
	})
	t.Run("another tenant's connection is not found", func(t *testing.T) {
		h.problem(h.do("GET", connectionsPath("acme")+"/"+c.ID, otherKey, nil), 404, "not-found")
		h.problem(h.do("GET", connectionsPath("other")+"/"+c.ID, otherKey, nil), 404, "not-found")
		h.problem(h.do("PATCH", connectionsPath("other")+"/"+c.ID, otherKey, map[string]any{"name": "mine"}), 404, "not-found")
		h.problem(h.do("DELETE", connectionsPath("other")+"/"+c.ID, adminToken, nil), 404, "not-found")
		h.problem(h.do("GET", connectionsPath("acme")+"/not-a-uuid", writer, nil), 404, "not-found")
	})
	t.Run("a taken name", func(t *testing.T) {
		b := map[string]any{"name": "IdP", "issuer": "https://b.example", "client_id": "c"}
		h.problem(h.do("POST", connectionsPath("acme"), writer, b), 409, "conflict")
	})
	t.Run("delete", func(t *testing.T) {
		h.expect(h.do("DELETE", connectionsPath("acme")+"/"+c.ID, writer, nil), 204)
		h.problem(h.do("GET", connectionsPath("acme")+"/"+c.ID, writer, nil), 404, "not-found")
		if a := h.auditActions("acme"); a[len(a)-1] != "sso_connection.deleted" {
			t.Fatalf("last audited: %s", a[len(a)-1])
		}
	})
}

type domain struct {
	Domain     string  `json:"domain"`
	Connection *string `json:"connection"`
}

func domainPath(slug, d string) string {
	return "/api/v1/tenants/" + slug + "/domains/" + url.PathEscape(d)
}

func TestDomainsREST(t *testing.T) {
	h := newHub(t)
	h.createTenant("acme", "employer")
	h.createTenant("other", "employer")
	_, acmeKey := h.createKey("acme", "write")
	_, otherKey := h.createKey("other", "write")
	var c ssoConnection
	h.expect(h.do("POST", connectionsPath("acme"), acmeKey, map[string]any{"name": "IdP", "issuer": "https://login.example.com",
		"client_id": "c"}), 201).json(t, &c)
	var oc ssoConnection
	h.expect(h.do("POST", connectionsPath("other"), otherKey, map[string]any{"name": "IdP", "issuer": "https://login.example.com",
		"client_id": "c"}), 201).json(t, &oc)

	var d domain
	h.expect(h.do("PUT", domainPath("acme", "Corp.Example.COM."), adminToken, nil), 201).json(t, &d)
	if d.Domain != "corp.example.com" || d.Connection != nil {
		t.Fatalf("%+v", d)
	}
	h.expect(h.do("PUT", domainPath("acme", "corp.example.com"), adminToken, map[string]any{"connection": c.ID}), 200).json(t, &d)
	if d.Connection == nil || *d.Connection != c.ID {
		t.Fatalf("%+v", d)
	}
	h.expect(h.do("PUT", domainPath("acme", "bücher.example"), adminToken, nil), 201).json(t, &d)
	if d.Domain != "xn--bcher-kva.example" {
		t.Fatalf("%+v", d)
	}
	t.Run("listed for the tenant's keys", func(t *testing.T) {
		var page struct{ Items []domain }
		h.expect(h.do("GET", "/api/v1/tenants/acme/domains", acmeKey, nil), 200).json(t, &page)
		if len(page.Items) != 2 || page.Items[0].Domain != "corp.example.com" {
			t.Fatalf("%+v", page)
		}
		h.expect(h.do("GET", "/api/v1/tenants/other/domains", otherKey, nil), 200).json(t, &page)
		if len(page.Items) != 0 {
			t.Fatalf("another tenant sees %+v", page)
		}
	})
	t.Run("the operator's alone", func(t *testing.T) {
		h.problem(h.do("PUT", domainPath("acme", "new.example.com"), acmeKey, nil), 403, "forbidden")
		h.problem(h.do("PUT", domainPath("other", "new.example.com"), acmeKey, nil), 404, "not-found")
		h.problem(h.do("DELETE", domainPath("acme", "corp.example.com"), acmeKey, nil), 403, "forbidden")
	})
	t.Run("one tenant's", func(t *testing.T) {
		h.problem(h.do("PUT", domainPath("other", "CORP.example.com"), adminToken, nil), 409, "conflict")
	})
	t.Run("public mail providers refused", func(t *testing.T) {
		for _, dn := range []string{"gmail.com", "Outlook.com", "yahoo.com", "proton.me"} {
			h.problem(h.do("PUT", domainPath("acme", dn), adminToken, nil), 422, "refused")
		}
	})
	t.Run("not a domain", func(t *testing.T) {
		for _, dn := range []string{"localhost", "127.0.0.1", "-x.example", "a b.example"} {
			p := h.problem(h.do("PUT", domainPath("acme", dn), adminToken, nil), 400, "validation")
			if !names(p, "domain") {
				t.Fatalf("%s: %+v", dn, p)
			}
		}
	})
	t.Run("another tenant's connection", func(t *testing.T) {
		p := h.problem(h.do("PUT", domainPath("acme", "x.example.com"), adminToken, map[string]any{"connection": oc.ID}), 400, "validation")
		if !names(p, "connection") {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("removed", func(t *testing.T) {
		h.expect(h.do("DELETE", domainPath("acme", "xn--bcher-kva.example"), adminToken, nil), 204)
		h.problem(h.do("DELETE", domainPath("acme", "xn--bcher-kva.example"), adminToken, nil), 404, "not-found")
		h.problem(h.do("DELETE", domainPath("other", "corp.example.com"), adminToken, nil), 404, "not-found")
		actions := strings.Join(h.auditActions("acme"), " ")
		if strings.Count(actions, "domain.assigned") != 3 || strings.Count(actions, "domain.removed") != 1 {
			t.Fatalf("audit: %s", actions)
		}
	})
}

// openSession stores a session of user as a sign-in would, and returns its id.
func (h *hub) openSession(slug, user string) string {
	h.t.Helper()
	id := uuid.New()
	h.inTenant(slug, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO sso_sessions (id, tenant_id, user_id, token_hash, subject, created_at, last_seen_at, idle_expires_at, expires_at)
			VALUES ($1, hub_tenant_id(), $2, $3, 'sub', now(), now(), now() + interval '30 minutes', now() + interval '12 hours')`,
			id, user, []byte(id.String()))
		return err
	})
	return id.String()
}

type ssoSession struct {
	ID        string  `json:"id"`
	User      string  `json:"user"`
	EndedAt   *string `json:"ended_at"`
	EndReason *string `json:"end_reason"`
}

func (h *hub) sessions(key, query string) []ssoSession {
	h.t.Helper()
	var page struct{ Items []ssoSession }
	h.expect(h.do("GET", "/api/v1/tenants/acme/sso/sessions"+query, key, nil), 200).json(h.t, &page)
	return page.Items
}

func TestSSOSessionsREST(t *testing.T) {
	h := newHub(t)
	h.createTenant("acme", "employer")
	h.createTenant("other", "employer")
	_, key := h.createKey("acme", "write")
	_, otherKey := h.createKey("other", "write")
	ana, bo := h.newLearner("acme"), h.newLearner("acme")
	s1, _ := h.openSession("acme", ana), h.openSession("acme", ana)
	h.openSession("acme", bo)

	if got := h.sessions(key, ""); len(got) != 3 {
		t.Fatalf("%d sessions", len(got))
	}
	if got := h.sessions(key, "?user="+ana); len(got) != 2 || got[0].User != ana {
		t.Fatalf("%+v", got)
	}
	h.problem(h.do("GET", "/api/v1/tenants/acme/sso/sessions?user=x", key, nil), 400, "validation")
	h.problem(h.do("GET", "/api/v1/tenants/acme/sso/sessions?live=maybe", key, nil), 400, "validation")

	var ended ssoSession
	h.expect(h.do("DELETE", "/api/v1/tenants/acme/sso/sessions/"+s1, key, nil), 200).json(t, &ended)
	if ended.EndedAt == nil || *ended.EndReason != "admin" {
		t.Fatalf("%+v", ended)
	}
	if got := h.sessions(key, "?live=true&user="+ana); len(got) != 1 {
		t.Fatalf("%d live", len(got))
	}
	var n struct{ Ended int }
	h.expect(h.do("DELETE", "/api/v1/tenants/acme/sso/sessions?user="+ana, key, nil), 200).json(t, &n)
	if n.Ended != 1 {
		t.Fatalf("ended %d", n.Ended)
	}
	h.problem(h.do("DELETE", "/api/v1/tenants/acme/sso/sessions", key, nil), 400, "validation")
	h.problem(h.do("DELETE", "/api/v1/tenants/other/sso/sessions/"+s1, otherKey, nil), 404, "not-found")
	actions := strings.Join(h.auditActions("acme"), " ")
	if !strings.Contains(actions, "sso.session_ended") || !strings.Contains(actions, "sso.sessions_ended") {
		t.Fatalf("audit: %s", actions)
	}

	t.Run("deactivation ends sessions", func(t *testing.T) {
		h.inTenant("acme", func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`UPDATE users SET active = false, deactivated_at = now() WHERE id = $1`, bo)
			return err
		})
		got := h.sessions(key, "?user="+bo)
		if len(got) != 1 || got[0].EndedAt == nil || *got[0].EndReason != "deactivated" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("erasure leaves no session", func(t *testing.T) {
		h.openSession("acme", ana)
		h.expect(h.do("DELETE", "/api/v1/tenants/acme/learners/"+ana, key, nil), 204)
		var left int
		h.inTenant("acme", func(tx *sqlx.Tx) error {
			return tx.Get(&left, `SELECT count(*) FROM sso_sessions WHERE user_id = $1`, ana)
		})
		if left != 0 {
			t.Fatalf("%d sessions left", left)
		}
	})
}
