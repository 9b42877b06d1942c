package ssotest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"
)

// CodeLifetime is how long an authorization code may be redeemed
// (RFC 6749 §4.1.2 recommends at most ten minutes; providers use less).
const CodeLifetime = 60 * time.Second

// TokenLifetime is how long access tokens and id_tokens live (expires_in).
const TokenLifetime = time.Hour

// OtherClient is the audience the audience misbehaviours add: a client the
// provider does not know.
const OtherClient = "another-client"

// Provider is a fake OpenID Provider. Its issuer is its server's URL. It
// is safe for concurrent use.
type Provider struct {
	server *httptest.Server
	now    func() time.Time
	client *http.Client // posts logout tokens

	mu          sync.Mutex
	clients     map[string]Client
	users       []User // in the order added: the sign-in page lists them so
	signInAs    string
	deny        bool
	misbehave   map[Misbehaviour]bool
	keys        []*signingKey // the first signs; all are published
	foreign     *signingKey   // signs UnknownKey tokens; never published
	codes       map[string]*grant
	tokens      map[string]*grant // access token → what it grants
	jwksDown    bool
	jwksFetches int
	tokenReqs   int
	userinfoReq int
	endSessions []EndSession
}

// Option configures New.
type Option func(*Provider)

// WithListener serves the provider on l rather than a fresh loopback port,
// so that its issuer stays the same across restarts (the demo).
func WithListener(l net.Listener) Option {
	return func(p *Provider) {
		p.server.Listener.Close()
		p.server.Listener = l
	}
}

// WithClock makes the provider tell time by now: iat, exp, auth_time and
// code expiry follow it.
func WithClock(now func() time.Time) Option {
	return func(p *Provider) { p.now = now }
}

// WithHTTPClient is the client BackChannelLogout posts with (default
// http.DefaultClient), e.g. one that trusts a TLS test server.
func WithHTTPClient(c *http.Client) Option {
	return func(p *Provider) { p.client = c }
}

// Client is a relying party the provider knows.
type Client struct {
	// ID and Secret authenticate the client at the token endpoint
	// (client_secret_basic or client_secret_post); an empty Secret makes
	// a public client, which sends only its client_id.
	ID, Secret string
	// RedirectURIs are compared exactly, as OIDC Core §3.1.2.1 says.
	RedirectURIs []string
	// BackChannelLogoutURI receives logout tokens (OpenID Back-Channel
	// Logout 1.0); "" = none.
	BackChannelLogoutURI string
	// PostLogoutRedirectURIs are where end_session may send the browser
	// back (RP-Initiated Logout 1.0 §2).
	PostLogoutRedirectURIs []string
}

// User is someone who can sign in.
type User struct {
	Subject       string
	Email         string
	EmailVerified *bool // nil: claim omitted
	// Name, GivenName and FamilyName are the profile scope's claims.
	Name, GivenName, FamilyName string
	Groups                      []string       // the "groups" claim, whatever the scopes, when set
	Claims                      map[string]any // any further claims (e.g. "employee_id"), in the id_token and userinfo
	UserinfoOnly                map[string]any // claims only the userinfo endpoint returns
}

// New starts a provider on a loopback httptest server (or on the listener
// WithListener gives). Close it when done.
func New(opts ...Option) *Provider {
	p := &Provider{now: time.Now, client: http.DefaultClient, clients: map[string]Client{}, misbehave: map[Misbehaviour]bool{},
		codes: map[string]*grant{}, tokens: map[string]*grant{}}
	p.keys = []*signingKey{newSigningKey()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.serveJWKS)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	mux.HandleFunc("POST /userinfo", p.userinfo)
	mux.HandleFunc("GET /end_session", p.endSession)
	mux.HandleFunc("POST /end_session", p.endSession)
	p.server = httptest.NewUnstartedServer(mux)
	for _, o := range opts {
		o(p)
	}
	p.server.Start()
	return p
}

// Close stops the provider's server.
func (p *Provider) Close() { p.server.Close() }

// Issuer is the provider's iss: its server's base URL. Discovery is at
// Issuer()+"/.well-known/openid-configuration".
func (p *Provider) Issuer() string { return p.server.URL }

// AddClient registers a relying party, replacing one of the same ID.
func (p *Provider) AddClient(c Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients[c.ID] = c
}

// AddUser adds someone who can sign in, replacing one of the same subject.
func (p *Provider) AddUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.IndexFunc(p.users, func(v User) bool { return v.Subject == u.Subject }); i >= 0 {
		p.users[i] = u
		return
	}
	p.users = append(p.users, u)
}

// SignInAs makes the authorization endpoint approve every request as
// subject at once, redirecting straight back with a code; "" shows the
// sign-in page again. A subject no user has is answered access_denied.
func (p *Provider) SignInAs(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signInAs = subject
}

// Deny makes the next valid authorization request answer
// error=access_denied (with its state), as when the user declines.
func (p *Provider) Deny() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deny = true
}

// Misbehaviour is a way the provider gets its answers wrong, for testing
// that a relying party refuses them.
type Misbehaviour int

// The misbehaviours Misbehave takes. Those of tokens apply to the
// id_tokens (and, where they make sense, the logout tokens) issued while
// they are on.
const (
	WrongIssuer        Misbehaviour = iota + 1 // iss is not the issuer
	WrongAudience                              // aud lacks the client (it is OtherClient)
	Expired                                    // exp in the past (an hour ago)
	BadNonce                                   // nonce not the one in the request; a logout token gets a nonce, which it must not have
	ExtraAudienceNoAzp                         // aud is [client, OtherClient] and no azp
	WrongAzp                                   // aud is [client, OtherClient] and azp names OtherClient
	Unsigned                                   // alg "none", no signature
	UnknownKey                                 // signed with a key not in the JWKS
	EmailUnverified                            // email_verified false (id_token and userinfo)
	NoISSParam                                 // omit RFC 9207 iss from the authorization response (default: sent)
	WrongISSParam                              // RFC 9207 iss parameter names another issuer
)

// Misbehave turns the misbehaviours on, from now until Behave.
func (p *Provider) Misbehave(m ...Misbehaviour) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range m {
		p.misbehave[x] = true
	}
}

// Behave turns every misbehaviour off.
func (p *Provider) Behave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.misbehave)
}

func (p *Provider) misbehaving(m Misbehaviour) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.misbehave[m]
}

// RotateKey adds a new signing key and signs with it from now on; the old
// ones stay in the JWKS unless dropOld, as a provider that rotates without
// an overlap does.
func (p *Provider) RotateKey(dropOld bool) {
	k := newSigningKey()
	p.mu.Lock()
	defer p.mu.Unlock()
	if dropOld {
		p.keys = nil
	}
	p.keys = append([]*signingKey{k}, p.keys...)
}

// KeyID is the kid of the key that signs now.
func (p *Provider) KeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[0].kid
}

// JWKSDown makes the JWKS endpoint answer 503 Service Unavailable while
// down is true, as in an outage.
func (p *Provider) JWKSDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jwksDown = down
}

// JWKSFetches counts the requests the JWKS endpoint answered, failed ones
// included.
func (p *Provider) JWKSFetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jwksFetches
}

// TokenRequests counts the requests the token endpoint received, refused
// ones included.
func (p *Provider) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenReqs
}

// UserinfoRequests counts the requests the userinfo endpoint received,
// refused ones included.
func (p *Provider) UserinfoRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.userinfoReq
}

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newSigningKey() *signingKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return &signingKey{kid: "k-" + randomHex(6), priv: priv}
}

// randomHex is n random bytes in hex: codes, tokens, sids and kids.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
