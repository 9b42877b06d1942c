package api_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/tenants/audit"
)

type auditPage struct {
	Items      []audit.Entry `json:"items"`
	NextCursor string        `json:"next_cursor"`
}

func TestAuditRecordsMutationsAndVerifies(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	keyID, key := h.createKey("uni", "write")
	h.expect(h.do("PATCH", "/api/v1/tenants/uni", adminToken, map[string]string{"display_name": "U2"}), 200)
	h.expect(h.do("POST", "/api/v1/tenants/uni/api-keys", key, map[string]any{"name": "n", "scopes": []string{"read"}}), 201)

	var page auditPage
	h.expect(h.do("GET", "/api/v1/tenants/uni/audit", key, nil), 200).json(t, &page)
	var got []string
	for _, e := range page.Items {
		got = append(got, e.Action+"/"+string(e.ActorType))
		if e.RequestID == "" {
			t.Errorf("entry %s has no request id", e.Action)
		}
	}
	want := "api_key.created/api_key tenant.updated/operator api_key.created/operator tenant.created/operator"
	if strings.Join(got, " ") != want {
		t.Fatalf("audit = %v, want %s", got, want)
	}
	if page.Items[0].ActorID != keyID {
		t.Fatalf("actor = %s, want the key %s", page.Items[0].ActorID, keyID)
	}

	h.expect(h.do("GET", "/api/v1/tenants/uni/audit?action=api_key.&limit=1", key, nil), 200).json(t, &page)
	if len(page.Items) != 1 || page.NextCursor == "" {
		t.Fatalf("filtered page %+v", page)
	}
	for _, q := range []string{"since=yesterday", "until=1", "cursor=abc", "limit=0", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z"} {
		h.problem(h.do("GET", "/api/v1/tenants/uni/audit?"+q, key, nil), 400, "validation")
	}

	var v audit.Verification
	h.expect(h.do("GET", "/api/v1/tenants/uni/audit/verify", key, nil), 200).json(t, &v)
	if !v.Valid || v.Checked != 4 {
		t.Fatalf("verify = %+v", v)
	}
}

func TestAuditVerifyNamesTheAlteredRow(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	h.createKey("uni", "read")
	h.createKey("uni", "read")
	var page auditPage
	h.expect(h.do("GET", "/api/v1/tenants/uni/audit", adminToken, nil), 200).json(t, &page)
	altered := page.Items[1]

	super := pgtest.Superuser(t, h.dbt)
	if _, err := super.Exec(`UPDATE audit_log SET details = details || '{"scopes":"read,write"}' WHERE id = $1`, altered.ID); err != nil {
		t.Fatal(err)
	}
	var v audit.Verification
	h.expect(h.do("GET", "/api/v1/tenants/uni/audit/verify", adminToken, nil), 200).json(t, &v)
	if v.Valid || v.Broken == nil || v.Broken.ID != altered.ID {
		t.Fatalf("verify = %+v, want entry %s named", v, altered.ID)
	}
}

func TestFailedAuthenticationIsAudited(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	id, key := h.createKey("uni", "read")
	h.expect(h.do("DELETE", "/api/v1/tenants/uni/api-keys/"+id, adminToken, nil), 204)
	h.expect(h.do("GET", "/api/v1/tenants/uni", key, nil), 401)
	h.expect(h.do("GET", "/api/v1/tenants/uni", "not-the-operator-token", nil), 401)

	var page auditPage
	h.expect(h.do("GET", "/api/v1/tenants/uni/audit?action=auth.failed", adminToken, nil), 200).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Details["reason"] != "revoked" || page.Items[0].TargetID != id {
		t.Fatalf("tenant chain auth failures = %+v", page.Items)
	}
	h.expect(h.do("GET", "/api/v1/audit", adminToken, nil), 200).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Action != "auth.failed" || page.Items[0].Details["reason"] != "unknown" {
		t.Fatalf("operator chain = %+v", page.Items)
	}
	var v audit.Verification
	h.expect(h.do("GET", "/api/v1/audit/verify", adminToken, nil), 200).json(t, &v)
	if !v.Valid || v.Checked != 1 {
		t.Fatalf("operator chain verify = %+v", v)
	}
}

// TestRefusedTokenFloodIsBounded: one source's refused tokens are audited
// up to its limit of 20 a minute, then only counted, so bad tokens cannot
// grow the log without end.
func TestRefusedTokenFloodIsBounded(t *testing.T) {
	h := newHub(t)
	for range 100 {
		h.expect(h.do("GET", "/api/v1/tenants", "hubk_aaaaaaaaaa_"+strings.Repeat("b", 52), nil), 401)
	}
	var page auditPage
	h.expect(h.do("GET", "/api/v1/audit?limit=200", adminToken, nil), 200).json(t, &page)
	if n := len(page.Items); n != 20 {
		t.Fatalf("%d of 100 refused tokens audited, want the source's 20", n)
	}
	metrics := string(h.expect(h.do("GET", "/metrics", "", nil), 200).body)
	if !strings.Contains(metrics, "hub_auth_failures_unaudited_total") || strings.Contains(metrics, "hub_auth_failures_unaudited_total 0\n") {
		t.Fatal("unaudited failures are not counted")
	}
}

// TestClientAddressOfRefusals: a client's X-Forwarded-For is ignored unless
// it came through a trusted proxy.
func TestClientAddressOfRefusals(t *testing.T) {
	refusedFrom := func(h *hub) string {
		req, _ := http.NewRequest("GET", h.url+"/api/v1/tenants", nil)
		req.Header.Set("Authorization", "Bearer wrong-token")
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		h.expect(h.send(req), 401)
		var page auditPage
		h.expect(h.do("GET", "/api/v1/audit", adminToken, nil), 200).json(t, &page)
		return page.Items[0].ActorID
	}
	if got := refusedFrom(newHub(t)); got != "127.0.0.1" {
		t.Fatalf("without trusted proxies the refusal came from %q, want the peer", got)
	}
	d := pgtest.New(t)
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	behindProxy := serveHub(t, d, mustOpen(t, d), func(c *config.Config) { c.TrustedProxies = []*net.IPNet{loopback} })
	if got := refusedFrom(behindProxy); got != "203.0.113.7" {
		t.Fatalf("behind a trusted proxy the refusal came from %q, want the forwarded client", got)
	}
}
