package api_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
)

// scimDirectory is a tenant with a SCIM token, as its admin sets it up.
type scimDirectory struct {
	h     *hub
	slug  string
	token string
}

func (h *hub) scimDirectory(slug string) scimDirectory {
	h.t.Helper()
	h.createTenant(slug, "employer")
	r := h.expect(h.do("POST", "/api/v1/tenants/"+slug+"/scim-tokens", adminToken, map[string]any{"name": "okta"}), 201)
	return scimDirectory{h: h, slug: slug, token: r.field(h.t, "token")}
}

// call sends a SCIM request: body a string sent as is, or a value as JSON;
// headers in pairs.
func (d scimDirectory) call(method, path string, body any, headers ...string) response {
	d.h.t.Helper()
	req := d.h.request(method, "/scim/v2/"+d.slug+path, d.token, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return d.h.send(req)
}

// ok expects status and SCIM's media type, and decodes the body.
func (d scimDirectory) ok(r response, status int) map[string]any {
	d.h.t.Helper()
	d.h.expect(r, status)
	if status == 204 {
		return nil
	}
	if ct := r.header.Get("Content-Type"); ct != "application/scim+json" {
		d.h.t.Fatalf("Content-Type = %q, want application/scim+json; body %s", ct, r.body)
	}
	var m map[string]any
	r.json(d.h.t, &m)
	return m
}

// scimError expects a SCIM error of status and scimType ("" for none).
func (d scimDirectory) scimError(r response, status int, scimType string) map[string]any {
	d.h.t.Helper()
	m := d.ok(r, status)
	schemas, _ := m["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" ||
		m["status"] != fmt.Sprint(status) || (m["scimType"] != nil || scimType != "") && m["scimType"] != scimType {
		d.h.t.Fatalf("error = %v, want status %q scimType %q", m, fmt.Sprint(status), scimType)
	}
	return m
}

func (d scimDirectory) filter(resource, f string) map[string]any {
	d.h.t.Helper()
	return d.ok(d.call("GET", "/"+resource+"?filter="+url.QueryEscape(f), nil), 200)
}

func total(m map[string]any) int {
	n, _ := m["totalResults"].(float64)
	return int(n)
}

func resources(m map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range m["Resources"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// userColumns reads the users row as the sign-in code would.
type userColumns struct {
	UserName       *string `db:"user_name"`
	ExternalID     *string `db:"external_id"`
	Email          *string `db:"email"`
	GivenName      *string `db:"given_name"`
	FamilyName     *string `db:"family_name"`
	EmployeeNumber *string `db:"employee_number"`
	Department     *string `db:"department"`
	ManagerID      *string `db:"manager_id"`
	Active         bool    `db:"active"`
	Provisioned    bool    `db:"provisioned"`
	Deactivated    bool    `db:"deactivated"`
	Deprovisioned  bool    `db:"deprovisioned"`
	Directory      *string `db:"directory"`
}

func (d scimDirectory) row(id string) userColumns {
	d.h.t.Helper()
	var u userColumns
	err := pgtest.Superuser(d.h.t, d.h.dbt).Get(&u, `SELECT user_name, external_id, email, given_name, family_name,
		employee_number, department, manager_id, active, provisioned_at IS NOT NULL AS provisioned,
		deactivated_at IS NOT NULL AS deactivated, deprovisioned_at IS NOT NULL AS deprovisioned, directory::text AS directory
		FROM users WHERE id = $1`, id)
	if err != nil {
		d.h.t.Fatal(err)
	}
	return u
}

func sval(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// auditActions are the actions of the tenant's audit entries, oldest first.
func (d scimDirectory) auditActions() []string {
	d.h.t.Helper()
	var out []string
	err := pgtest.Superuser(d.h.t, d.h.dbt).Select(&out, `SELECT a.action || ':' || a.actor_type FROM audit_log a
		JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = $1 ORDER BY a.seq`, d.slug)
	if err != nil {
		d.h.t.Fatal(err)
	}
	return out
}

func listed(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}

// TestSCIMOktaSession replays what Okta sends: its probe, a create, the
// lookup by userName, PUT updates, deactivation by PATCH without a path,
// group push with membership changes, and deprovisioning.
func TestSCIMOktaSession(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")

	spc := d.ok(d.call("GET", "/ServiceProviderConfig", nil), 200)
	if spc["patch"].(map[string]any)["supported"] != true || spc["bulk"].(map[string]any)["supported"] != false ||
		spc["etag"].(map[string]any)["supported"] != true || spc["filter"].(map[string]any)["maxResults"] != 1000.0 {
		t.Fatalf("ServiceProviderConfig = %v", spc)
	}
	if l := d.filter("Users", `userName eq "probe-`+uuid.NewString()+`@acme.example"`); total(l) != 0 || len(resources(l)) != 0 {
		t.Fatalf("probe: %v", l)
	}

	created := d.ok(d.call("POST", "/Users", `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName": "ada@acme.example",
		"name": {"givenName": "Ada", "familyName": "Lovelace"},
		"emails": [{"primary": true, "value": "ada@acme.example", "type": "work"}],
		"displayName": "Ada Lovelace", "locale": "en-GB", "externalId": "00u1okta",
		"groups": [], "password": "Secret-1", "active": true}`), 201)
	id := created["id"].(string)
	if created["userName"] != "ada@acme.example" || created["password"] != nil || created["active"] != true {
		t.Fatalf("created = %v", created)
	}
	u := d.row(id)
	if sval(u.UserName) != "ada@acme.example" || sval(u.Email) != "ada@acme.example" || sval(u.GivenName) != "Ada" ||
		sval(u.ExternalID) != "00u1okta" || !u.Provisioned || !u.Active || strings.Contains(sval(u.Directory), "Secret-1") {
		t.Fatalf("row = %+v", u)
	}

	found := d.filter("Users", `userName eq "ADA@acme.example"`)
	if total(found) != 1 || resources(found)[0]["id"] != id {
		t.Fatalf("lookup by userName: %v", found)
	}

	put := d.ok(d.call("PUT", "/Users/"+id, `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "`+id+`",
		"userName": "ada@acme.example", "name": {"givenName": "Augusta", "familyName": "King"},
		"emails": [{"primary": true, "value": "augusta@acme.example", "type": "work"}],
		"phoneNumbers": [{"value": "+44 20 7946 0000", "type": "mobile"}],
		"title": "Countess", "active": true}`), 200)
	if put["title"] != "Countess" || put["name"].(map[string]any)["givenName"] != "Augusta" || put["phoneNumbers"] == nil {
		t.Fatalf("put = %v", put)
	}
	if u := d.row(id); sval(u.Email) != "augusta@acme.example" || sval(u.FamilyName) != "King" || u.ExternalID != nil {
		t.Fatalf("after PUT: %+v", u)
	}

	deact := d.ok(d.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","value":{"active":false}}]}`), 200)
	if deact["active"] != false {
		t.Fatalf("deactivated = %v", deact)
	}
	if u := d.row(id); u.Active || !u.Deactivated {
		t.Fatalf("after deactivation: %+v", u)
	}
	d.ok(d.call("PUT", "/Users/"+id, map[string]any{"userName": "ada@acme.example", "title": "Countess"}), 200)
	if u := d.row(id); u.Active {
		t.Fatal("a PUT without active reactivated the user")
	}
	if !listed(d.auditActions(), "scim.user.deactivated:scim_token") {
		t.Fatalf("audit: %v", d.auditActions())
	}

	other := d.ok(d.call("POST", "/Users", map[string]any{"userName": "grace@acme.example"}), 201)["id"].(string)
	g := d.ok(d.call("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","members":[]}`), 201)
	gid := g["id"].(string)
	d.ok(d.call("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"add","path":"members","value":[{"value":"`+id+`","display":"ada@acme.example"},{"value":"`+other+`","display":"grace"}]}]}`), 204)
	d.ok(d.call("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"remove","path":"members[value eq \"`+other+`\"]"}]}`), 204)
	d.ok(d.call("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"replace","value":{"id":"`+gid+`","displayName":"Engineering EU"}}]}`), 204)
	got := d.ok(d.call("GET", "/Groups/"+gid, nil), 200)
	members := got["members"].([]any)
	if got["displayName"] != "Engineering EU" || len(members) != 1 || members[0].(map[string]any)["value"] != id {
		t.Fatalf("group = %v", got)
	}
	if l := d.filter("Groups", `displayName eq "engineering eu"`); total(l) != 1 {
		t.Fatalf("group lookup: %v", l)
	}
	if l := d.filter("Groups", `members[value eq "`+id+`"]`); total(l) != 1 {
		t.Fatalf("group by member: %v", l)
	}
	if l := d.filter("Users", `groups.value eq "`+gid+`"`); total(l) != 1 || resources(l)[0]["id"] != id {
		t.Fatalf("users by group: %v", l)
	}
	if gs := d.ok(d.call("GET", "/Users/"+id, nil), 200)["groups"].([]any); len(gs) != 1 ||
		gs[0].(map[string]any)["value"] != gid || gs[0].(map[string]any)["display"] != "Engineering EU" {
		t.Fatalf("the user's groups: %v", gs)
	}

	groupTag := d.call("GET", "/Groups/"+gid, nil).header.Get("ETag")
	d.ok(d.call("DELETE", "/Users/"+id, nil), 204)
	if d.call("GET", "/Groups/"+gid, nil).header.Get("ETag") == groupTag {
		t.Fatal("a group that lost a member kept its ETag")
	}
	d.scimError(d.call("GET", "/Users/"+id, nil), 404, "")
	d.scimError(d.call("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","value":{"active":true}}]}`), 404, "")
	if u := d.row(id); !u.Deprovisioned || u.Active || u.UserName != nil {
		t.Fatalf("deprovisioned row: %+v", u)
	}
	if got := d.ok(d.call("GET", "/Groups/"+gid, nil), 200); len(got["members"].([]any)) != 0 {
		t.Fatalf("a deleted user stays a member: %v", got)
	}
	again := d.ok(d.call("POST", "/Users", map[string]any{"userName": "ada@acme.example"}), 201)
	if again["id"] == id {
		t.Fatal("a new POST after DELETE found the deprovisioned user")
	}
	d.ok(d.call("DELETE", "/Groups/"+gid, nil), 204)
	d.scimError(d.call("GET", "/Groups/"+gid, nil), 404, "")
	for _, want := range []string{"scim.user.created:scim_token", "scim.user.deleted:scim_token", "scim.group.patched:scim_token", "scim_token.created:operator"} {
		if !listed(d.auditActions(), want) {
			t.Errorf("audit lacks %s: %v", want, d.auditActions())
		}
	}
}

// TestSCIMEntraSession replays what Microsoft Entra ID sends: the probe,
// a create with the enterprise extension, PATCH with capitalised ops,
// booleans as strings, value paths, the manager as an id, a PATCH without
// a path whose keys are paths, and membership changes with value lists.
func TestSCIMEntraSession(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("contoso")
	d.ok(d.call("GET", "/Schemas", nil), 200)
	rt := d.ok(d.call("GET", "/ResourceTypes/User", nil), 200)
	if rt["schemaExtensions"] == nil {
		t.Fatalf("ResourceTypes/User = %v", rt)
	}
	if l := d.filter("Users", `userName eq "`+uuid.NewString()+`"`); total(l) != 0 {
		t.Fatalf("probe: %v", l)
	}
	boss := d.ok(d.call("POST", "/Users", map[string]any{"userName": "boss@contoso.example", "externalId": "b-1"}), 201)["id"].(string)

	created := d.ok(d.call("POST", "/Users", `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId": "e-42", "userName": "Lin@contoso.example", "active": "True",
		"displayName": "Lin Wei",
		"emails": [{"primary": true, "type": "work", "value": "lin@contoso.example"}],
		"meta": {"resourceType": "User"},
		"name": {"formatted": "Lin Wei", "familyName": "Wei", "givenName": "Lin"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations",
			"costCenter": "4130", "manager": {"value": "`+boss+`"}},
		"userType": "Member", "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Redmond", "primary": "True"}]}`), 201)
	id := created["id"].(string)
	u := d.row(id)
	if sval(u.EmployeeNumber) != "701984" || sval(u.Department) != "Tour Operations" || sval(u.ManagerID) != boss || !u.Active {
		t.Fatalf("row = %+v", u)
	}
	ext := created["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
	if ext["costCenter"] != "4130" || created["userType"] != "Member" || created["addresses"].([]any)[0].(map[string]any)["primary"] != true {
		t.Fatalf("created = %v", created)
	}
	if l := d.filter("Users", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984" and emails[type eq "work" and value co "lin@"]`); total(l) != 1 {
		t.Fatalf("enterprise filter: %v", l)
	}

	patched := d.ok(d.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Replace","path":"emails[type eq \"work\"].value","value":"wei.lin@contoso.example"},
		{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 425 555 0100"},
		{"op":"Replace","path":"addresses[type eq \"work\"].streetAddress","value":"2 Main St"},
		{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"b-1"},
		{"op":"Replace","value":{"name.givenName":"Wei","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Sales","displayName":"Wei Lin"}}]}`), 200)
	if u := d.row(id); sval(u.Email) != "wei.lin@contoso.example" || sval(u.ManagerID) != "b-1" || sval(u.GivenName) != "Wei" || sval(u.Department) != "Sales" {
		t.Fatalf("after PATCH: %+v", u)
	}
	phones := patched["phoneNumbers"].([]any)
	if len(phones) != 1 || phones[0].(map[string]any)["value"] != "+1 425 555 0100" || phones[0].(map[string]any)["type"] != "mobile" {
		t.Fatalf("phoneNumbers = %v", patched["phoneNumbers"])
	}
	if a := patched["addresses"].([]any)[0].(map[string]any); a["streetAddress"] != "2 Main St" || a["locality"] != "Redmond" {
		t.Fatalf("addresses = %v", patched["addresses"])
	}
	custom := d.ok(d.call("PATCH", "/Users/"+id, `{"Operations":[
		{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"`+boss+`"}},
		{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User:badge","value":"B-7"}]}`), 200)
	if c, _ := custom["urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User"].(map[string]any); c["badge"] != "B-7" ||
		!strings.Contains(fmt.Sprint(custom["schemas"]), "CustomExtension") {
		t.Fatalf("custom extension: %v", custom)
	}
	if u := d.row(id); sval(u.ManagerID) != boss {
		t.Fatalf("manager as an object: %+v", u)
	}

	d.ok(d.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`), 200)
	if u := d.row(id); u.Active || !u.Deactivated {
		t.Fatalf("after active False: %+v", u)
	}
	if l := d.filter("Users", `active eq false`); total(l) != 1 {
		t.Fatalf("active eq false: %v", l)
	}

	g := d.ok(d.call("POST", "/Groups", map[string]any{"displayName": "Sales", "externalId": "g-1"}), 201)["id"].(string)
	d.ok(d.call("PATCH", "/Groups/"+g, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Add","path":"members","value":[{"value":"`+id+`"},{"value":"`+boss+`"}]}]}`), 204)
	d.ok(d.call("PATCH", "/Groups/"+g, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Remove","path":"members","value":[{"value":"`+boss+`"}]}]}`), 204)
	got := d.ok(d.call("GET", "/Groups/"+g+"?excludedAttributes=members", nil), 200)
	if _, ok := got["members"]; ok {
		t.Fatalf("excludedAttributes=members: %v", got)
	}
	if got := d.ok(d.call("GET", "/Groups/"+g, nil), 200); len(got["members"].([]any)) != 1 {
		t.Fatalf("members: %v", got)
	}
	d.scimError(d.call("PATCH", "/Groups/"+g, `{"Operations":[{"op":"Add","path":"members","value":[{"value":"`+uuid.NewString()+`"}]}]}`), 400, "invalidValue")
}

// TestSCIMRefusesBadInput: malformed filters, bodies and PATCHes answer
// SCIM errors with their scimType, and change nothing.
func TestSCIMRefusesBadInput(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	u := d.ok(d.call("POST", "/Users", map[string]any{"userName": "ada@acme.example", "title": "Engineer"}), 201)
	id := u["id"].(string)
	before := d.call("GET", "/Users/"+id, nil)

	for name, f := range map[string]string{
		"unterminated string": `userName eq "ada`,
		"no operator":         `userName "ada"`,
		"unknown operator":    `userName xx "ada"`,
		"unknown attribute":   `shoeSize eq "42"`,
		"number for a string": `userName eq 42`,
		"string for boolean":  `active eq "maybe"`,
		"bad time":            `meta.created gt "yesterday"`,
		"injection":           `userName eq "x' OR '1'='1") OR (1=1`,
		"unknown schema":      `urn:example:User:userName eq "x"`,
		"co on boolean":       `active co "t"`,
	} {
		t.Run(name, func(t *testing.T) {
			d.scimError(d.call("GET", "/Users?filter="+url.QueryEscape(f), nil), 400, "invalidFilter")
		})
	}
	if l := d.filter("Users", `userName eq "x' OR '1'='1"`); total(l) != 0 {
		t.Fatalf("a quoted value matched: %v", l)
	}

	for name, tc := range map[string]struct {
		body, scimType string
	}{
		"not JSON":           {`{"Operations":[`, "invalidSyntax"},
		"no operations":      {`{"Operations":[]}`, "invalidValue"},
		"unknown op":         {`{"Operations":[{"op":"merge","path":"title","value":"x"}]}`, "invalidSyntax"},
		"bad path":           {`{"Operations":[{"op":"replace","path":"emails[type eq","value":"x"}]}`, "invalidPath"},
		"unknown attribute":  {`{"Operations":[{"op":"replace","path":"shoeSize","value":"42"}]}`, "invalidPath"},
		"read-only id":       {`{"Operations":[{"op":"replace","path":"id","value":"x"}]}`, "mutability"},
		"id in a value":      {`{"Operations":[{"op":"replace","value":{"id":"other"}}]}`, "mutability"},
		"boolean expected":   {`{"Operations":[{"op":"replace","path":"active","value":"perhaps"}]}`, "invalidValue"},
		"remove userName":    {`{"Operations":[{"op":"remove","path":"userName"}]}`, "invalidValue"},
		"remove no path":     {`{"Operations":[{"op":"remove"}]}`, "noTarget"},
		"filter on single":   {`{"Operations":[{"op":"replace","path":"title[value eq \"x\"]","value":"y"}]}`, "invalidPath"},
		"no target":          {`{"Operations":[{"op":"replace","path":"emails[value co \"x\"].type","value":"home"}]}`, "noTarget"},
		"late failure":       {`{"Operations":[{"op":"replace","path":"title","value":"Boss"},{"op":"replace","path":"nope","value":1}]}`, "invalidPath"},
		"value not object":   {`{"Operations":[{"op":"replace","value":"x"}]}`, "invalidValue"},
		"string for complex": {`{"Operations":[{"op":"replace","path":"name","value":5}]}`, "invalidValue"},
	} {
		t.Run(name, func(t *testing.T) {
			d.scimError(d.call("PATCH", "/Users/"+id, tc.body), 400, tc.scimType)
		})
	}
	d.scimError(d.call("POST", "/Users", `{"userName": 5}`), 400, "invalidValue")
	d.scimError(d.call("POST", "/Users", `{"displayName": "no user name"}`), 400, "invalidValue")
	d.scimError(d.call("POST", "/Users", `[1,2]`), 400, "invalidSyntax")
	d.scimError(d.call("POST", "/Users", map[string]any{"userName": "ADA@acme.example"}), 409, "uniqueness")
	d.scimError(d.call("GET", "/Users?count=many", nil), 400, "invalidValue")
	d.scimError(d.call("GET", "/Users/not-an-id", nil), 404, "")

	after := d.call("GET", "/Users/"+id, nil)
	if string(after.body) != string(before.body) || after.header.Get("ETag") != before.header.Get("ETag") {
		t.Fatalf("a refused request changed the user:\n%s\n%s", before.body, after.body)
	}
	if l := d.filter("Users", `userName pr`); total(l) != 1 {
		t.Fatalf("users: %v", l)
	}
}

// TestSCIMTokens: a token is shown once, works for its tenant only, and
// stops at revocation; refusals are SCIM errors with a Bearer challenge.
func TestSCIMTokens(t *testing.T) {
	h := newHub(t)
	a, b := h.scimDirectory("alpha"), h.scimDirectory("beta")
	ua := a.ok(a.call("POST", "/Users", map[string]any{"userName": "ann@alpha.example"}), 201)["id"].(string)
	ga := a.ok(a.call("POST", "/Groups", map[string]any{"displayName": "Alpha team"}), 201)["id"].(string)

	list := h.expect(h.do("GET", "/api/v1/tenants/alpha/scim-tokens", adminToken, nil), 200)
	if strings.Contains(string(list.body), a.token) || !strings.Contains(string(list.body), `"prefix":"hubscim_`) {
		t.Fatalf("list = %s", list.body)
	}
	var stored []byte
	if err := pgtest.Superuser(t, h.dbt).Get(&stored, `SELECT token_hash FROM scim_tokens LIMIT 1`); err != nil || len(stored) != 32 {
		t.Fatalf("stored hash: %x %v", stored, err)
	}

	// Beta's token at alpha's address, and unknown tokens: 401.
	cross := scimDirectory{h: h, slug: "alpha", token: b.token}
	r := cross.call("GET", "/Users", nil)
	cross.scimError(r, 401, "")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
	for _, tok := range []string{"", "nonsense", "hubscim_aaaaaaaaaa_bbbb", a.token + "x"} {
		bad := scimDirectory{h: h, slug: "alpha", token: tok}
		bad.scimError(bad.call("GET", "/Users/"+ua, nil), 401, "")
	}
	nowhere := scimDirectory{h: h, slug: "gamma", token: a.token}
	nowhere.scimError(nowhere.call("GET", "/Users", nil), 401, "")

	// Beta's token at its own address sees none of alpha's.
	b.scimError(b.call("GET", "/Users/"+ua, nil), 404, "")
	b.scimError(b.call("GET", "/Groups/"+ga, nil), 404, "")
	b.scimError(b.call("PATCH", "/Users/"+ua, `{"Operations":[{"op":"replace","path":"active","value":false}]}`), 404, "")
	b.scimError(b.call("DELETE", "/Groups/"+ga, nil), 404, "")
	b.scimError(b.call("PUT", "/Users/"+ua, map[string]any{"userName": "stolen"}), 404, "")
	b.scimError(b.call("DELETE", "/Users/"+ua, nil), 404, "")
	b.scimError(b.call("PUT", "/Groups/"+ga, map[string]any{"displayName": "stolen"}), 404, "")
	if l := b.filter("Groups", `displayName eq "Alpha team"`); total(l) != 0 {
		t.Fatalf("beta sees alpha's groups: %v", l)
	}
	if u := a.row(ua); sval(u.UserName) != "ann@alpha.example" || !u.Active || u.Deprovisioned {
		t.Fatalf("alpha's user after beta's attempts: %+v", u)
	}
	if l := b.filter("Users", `userName eq "ann@alpha.example"`); total(l) != 0 {
		t.Fatalf("beta sees alpha's users: %v", l)
	}
	b.scimError(b.call("PATCH", "/Groups/"+ga, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+ua+`"}]}]}`), 404, "")
	bg := b.ok(b.call("POST", "/Groups", map[string]any{"displayName": "Beta team"}), 201)["id"].(string)
	b.scimError(b.call("PATCH", "/Groups/"+bg, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+ua+`"}]}]}`), 400, "invalidValue")

	// A tenant API key of beta cannot issue tokens for alpha.
	_, key := h.createKey("beta", "write")
	h.expect(h.do("POST", "/api/v1/tenants/alpha/scim-tokens", key, map[string]any{"name": "x"}), 404)
	h.expect(h.do("POST", "/api/v1/tenants/beta/scim-tokens", key, map[string]any{"name": ""}), 400)

	tokID := h.expect(h.do("GET", "/api/v1/tenants/alpha/scim-tokens", adminToken, nil), 200)
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	tokID.json(t, &page)
	h.expect(h.do("DELETE", "/api/v1/tenants/alpha/scim-tokens/"+page.Items[0].ID, adminToken, nil), 204)
	a.scimError(a.call("GET", "/Users", nil), 401, "")
	if !listed(a.auditActions(), "scim_token.revoked:operator") {
		t.Fatalf("audit: %v", a.auditActions())
	}
	var reasons []string
	if err := pgtest.Superuser(t, h.dbt).Select(&reasons, `SELECT a.details->>'reason' FROM audit_log a JOIN tenants t ON t.id = a.tenant_id
		WHERE t.slug = 'alpha' AND a.action = 'auth.failed' AND a.target_type = 'scim_token' ORDER BY a.seq`); err != nil {
		t.Fatal(err)
	}
	if !listed(reasons, "revoked") || !listed(reasons, "unknown") {
		t.Fatalf("refusals audited in alpha's chain: %v", reasons)
	}

	// An expired token: 401.
	exp := h.expect(h.do("POST", "/api/v1/tenants/beta/scim-tokens", adminToken,
		map[string]any{"name": "short", "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)}), 201)
	short := scimDirectory{h: h, slug: "beta", token: exp.field(t, "token")}
	short.ok(short.call("GET", "/Users", nil), 200)
	if _, err := pgtest.Superuser(t, h.dbt).Exec(`UPDATE scim_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`,
		exp.field(t, "id")); err != nil {
		t.Fatal(err)
	}
	short.scimError(short.call("GET", "/Users", nil), 401, "")

	// A suspended tenant's directory is closed.
	h.expect(h.do("POST", "/api/v1/tenants/beta/suspend", adminToken, nil), 200)
	b.scimError(b.call("GET", "/Users", nil), 403, "")
}

// TestSCIMPaging: startIndex is 1-based, count bounds the page, and
// totalResults counts them all.
func TestSCIMPaging(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	for i := range 7 {
		d.ok(d.call("POST", "/Users", map[string]any{"userName": fmt.Sprintf("u%d@acme.example", i)}), 201)
	}
	var seen []string
	for start := 1; start <= 7; start += 3 {
		p := d.ok(d.call("GET", fmt.Sprintf("/Users?startIndex=%d&count=3", start), nil), 200)
		if total(p) != 7 || int(p["startIndex"].(float64)) != start || int(p["itemsPerPage"].(float64)) != len(resources(p)) {
			t.Fatalf("page at %d: %v", start, p)
		}
		for _, r := range resources(p) {
			seen = append(seen, r["userName"].(string))
		}
	}
	if len(seen) != 7 || seen[0] != "u0@acme.example" || seen[6] != "u6@acme.example" {
		t.Fatalf("pages = %v", seen)
	}
	if p := d.ok(d.call("GET", "/Users?count=0", nil), 200); total(p) != 7 || len(resources(p)) != 0 {
		t.Fatalf("count=0: %v", p)
	}
	if p := d.ok(d.call("GET", "/Users?startIndex=0&count=2&attributes=userName", nil), 200); len(resources(p)) != 2 ||
		resources(p)[0]["emails"] != nil || resources(p)[0]["id"] == nil {
		t.Fatalf("startIndex=0: %v", p)
	}
}

// TestSCIMETags: a resource's ETag changes with it, and an If-Match that
// names an older version is 412 and changes nothing.
func TestSCIMETags(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	r := d.call("POST", "/Users", map[string]any{"userName": "ada@acme.example"})
	d.ok(r, 201)
	id, tag := d.ok(d.call("GET", "/Users/"+strings.TrimPrefix(r.header.Get("Location"), h.url+"/scim/v2/acme/Users/"), nil), 200)["id"].(string), r.header.Get("ETag")
	if !strings.HasPrefix(tag, `W/"`) {
		t.Fatalf("ETag = %q", tag)
	}
	next := d.call("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"A"}]}`, "If-Match", tag)
	d.ok(next, 200)
	if next.header.Get("ETag") == tag {
		t.Fatal("the ETag did not change")
	}
	d.scimError(d.call("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"B"}]}`, "If-Match", tag), 412, "")
	d.scimError(d.call("DELETE", "/Users/"+id, nil, "If-Match", tag), 412, "")
	if got := d.ok(d.call("GET", "/Users/"+id, nil), 200); got["title"] != "A" {
		t.Fatalf("title = %v", got["title"])
	}
	g := d.call("POST", "/Groups", map[string]any{"displayName": "G"})
	gid := d.ok(g, 201)["id"].(string)
	d.scimError(d.call("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"replace","path":"displayName","value":"H"}]}`, "If-Match", `W/"99"`), 412, "")
	d.ok(d.call("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"replace","path":"displayName","value":"H"}]}`, "If-Match", g.header.Get("ETag")), 204)
}

// TestSCIMAdoptsSignedInUser: a person who signed in through SSO before the
// directory listed them is the same hub user afterwards; an erased user is
// gone for the directory.
func TestSCIMAdoptsSignedInUser(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	tenant := h.tenantID("acme")
	signedIn, erased := uuid.New(), uuid.New()
	err := pg.InTenant(context.Background(), h.db, tenant, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO users (id, tenant_id, email, name, created_at, updated_at) VALUES
			($1, $3, 'ada@acme.example', 'Ada', now(), now()), ($2, $3, 'eve@acme.example', 'Eve', now(), now())`, signedIn, erased, tenant)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := d.ok(d.call("POST", "/Users", `{"userName":"ada.l","emails":[{"value":"Ada@acme.example","primary":true}]}`), 201)
	if got["id"] != signedIn.String() {
		t.Fatalf("created %v, want the signed-in user %s adopted", got["id"], signedIn)
	}
	if u := d.row(signedIn.String()); !u.Provisioned || sval(u.UserName) != "ada.l" {
		t.Fatalf("adopted row: %+v", u)
	}
	d.scimError(d.call("POST", "/Users", `{"userName":"ada.l"}`), 409, "uniqueness")

	e := d.ok(d.call("POST", "/Users", `{"userName":"eve"}`), 201)["id"].(string)
	if _, err := pgtest.Superuser(t, h.dbt).Exec(`UPDATE users SET erased_at = now() WHERE id = $1`, e); err != nil {
		t.Fatal(err)
	}
	d.scimError(d.call("GET", "/Users/"+e, nil), 404, "")
	d.scimError(d.call("PUT", "/Users/"+e, `{"userName":"eve"}`), 404, "")
	if l := d.filter("Users", `userName eq "eve"`); total(l) != 0 {
		t.Fatalf("an erased user is listed: %v", l)
	}
}

// TestSCIMDiscovery: the resource types and schemas a client reads before
// it maps attributes.
func TestSCIMDiscovery(t *testing.T) {
	h := newHub(t)
	d := h.scimDirectory("acme")
	if rts := d.ok(d.call("GET", "/ResourceTypes", nil), 200); total(rts) != 2 {
		t.Fatalf("ResourceTypes = %v", rts)
	}
	schemas := d.ok(d.call("GET", "/Schemas", nil), 200)
	if total(schemas) != 3 {
		t.Fatalf("Schemas = %v", schemas)
	}
	user := d.ok(d.call("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", nil), 200)
	var userName map[string]any
	for _, a := range user["attributes"].([]any) {
		if a.(map[string]any)["name"] == "userName" {
			userName = a.(map[string]any)
		}
	}
	if userName["uniqueness"] != "server" || userName["required"] != true {
		t.Fatalf("userName = %v", userName)
	}
	ent := d.ok(d.call("GET", "/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", nil), 200)
	if !strings.Contains(fmt.Sprint(ent["attributes"]), "employeeNumber") {
		t.Fatalf("enterprise = %v", ent)
	}
	d.scimError(d.call("GET", "/Schemas/urn:example:nothing", nil), 404, "")
	d.scimError(d.call("GET", "/Me", nil), 404, "")
	d.scimError(d.call("POST", "/Users/.search", `{}`), 404, "")
	d.scimError(d.call("POST", "/Users", `{"userName":"`+strings.Repeat("a", 1<<20)+`"}`), 413, "")
	d.scimError(d.call("GET", "/ResourceTypes/Printer", nil), 404, "")
}
