package api_test

import (
	"strings"
	"testing"
	"time"
)

func TestAPIKeyLifecycle(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	r := h.expect(h.do("POST", "/api/v1/tenants/uni/api-keys", adminToken,
		map[string]any{"name": "lms sync", "scopes": []string{"read"}, "expires_at": time.Now().Add(time.Hour)}), 201)
	id, token := r.field(t, "id"), r.field(t, "token")
	if r.header.Get("Location") != "/api/v1/tenants/uni/api-keys/"+id || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", r.header)
	}
	if !strings.HasPrefix(token, r.field(t, "prefix")+"_") {
		t.Fatalf("token %q lacks its visible prefix %q", token, r.field(t, "prefix"))
	}

	r = h.expect(h.do("GET", "/api/v1/tenants/uni/api-keys/"+id, token, nil), 200)
	if strings.Contains(string(r.body), token) || strings.Contains(string(r.body), "hash") {
		t.Fatalf("reading a key shows its secret: %s", r.body)
	}
	list := h.expect(h.do("GET", "/api/v1/tenants/uni/api-keys", adminToken, nil), 200)
	if strings.Contains(string(list.body), token) {
		t.Fatal("listing keys shows a token")
	}

	h.expect(h.do("DELETE", "/api/v1/tenants/uni/api-keys/"+id, adminToken, nil), 204)
	r = h.do("GET", "/api/v1/tenants/uni", token, nil)
	h.problem(r, 401, "unauthorized")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="hub", error="invalid_token"` {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
	h.expect(h.do("DELETE", "/api/v1/tenants/uni/api-keys/"+id, adminToken, nil), 204) // idempotent
	h.problem(h.do("DELETE", "/api/v1/tenants/uni/api-keys/not-a-uuid", adminToken, nil), 404, "not-found")
}

func TestScopes(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	_, reader := h.createKey("uni", "read")
	_, writer := h.createKey("uni", "write")
	newKey := map[string]any{"name": "n", "scopes": []string{"read"}}

	p := h.problem(h.do("POST", "/api/v1/tenants/uni/api-keys", reader, newKey), 403, "forbidden")
	if !strings.Contains(p.Detail, "write") {
		t.Fatalf("detail %q does not name the missing scope", p.Detail)
	}
	h.expect(h.do("POST", "/api/v1/tenants/uni/api-keys", writer, newKey), 201)
	h.expect(h.do("GET", "/api/v1/tenants/uni/api-keys", writer, nil), 200) // write implies read
}

func TestKeyValidation(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	for name, body := range map[string]string{
		"no scopes":     `{"name":"k","scopes":[]}`,
		"unknown scope": `{"name":"k","scopes":["admin"]}`,
		"past expiry":   `{"name":"k","scopes":["read"],"expires_at":"2001-01-01T00:00:00Z"}`,
		"bad time":      `{"name":"k","scopes":["read"],"expires_at":"tomorrow"}`,
		"unknown field": `{"name":"k","scopes":["read"],"owner":"me"}`,
	} {
		t.Run(name, func(t *testing.T) {
			h.t = t
			h.problem(h.do("POST", "/api/v1/tenants/uni/api-keys", adminToken, body), 400, "validation")
		})
	}
}

func TestAuthentication(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	for name, header := range map[string]string{
		"no header":        "",
		"basic scheme":     "Basic dXNlcjpwYXNz",
		"empty bearer":     "Bearer ",
		"wrong admin":      "Bearer " + strings.Repeat("x", len(adminToken)),
		"admin prefix":     "Bearer " + adminToken[:10],
		"key-shaped guess": "Bearer hubk_aaaaaaaaaa_" + strings.Repeat("a", 52),
	} {
		t.Run(name, func(t *testing.T) {
			h.t = t
			r := h.doRaw("GET", "/api/v1/tenants/uni", header)
			h.problem(r, 401, "unauthorized")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="hub"`) {
				t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestKeysMintedByKeys: a key a key mints is bound by its parent's expiry
// and revoked with it; the operator's keys may be open-ended.
func TestKeysMintedByKeys(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	parentExp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	r := h.expect(h.do("POST", "/api/v1/tenants/uni/api-keys", adminToken,
		map[string]any{"name": "admin tool", "scopes": []string{"write"}, "expires_at": parentExp}), 201)
	parentID, parent := r.field(t, "id"), r.field(t, "token")
	_, open := h.createKey("uni", "write") // the operator's, no expiry
	if r.field(t, "parent_id") != "" {
		t.Fatalf("the operator's key has a parent: %s", r.body)
	}

	r = h.expect(h.do("POST", "/api/v1/tenants/uni/api-keys", parent, map[string]any{"name": "child", "scopes": []string{"write"}}), 201)
	if got, _ := time.Parse(time.RFC3339, r.field(t, "expires_at")); !got.Equal(parentExp) || r.field(t, "parent_id") != parentID {
		t.Fatalf("a child asking no expiry: %s; want expires_at %s and parent_id %s", r.body, parentExp, parentID)
	}
	child := r.field(t, "token")
	r = h.expect(h.do("POST", "/api/v1/tenants/uni/api-keys", child, map[string]any{"name": "grandchild", "scopes": []string{"read"}}), 201)
	grandchild := r.field(t, "token")

	p := h.problem(h.do("POST", "/api/v1/tenants/uni/api-keys", parent,
		map[string]any{"name": "forever", "scopes": []string{"read"}, "expires_at": parentExp.Add(time.Minute)}), 400, "validation")
	if len(p.Errors) != 1 || p.Errors[0].Field != "expires_at" {
		t.Fatalf("a later expiry: %+v", p)
	}

	h.expect(h.do("DELETE", "/api/v1/tenants/uni/api-keys/"+parentID, adminToken, nil), 204)
	for name, token := range map[string]string{"parent": parent, "child": child, "grandchild": grandchild} {
		h.t = t
		if r := h.do("GET", "/api/v1/tenants/uni", token, nil); r.status != 401 {
			t.Errorf("%s after the parent's revocation: %d", name, r.status)
		}
	}
	h.expect(h.do("GET", "/api/v1/tenants/uni", open, nil), 200)
}
