package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/sso/scim"
	"github.com/klasterina/hub/tenants/audit"
)

// provisionUsers inserts n directory users in one statement, as a
// directory's first sync would leave them, and returns their ids.
func (d scimDirectory) provisionUsers(n int) []string {
	d.h.t.Helper()
	tenant := d.h.tenantID(d.slug)
	var ids []string
	err := pg.InTenant(context.Background(), d.h.db, tenant, func(tx *sqlx.Tx) error {
		return tx.Select(&ids, `INSERT INTO users (id, tenant_id, user_name, provisioned_at, created_at, updated_at)
			SELECT gen_random_uuid(), $1, 'bulk-' || i || '@acme.example', now(), now(), now() FROM generate_series(1, $2) AS i
			RETURNING id::text`, tenant, n)
	})
	if err != nil {
		d.h.t.Fatal(err)
	}
	return ids
}

// membersPatch is a PatchOp body that adds or removes ids as members, the
// way Entra ID sends it.
func membersPatch(op string, ids []string) string {
	var b strings.Builder
	b.WriteString(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"` + op + `","path":"members","value":[`)
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"value":"` + id + `"}`)
	}
	b.WriteString(`]}]}`)
	return b.String()
}

func (d scimDirectory) memberCount(gid string) int {
	d.h.t.Helper()
	var n int
	if err := pgtest.Superuser(d.h.t, d.h.dbt).Get(&n, `SELECT count(*) FROM scim_group_members WHERE group_id = $1`, gid); err != nil {
		d.h.t.Fatal(err)
	}
	return n
}

// TestSCIMLargeGroup: a group of 10,000 members is patched by statements
// over the ids the PATCH names; a one-member change to it allocates no
// more than the same change to a group of three, so its members are never
// read; the audit log has one entry per PATCH, with counts.
func TestSCIMLargeGroup(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	ids := d.provisionUsers(10_000)
	gid := d.ok(d.call("POST", "/Groups", map[string]any{"displayName": "Everyone"}), 201)["id"].(string)

	d.ok(d.call("PATCH", "/Groups/"+gid, membersPatch("Add", ids)), 204)
	if n := d.memberCount(gid); n != 10_000 {
		t.Fatalf("members = %d", n)
	}
	got := d.ok(d.call("GET", "/Groups/"+gid+"?excludedAttributes=members", nil), 200)
	if _, ok := got["members"]; ok {
		t.Fatal("excludedAttributes=members answered the members")
	}
	if l := d.filter("Groups", `members[value eq "`+ids[9_999]+`"]`); total(l) != 1 {
		t.Fatalf("filter by member: %v", l)
	}
	d.ok(d.call("PATCH", "/Groups/"+gid, membersPatch("Remove", ids[:5_000])), 204)
	if n := d.memberCount(gid); n != 5_000 {
		t.Fatalf("members after removing 5,000 = %d", n)
	}
	var details string
	if err := pgtest.Superuser(t, h.dbt).Get(&details, `SELECT details::text FROM audit_log WHERE action = 'scim.group.patched'
		ORDER BY seq DESC LIMIT 1`); err != nil || !strings.Contains(details, `"members_removed": "5000"`) && !strings.Contains(details, `"members_removed":"5000"`) {
		t.Fatalf("audit details = %s %v", details, err)
	}

	// Okta removes members one operation each: 5,000 of them, one statement.
	var ops []string
	for _, id := range ids[5_000:] {
		ops = append(ops, `{"op":"remove","path":"members[value eq \"`+id+`\"]"}`)
	}
	d.ok(d.call("PATCH", "/Groups/"+gid, `{"Operations":[`+strings.Join(ops, ",")+`]}`), 204)
	if n := d.memberCount(gid); n != 0 {
		t.Fatalf("members after Okta's removals = %d", n)
	}
	d.ok(d.call("PATCH", "/Groups/"+gid, membersPatch("Add", ids[:5_000])), 204)

	small := d.ok(d.call("POST", "/Groups", map[string]any{"displayName": "One", "members": []any{map[string]any{"value": ids[0]}}}), 201)["id"].(string)
	tenant := h.tenantID("acme")
	by := audit.Actor{Type: audit.ActorSCIMToken, ID: "test"}
	alloc := func(group, member string) uint64 {
		ops, err := scim.ParsePatch([]byte(membersPatch("add", []string{member})))
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if err := h.deps.Directory.PatchGroup(context.Background(), by, tenant, group, "", ops); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	alloc(small, ids[1]) // warm the connection
	one, big := alloc(small, ids[2]), alloc(gid, ids[3])
	if big > 2*one+64<<10 {
		t.Fatalf("adding a member to a 5,000-member group allocated %d bytes, to a 3-member group %d", big, one)
	}
	t.Logf("one-member PATCH: %d bytes on a group of 3, %d on a group of 5,000", one, big)
}

// BenchmarkSCIMCycle is a directory's round for one person: create, look
// up by userName, deactivate, through the hub's HTTP server.
func BenchmarkSCIMCycle(b *testing.B) {
	h := newHub(b)
	d := h.scimDirectory("acme")
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		name := fmt.Sprintf("bench-%d-%s@acme.example", i, uuid.NewString()[:8])
		id := d.ok(d.call("POST", "/Users", map[string]any{"userName": name, "emails": []any{map[string]any{"value": name, "primary": true}}}), 201)["id"].(string)
		if l := d.filter("Users", `userName eq "`+name+`"`); total(l) != 1 {
			b.Fatalf("lookup: %v", l)
		}
		d.ok(d.call("PATCH", "/Users/"+id, `{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`), 200)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
}

// BenchmarkSCIMGroupPatch10k adds 10,000 members to a group in one PATCH
// and removes them in another.
func BenchmarkSCIMGroupPatch10k(b *testing.B) {
	h := newHub(b)
	d := h.scimDirectory("acme")
	ids := d.provisionUsers(10_000)
	gid := d.ok(d.call("POST", "/Groups", map[string]any{"displayName": "Everyone"}), 201)["id"].(string)
	add, remove := membersPatch("Add", ids), membersPatch("Remove", ids)
	var adding, removing time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		d.ok(d.call("PATCH", "/Groups/"+gid, add), 204)
		t1 := time.Now()
		d.ok(d.call("PATCH", "/Groups/"+gid, remove), 204)
		adding, removing = adding+t1.Sub(t0), removing+time.Since(t1)
	}
	b.ReportMetric(float64(b.N)/adding.Seconds(), "adds/s")
	b.ReportMetric(float64(b.N)/removing.Seconds(), "removes/s")
	b.ReportMetric(float64(b.N*10_000)/(adding+removing).Seconds(), "members/s")
}

// BenchmarkSCIMGroupPatchOne adds a member to a group of 10 and of 10,000
// and removes them again: the time and allocations of the two are alike,
// the members never being read.
func BenchmarkSCIMGroupPatchOne(b *testing.B) {
	for _, size := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			h := newHub(b)
			d := h.scimDirectory("acme")
			ids := d.provisionUsers(size + 1)
			gid := d.ok(d.call("POST", "/Groups", map[string]any{"displayName": "Everyone"}), 201)["id"].(string)
			d.ok(d.call("PATCH", "/Groups/"+gid, membersPatch("Add", ids[1:])), 204)
			add := membersPatch("Add", ids[:1])
			remove := `{"Operations":[{"op":"remove","path":"members[value eq \"` + ids[0] + `\"]"}]}`
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				d.ok(d.call("PATCH", "/Groups/"+gid, add), 204)
				d.ok(d.call("PATCH", "/Groups/"+gid, remove), 204)
			}
			b.ReportMetric(float64(2*b.N)/time.Since(start).Seconds(), "patches/s")
		})
	}
}

// TestSCIMInFlightAllowance: a directory may have TenantInFlight requests
// in progress; one more is a SCIM 429 with Retry-After, while the tenant's
// admins and another directory are served. The held requests are POSTs
// whose bodies never finish arriving.
func TestSCIMInFlightAllowance(t *testing.T) {
	h := newHub(t)
	a, b := h.scimDirectory("alpha"), h.scimDirectory("beta")
	_, key := h.createKey("alpha", "read")
	var writers []*io.PipeWriter
	var wg sync.WaitGroup
	release := func() {
		for _, pw := range writers {
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}
		wg.Wait()
	}
	t.Cleanup(release)
	for range api.TenantInFlight {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		req, _ := http.NewRequest("POST", h.url+"/scim/v2/alpha/Users", pr)
		req.Header.Set("Authorization", "Bearer "+a.token)
		wg.Go(func() {
			if res, err := h.client.Do(req); err == nil {
				res.Body.Close()
			}
		})
		_, _ = pw.Write([]byte(`{"userName":`))
	}
	want := fmt.Sprintf("hub_scim_requests_in_flight %d\n", api.TenantInFlight)
	eventually(t, 30*time.Second, "all of alpha's held requests are in progress", func() bool {
		return strings.Contains(string(h.do("GET", "/metrics", "", nil).body), want)
	})
	r := a.call("GET", "/Users", nil)
	a.scimError(r, 429, "")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	b.ok(b.call("GET", "/Users", nil), 200)
	h.expect(h.do("GET", "/api/v1/tenants/alpha/scim-tokens", key, nil), 200)
	release()
	eventually(t, 10*time.Second, "alpha's directory is served again", func() bool {
		return a.call("GET", "/Users", nil).status == 200
	})
}
