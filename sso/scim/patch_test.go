package scim

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// alice is a user document as a directory created it.
func alice(t testing.TB) document {
	doc, err := normalizeUser(map[string]any{
		"userName": "alice", "name": map[string]any{"givenName": "Alice", "familyName": "A"},
		"emails":         []any{map[string]any{"value": "a@x.example", "type": "work", "primary": true}},
		"phoneNumbers":   []any{map[string]any{"value": "1", "type": "mobile"}},
		SchemaEnterprise: map[string]any{"department": "R&D", "manager": map[string]any{"value": "m-1", "displayName": "M"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func patchOps(t testing.TB, body string) []Operation {
	ops, err := ParsePatch([]byte(body))
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return ops
}

func TestApplyUser(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  string
		want func(document) bool
	}{
		{"replace without a path, dotted and URN keys", `{"Operations":[{"op":"Replace","value":{"name.givenName":"Al",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Ops","ACTIVE":"False"}}]}`,
			func(d document) bool {
				return d["name"].(map[string]any)["givenName"] == "Al" && d["active"] == false &&
					d[SchemaEnterprise].(map[string]any)["department"] == "Ops"
			}},
		{"extension container without a path", `{"Operations":[{"op":"add","value":{
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7"}}}]}`,
			func(d document) bool { return d[SchemaEnterprise].(map[string]any)["employeeNumber"] == "7" }},
		{"manager as a bare id", `{"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m-2"}]}`,
			func(d document) bool {
				return reflect.DeepEqual(d[SchemaEnterprise].(map[string]any)["manager"], map[string]any{"value": "m-2"})
			}},
		{"manager value path", `{"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"m-3"}]}`,
			func(d document) bool {
				return d[SchemaEnterprise].(map[string]any)["manager"].(map[string]any)["value"] == "m-3"
			}},
		{"value path replaces the matching email", `{"Operations":[{"op":"replace","path":"EMAILS[TYPE eq \"WORK\"].VALUE","value":"b@x.example"}]}`,
			func(d document) bool { return d["emails"].([]any)[0].(map[string]any)["value"] == "b@x.example" }},
		{"value path adds a missing phone", `{"Operations":[{"op":"add","path":"phoneNumbers[type eq \"work\"].value","value":"2"}]}`,
			func(d document) bool { return len(d["phoneNumbers"].([]any)) == 2 }},
		{"remove by value path", `{"Operations":[{"op":"remove","path":"phoneNumbers[type eq \"mobile\"]"}]}`,
			func(d document) bool { _, ok := d["phoneNumbers"]; return !ok }},
		{"remove a sub-attribute", `{"Operations":[{"op":"remove","path":"name.familyName"}]}`,
			func(d document) bool { _, ok := d["name"].(map[string]any)["familyName"]; return !ok }},
		{"add to a multi-valued attribute", `{"Operations":[{"op":"add","path":"emails","value":[{"value":"c@x.example","type":"home"}]}]}`,
			func(d document) bool { return len(d["emails"].([]any)) == 2 }},
		{"another extension's attribute, by path and in a container", `{"Operations":[
			{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User:badge","value":"B-7"},
			{"op":"Replace","value":{"urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User":{"floor":"3"}}}]}`,
			func(d document) bool {
				c := d["urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User"].(map[string]any)
				return c["badge"] == "B-7" && c["floor"] == "3"
			}},
		{"password is accepted and not kept", `{"Operations":[{"op":"replace","path":"password","value":"s3cret"}]}`,
			func(d document) bool { _, ok := d["password"]; return !ok }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := alice(t)
			if err := applyUser(doc, "id-1", patchOps(t, tc.ops)); err != nil {
				t.Fatal(err)
			}
			if !tc.want(doc) {
				b, _ := json.Marshal(doc)
				t.Fatalf("document = %s", b)
			}
			var r userRow
			if err := r.setFrom(doc); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPrimaryEmail(t *testing.T) {
	doc, _ := normalizeUser(map[string]any{"userName": "u", "emails": []any{
		map[string]any{"value": "home@x", "type": "home"}, map[string]any{"value": "work@x", "type": "Work"}}})
	if e := primaryEmail(doc); e == nil || *e != "work@x" {
		t.Fatalf("email = %v", e)
	}
	doc["emails"] = append(doc["emails"].([]any), map[string]any{"value": "p@x", "primary": true})
	if e := primaryEmail(doc); e == nil || *e != "p@x" {
		t.Fatalf("email = %v", e)
	}
}

// FuzzPath: any path, with each op and a few values, parses or is refused
// with a 400; an accepted one applies to a user or is refused with a 400,
// never panicking, and what it leaves is a document the store can write
// or refuse.
func FuzzPath(f *testing.F) {
	for _, s := range []string{`emails[type eq "work"].value`, `addresses[type eq "work"].streetAddress`,
		`phoneNumbers[type eq "mobile"].value`, `members[value eq "x"]`, `name.givenName`, `active`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`, `id`, `meta.created`, `emails`} {
		f.Add(s, `"x"`)
	}
	f.Add(`active`, `"False"`)
	f.Add(`emails`, `[{"value":"a@b","primary":"True"}]`)
	f.Fuzz(func(t *testing.T, path, value string) {
		p, err := ParsePath(path)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Status != 400 || se.ScimType != InvalidPath {
				t.Fatalf("path %q: %v", path, err)
			}
			return
		}
		for _, op := range []string{"add", "replace", "remove"} {
			doc := alice(t)
			err := applyUser(doc, "id-1", []Operation{{Op: op, Path: &p, Value: json.RawMessage(value)}})
			if err != nil {
				if err.Status != 400 || err.ScimType == "" {
					t.Fatalf("%s %q %s: %v", op, path, value, err)
				}
				continue
			}
			if _, merr := json.Marshal(doc); merr != nil {
				t.Fatalf("%s %q: %v", op, path, merr)
			}
			var r userRow
			if serr := r.setFrom(doc); serr != nil && serr.Status != 400 {
				t.Fatalf("%s %q: %v", op, path, serr)
			}
		}
	})
}

// FuzzPatch: any PATCH body either is refused with a 400 or applies to a
// user all or nothing, never panicking; the same holds for a POST body.
func FuzzPatch(f *testing.F) {
	f.Add([]byte(`{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`))
	f.Add([]byte(`{"Operations":[{"op":"replace","value":{"name.givenName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"m"}}]}`))
	f.Add([]byte(`{"Operations":[{"op":"add","path":"emails[type eq \"work\"].value","value":"a@b"},{"op":"remove","path":"members[value eq \"x\"]"}]}`))
	f.Add([]byte(`{"userName":"u","emails":{"value":"a@b"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if ops, err := ParsePatch(body); err == nil {
			doc := alice(t)
			if err := applyUser(doc, "id-1", ops); err != nil && (err.Status != 400 || err.ScimType == "") {
				t.Fatalf("%s: %v", body, err)
			}
		} else if se := (*Error)(nil); !errors.As(err, &se) || se.Status != 400 {
			t.Fatalf("%s: %v", body, err)
		}
		in, err := decodeBody(body)
		if err != nil {
			return
		}
		doc, err := normalizeUser(in)
		if err != nil {
			if err.Status != 400 {
				t.Fatalf("%s: %v", body, err)
			}
			return
		}
		var r userRow
		if err := r.setFrom(doc); err != nil && err.Status != 400 {
			t.Fatalf("%s: %v", body, err)
		}
	})
}
