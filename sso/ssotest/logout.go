package ssotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// BackChannelLogoutEvent is the events member that makes a JWT a logout
// token (OpenID Back-Channel Logout 1.0 §2.4).
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenLifetime is how long a logout token is good for (its exp).
const LogoutTokenLifetime = 2 * time.Minute

// BackChannelLogout signs a logout token for the client (OpenID
// Back-Channel Logout 1.0 §2.4: iss, aud, iat, exp, jti, events, and sub
// and/or sid; no nonce; header typ "logout+jwt") and POSTs it
// form-encoded (logout_token=…, §2.5) with the WithHTTPClient client to
// the client's
// BackChannelLogoutURI. It returns the receiver's HTTP status; an error
// when the client is unknown, has no BackChannelLogoutURI, subject and
// sid are both empty, or the request fails. The token misbehaviours on
// apply to it too (BadNonce puts in a nonce, which §2.6 forbids).
func (p *Provider) BackChannelLogout(ctx context.Context, clientID, subject, sid string) (int, error) {
	p.mu.Lock()
	c, ok := p.clients[clientID]
	p.mu.Unlock()
	switch {
	case !ok:
		return 0, fmt.Errorf("ssotest: back-channel logout: unknown client %q", clientID)
	case c.BackChannelLogoutURI == "":
		return 0, fmt.Errorf("ssotest: back-channel logout: client %q has no backchannel_logout_uri", clientID)
	case subject == "" && sid == "":
		return 0, errors.New("ssotest: back-channel logout: a logout token needs sub or sid")
	}
	token, err := p.LogoutToken(clientID, subject, sid)
	if err != nil {
		return 0, err
	}
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackChannelLogoutURI, strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("ssotest: back-channel logout to %s: %w", c.BackChannelLogoutURI, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("ssotest: back-channel logout to %s: %w", c.BackChannelLogoutURI, err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// LogoutToken is the logout token BackChannelLogout posts, for tests that
// deliver it themselves. Empty subject or sid leave the claim out.
func (p *Provider) LogoutToken(clientID, subject, sid string) (string, error) {
	now := p.now()
	c := map[string]any{"iss": p.Issuer(), "aud": clientID, "iat": now.Unix(), "exp": now.Add(LogoutTokenLifetime).Unix(),
		"jti": randomHex(16), "events": map[string]any{BackChannelLogoutEvent: map[string]any{}}}
	if subject != "" {
		c["sub"] = subject
	}
	if sid != "" {
		c["sid"] = sid
	}
	p.bend(c, clientID)
	return p.sign(c, "logout+jwt")
}

// EndSession is one request the end_session endpoint received.
type EndSession struct{ IDTokenHint, PostLogoutRedirectURI, State string }

// EndSessions lists the end_session requests received, oldest first.
func (p *Provider) EndSessions() []EndSession {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.endSessions)
}

// endSession is the end_session_endpoint (RP-Initiated Logout 1.0 §2,
// §3): it records the request, then sends the browser to
// post_logout_redirect_uri with state when that is registered for the
// client (named by client_id or the id_token_hint's aud), else shows a
// "signed out" page.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	q := r.Form
	es := EndSession{IDTokenHint: q.Get("id_token_hint"), PostLogoutRedirectURI: q.Get("post_logout_redirect_uri"), State: q.Get("state")}
	p.mu.Lock()
	p.endSessions = append(p.endSessions, es)
	p.mu.Unlock()
	if target, ok := p.postLogoutRedirect(q); ok {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = messagePage.Execute(w, map[string]string{"Title": "Signed out", "Message": "You have signed out of the identity provider."})
}

// postLogoutRedirect is where end_session may send the browser: the
// post_logout_redirect_uri with state, when registered for the client.
func (p *Provider) postLogoutRedirect(q url.Values) (string, bool) {
	uri := q.Get("post_logout_redirect_uri")
	if uri == "" {
		return "", false
	}
	clientIDs := p.hintAudience(q.Get("id_token_hint"))
	if id := q.Get("client_id"); id != "" {
		if len(clientIDs) > 0 && !slices.Contains(clientIDs, id) {
			return "", false // §2: client_id must agree with the hint
		}
		clientIDs = []string{id}
	}
	p.mu.Lock()
	registered := slices.ContainsFunc(clientIDs, func(id string) bool {
		return slices.Contains(p.clients[id].PostLogoutRedirectURIs, uri)
	})
	p.mu.Unlock()
	target, err := url.Parse(uri)
	if !registered || err != nil {
		return "", false
	}
	if q.Has("state") {
		query := target.Query()
		query.Set("state", q.Get("state"))
		target.RawQuery = query.Encode()
	}
	return target.String(), true
}

// hintAudience is the aud of an id_token_hint the provider signed (an
// expired one will do, §2); nil for anything else.
func (p *Provider) hintAudience(hint string) []string {
	if hint == "" {
		return nil
	}
	p.mu.Lock()
	keys := slices.Clone(p.keys)
	p.mu.Unlock()
	for _, k := range keys {
		payload, err := jws.Verify([]byte(hint), jws.WithKey(jwa.RS256, &k.priv.PublicKey))
		if err != nil {
			continue
		}
		var c struct {
			Iss string          `json:"iss"`
			Aud json.RawMessage `json:"aud"`
		}
		if json.Unmarshal(payload, &c) != nil || c.Iss != p.Issuer() {
			return nil
		}
		var one string
		if json.Unmarshal(c.Aud, &one) == nil {
			return []string{one}
		}
		var many []string
		_ = json.Unmarshal(c.Aud, &many)
		return many
	}
	return nil
}
