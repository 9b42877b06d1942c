package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
)

// FuzzDecodeJSON feeds arbitrary bodies to the strict decoder: it must never
// panic, and must either decode or answer a client error naming a field.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"slug":"uni","display_name":"U","kind":"institution"}`,
		`{"slug":"uni","extra":1}`,
		`{"slug":"uni"} {"slug":"again"}`,
		`{"name":"k","scopes":["read"],"expires_at":"2030-01-01T00:00:00Z"}`,
		`{"name":"k","expires_at":"soon"}`,
		`[`, `null`, `"str"`, `{"slug":1e999}`,
		`{"slug":"uni","display_name":"U\u0000","kind":"institution"}`,
		`{"name":"k","scopes":["read","\u0000"]}`,
	} {
		f.Add(seed)
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body string) {
		for _, v := range []any{&tenants.NewTenant{}, &tenants.NewKey{}} {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
			err := decodeJSON(e.NewContext(req, httptest.NewRecorder()), v)
			if err == nil {
				// What decodes is text PostgreSQL can store.
				if b, _ := json.Marshal(v); strings.Contains(string(b), `\u0000`) || !utf8.Valid(b) {
					t.Fatalf("body %q decoded to %s", body, b)
				}
				continue
			}
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Code != apperr.Invalid || len(ae.Fields) == 0 || ae.Fields[0].Field == "" {
				t.Fatalf("body %q: error %v is not a field-naming validation error", body, err)
			}
		}
	})
}

// FuzzBearerToken checks the Authorization header parser never panics and
// never returns a token with surrounding space.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{"Bearer abc", "bearer  x ", "Basic abc", "Bearer", "", "Bearer \t", "Bearer hubk_\x00", "Bearer \xff\xfe"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := bearerToken(header)
		if ok && (token == "" || strings.TrimSpace(token) != token) {
			t.Fatalf("header %q gave token %q", header, token)
		}
	})
}
