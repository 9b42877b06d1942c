package api_test

import (
	"testing"
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
