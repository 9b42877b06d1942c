package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestBadBodiesAreRefusedAndChangeNothing(t *testing.T) {
	h := newHub(t)
	tests := []struct {
		name, body, field string
	}{
		{"unknown field", `{"slug":"uni","display_name":"U","kind":"institution","colour":"red"}`, "colour"},
		{"trailing data", `{"slug":"uni","display_name":"U","kind":"institution"} {}`, "body"},
		{"trailing garbage", `{"slug":"uni","display_name":"U","kind":"institution"}x`, "body"},
		{"not JSON", `slug=uni`, "body"},
		{"truncated", `{"slug":"uni"`, "body"},
		{"empty", ``, "body"},
		{"an array", `[1,2]`, "body"},
		{"wrong type", `{"slug":7,"display_name":"U","kind":"institution"}`, "slug"},
		{"invalid slug", `{"slug":"Uni!","display_name":"U","kind":"institution"}`, "slug"},
		{"invalid kind", `{"slug":"uni","display_name":"U","kind":"school"}`, "kind"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			p := h.problem(h.do("POST", "/api/v1/tenants", adminToken, tc.body), 400, "validation")
			if len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
				t.Fatalf("errors = %+v, want field %q named", p.Errors, tc.field)
			}
		})
	}
	h.t = t
	r := h.expect(h.do("GET", "/api/v1/tenants", adminToken, nil), 200)
	if !strings.Contains(string(r.body), `"items":[]`) {
		t.Fatalf("refused bodies created tenants: %s", r.body)
	}
}

func TestWrongContentTypeIsRefused(t *testing.T) {
	h := newHub(t)
	req, _ := http.NewRequest("POST", h.url+"/api/v1/tenants", strings.NewReader(`{"slug":"uni","display_name":"U","kind":"institution"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "text/plain")
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("status = %d, want 400", res.StatusCode)
	}
}

func TestOversizedBodyIsRefused(t *testing.T) {
	h := newHub(t)
	big := `{"slug":"uni","display_name":"` + strings.Repeat("x", 2<<20) + `","kind":"institution"}`
	h.problem(h.do("POST", "/api/v1/tenants", adminToken, big), 413, "body-too-large")
}

func TestUnknownRouteIsAProblem(t *testing.T) {
	h := newHub(t)
	h.problem(h.do("GET", "/api/v1/nothing-here", adminToken, nil), 404, "not-found")
}

// TestChunkedBodyOverTheLimit: a body over 1 MiB answers 413 whether its
// length was announced or it arrived in chunks.
func TestChunkedBodyOverTheLimit(t *testing.T) {
	h := newHub(t)
	big := `{"slug":"uni","display_name":"` + strings.Repeat("x", 2<<20) + `","kind":"institution"}`
	for name, chunked := range map[string]bool{"with a length": false, "chunked": true} {
		t.Run(name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(big)
			if chunked {
				body = io.MultiReader(strings.NewReader(big)) // no length known: sent chunked
			}
			req, _ := http.NewRequest("POST", h.url+"/api/v1/tenants", body)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			req.Header.Set("Content-Type", "application/json")
			if chunked != (req.ContentLength == 0) {
				t.Fatalf("content length %d", req.ContentLength)
			}
			h.problem(h.send(req), 413, "body-too-large")
		})
	}
}
