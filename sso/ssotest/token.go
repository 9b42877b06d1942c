package ssotest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// token is the token endpoint (OIDC Core §3.1.3, RFC 6749 §4.1.3): it
// authenticates the client, spends the code and answers the tokens.
// Errors are RFC 6749 §5.2 JSON. A code is spent by its first
// presentation, even a refused one; presenting it again also revokes the
// access token it gave (RFC 6749 §10.5).
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.tokenReqs++
	p.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "malformed body")
		return
	}
	clientID, ok := p.authenticateClient(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code")
		return
	}
	g, desc := p.spendCode(r.PostForm, clientID)
	if g == nil {
		tokenError(w, http.StatusBadRequest, "invalid_grant", desc)
		return
	}
	p.issue(w, g)
}

// authenticateClient checks client_secret_basic (RFC 6749 §2.3.1: the
// user and password are form-encoded) or client_secret_post; a client
// without a secret sends only its client_id.
func (p *Provider) authenticateClient(r *http.Request) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		// §2.3: one method only; a client_id in the body must agree.
		if err1 != nil || err2 != nil || r.PostForm.Has("client_secret") ||
			(r.PostForm.Has("client_id") && r.PostForm.Get("client_id") != id) {
			return "", false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	p.mu.Lock()
	c, ok := p.clients[id]
	p.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return "", false
	}
	return id, true
}

// verifierSyntax is RFC 7636 §4.1's code_verifier.
var verifierSyntax = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// spendCode takes the code for good and checks it against the request:
// the grant, or nil and why not.
func (p *Provider) spendCode(form url.Values, clientID string) (*grant, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.codes[form.Get("code")]
	switch {
	case !ok:
		return nil, "unknown code"
	case g.spent:
		delete(p.tokens, g.accessToken)
		return nil, "code already used"
	}
	g.spent = true
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	switch {
	case !p.now().Before(g.expires):
		return nil, "code expired"
	case g.clientID != clientID:
		return nil, "code was issued to another client"
	case form.Get("redirect_uri") != g.redirectURI:
		return nil, "redirect_uri differs from the authorization request's"
	case !verifierSyntax.MatchString(form.Get("code_verifier")):
		return nil, "code_verifier missing or malformed"
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		return nil, "code_verifier does not match the code_challenge"
	}
	g.accessToken, g.issued = randomHex(20), p.now()
	p.tokens[g.accessToken] = g
	return g, ""
}

// issue answers the token response (OIDC Core §3.1.3.3).
func (p *Provider) issue(w http.ResponseWriter, g *grant) {
	p.mu.Lock()
	u, _ := p.user(g.subject)
	p.mu.Unlock()
	idToken, err := p.sign(p.idTokenClaims(g, u), "JWT")
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "could not sign the id_token")
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": g.accessToken, "token_type": "Bearer",
		"expires_in": int(TokenLifetime.Seconds()), "id_token": idToken, "scope": strings.Join(g.scopes, " ")})
}

// idTokenClaims are the id_token's claims (OIDC Core §2, §3.1.3.6), bent
// by the misbehaviours on.
func (p *Provider) idTokenClaims(g *grant, u User) map[string]any {
	now := p.now()
	c := map[string]any{"iss": p.Issuer(), "sub": g.subject, "aud": g.clientID,
		"iat": now.Unix(), "exp": now.Add(TokenLifetime).Unix(), "auth_time": g.authTime.Unix(), "sid": g.sid}
	if g.nonce != "" {
		c["nonce"] = g.nonce
	}
	for k, v := range p.userClaims(u, g.scopes, false) {
		c[k] = v
	}
	p.bend(c, g.clientID)
	return c
}

// userClaims are the user's claims the scopes allow (OIDC Core §5.4),
// groups and Claims always, and UserinfoOnly for the userinfo endpoint.
func (p *Provider) userClaims(u User, scopes []string, userinfo bool) map[string]any {
	c := map[string]any{}
	if slices.Contains(scopes, "email") && u.Email != "" {
		c["email"] = u.Email
		if u.EmailVerified != nil {
			c["email_verified"] = *u.EmailVerified
		}
		if p.misbehaving(EmailUnverified) {
			c["email_verified"] = false
		}
	}
	if slices.Contains(scopes, "profile") {
		for k, v := range map[string]string{"name": u.Name, "given_name": u.GivenName, "family_name": u.FamilyName} {
			if v != "" {
				c[k] = v
			}
		}
	}
	if len(u.Groups) > 0 {
		c["groups"] = u.Groups
	}
	for k, v := range u.Claims {
		c[k] = v
	}
	if userinfo {
		for k, v := range u.UserinfoOnly {
			c[k] = v
		}
	}
	return c
}

// bend applies the misbehaviours on to a token's claims (those of the
// header, Unsigned and UnknownKey, are sign's).
func (p *Provider) bend(c map[string]any, clientID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.misbehave
	if m[WrongIssuer] {
		c["iss"] = p.Issuer() + "/another-issuer"
	}
	if m[WrongAudience] {
		c["aud"] = OtherClient
	}
	if m[Expired] {
		iat := p.now().Add(-2 * TokenLifetime)
		c["iat"], c["exp"] = iat.Unix(), iat.Add(TokenLifetime).Unix()
	}
	if m[BadNonce] {
		c["nonce"] = "nonce-" + randomHex(8)
	}
	if m[ExtraAudienceNoAzp] || m[WrongAzp] {
		c["aud"] = []string{clientID, OtherClient}
		delete(c, "azp")
	}
	if m[WrongAzp] {
		c["azp"] = OtherClient
	}
}

// sign makes the compact JWS of claims with the current key, typ in its
// header; Unsigned makes it alg "none" with no signature, UnknownKey signs
// with a key the JWKS does not hold.
func (p *Provider) sign(claims map[string]any, typ string) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("ssotest: claims: %w", err)
	}
	p.mu.Lock()
	k, unsigned, unknown := p.keys[0], p.misbehave[Unsigned], p.misbehave[UnknownKey]
	if unknown && p.foreign == nil {
		p.foreign = newSigningKey()
	}
	if unknown {
		k = p.foreign
	}
	p.mu.Unlock()
	if unsigned {
		header, _ := json.Marshal(map[string]string{"alg": "none", "typ": typ})
		enc := base64.RawURLEncoding
		return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + ".", nil
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, k.kid)
	_ = hdr.Set(jws.TypeKey, typ)
	out, err := jws.Sign(payload, jws.WithKey(jwa.RS256, k.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("ssotest: sign: %w", err)
	}
	return string(out), nil
}

// userinfo is the UserInfo endpoint (OIDC Core §5.3): a bearer of an
// access token the provider issued (RFC 6750 §2.1) gets the user's claims
// as JSON; anyone else 401 invalid_token.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	p.userinfoReq++
	g, ok := p.tokens[token]
	var u User
	if ok {
		u, _ = p.user(g.subject)
		ok = found && p.now().Before(g.issued.Add(TokenLifetime))
	}
	p.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	c := p.userClaims(u, g.scopes, true)
	c["sub"] = g.subject
	writeJSON(w, http.StatusOK, c)
}

// serveJWKS publishes the public signing keys (RFC 7517 §5).
func (p *Provider) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	p.jwksFetches++
	down, keys := p.jwksDown, slices.Clone(p.keys)
	p.mu.Unlock()
	if down {
		http.Error(w, "keyset unavailable", http.StatusServiceUnavailable)
		return
	}
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := jwk.FromRaw(k.priv.Public())
		if err != nil {
			http.Error(w, "keyset unavailable", http.StatusInternalServerError)
			return
		}
		_ = pub.Set(jwk.KeyIDKey, k.kid)
		_ = pub.Set(jwk.KeyUsageKey, "sig")
		_ = pub.Set(jwk.AlgorithmKey, jwa.RS256)
		_ = set.AddKey(pub)
	}
	writeJSON(w, http.StatusOK, set)
}

// user finds a user by subject; p.mu must be held.
func (p *Provider) user(subject string) (User, bool) {
	i := slices.IndexFunc(p.users, func(u User) bool { return u.Subject == subject })
	if i < 0 {
		return User{}, false
	}
	return p.users[i], true
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
