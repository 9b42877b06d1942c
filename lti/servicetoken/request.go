package servicetoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/klasterina/hub/internal/httpheader"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/token"
)

// AssertionType is the client_assertion_type of a JWT client assertion
// (RFC 7523 §2.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// request asks p's token endpoint for a token of scope, returning it and
// how long the platform says it lives (0: it did not say).
func (s *Source) request(ctx context.Context, p Platform, scope string, now time.Time) (string, time.Duration, error) {
	assertion, err := s.assertion(ctx, p, now)
	if err != nil {
		return "", 0, err
	}
	// No ClientID or ClientSecret: with AuthStyleInParams, x/oauth2 then
	// sends neither, and the assertion alone authenticates the hub.
	conf := clientcredentials.Config{
		TokenURL:  p.TokenURL,
		AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {AssertionType},
			"client_assertion":      {assertion},
		},
	}
	if scope != "" {
		conf.Scopes = []string{scope}
	}
	tok, err := conf.Token(context.WithValue(ctx, oauth2.HTTPClient, s.client))
	if err != nil {
		return "", 0, s.refusal(p, err)
	}
	if tok.TokenType != "" && !strings.EqualFold(tok.TokenType, "bearer") {
		return "", 0, fmt.Errorf("lti token endpoint %s: token type %q, want Bearer", p.TokenURL, tok.TokenType)
	}
	return tok.AccessToken, lifetime(tok), nil
}

// lifetime is the token's expires_in. x/oauth2's client credentials
// source drops ExpiresIn and keeps only Expiry, which it set to the time
// of receipt plus expires_in (zero when there was none), so the lifetime
// is read back from it.
func lifetime(tok *oauth2.Token) time.Duration {
	if tok.Expiry.IsZero() {
		return 0
	}
	return time.Until(tok.Expiry).Round(time.Second)
}

// assertion is the signed client assertion (Security Framework §4.1.1):
// short-lived, for p's token audience, with a jti never used before.
func (s *Source) assertion(ctx context.Context, p Platform, now time.Time) (string, error) {
	claims := map[string]any{
		"iss": p.ClientID,
		"sub": p.ClientID,
		"aud": p.audience(),
		"iat": now.Unix(),
		"exp": now.Add(AssertionLifetime).Unix(),
		"jti": token.Random(18),
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("servicetoken: assertion: %w", err)
	}
	signed, err := s.signer.Sign(ctx, keys.LTI, payload)
	if err != nil {
		return "", fmt.Errorf("servicetoken: sign assertion: %w", err)
	}
	return string(signed), nil
}

// refusal turns x/oauth2's error into an *Error when the endpoint
// answered, and wraps it when it could not be reached.
func (s *Source) refusal(p Platform, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("lti token endpoint %s: %w", p.TokenURL, err)
	}
	e := &Error{Code: re.ErrorCode, Description: re.ErrorDescription, Body: strings.ToValidUTF8(string(re.Body[:min(len(re.Body), maxBody)]), "")}
	if re.Response != nil {
		e.Status = re.Response.StatusCode
		e.RetryAfter = httpheader.RetryAfter(re.Response.Header.Get("Retry-After"), s.Now())
	}
	return e
}
