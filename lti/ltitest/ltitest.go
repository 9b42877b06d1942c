// Package ltitest is an in-process LMS platform for tests and the demo, in
// the spirit of net/http/httptest: it has its own RSA key and JWKS, an OIDC
// authorization endpoint that answers a tool's login redirect with a signed
// id_token posted to the tool (form_post), launches for any role and
// message type, each of the certification suite's bad payloads on demand,
// a token endpoint for its services (token.go), a roster service (Names
// and Role Provisioning Services) with paging, differences and injected
// faults (nrps.go), and a gradebook per course served by Assignment and
// Grade Services: line items listed, created, changed and deleted, scores
// checked and kept, with the same faults (ags.go).
//
// It implements the platform side of the LTI 1.3 core and 1EdTech Security
// Framework as published; it shares no code with the tool it tests but the
// claim names.
package ltitest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/lti"
)

// Platform is a fake LMS. Its issuer is its server's URL.
type Platform struct {
	Server       *httptest.Server
	ClientID     string
	DeploymentID string
	// Cache-Control sent with the JWKS.
	JWKSCacheControl string

	// ToolJWKSURL and ToolClient let the platform verify what the tool
	// signs (deep linking responses), as a real platform does.
	ToolJWKSURL string
	ToolClient  *http.Client
	// ToolLoginURL and ToolLaunchURL are where the demo page launches.
	ToolLoginURL, ToolLaunchURL string
	// RegistrationToken, when set, is required as the bearer of dynamic
	// registration requests; Registered collects the scopes tools asked for.
	RegistrationToken string
	Registered        []string
	// RegisteredLoginURL is the initiate_login_uri of the last tool that
	// registered dynamically: where the platform sends its logins.
	RegisteredLoginURL string
	// RegisterDelay holds each registration answer this long, as a slow
	// platform does, so a test can open a link several times at once.
	RegisterDelay time.Duration
	// OnRegister, when set, runs as the platform registers a tool, before
	// it answers: a test can change the tool's side meanwhile.
	OnRegister func()
	// RegisterWithoutDeployment answers a dynamic registration without a
	// deployment id, as Canvas does.
	RegisterWithoutDeployment bool
	// ConfigIssuer overrides the issuer of the OpenID configuration, to
	// test tools that must refuse a mismatch.
	ConfigIssuer string
	// ToolRoster, when set, tells the demo page what the tool holds of a
	// context's roster, shown beside the platform's own.
	ToolRoster func(ctx context.Context, contextID string) (ToolCopy, error)
	// DeepLinks are the content items of verified deep linking responses.
	DeepLinks []DeepLinkResponse

	// GrantedScopes are the scopes the token endpoint grants the tool;
	// asking for any other is invalid_scope.
	GrantedScopes []string
	// TokenLifetime is how long an access token lives (expires_in).
	TokenLifetime time.Duration
	// TokenAudience, when set, is accepted as a client assertion's aud
	// besides the token URL, as platforms that name their own audience do.
	TokenAudience string
	// TokenDelay holds each token answer this long, as a slow platform
	// does, so a test can ask for one token several times at once.
	TokenDelay time.Duration
	// TokenRetryAfter, when set, is the Retry-After of token requests
	// FailTokens fails.
	TokenRetryAfter time.Duration
	// NRPSPageCap is the most members a roster page holds, whatever the
	// tool asks (0: 50, as Canvas).
	NRPSPageCap int
	// OfferDifferences makes the last page of a roster listing offer a
	// differences link (true unless a test turns it off).
	OfferDifferences bool
	// NRPSDelay holds every roster page this long, as a busy platform does.
	NRPSDelay time.Duration
	// NRPSSlowDelay is how long FaultSlow holds a roster request (0: 3 s).
	NRPSSlowDelay time.Duration
	// AGSQuery, when set, is a query ("type_id=1") the grade services' URLs
	// carry and their requests must keep, as Moodle's do.
	AGSQuery string
	// AGSSlowDelay is how long FaultSlow holds a grade service request
	// (0: 3 s).
	AGSSlowDelay time.Duration
	// StaleScoreStatus is the status of a score whose timestamp is not
	// after the last one accepted for its line item and learner (0: 409
	// Conflict, as Moodle; Canvas answers 400).
	StaleScoreStatus int

	mu          sync.Mutex
	jwksStatus  int // non-zero: the keyset endpoint fails with it
	jwksFetches int
	clients     int           // tools registered dynamically
	keys        []*signingKey // the first signs; all are published
	pending     map[string]Launch
	spent       map[string]bool // hints already used in an authentication request
	replays     int             // authentication requests refused for a spent hint
	now         func() time.Time
	tokens      tokenState // the token endpoint's: token.go
	nrps        nrpsState
	ags         agsState
}

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// New starts a platform on a loopback port of its own. Close it when done.
func New() *Platform { return NewOn(nil) }

// NewOn starts a platform on ln (nil: a fresh loopback port), for a demo
// whose issuer must stay the same across restarts.
func NewOn(ln net.Listener) *Platform {
	p := &Platform{ClientID: "hub-client-" + randomHex(4), DeploymentID: "deployment-" + randomHex(4),
		JWKSCacheControl: "max-age=300", pending: map[string]Launch{}, spent: map[string]bool{}, now: time.Now,
		OfferDifferences: true}
	p.GrantedScopes = []string{lti.ScopeNRPS, lti.ScopeAGSLineItem, lti.ScopeAGSLineItemRead, lti.ScopeAGSResultRead, lti.ScopeAGSScore}
	p.TokenLifetime = time.Hour
	p.RotateKey()
	p.initAGS()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", p.serveJWKS)
	mux.HandleFunc("GET /auth", p.authorize)
	mux.HandleFunc("POST /auth", p.authorize)
	mux.HandleFunc("POST /deep-link-return", p.deepLinkReturn)
	mux.HandleFunc("GET /.well-known/openid-configuration", p.openIDConfiguration)
	mux.HandleFunc("POST /register", p.register)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /nrps/{context}", p.memberships)
	mux.HandleFunc("GET /ags/{context}/lineitems", p.listLineItems)
	mux.HandleFunc("POST /ags/{context}/lineitems", p.createLineItem)
	mux.HandleFunc("GET /ags/{context}/lineitems/{item}", p.getLineItem)
	mux.HandleFunc("PUT /ags/{context}/lineitems/{item}", p.updateLineItem)
	mux.HandleFunc("DELETE /ags/{context}/lineitems/{item}", p.deleteLineItem)
	mux.HandleFunc("POST /ags/{context}/lineitems/{item}/scores", p.postScore)
	mux.HandleFunc("GET /{$}", p.home)
	mux.HandleFunc("GET /start", p.start)
	p.Server = httptest.NewUnstartedServer(mux)
	if ln != nil {
		p.Server.Listener.Close()
		p.Server.Listener = ln
	}
	p.Server.Start()
	return p
}

// Close stops the platform's server.
func (p *Platform) Close() { p.Server.Close() }

// Issuer is the platform's iss.
func (p *Platform) Issuer() string { return p.Server.URL }

// AuthURL is the OIDC authorization endpoint.
func (p *Platform) AuthURL() string { return p.Server.URL + "/auth" }

// TokenURL is the OAuth 2 token endpoint.
func (p *Platform) TokenURL() string { return p.Server.URL + "/token" }

// JWKSURL is where the platform publishes its keys.
func (p *Platform) JWKSURL() string { return p.Server.URL + "/jwks" }

// RotateKey makes a new signing key; the old one stays published, as a
// platform rotating its keys does.
func (p *Platform) RotateKey() {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append([]*signingKey{{kid: "k-" + randomHex(6), priv: priv}}, p.keys...)
}

// BreakJWKS makes the keyset endpoint answer status, as a platform in an
// outage does; BreakJWKS(0) mends it.
func (p *Platform) BreakJWKS(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jwksStatus = status
}

// JWKSFetches counts the requests the keyset endpoint answered, failed
// ones included.
func (p *Platform) JWKSFetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jwksFetches
}

// HintReplays counts authentication requests refused because their
// login_hint or lti_message_hint was already used.
func (p *Platform) HintReplays() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replays
}

// KeyID is the kid of the key that signs launches.
func (p *Platform) KeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[0].kid
}

func (p *Platform) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	p.jwksFetches++
	if status := p.jwksStatus; status != 0 {
		p.mu.Unlock()
		http.Error(w, "keyset unavailable", status)
		return
	}
	set := jwk.NewSet()
	for _, k := range p.keys {
		pub, _ := jwk.FromRaw(k.priv.Public())
		_ = pub.Set(jwk.KeyIDKey, k.kid)
		_ = pub.Set(jwk.KeyUsageKey, "sig")
		_ = set.AddKey(pub)
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", p.JWKSCacheControl)
	_ = json.NewEncoder(w).Encode(set)
}

// Launch is one launch the platform will make.
type Launch struct {
	Message    string         // lti.MessageResourceLink (default) or lti.MessageDeepLinkingRequest
	Subject    string         // the user's sub; default a fresh one
	Roles      []string       // nil: Learner
	TargetLink string         // target_link_uri; default the tool's launch URL
	Claims     map[string]any // added to (or, with nil values, removed from) the defaults
	// Tamper changes the signed token's header and claims, for bad payloads.
	Tamper func(header map[string]any, claims map[string]any)
	// Raw replaces the whole id_token, for payloads that are not JWTs at all.
	Raw string
	// CorruptSignature swaps the signed payload for another after signing.
	CorruptSignature bool
	// ForeignKey signs with a key that is not the platform's, carried in
	// the token's own header.
	ForeignKey bool
	// HintLength pads lti_message_hint to this many characters, as
	// platforms whose hint is a signed JWT (Canvas) make it long.
	HintLength int
}

// LoginURL is the initiation request the platform makes of the tool's
// login endpoint for this launch: the tool's reply starts the OIDC flow.
func (p *Platform) LoginURL(toolLogin, toolLaunch string, l Launch) string {
	id := randomHex(8)
	hint := id
	if n := l.HintLength - len(hint); n > 0 {
		hint += strings.Repeat("h", n)
	}
	if l.TargetLink == "" {
		l.TargetLink = toolLaunch
	}
	p.mu.Lock()
	p.pending[hint] = l
	p.mu.Unlock()
	q := url.Values{
		"iss":               {p.Issuer()},
		"login_hint":        {"user-hint-" + id},
		"target_link_uri":   {l.TargetLink},
		"lti_message_hint":  {hint},
		"client_id":         {p.ClientID},
		"lti_deployment_id": {p.DeploymentID},
	}
	return toolLogin + "?" + q.Encode()
}

// authorize is the OIDC authorization endpoint: it checks the tool's
// authentication request as the Security Framework requires and answers
// with a self-submitting form that posts the id_token to redirect_uri.
// Each login's hints are good for one authentication request, as on
// platforms that spend them (a second is refused and counted in
// HintReplays).
func (p *Platform) authorize(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	q := r.Form
	hint := q.Get("lti_message_hint")
	p.mu.Lock()
	l, ok := p.pending[hint]
	replay := p.spent[hint] || p.spent[q.Get("login_hint")]
	delete(p.pending, hint)
	p.spent[hint], p.spent[q.Get("login_hint")] = true, true
	if replay {
		p.replays++
	}
	p.mu.Unlock()
	switch {
	case replay:
		http.Error(w, "lti_message_hint or login_hint already used", http.StatusBadRequest)
		return
	case !ok:
		http.Error(w, "unknown lti_message_hint", http.StatusBadRequest)
		return
	case q.Get("scope") != "openid" || q.Get("response_type") != "id_token" || q.Get("response_mode") != "form_post" ||
		q.Get("prompt") != "none" || q.Get("client_id") != p.ClientID || q.Get("nonce") == "" || q.Get("state") == "" ||
		q.Get("login_hint") != "user-hint-"+hint[:min(len(hint), 16)] || q.Get("redirect_uri") == "":
		http.Error(w, "invalid authentication request", http.StatusBadRequest)
		return
	}
	token, err := p.IDToken(q.Get("nonce"), l)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = formPost.Execute(w, map[string]string{"Action": q.Get("redirect_uri"), "IDToken": token, "State": q.Get("state")})
}

var formPost = template.Must(template.New("form").Parse(`<!doctype html>
<html><body onload="document.forms[0].submit()">
<form method="post" action="{{.Action}}">
<input type="hidden" name="id_token" value="{{.IDToken}}">
<input type="hidden" name="state" value="{{.State}}">
<noscript><button>Continue</button></noscript>
</form></body></html>`))

// IDToken signs the launch's id_token for nonce.
func (p *Platform) IDToken(nonce string, l Launch) (string, error) {
	if l.Raw != "" {
		return l.Raw, nil
	}
	claims := p.Claims(nonce, l)
	p.mu.Lock()
	k := p.keys[0]
	p.mu.Unlock()
	header := map[string]any{"kid": k.kid, "typ": "JWT"}
	if l.Tamper != nil {
		l.Tamper(header, claims)
	}
	priv := k.priv
	if l.ForeignKey {
		priv = foreignKey(header)
	}
	token, err := sign(priv, header, claims)
	if err != nil || !l.CorruptSignature {
		return token, err
	}
	claims["sub"] = "someone-else"
	forged, err := sign(priv, header, claims)
	parts, other := strings.Split(token, "."), strings.Split(forged, ".")
	return parts[0] + "." + other[1] + "." + parts[2], err
}

func sign(priv *rsa.PrivateKey, header, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	for name, v := range header {
		if err := hdr.Set(name, v); err != nil {
			return "", fmt.Errorf("ltitest: header %s: %w", name, err)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(jwa.RS256, priv, jws.WithProtectedHeaders(hdr)))
	return string(out), err
}

// Claims are the id_token claims of a launch: a complete, valid
// LtiResourceLinkRequest (or LtiDeepLinkingRequest), with l.Claims applied.
func (p *Platform) Claims(nonce string, l Launch) map[string]any {
	now := p.now()
	if l.Message == "" {
		l.Message = lti.MessageResourceLink
	}
	if l.Subject == "" {
		l.Subject = "user-" + randomHex(6)
	}
	roles := l.Roles
	if roles == nil {
		roles = []string{lti.RoleLearner}
	}
	c := map[string]any{
		"iss": p.Issuer(), "aud": p.ClientID, "sub": l.Subject, "nonce": nonce,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.edu", "locale": "en-GB",
		lti.ClaimMessageType:   l.Message,
		lti.ClaimVersion:       lti.Version,
		lti.ClaimDeploymentID:  p.DeploymentID,
		lti.ClaimTargetLinkURI: l.TargetLink,
		lti.ClaimRoles:         roles,
		lti.ClaimContext:       map[string]any{"id": "course-1", "label": "MATH101", "title": "Mathematics 101", "type": []string{"http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"}},
		lti.ClaimPlatform:      map[string]any{"guid": "platform-guid", "name": "Test LMS", "product_family_code": "ltitest"},
		lti.ClaimNRPS:          map[string]any{"context_memberships_url": p.Server.URL + "/nrps/course-1", "service_versions": []string{"2.0"}},
		lti.ClaimAGS: map[string]any{"scope": []string{lti.ScopeAGSLineItem, lti.ScopeAGSLineItemRead, lti.ScopeAGSResultRead, lti.ScopeAGSScore},
			"lineitems": p.LineItemsURL(demoCourse), "lineitem": p.lineItemURL(demoCourse, 1)},
	}
	switch l.Message {
	case lti.MessageDeepLinkingRequest:
		c[lti.ClaimDeepLinking] = map[string]any{
			"deep_link_return_url": p.Server.URL + "/deep-link-return", "accept_types": []string{"ltiResourceLink"},
			"accept_presentation_document_targets": []string{"iframe", "window"}, "accept_multiple": true, "data": "opaque-" + randomHex(4),
		}
	default:
		c[lti.ClaimResourceLink] = map[string]any{"id": "link-1", "title": "Week 1 quiz"}
	}
	for k, v := range l.Claims {
		switch {
		case v == nil:
			delete(c, k)
		case k == lti.ClaimDeploymentID || k == lti.ClaimTargetLinkURI:
			// The platform owns these (recorded launches carry other
			// platforms' values); change them with Tamper.
		default:
			c[k] = v
		}
	}
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
