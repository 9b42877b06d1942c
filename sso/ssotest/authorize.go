package ssotest

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// grant is what an authorization code stands for, and later the access
// tokens issued for it.
type grant struct {
	clientID, redirectURI string
	challenge             string // RFC 7636 code_challenge (S256)
	nonce                 string
	scopes                []string
	subject, sid          string
	authTime, expires     time.Time
	spent                 bool
	accessToken           string    // issued when the code was spent
	issued                time.Time // when it was
}

// discovery answers the provider's metadata (OpenID Connect Discovery 1.0
// §3, RFC 9207 §3, Back-Channel Logout 1.0 §2.1, RP-Initiated Logout 1.0
// §2.1).
func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	iss := p.Issuer()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/authorize",
		"token_endpoint":                                 iss + "/token",
		"userinfo_endpoint":                              iss + "/userinfo",
		"jwks_uri":                                       iss + "/jwks",
		"end_session_endpoint":                           iss + "/end_session",
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
		"code_challenge_methods_supported":               []string{"S256"},
		"authorization_response_iss_parameter_supported": true,
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{"authorization_code"},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                               []string{"openid", "email", "profile", "groups"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "azp",
			"email", "email_verified", "name", "given_name", "family_name", "groups"},
	})
}

// authorize is the authorization endpoint (OIDC Core §3.1.2). A request
// whose client or redirect_uri is unknown gets a plain 400 page, never a
// redirect (RFC 6749 §4.1.2.1); other errors go back to the redirect_uri.
// The sign-in page posts back here with the chosen subject.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		badRequestPage(w, "malformed request")
		return
	}
	q := r.Form
	p.mu.Lock()
	client, ok := p.clients[q.Get("client_id")]
	p.mu.Unlock()
	switch {
	case !ok:
		badRequestPage(w, "unknown client_id")
		return
	case !slices.Contains(client.RedirectURIs, q.Get("redirect_uri")):
		badRequestPage(w, "redirect_uri is not registered for this client")
		return
	}
	if code, desc := checkAuthRequest(q); code != "" {
		p.redirectError(w, r, q, code, desc)
		return
	}
	if q.Get("prompt") == "none" && !p.signsInAtOnce(r) {
		p.redirectError(w, r, q, "login_required", "the user must sign in") // OIDC Core §3.1.2.6
		return
	}
	subject, answered := p.decide(w, r, q)
	if !answered {
		return
	}
	if subject == "" {
		p.redirectError(w, r, q, "access_denied", "the user declined")
		return
	}
	p.redirect(w, r, q, url.Values{"code": {p.newCode(q, subject)}})
}

// checkAuthRequest checks what OIDC Core §3.1.2.2 and RFC 7636 §4.4.1
// require of an authentication request, after its client and
// redirect_uri: the RFC 6749 §4.1.2.1 error code and a description, or "".
func checkAuthRequest(q url.Values) (code, desc string) {
	switch {
	case q.Get("response_type") != "code":
		return "unsupported_response_type", "response_type must be code"
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		return "invalid_scope", "scope must include openid"
	case q.Get("code_challenge") == "":
		return "invalid_request", "code_challenge required (PKCE, S256)"
	case q.Get("code_challenge_method") != "S256":
		return "invalid_request", "transform algorithm not supported: code_challenge_method must be S256"
	}
	return "", ""
}

// decide is who signs in: the subject SignInAs names, the one picked on
// the sign-in page, or "" when the request is denied. answered is false
// when decide has shown the sign-in page instead.
func (p *Provider) decide(w http.ResponseWriter, r *http.Request, q url.Values) (subject string, answered bool) {
	p.mu.Lock()
	deny, signInAs, users := p.deny, p.signInAs, slices.Clone(p.users)
	p.deny = false
	p.mu.Unlock()
	picked := r.Method == http.MethodPost && r.PostForm.Has(pickField)
	switch {
	case deny || (picked && r.PostForm.Get(pickField) == ""):
		return "", true
	case picked:
		signInAs = r.PostForm.Get(pickField)
	case signInAs == "":
		showSignInPage(w, q, users)
		return "", false
	}
	if !slices.ContainsFunc(users, func(u User) bool { return u.Subject == signInAs }) {
		return "", true
	}
	return signInAs, true
}

// signsInAtOnce tells whether the request is answered without showing the
// sign-in page.
func (p *Provider) signsInAtOnce(r *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signInAs != "" || p.deny || r.PostForm.Has(pickField)
}

func (p *Provider) newCode(q url.Values, subject string) string {
	code := randomHex(16)
	now := p.now()
	g := &grant{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), scopes: strings.Fields(q.Get("scope")), subject: subject, sid: "sid-" + randomHex(8),
		authTime: now, expires: now.Add(CodeLifetime)}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.codes[code] = g
	return code
}

func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, q url.Values, code, desc string) {
	p.redirect(w, r, q, url.Values{"error": {code}, "error_description": {desc}})
}

// redirect sends the authorization response to the request's redirect_uri
// (already checked) with its state and, per RFC 9207 §2, the issuer.
func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, q, params url.Values) {
	target, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		badRequestPage(w, "malformed redirect_uri")
		return
	}
	query := target.Query()
	for k, v := range params {
		query[k] = v
	}
	if q.Has("state") {
		query.Set("state", q.Get("state"))
	}
	switch {
	case p.misbehaving(WrongISSParam):
		query.Set("iss", p.Issuer()+"/another-issuer")
	case !p.misbehaving(NoISSParam):
		query.Set("iss", p.Issuer())
	}
	target.RawQuery = query.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// pickField carries the subject chosen on the sign-in page; empty means
// the user declined.
const pickField = "ssotest_subject"

var signInPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title>
<style>body{font-family:system-ui,sans-serif;max-width:30rem;margin:2rem auto;padding:0 1rem}
button{display:block;width:100%;margin:.5rem 0;padding:.6rem;text-align:left;font-size:1rem}
small{color:#555}</style></head>
<body><h1>Sign in</h1>
<p>The identity provider asks who you are, for <code>{{.ClientID}}</code>.</p>
<form method="post" action="authorize">
{{range $k, $vs := .Params}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}{{range .Users}}<button name="{{$.Field}}" value="{{.Subject}}">{{if .Name}}{{.Name}}{{else}}{{.Subject}}{{end}}{{with .Email}} <small>{{.}}</small>{{end}}</button>
{{else}}<p>No users yet.</p>
{{end}}<button name="{{.Field}}" value="">Decline</button>
</form></body></html>`))

// showSignInPage lists the users, each a button that posts the request
// back with the subject chosen: the demo's sign-in page.
func showSignInPage(w http.ResponseWriter, q url.Values, users []User) {
	params := url.Values{}
	for k, v := range q {
		if k != pickField {
			params[k] = v
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = signInPage.Execute(w, map[string]any{"ClientID": q.Get("client_id"), "Params": params, "Users": users, "Field": pickField})
}

var messagePage = template.Must(template.New("message").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>`))

// badRequestPage answers 400 with a page, for requests that cannot be
// sent back to the client.
func badRequestPage(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = messagePage.Execute(w, map[string]string{"Title": "Bad request", "Message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
