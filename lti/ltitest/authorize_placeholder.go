// Replaced by token.go.

package ltitest

import (
	"net/http"
	"strings"
)

// authorizeService checks a service request's bearer token: here, only
// that there is one.
func (p *Platform) authorizeService(w http.ResponseWriter, r *http.Request, scope string) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "a bearer token is required", http.StatusUnauthorized)
		return false
	}
	return true
}
