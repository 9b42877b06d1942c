package api_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klasterina/hub/api"
	"github.com/klasterina/hub/internal/pg/pgtest"
)

// TestSCIMPatchActiveRemovedKeepsDeactivation: removing active, or setting
// it to null, leaves a deactivated user deactivated, as a PUT without
// active does.
func TestSCIMPatchActiveRemovedKeepsDeactivation(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	id := d.ok(d.call("POST", "/Users", `{"userName":"ada","active":false}`), 201)["id"].(string)
	for _, op := range []string{`{"op":"remove","path":"active"}`, `{"op":"replace","path":"active","value":null}`,
		`{"op":"replace","value":{"active":null}}`} {
		got := d.ok(d.call("PATCH", "/Users/"+id, `{"Operations":[`+op+`]}`), 200)
		if got["active"] != false {
			t.Errorf("%s: active = %v", op, got["active"])
		}
		if u := d.row(id); u.Active || !u.Deactivated {
			t.Fatalf("%s reactivated the user: %+v", op, u)
		}
	}
}

// TestSCIMPatchPrimaryIsOne: a PATCH that makes a value primary makes the
// others not (RFC 7644 §3.5.2), and the hub's email follows the new one.
func TestSCIMPatchPrimaryIsOne(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	id := d.ok(d.call("POST", "/Users", `{"userName":"ada","emails":[{"value":"ada@old.example","primary":true,"type":"work"}]}`), 201)["id"].(string)
	got := d.ok(d.call("PATCH", "/Users/"+id, `{"Operations":[{"op":"add","path":"emails",
		"value":[{"value":"ada@new.example","primary":true,"type":"home"}]}]}`), 200)
	primaries := 0
	for _, e := range got["emails"].([]any) {
		if e.(map[string]any)["primary"] == true {
			primaries++
		}
	}
	if primaries != 1 {
		t.Fatalf("emails = %v: %d primary, want 1", got["emails"], primaries)
	}
	if u := d.row(id); sval(u.Email) != "ada@new.example" {
		t.Fatalf("the hub's email = %s, want the new primary", sval(u.Email))
	}
	got = d.ok(d.call("PATCH", "/Users/"+id, `{"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].primary","value":"True"}]}`), 200)
	for _, e := range got["emails"].([]any) {
		if m := e.(map[string]any); (m["primary"] == true) != (m["type"] == "work") {
			t.Fatalf("emails = %v, want the work one alone primary", got["emails"])
		}
	}
	if u := d.row(id); sval(u.Email) != "ada@old.example" {
		t.Fatalf("the hub's email = %s, want the work one", sval(u.Email))
	}
}

func randomText(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestSCIMRefusesOversizedValues: a value longer than the hub keeps is a
// 400 invalidValue, never a 500, and changes nothing.
func TestSCIMRefusesOversizedValues(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	long := strings.Repeat("x", 300)
	d.scimError(d.call("POST", "/Groups", map[string]any{"displayName": "G", "externalId": long}), 400, "invalidValue")
	gid := d.ok(d.call("POST", "/Groups", map[string]any{"displayName": "G"}), 201)["id"].(string)
	d.scimError(d.call("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"replace","path":"externalId","value":"`+long+`"}]}`), 400, "invalidValue")
	d.scimError(d.call("PUT", "/Groups/"+gid, map[string]any{"displayName": "G", "externalId": long}), 400, "invalidValue")

	huge := randomText(8000)
	d.scimError(d.call("POST", "/Users", map[string]any{"userName": "ada",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"employeeNumber": huge}}), 400, "invalidValue")
	d.scimError(d.call("POST", "/Users", map[string]any{"userName": "ada",
		"emails": []any{map[string]any{"value": huge + "@acme.example", "primary": true}}}), 400, "invalidValue")
	if l := d.filter("Users", `userName eq "ada"`); total(l) != 0 {
		t.Fatalf("a refused user was created: %v", l)
	}
}

// TestSCIMDeleteUserWhileGroupAdds: a DELETE of a user and a PATCH adding
// them to a group they are in, at once, both answer; neither loses to a
// deadlock (a 503).
func TestSCIMDeleteUserWhileGroupAdds(t *testing.T) {
	dbt := pgtest.New(t)
	var mu sync.Mutex
	var hold chan struct{} // when set, the next clock reading waits for it
	entered := make(chan struct{}, 1)
	h := serveHubWith(t, dbt, mustOpen(t, dbt), func(d *api.Deps) {
		d.Directory.Now = func() time.Time {
			mu.Lock()
			wait := hold
			hold = nil
			mu.Unlock()
			if wait != nil {
				entered <- struct{}{}
				<-wait
			}
			return time.Now()
		}
	})
	d := h.scimDirectory("acme")
	uid := d.ok(d.call("POST", "/Users", map[string]any{"userName": "ada"}), 201)["id"].(string)
	gid := d.ok(d.call("POST", "/Groups", map[string]any{"displayName": "G", "members": []any{map[string]any{"value": uid}}}), 201)["id"].(string)

	release := make(chan struct{})
	mu.Lock()
	hold = release
	mu.Unlock()
	var wg sync.WaitGroup
	var deleted, patched response
	wg.Add(2)
	go func() { defer wg.Done(); deleted = d.call("DELETE", "/Users/"+uid, nil) }()
	<-entered // the DELETE holds the user
	go func() { defer wg.Done(); patched = d.call("PATCH", "/Groups/"+gid, membersPatch("add", []string{uid})) }()
	su := pgtest.Superuser(t, dbt)
	for deadline := time.Now().Add(5 * time.Second); ; {
		var waiting int
		if err := su.Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if deleted.status != 204 || (patched.status != 204 && patched.status != 400) {
		t.Fatalf("DELETE %d %s; PATCH %d %s", deleted.status, deleted.body, patched.status, patched.body)
	}
	if n := d.memberCount(gid); n != 0 {
		t.Fatalf("the deprovisioned user is in %d group", n)
	}
}

// TestSCIMBoundsUserPatch: a user's PATCH has at most 1000 operations and
// a multi-valued attribute at most 100 values; more is a 400 that changes
// nothing. (Unbounded, 14,000 operations adding an email each held the
// user's row for minutes: each compared its value with all before it.)
func TestSCIMBoundsUserPatch(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	id := d.ok(d.call("POST", "/Users", map[string]any{"userName": "ada", "title": "A"}), 201)["id"].(string)
	ops := func(n int, op func(i int) string) string {
		var b strings.Builder
		b.WriteString(`{"Operations":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(op(i))
		}
		b.WriteString(`]}`)
		return b.String()
	}
	d.scimError(d.call("PATCH", "/Users/"+id, ops(1001, func(int) string { return `{"op":"replace","path":"title","value":"B"}` })), 400, "tooMany")
	addEmail := func(i int) string {
		return fmt.Sprintf(`{"op":"add","path":"emails","value":[{"value":"e%d@acme.example"}]}`, i)
	}
	d.scimError(d.call("PATCH", "/Users/"+id, ops(101, addEmail)), 400, "invalidValue")
	d.scimError(d.call("PATCH", "/Users/"+id, ops(101, func(i int) string {
		return fmt.Sprintf(`{"op":"add","path":"emails[type eq \"t%d\"].value","value":"e%d@acme.example"}`, i, i)
	})), 400, "invalidValue")
	many := make([]any, 101)
	for i := range many {
		many[i] = map[string]any{"value": fmt.Sprintf("e%d@acme.example", i)}
	}
	d.scimError(d.call("POST", "/Users", map[string]any{"userName": "grace", "emails": many}), 400, "invalidValue")
	d.scimError(d.call("PATCH", "/Users/"+id, map[string]any{"Operations": []any{map[string]any{"op": "add", "path": "emails", "value": many}}}), 400, "invalidValue")
	if got := d.ok(d.call("GET", "/Users/"+id, nil), 200); got["title"] != "A" || got["emails"] != nil {
		t.Fatalf("a refused PATCH changed the user: %v", got)
	}
	d.ok(d.call("PATCH", "/Users/"+id, ops(100, addEmail)), 200)
	d.ok(d.call("PATCH", "/Users/"+id, ops(1000, func(i int) string { return addEmail(i % 100) })), 200)
}

// TestSCIMConcurrentCreates: two creates of one userName at once are one
// 201 and one 409, never a 500.
func TestSCIMConcurrentCreates(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	for round := range 5 {
		var wg sync.WaitGroup
		status := make([]int, 4)
		for i := range status {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status[i] = d.call("POST", "/Users", map[string]any{"userName": "same" + string(rune('a'+round))}).status
			}()
		}
		wg.Wait()
		created := 0
		for _, s := range status {
			if s == 201 {
				created++
			} else if s != 409 {
				t.Fatalf("statuses %v", status)
			}
		}
		if created != 1 {
			t.Fatalf("statuses %v", status)
		}
	}
}

// TestSCIMTenantIsolation: a directory neither reads nor names another
// tenant's users and groups.
func TestSCIMTenantIsolation(t *testing.T) {
	h := newHub(t)
	a, b := h.scimDirectory("acme"), h.scimDirectory("bolt")
	bu := b.ok(b.call("POST", "/Users", map[string]any{"userName": "bob", "externalId": "x1",
		"emails": []any{map[string]any{"value": "bob@bolt.example"}}}), 201)["id"].(string)
	bg := b.ok(b.call("POST", "/Groups", map[string]any{"displayName": "B", "members": []any{map[string]any{"value": bu}}}), 201)["id"].(string)
	a.scimError(a.call("GET", "/Users/"+bu, nil), 404, "")
	a.scimError(a.call("PATCH", "/Users/"+bu, `{"Operations":[{"op":"replace","path":"title","value":"x"}]}`), 404, "")
	a.scimError(a.call("DELETE", "/Users/"+bu, nil), 404, "")
	a.scimError(a.call("GET", "/Groups/"+bg, nil), 404, "")
	a.scimError(a.call("PATCH", "/Groups/"+bg, membersPatch("add", []string{bu})), 404, "")
	ag := a.ok(a.call("POST", "/Groups", map[string]any{"displayName": "A"}), 201)["id"].(string)
	a.scimError(a.call("PATCH", "/Groups/"+ag, membersPatch("add", []string{bu})), 400, "invalidValue")
	a.scimError(a.call("POST", "/Groups", map[string]any{"displayName": "A2", "members": []any{map[string]any{"value": bu}}}), 400, "invalidValue")
	for _, f := range []string{`id eq "` + bu + `"`, `externalId eq "x1"`, `emails co "bolt"`, `groups.value eq "` + bg + `"`} {
		if l := a.filter("Users", f); total(l) != 0 {
			t.Errorf("%s: %v", f, l)
		}
	}
	if l := a.filter("Groups", `members[value eq "`+bu+`"]`); total(l) != 0 {
		t.Errorf("groups by another's member: %v", l)
	}
	created := a.ok(a.call("POST", "/Users", map[string]any{"userName": "bob", "externalId": "x1",
		"emails": []any{map[string]any{"value": "bob@bolt.example"}}}), 201)
	if created["id"] == bu {
		t.Fatal("a create adopted another tenant's user")
	}
	// A's token on B's path.
	r := h.request("GET", "/scim/v2/bolt/Users", a.token, nil)
	h.expect(h.send(r), 401)
}

// TestSCIMRefusesUnstorableText: a NUL character, which PostgreSQL's text
// and jsonb refuse, in a value or key is 400 invalidValue, and in a
// filter, with text that is not UTF-8, 400 invalidFilter: never a 500.
func TestSCIMRefusesUnstorableText(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	for _, body := range []string{`{"userName":"a\u0000b"}`, `{"userName":"ada","title":"x\u0000"}`,
		`{"userName":"ada","nickName":"x\u0000"}`, `{"userName":"ada","urn:example:ext:User":{"x\u0000":"y"}}`} {
		d.scimError(d.call("POST", "/Users", body), 400, "invalidValue")
	}
	d.scimError(d.call("POST", "/Groups", `{"displayName":"g\u0000"}`), 400, "invalidValue")
	id := d.ok(d.call("POST", "/Users", `{"userName":"ada","title":"A"}`), 201)["id"].(string)
	d.scimError(d.call("PUT", "/Users/"+id, `{"userName":"ada","title":"\u0000"}`), 400, "invalidValue")
	d.scimError(d.call("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"B\u0000"}]}`), 400, "invalidValue")
	gid := d.ok(d.call("POST", "/Groups", `{"displayName":"G"}`), 201)["id"].(string)
	d.scimError(d.call("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"replace","path":"displayName","value":"H\u0000"}]}`), 400, "invalidValue")
	for _, f := range []string{`userName eq "a\u0000"`, `nickName eq "a\u0000"`, `emails[value eq "\u0000"]`, "userName eq \"\xff\""} {
		d.scimError(d.call("GET", "/Users?filter="+url.QueryEscape(f), nil), 400, "invalidFilter")
	}
	if got := d.ok(d.call("GET", "/Users/"+id, nil), 200); got["title"] != "A" {
		t.Fatalf("a refused change changed the user: %v", got)
	}
	if l := d.ok(d.call("GET", "/Users", nil), 200); total(l) != 1 {
		t.Fatalf("users: %v", l)
	}
}

// TestSCIMConcurrentGroupPatches: PATCHes of one group at once each apply
// all their changes, none lost, and each bumps its version.
func TestSCIMConcurrentGroupPatches(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	ids := d.provisionUsers(40)
	g := d.call("POST", "/Groups", map[string]any{"displayName": "G"})
	gid := d.ok(g, 201)["id"].(string)
	var wg sync.WaitGroup
	status := make([]int, 8)
	for i := range status {
		wg.Go(func() { status[i] = d.call("PATCH", "/Groups/"+gid, membersPatch("add", ids[i*5:i*5+5])).status })
	}
	wg.Wait()
	for _, s := range status {
		if s != 204 {
			t.Fatalf("statuses %v", status)
		}
	}
	if n := d.memberCount(gid); n != 40 {
		t.Fatalf("%d members, want 40", n)
	}
	if tag := d.call("GET", "/Groups/"+gid, nil).header.Get("ETag"); tag != `W/"9"` {
		t.Fatalf("ETag %s after 8 patches of version 1", tag)
	}
}
