package servicetoken_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/lti/servicetoken"
)

// signer is the hub's LTI key in memory, published as a keyset the way
// the hub publishes its own.
type signer struct {
	kid  string
	priv *rsa.PrivateKey

	mu       sync.Mutex
	payloads []map[string]any // every assertion signed
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: uuid.NewString(), priv: priv}
}

func (s *signer) Sign(_ context.Context, p keys.Purpose, payload []byte) ([]byte, error) {
	if p != keys.LTI {
		return nil, fmt.Errorf("signer: no %s key", p)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.payloads = append(s.payloads, claims)
	s.mu.Unlock()
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, s.kid)
	_ = hdr.Set(jws.TypeKey, "JWT")
	return jws.Sign(payload, jws.WithKey(jwa.RS256, s.priv, jws.WithProtectedHeaders(hdr)))
}

func (s *signer) assertions() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.payloads...)
}

// publish serves the signer's public key and tells the platform where.
func (s *signer) publish(t *testing.T, p *ltitest.Platform) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		pub, _ := jwk.FromRaw(s.priv.Public())
		_ = pub.Set(jwk.KeyIDKey, s.kid)
		_ = pub.Set(jwk.AlgorithmKey, jwa.RS256)
		_ = pub.Set(jwk.KeyUsageKey, "sig")
		set := jwk.NewSet()
		_ = set.AddKey(pub)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	p.ToolJWKSURL, p.ToolClient = srv.URL, srv.Client()
}

// setup starts a platform that knows the hub's key, and a Source.
func setup(t *testing.T) (*ltitest.Platform, *signer, *servicetoken.Source, servicetoken.Platform) {
	t.Helper()
	p := ltitest.New()
	t.Cleanup(p.Close)
	sg := newSigner(t)
	sg.publish(t, p)
	src := servicetoken.NewSource(sg, p.Server.Client())
	return p, sg, src, servicetoken.Platform{RegistrationID: uuid.New(), ClientID: p.ClientID, TokenURL: p.TokenURL()}
}

// clock is an injectable Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var (
	roster = []string{lti.ScopeNRPS}
	grades = []string{lti.ScopeAGSScore, lti.ScopeAGSLineItem}
)

func mustToken(t *testing.T, src *servicetoken.Source, pl servicetoken.Platform, scopes []string) string {
	t.Helper()
	tok, err := src.Token(context.Background(), pl, scopes)
	if err != nil {
		t.Fatalf("Token(%v): %v", scopes, err)
	}
	if tok == "" {
		t.Fatalf("Token(%v) is empty", scopes)
	}
	return tok
}

func wantRequests(t *testing.T, p *ltitest.Platform, n int) {
	t.Helper()
	if got := p.TokenRequests(); got != n {
		t.Fatalf("%d token requests, want %d", got, n)
	}
}

func TestTokenIsKeptPerScopeSet(t *testing.T) {
	p, _, src, pl := setup(t)
	first := mustToken(t, src, pl, grades)
	wantRequests(t, p, 1)
	again := mustToken(t, src, pl, []string{lti.ScopeAGSLineItem, lti.ScopeAGSScore, lti.ScopeAGSLineItem})
	if again != first {
		t.Fatal("the same scopes in another order got another token")
	}
	wantRequests(t, p, 1)
	other := mustToken(t, src, pl, roster)
	if other == first {
		t.Fatal("another scope set got the same token")
	}
	wantRequests(t, p, 2)
	elsewhere := pl
	elsewhere.RegistrationID = uuid.New()
	if mustToken(t, src, elsewhere, roster) == other {
		t.Fatal("another registration got the same token")
	}
	wantRequests(t, p, 3)
}

// recorder keeps the token requests a client sends.
type recorder struct {
	mu    sync.Mutex
	forms []url.Values
	auth  []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	r.mu.Lock()
	r.forms, r.auth = append(r.forms, form), append(r.auth, req.Header.Get("Authorization"))
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func TestTokenRequest(t *testing.T) {
	p, sg, _, pl := setup(t)
	rec := &recorder{}
	src := servicetoken.NewSource(sg, &http.Client{Transport: rec})
	mustToken(t, src, pl, []string{lti.ScopeNRPS, lti.ScopeAGSScore, lti.ScopeNRPS, lti.ScopeAGSLineItem})
	wantRequests(t, p, 1)
	form := rec.forms[0]
	if got, want := form.Get("scope"), lti.ScopeAGSLineItem+" "+lti.ScopeAGSScore+" "+lti.ScopeNRPS; got != want {
		t.Errorf("scope %q, want %q (sorted, once each)", got, want)
	}
	if form.Get("grant_type") != "client_credentials" || form.Get("client_assertion_type") != servicetoken.AssertionType ||
		form.Get("client_assertion") == "" {
		t.Errorf("token request %v", form)
	}
	if form.Has("client_id") || form.Has("client_secret") || rec.auth[0] != "" {
		t.Errorf("token request authenticates otherwise than by the assertion: %v, Authorization %q", form, rec.auth[0])
	}
}

func TestAssertion(t *testing.T) {
	p, sg, src, pl := setup(t)
	mustToken(t, src, pl, roster)
	mustToken(t, src, pl, grades)
	a := sg.assertions()
	if len(a) != 2 {
		t.Fatalf("%d assertions signed, want 2", len(a))
	}
	for _, c := range a {
		if c["iss"] != p.ClientID || c["sub"] != p.ClientID || c["aud"] != p.TokenURL() {
			t.Errorf("assertion iss %v sub %v aud %v, want the client_id twice and the token URL", c["iss"], c["sub"], c["aud"])
		}
		iat, _ := c["iat"].(float64)
		exp, _ := c["exp"].(float64)
		if life := time.Duration(exp-iat) * time.Second; life <= 0 || life > 5*time.Minute {
			t.Errorf("assertion lives %s, want at most 5m", life)
		}
		if now := float64(time.Now().Unix()); iat < now-5 || iat > now+5 {
			t.Errorf("assertion iat %v, now %v", iat, now)
		}
	}
	if j0, _ := a[0]["jti"].(string); j0 == "" || j0 == a[1]["jti"] {
		t.Errorf("jti %v and %v: want fresh ones", a[0]["jti"], a[1]["jti"])
	}
}

func TestAudience(t *testing.T) {
	for _, tc := range []struct {
		name          string
		audience      string // the registration's
		tokenAudience string // the platform's
		refused       bool
	}{
		{"token URL by default", "", "", false},
		{"token URL while the platform names another", "", "https://lms.example/oauth2/token", false},
		{"the registration's audience", "https://lms.example/oauth2/token", "https://lms.example/oauth2/token", false},
		{"an audience the platform does not answer to", "https://elsewhere.example/token", "https://lms.example/oauth2/token", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, sg, src, pl := setup(t)
			p.TokenAudience, pl.Audience = tc.tokenAudience, tc.audience
			_, err := src.Token(context.Background(), pl, roster)
			var e *servicetoken.Error
			switch {
			case tc.refused && (!errors.As(err, &e) || e.Code != "invalid_client"):
				t.Fatalf("Token: %v, want invalid_client", err)
			case !tc.refused && err != nil:
				t.Fatalf("Token: %v", err)
			}
			want := tc.audience
			if want == "" {
				want = p.TokenURL()
			}
			if aud := sg.assertions()[0]["aud"]; aud != want {
				t.Fatalf("assertion aud %v, want %s", aud, want)
			}
		})
	}
}

func TestTokenIsReplacedBeforeItExpires(t *testing.T) {
	for _, tc := range []struct {
		name        string
		lifetime    time.Duration
		kept, asked time.Duration // still kept at; asked again at
	}{
		{"a tenth of a short lifetime", 100 * time.Second, 89 * time.Second, 91 * time.Second},
		{"at most a minute of a long one", 20 * time.Minute, 18*time.Minute + 59*time.Second, 19*time.Minute + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, src, pl := setup(t)
			p.TokenLifetime = tc.lifetime
			c := &clock{now: time.Now()}
			src.Now = c.Now
			first := mustToken(t, src, pl, roster)
			c.advance(tc.kept)
			if mustToken(t, src, pl, roster) != first {
				t.Fatalf("token replaced %s into its %s", tc.kept, tc.lifetime)
			}
			wantRequests(t, p, 1)
			c.advance(tc.asked - tc.kept)
			if mustToken(t, src, pl, roster) == first {
				t.Fatalf("token kept %s into its %s", tc.asked, tc.lifetime)
			}
			wantRequests(t, p, 2)
		})
	}
}

// A platform that says nothing of expiry: its tokens are kept 5 minutes,
// less the margin.
func TestTokenWithoutExpiresIn(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n++
		tok := fmt.Sprintf("token-%d", n)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer"}`, tok)
	}))
	defer srv.Close()
	src := servicetoken.NewSource(newSigner(t), srv.Client())
	c := &clock{now: time.Now()}
	src.Now = c.Now
	pl := servicetoken.Platform{RegistrationID: uuid.New(), ClientID: "c", TokenURL: srv.URL}
	mustToken(t, src, pl, roster)
	c.advance(4*time.Minute + 29*time.Second)
	if tok := mustToken(t, src, pl, roster); tok != "token-1" {
		t.Fatalf("token %s at 4m29s, want the first still", tok)
	}
	c.advance(2 * time.Second)
	if tok := mustToken(t, src, pl, roster); tok != "token-2" {
		t.Fatalf("token %s at 4m31s, want a new one", tok)
	}
}

func TestConcurrentCallersShareOneRequest(t *testing.T) {
	p, _, src, pl := setup(t)
	p.TokenDelay = 200 * time.Millisecond
	const callers = 50
	tokens := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { tokens[i], errs[i] = src.Token(context.Background(), pl, roster) })
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Fatalf("caller %d: %q, %v; caller 0 got %q", i, tokens[i], errs[i], tokens[0])
		}
	}
	wantRequests(t, p, 1)
}

func TestCancelledCallerLeavesTheRequestToOthers(t *testing.T) {
	p, _, src, pl := setup(t)
	p.TokenDelay = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := src.Token(ctx, pl, roster)
		first <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); p.TokenRequests() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first caller never asked")
		}
	}
	second := make(chan error, 1)
	go func() {
		_, err := src.Token(context.Background(), pl, roster)
		second <- err
	}()
	time.Sleep(20 * time.Millisecond) // the second caller joins the request
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the other caller failed with the first's cancellation: %v", err)
	}
	wantRequests(t, p, 1)
}

func TestInvalidate(t *testing.T) {
	p, _, src, pl := setup(t)
	first := mustToken(t, src, pl, grades)
	src.Invalidate(pl, []string{lti.ScopeAGSLineItem, lti.ScopeAGSScore}, first)
	second := mustToken(t, src, pl, grades)
	if second == first {
		t.Fatal("an invalidated token was given out again")
	}
	wantRequests(t, p, 2)
	src.Invalidate(pl, grades, first) // a caller late with the old token
	if mustToken(t, src, pl, grades) != second {
		t.Fatal("invalidating a replaced token dropped its replacement")
	}
	wantRequests(t, p, 2)
}

func TestRefusal(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(p *ltitest.Platform, pl *servicetoken.Platform, src **servicetoken.Source)
		scopes     []string
		status     int
		code       string
		temporary  bool
		retryAfter time.Duration
	}{
		{"unknown client", func(_ *ltitest.Platform, pl *servicetoken.Platform, _ **servicetoken.Source) {
			pl.ClientID = "someone-else"
		}, roster, 401, "invalid_client", false, 0},
		{"key the platform does not know", func(p *ltitest.Platform, _ *servicetoken.Platform, src **servicetoken.Source) {
			*src = servicetoken.NewSource(newSigner(t), p.Server.Client())
		}, roster, 401, "invalid_client", false, 0},
		{"scope not granted", func(p *ltitest.Platform, _ *servicetoken.Platform, _ **servicetoken.Source) {
			p.GrantedScopes = []string{lti.ScopeNRPS}
		}, grades, 400, "invalid_scope", false, 0},
		{"platform failing", func(p *ltitest.Platform, _ *servicetoken.Platform, _ **servicetoken.Source) {
			p.FailTokens(500, "", 1)
		}, roster, 500, "", true, 0},
		{"platform overloaded", func(p *ltitest.Platform, _ *servicetoken.Platform, _ **servicetoken.Source) {
			p.TokenRetryAfter = 30 * time.Second
			p.FailTokens(429, "temporarily_unavailable", 1)
		}, roster, 429, "temporarily_unavailable", true, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, src, pl := setup(t)
			tc.setup(p, &pl, &src)
			_, err := src.Token(context.Background(), pl, tc.scopes)
			var e *servicetoken.Error
			if !errors.As(err, &e) {
				t.Fatalf("Token: %v, want an *Error", err)
			}
			if e.Status != tc.status || e.Code != tc.code || e.Temporary() != tc.temporary || e.RetryAfter != tc.retryAfter {
				t.Fatalf("Error %+v (temporary %v), want %d %q temporary %v Retry-After %s",
					e, e.Temporary(), tc.status, tc.code, tc.temporary, tc.retryAfter)
			}
			if e.Body == "" || (tc.code != "" && e.Description == "") {
				t.Errorf("Error keeps no answer: %+v", e)
			}
			if want := fmt.Sprintf("lti token endpoint: %d", tc.status); !strings.HasPrefix(e.Error(), want) ||
				!strings.Contains(e.Error(), tc.code) || !strings.Contains(e.Error(), e.Description) {
				t.Errorf("Error() %q", e.Error())
			}
		})
	}
}

func TestRefusalIsNotKept(t *testing.T) {
	p, _, src, pl := setup(t)
	p.FailTokens(503, "", 1)
	if _, err := src.Token(context.Background(), pl, roster); err == nil {
		t.Fatal("Token succeeded while the platform failed")
	}
	mustToken(t, src, pl, roster)
	wantRequests(t, p, 2)
}

func TestUnreachablePlatform(t *testing.T) {
	p, sg, _, pl := setup(t)
	src := servicetoken.NewSource(sg, p.Server.Client())
	p.Close()
	_, err := src.Token(context.Background(), pl, roster)
	var e *servicetoken.Error
	if err == nil || errors.As(err, &e) || !strings.Contains(err.Error(), pl.TokenURL) {
		t.Fatalf("Token: %v, want a transport error naming the token URL", err)
	}
}
