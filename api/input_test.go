package api_test

import (
	"crypto/tls"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/klasterina/hub/internal/pg/pgtest"
)

// count is a table's rows for every tenant, read as the superuser.
func (h *hub) count(table string) int {
	h.t.Helper()
	var n int
	if err := pgtest.Superuser(h.t, h.dbt).Get(&n, `SELECT count(*) FROM `+table); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// snapshot counts the rows of the tables a refused request must not touch.
func (h *hub) snapshot() map[string]int {
	h.t.Helper()
	m := map[string]int{}
	for _, table := range []string{"tenants", "api_keys", "lti_registrations", "lti_deployments", "activities", "audit_log"} {
		m[table] = h.count(table)
	}
	return m
}

func (h *hub) unchanged(before map[string]int) {
	h.t.Helper()
	for table, n := range h.snapshot() {
		if n != before[table] {
			h.t.Errorf("%s: %d rows, %d before the refused request", table, n, before[table])
		}
	}
}

// registrationBody is a valid registration of a made-up platform.
func registrationBody(clientID string) map[string]any {
	return map[string]any{"issuer": "https://lms.example", "client_id": clientID, "auth_login_url": "https://lms.example/auth",
		"auth_token_url": "https://lms.example/token", "jwks_url": "https://lms.example/jwks"}
}

func TestNULInABodyIsRefusedNamingTheField(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	reg := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registrations", adminToken, registrationBody("c")), 201).field(t, "id")
	regs := "/api/v1/tenants/uni/lti/registrations"
	tests := []struct {
		name, method, path, body, field string
	}{
		{"tenant display name", "POST", "/api/v1/tenants", `{"slug":"nul","display_name":"U\u0000","kind":"institution"}`, "display_name"},
		{"tenant slug", "POST", "/api/v1/tenants", `{"slug":"nul\u0000","display_name":"U","kind":"institution"}`, "slug"},
		{"tenant patch", "PATCH", "/api/v1/tenants/uni", `{"display_name":"\u0000"}`, "display_name"},
		{"api key name", "POST", "/api/v1/tenants/uni/api-keys", `{"name":"k\u0000","scopes":["read"]}`, "name"},
		{"api key scope", "POST", "/api/v1/tenants/uni/api-keys", `{"name":"k","scopes":["read\u0000"]}`, "scopes"},
		{"registration client id", "POST", regs, `{"issuer":"https://lms.example","client_id":"c2\u0000","auth_login_url":"https://lms.example/a",
			"auth_token_url":"https://lms.example/t","jwks_url":"https://lms.example/j"}`, "client_id"},
		{"registration deployment ids", "POST", regs, `{"issuer":"https://lms.example","client_id":"c3","auth_login_url":"https://lms.example/a",
			"auth_token_url":"https://lms.example/t","jwks_url":"https://lms.example/j","deployment_ids":["ok","\u0000"]}`, "deployment_ids"},
		{"registration token audience", "POST", regs, `{"issuer":"https://lms.example","client_id":"c4","auth_login_url":"https://lms.example/a",
			"auth_token_url":"https://lms.example/t","jwks_url":"https://lms.example/j","token_audience":"x\u0000"}`, "token_audience"},
		{"deployment id", "POST", regs + "/" + reg + "/deployments", `{"deployment_id":"d\u0000"}`, "deployment_id"},
		{"activity title", "POST", "/api/v1/activities", `{"id":"a","title":"T\u0000"}`, "title"},
		{"activity description", "POST", "/api/v1/activities", `{"id":"a","title":"T","description":"\u0000"}`, "description"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			before := h.snapshot()
			p := h.problem(h.do(tc.method, tc.path, adminToken, tc.body), 400, "validation")
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field || !strings.Contains(p.Errors[0].Message, "NUL") {
				t.Fatalf("errors = %+v, want %s named", p.Errors, tc.field)
			}
			h.unchanged(before)
		})
	}
	h.t = t
	if name := h.expect(h.do("GET", "/api/v1/tenants/uni", adminToken, nil), 200).field(t, "display_name"); name != "T uni" {
		t.Fatalf("display name after a refused patch: %q", name)
	}
}

// TestNULInAPathIsNotFound: a path names an object; one that is not text
// names none.
func TestNULInAPathIsNotFound(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	reg := h.expect(h.do("POST", "/api/v1/tenants/uni/lti/registrations", adminToken, registrationBody("c")), 201).field(t, "id")
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/tenants/uni%00"},
		{"GET", "/api/v1/tenants/%FF%FE"},
		{"DELETE", "/api/v1/tenants/uni/lti/registrations/" + reg + "/deployments/d%00"},
		{"DELETE", "/api/v1/tenants/uni/lti/registrations/" + reg + "/deployments/%FF"},
		{"GET", "/api/v1/activities/a%00"},
		{"DELETE", "/api/v1/activities/a%00"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			h.t = t
			before := h.snapshot()
			h.problem(h.do(tc.method, tc.path, adminToken, nil), 404, "not-found")
			h.unchanged(before)
		})
	}
	h.t = t
	for _, path := range []string{"/api/v1/audit?action=x%00", "/api/v1/tenants/uni/audit?action=%FF"} {
		if p := h.problem(h.do("GET", path, adminToken, nil), 400, "validation"); len(p.Errors) != 1 || p.Errors[0].Field != "action" {
			t.Fatalf("%s: %+v", path, p.Errors)
		}
	}
}

// TestBearerTokenNotTextIsInvalid: a token holding a NUL character or
// bytes that are not UTF-8 is an invalid token, like any other.
func TestBearerTokenNotTextIsInvalid(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	_, token := h.createKey("uni", "read")
	lookup := token[:len("hubk_")+10]
	for _, bad := range []string{
		"hubk_\xff\xfe\xfd\xfc\xfb_secret",
		lookup[:9] + "\xc3" + lookup[10:] + token[len(lookup):],
		token + "\xff",
	} {
		r := h.doRaw("GET", "/api/v1/tenants/uni", "Bearer "+bad)
		h.problem(r, 401, "unauthorized")
		if !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("token %q: WWW-Authenticate %q", bad, r.header.Get("WWW-Authenticate"))
		}
	}
	// net/http refuses a NUL in a header before the hub sees it; the hub
	// refuses it too, should anything in front let one through.
	for _, bad := range []string{"hubk_abc\x00efghij_secret", lookup + "_\x00", "\x00"} {
		req := httptest.NewRequest("GET", "/api/v1/tenants/uni", nil)
		req.Header.Set("Authorization", "Bearer "+bad)
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("token %q: %d %s", bad, rec.Code, rec.Body)
		}
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(h.url, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /api/v1/tenants/uni HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer hubk_\x00\r\nConnection: close\r\n\r\n")
	reply, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(reply), "HTTP/1.1 4") {
		t.Errorf("a NUL in the Authorization header over the wire: %.60q", reply)
	}
}

// sized is s padded with x to n characters.
func sized(s string, n int) string { return s + strings.Repeat("x", n-len(s)) }

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "deployment-" + strconv.Itoa(i)
	}
	return out
}

// TestBoundsOfBodies: each list and string of a body has a bound; a body
// just over one is refused naming the field and changes nothing, and one
// at the bound is accepted.
func TestBoundsOfBodies(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	regs := "/api/v1/tenants/uni/lti/registrations"
	n := 0
	reg := func(change func(map[string]any)) map[string]any {
		n++
		b := registrationBody("client-" + strconv.Itoa(n))
		change(b)
		return b
	}
	url := func(n int) string { return sized("https://lms.example/", n) }
	tests := []struct {
		name, method, path string
		body               map[string]any
		field              string // "": accepted
	}{
		{"101 deployment ids", "POST", regs, reg(func(b map[string]any) { b["deployment_ids"] = ids(101) }), "deployment_ids"},
		{"100 deployment ids", "POST", regs, reg(func(b map[string]any) { b["deployment_ids"] = ids(100) }), ""},
		{"deployment id of 256", "POST", regs, reg(func(b map[string]any) { b["deployment_ids"] = []string{sized("d", 256)} }), "deployment_ids"},
		{"deployment id of 255", "POST", regs, reg(func(b map[string]any) { b["deployment_ids"] = []string{sized("d", 255)} }), ""},
		{"client id of 256", "POST", regs, reg(func(b map[string]any) { b["client_id"] = sized("c", 256) }), "client_id"},
		{"client id of 255", "POST", regs, reg(func(b map[string]any) { b["client_id"] = sized("c", 255) }), ""},
		{"issuer of 2049", "POST", regs, reg(func(b map[string]any) { b["issuer"] = url(2049) }), "issuer"},
		{"issuer of 2048", "POST", regs, reg(func(b map[string]any) { b["issuer"] = url(2048) }), ""},
		{"login URL of 2049", "POST", regs, reg(func(b map[string]any) { b["auth_login_url"] = url(2049) }), "auth_login_url"},
		{"token URL of 2049", "POST", regs, reg(func(b map[string]any) { b["auth_token_url"] = url(2049) }), "auth_token_url"},
		{"JWKS URL of 2049", "POST", regs, reg(func(b map[string]any) { b["jwks_url"] = url(2049) }), "jwks_url"},
		{"token audience of 2049", "POST", regs, reg(func(b map[string]any) { b["token_audience"] = url(2049) }), "token_audience"},
		{"URLs of 2048", "POST", regs, reg(func(b map[string]any) {
			b["auth_login_url"], b["auth_token_url"], b["jwks_url"], b["token_audience"] = url(2048), url(2048), url(2048), url(2048)
		}), ""},
		{"deployment of 256", "POST", "", map[string]any{"deployment_id": sized("d", 256)}, "deployment_id"},
		{"deployment of 255", "POST", "", map[string]any{"deployment_id": sized("d", 255)}, ""},
		{"tenant slug of 64", "POST", "/api/v1/tenants", map[string]any{"slug": sized("s", 64), "display_name": "S", "kind": "employer"}, "slug"},
		{"tenant name of 201", "POST", "/api/v1/tenants", map[string]any{"slug": "s1", "display_name": sized("S", 201), "kind": "employer"}, "display_name"},
		{"tenant name of 200", "POST", "/api/v1/tenants", map[string]any{"slug": "s2", "display_name": sized("S", 200), "kind": "employer"}, ""},
		{"tenant rename to 201", "PATCH", "/api/v1/tenants/uni", map[string]any{"display_name": sized("S", 201)}, "display_name"},
		{"key name of 101", "POST", "/api/v1/tenants/uni/api-keys", map[string]any{"name": sized("k", 101), "scopes": []string{"read"}}, "name"},
		{"key name of 100", "POST", "/api/v1/tenants/uni/api-keys", map[string]any{"name": sized("k", 100), "scopes": []string{"read"}}, ""},
		{"three scopes", "POST", "/api/v1/tenants/uni/api-keys", map[string]any{"name": "k", "scopes": []string{"read", "write", "read"}}, "scopes"},
		{"many unknown scopes", "POST", "/api/v1/tenants/uni/api-keys", map[string]any{"name": "k", "scopes": ids(2)}, "scopes"},
		{"two scopes", "POST", "/api/v1/tenants/uni/api-keys", map[string]any{"name": "k", "scopes": []string{"read", "write"}}, ""},
		{"activity title of 201", "POST", "/api/v1/activities", map[string]any{"id": "a1", "title": sized("T", 201)}, "title"},
		{"activity description of 2001", "POST", "/api/v1/activities", map[string]any{"id": "a2", "title": "T", "description": sized("D", 2001)}, "description"},
		{"activity at its bounds", "POST", "/api/v1/activities", map[string]any{"id": sized("a", 63), "title": sized("T", 200), "description": sized("D", 2000)}, ""},
		{"activity id of 64", "POST", "/api/v1/activities", map[string]any{"id": sized("a", 64), "title": "T"}, "id"},
	}
	target := h.expect(h.do("POST", regs, adminToken, reg(func(map[string]any) {})), 201).field(t, "id")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			path := tc.path
			if path == "" {
				path = regs + "/" + target + "/deployments"
			}
			before := h.snapshot()
			r := h.do(tc.method, path, adminToken, tc.body)
			if tc.field == "" {
				if r.status != 200 && r.status != 201 {
					t.Fatalf("at the bound: %d %s", r.status, r.body)
				}
				return
			}
			p := h.problem(r, 400, "validation")
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
				t.Fatalf("errors = %+v, want one naming %s", p.Errors, tc.field)
			}
			h.unchanged(before)
		})
	}
}

// TestDeploymentsPerRegistration: a registration holds at most 1,000
// deployments, however they were added.
func TestDeploymentsPerRegistration(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	body := registrationBody("c")
	body["deployment_ids"] = ids(100)
	regs := "/api/v1/tenants/uni/lti/registrations"
	reg := h.expect(h.do("POST", regs, adminToken, body), 201).field(t, "id")
	pgtest.Superuser(t, h.dbt).MustExec(`INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, created_at)
		SELECT r.tenant_id, r.id, 'bulk-' || i, now() FROM lti_registrations r, generate_series(1, 899) AS i`)
	h.expect(h.do("POST", regs+"/"+reg+"/deployments", adminToken, map[string]string{"deployment_id": "the-thousandth"}), 201)
	before := h.snapshot()
	p := h.problem(h.do("POST", regs+"/"+reg+"/deployments", adminToken, map[string]string{"deployment_id": "one-too-many"}), 400, "validation")
	if len(p.Errors) != 1 || p.Errors[0].Field != "deployment_id" || !strings.Contains(p.Errors[0].Message, "1000") {
		t.Fatalf("errors = %+v", p.Errors)
	}
	h.unchanged(before)
	// Removing one makes room again.
	h.expect(h.do("DELETE", regs+"/"+reg+"/deployments/bulk-1", adminToken, nil), 204)
	h.expect(h.do("POST", regs+"/"+reg+"/deployments", adminToken, map[string]string{"deployment_id": "one-too-many"}), 201)
}
