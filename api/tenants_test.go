package api_test

import (
	"strings"
	"testing"
)

func TestTwoTenantsEachSeeOnlyTheirOwn(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni-a", "institution")
	h.createTenant("corp-b", "employer")
	_, keyA := h.createKey("uni-a", "read")
	_, keyB := h.createKey("corp-b", "read")

	tests := []struct {
		name, token, path string
		status            int
	}{
		{"A reads A", keyA, "/api/v1/tenants/uni-a", 200},
		{"B reads B", keyB, "/api/v1/tenants/corp-b", 200},
		{"A reads B", keyA, "/api/v1/tenants/corp-b", 404},
		{"B reads A", keyB, "/api/v1/tenants/uni-a", 404},
		{"A lists B's keys", keyA, "/api/v1/tenants/corp-b/api-keys", 404},
		{"A reads B's audit", keyA, "/api/v1/tenants/corp-b/audit", 404},
		{"A verifies B's audit", keyA, "/api/v1/tenants/corp-b/audit/verify", 404},
		{"A asks for a tenant that does not exist", keyA, "/api/v1/tenants/nowhere", 404},
		{"operator reads A", adminToken, "/api/v1/tenants/uni-a", 200},
		{"operator asks for a tenant that does not exist", adminToken, "/api/v1/tenants/nowhere", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			r := h.do("GET", tc.path, tc.token, nil)
			if tc.status == 404 {
				h.problem(r, 404, "not-found")
				return
			}
			h.expect(r, tc.status)
		})
	}
}

func TestOperatorOnlyRoutesRefuseKeys(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	_, key := h.createKey("uni", "write")
	for _, tc := range []struct{ method, path string }{
		{"POST", "/api/v1/tenants"},
		{"GET", "/api/v1/tenants"},
		{"PATCH", "/api/v1/tenants/uni"},
		{"POST", "/api/v1/tenants/uni/suspend"},
		{"POST", "/api/v1/tenants/uni/reactivate"},
		{"GET", "/api/v1/audit"},
		{"GET", "/api/v1/audit/verify"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			h.t = t
			var body any
			if tc.method != "GET" {
				body = map[string]string{}
			}
			h.problem(h.do(tc.method, tc.path, key, body), 403, "forbidden")
		})
	}
}

func TestTenantLifecycle(t *testing.T) {
	h := newHub(t)
	r := h.expect(h.do("POST", "/api/v1/tenants", adminToken,
		map[string]string{"slug": "uni", "display_name": "Uni", "kind": "institution"}), 201)
	if loc := r.header.Get("Location"); loc != "/api/v1/tenants/uni" {
		t.Fatalf("Location = %q", loc)
	}
	if r.field(t, "status") != "active" {
		t.Fatalf("new tenant %s", r.body)
	}
	h.problem(h.do("POST", "/api/v1/tenants", adminToken,
		map[string]string{"slug": "uni", "display_name": "Again", "kind": "employer"}), 409, "conflict")

	r = h.expect(h.do("PATCH", "/api/v1/tenants/uni", adminToken, map[string]string{"display_name": "University"}), 200)
	if r.field(t, "display_name") != "University" {
		t.Fatalf("after PATCH %s", r.body)
	}
	_, key := h.createKey("uni", "read")
	h.expect(h.do("GET", "/api/v1/tenants/uni", key, nil), 200)

	r = h.expect(h.do("POST", "/api/v1/tenants/uni/suspend", adminToken, nil), 200)
	if r.field(t, "status") != "suspended" {
		t.Fatalf("after suspend %s", r.body)
	}
	p := h.problem(h.do("GET", "/api/v1/tenants/uni", key, nil), 403, "forbidden")
	if !strings.Contains(p.Detail, "suspended") {
		t.Fatalf("suspended key refused with %q", p.Detail)
	}
	h.expect(h.do("POST", "/api/v1/tenants/uni/reactivate", adminToken, nil), 200)
	h.expect(h.do("GET", "/api/v1/tenants/uni", key, nil), 200)
}

func TestListTenantsPages(t *testing.T) {
	h := newHub(t)
	for _, slug := range []string{"a", "b", "c"} {
		h.createTenant(slug, "employer")
	}
	var page struct {
		Items []struct {
			Slug string `json:"slug"`
		} `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	h.expect(h.do("GET", "/api/v1/tenants?limit=2", adminToken, nil), 200).json(t, &page)
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("first page %+v", page)
	}
	next := page.NextCursor
	page.NextCursor = ""
	h.expect(h.do("GET", "/api/v1/tenants?limit=2&cursor="+next, adminToken, nil), 200).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Slug != "c" || page.NextCursor != "" {
		t.Fatalf("second page %+v", page)
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "cursor=garbage"} {
		h.problem(h.do("GET", "/api/v1/tenants?"+q, adminToken, nil), 400, "validation")
	}
}
