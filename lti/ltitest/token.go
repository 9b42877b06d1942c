package ltitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The token endpoint grants the tool access tokens for the platform's
// services by the OAuth 2.0 client credentials grant, the tool
// authenticating with a JWT signed by a key of its published keyset
// (1EdTech Security Framework 1.0 §4.1, RFC 7523). The services take the
// tokens through authorizeService.

const (
	grantClientCredentials = "client_credentials"
	assertionTypeJWT       = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// maxAssertionAhead is how far in the future a client assertion may
	// expire: a longer-lived one is refused, as a captured one would be
	// good too long.
	maxAssertionAhead = time.Hour
)

// tokenState is the token endpoint's, under Platform.mu.
type tokenState struct {
	requests int                    // token requests answered
	issued   map[string]issuedToken // by access token
	jtis     map[string]bool        // client assertion ids already used
	fail     tokenFailure           // injected by FailTokens
}

type issuedToken struct {
	scopes  []string
	expires time.Time
}

type tokenFailure struct {
	status int
	code   string
	n      int
}

// oauthError is a token endpoint's refusal (RFC 6749 §5.2).
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func invalidRequest(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_request", desc}
}

func invalidClient(desc string) *oauthError {
	return &oauthError{http.StatusUnauthorized, "invalid_client", desc}
}

// TokenRequests counts the token requests the platform answered, refused
// ones included.
func (p *Platform) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens.requests
}

// FailTokens makes the next n token requests fail with status and the OAuth
// error code (for a 5xx without a code, a plain text body), and with
// Retry-After when TokenRetryAfter is set.
func (p *Platform) FailTokens(status int, code string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens.fail = tokenFailure{status: status, code: code, n: n}
}

// RevokeTokens revokes every access token issued so far: the services
// answer 401 to them.
func (p *Platform) RevokeTokens() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens.issued = nil
}

// token is the OAuth 2 token endpoint.
// GrantToken makes access a valid access token for scopes, for the
// platform's lifetime of a token, as a platform's administrator could mint
// one: tests of a service alone need not go through the token endpoint.
func (p *Platform) GrantToken(access string, scopes ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tokens.issued == nil {
		p.tokens.issued = map[string]issuedToken{}
	}
	p.tokens.issued[access] = issuedToken{scopes: scopes, expires: p.now().Add(p.TokenLifetime)}
}

func (p *Platform) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.tokens.requests++
	fail := p.tokens.fail
	if fail.n > 0 {
		p.tokens.fail.n--
	}
	p.mu.Unlock()
	select {
	case <-time.After(p.TokenDelay):
	case <-r.Context().Done():
		return
	}
	if fail.n > 0 {
		p.failToken(w, fail)
		return
	}
	scopes, oerr := p.grant(r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	access, lifetime := randomHex(24), p.TokenLifetime
	p.mu.Lock()
	if p.tokens.issued == nil {
		p.tokens.issued = map[string]issuedToken{}
	}
	p.tokens.issued[access] = issuedToken{scopes: scopes, expires: p.now().Add(lifetime)}
	p.mu.Unlock()
	writeNoStore(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer",
		"expires_in": int(lifetime.Seconds()), "scope": strings.Join(scopes, " ")})
}

func (p *Platform) failToken(w http.ResponseWriter, f tokenFailure) {
	if p.TokenRetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(p.TokenRetryAfter.Seconds())))
	}
	if f.code == "" {
		http.Error(w, "token endpoint unavailable", f.status)
		return
	}
	writeOAuthError(w, &oauthError{f.status, f.code, "the platform refuses tokens for now"})
}

// grant checks a token request and returns the scopes it grants.
func (p *Platform) grant(r *http.Request) ([]string, *oauthError) {
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("unreadable form")
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") == "":
		return nil, invalidRequest("grant_type missing")
	case f.Get("grant_type") != grantClientCredentials:
		return nil, &oauthError{http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is granted"}
	case f.Get("client_assertion_type") == "" || f.Get("client_assertion") == "":
		return nil, invalidRequest("client_assertion_type and client_assertion are required")
	case f.Get("client_assertion_type") != assertionTypeJWT:
		return nil, invalidClient("client authentication by JWT assertion only")
	case f.Has("client_secret"):
		return nil, invalidRequest("more than one client authentication method")
	case f.Has("client_id") && f.Get("client_id") != p.ClientID:
		return nil, invalidClient("client_id does not match the assertion")
	}
	if oerr := p.checkAssertion(f.Get("client_assertion")); oerr != nil {
		return nil, oerr
	}
	return p.grantedScopes(f.Get("scope"))
}

// checkAssertion verifies the client assertion's signature against the
// tool's keyset and its claims, and spends its jti.
func (p *Platform) checkAssertion(assertion string) *oauthError {
	if p.ToolJWKSURL == "" {
		return invalidClient("the platform has no keyset for this client")
	}
	claims, err := p.verifyToolJWT(assertion)
	if err != nil {
		return invalidClient("client assertion: " + err.Error())
	}
	now := p.now()
	exp, expOK := claims["exp"].(float64)
	_, iatOK := claims["iat"].(float64)
	jti, _ := claims["jti"].(string)
	switch {
	case claims["iss"] != p.ClientID || claims["sub"] != p.ClientID:
		return invalidClient("iss and sub must be the client_id")
	case !p.tokenAudience(claims["aud"]):
		return invalidClient("aud must name the token endpoint")
	case !expOK || !iatOK || jti == "":
		return invalidClient("exp, iat and jti are required")
	case !now.Before(time.Unix(int64(exp), 0)):
		return invalidClient("client assertion expired")
	case time.Unix(int64(exp), 0).After(now.Add(maxAssertionAhead)):
		return invalidClient("client assertion lives too long")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tokens.jtis[jti] {
		return invalidClient("client assertion already used")
	}
	if p.tokens.jtis == nil {
		p.tokens.jtis = map[string]bool{}
	}
	p.tokens.jtis[jti] = true
	return nil
}

// tokenAudience reports whether aud (a string or an array) names the
// token URL or the platform's TokenAudience.
func (p *Platform) tokenAudience(aud any) bool {
	var auds []string
	switch a := aud.(type) {
	case string:
		auds = []string{a}
	case []any:
		for _, v := range a {
			s, _ := v.(string)
			auds = append(auds, s)
		}
	}
	return slices.Contains(auds, p.TokenURL()) || (p.TokenAudience != "" && slices.Contains(auds, p.TokenAudience))
}

// grantedScopes returns the requested scopes, sorted, if all are granted.
func (p *Platform) grantedScopes(scope string) ([]string, *oauthError) {
	scopes := strings.Fields(scope)
	if len(scopes) == 0 {
		return nil, &oauthError{http.StatusBadRequest, "invalid_scope", "no scope requested"}
	}
	for _, s := range scopes {
		if !slices.Contains(p.GrantedScopes, s) {
			return nil, &oauthError{http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %s not granted", s)}
		}
	}
	slices.Sort(scopes)
	return slices.Compact(scopes), nil
}

// writeOAuthError answers e. Its 401 carries no WWW-Authenticate: the
// client authenticated in the body, not by an HTTP scheme (RFC 6749 §5.2).
func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	writeNoStore(w, e.status, e)
}

func writeNoStore(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authorizeService lets a service request through if it bears an access
// token issued by the token endpoint, unexpired and unrevoked, that grants
// one of scopes. Otherwise it answers (RFC 6750 §3.1) 401 to a missing,
// unknown, expired or revoked token and 403 to a token without any of
// them, and returns false.
func (p *Platform) authorizeService(w http.ResponseWriter, r *http.Request, scopes ...string) bool {
	scheme, access, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || access == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ltitest"`)
		http.Error(w, "bearer token required", http.StatusUnauthorized)
		return false
	}
	p.mu.Lock()
	t, ok := p.tokens.issued[access]
	p.mu.Unlock()
	switch {
	case !ok || !p.now().Before(t.expires):
		w.Header().Set("WWW-Authenticate", `Bearer realm="ltitest", error="invalid_token"`)
		http.Error(w, "access token unknown, expired or revoked", http.StatusUnauthorized)
		return false
	case !slices.ContainsFunc(scopes, func(s string) bool { return slices.Contains(t.scopes, s) }):
		scope := strings.Join(scopes, " ")
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="ltitest", error="insufficient_scope", scope=%q`, scope))
		http.Error(w, "access token lacks scope "+scope, http.StatusForbidden)
		return false
	}
	return true
}
