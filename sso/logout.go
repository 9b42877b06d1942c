package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/tenants/audit"
)

// EndSessionURL is where a logout sends the browser next: the provider's
// end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0 §2) with
// id_token_hint, post_logout_redirect_uri and state, or "" when the
// provider has none (or the connection is gone).
func (s *Service) EndSessionURL(ctx context.Context, e Ended, postLogout string) string {
	if e.Connection == nil {
		return ""
	}
	tg, err := s.readAnyTarget(ctx, e.Tenant, e.Connection)
	if err != nil {
		return ""
	}
	p, err := s.providers.get(s.connection(tg.connRow))
	if err != nil || p.meta.EndSessionEndpoint == "" {
		return ""
	}
	u, err := url.Parse(p.meta.EndSessionEndpoint)
	if err != nil {
		return ""
	}
	q := u.Query()
	if e.IDToken != "" {
		q.Set("id_token_hint", e.IDToken)
	}
	q.Set("client_id", tg.ClientID)
	q.Set("post_logout_redirect_uri", postLogout)
	q.Set("state", token.Random(16))
	u.RawQuery = q.Encode()
	return u.String()
}

// LogoutMaxAge is how old a logout token's iat may be: the token is
// acted on at once, and its jti remembered this long.
const LogoutMaxAge = 5 * time.Minute

// backchannelEvent is the member a logout token's events claim must hold
// (OpenID Connect Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutClaims are a logout token's claims the hub reads.
type logoutClaims struct {
	Issuer   string                     `json:"iss"`
	Audience json.RawMessage            `json:"aud"`
	IssuedAt *float64                   `json:"iat"`
	Expires  *float64                   `json:"exp"`
	JTI      string                     `json:"jti"`
	Subject  string                     `json:"sub"`
	SID      string                     `json:"sid"`
	Events   map[string]json.RawMessage `json:"events"`
	Nonce    json.RawMessage            `json:"nonce"`
}

// errLogoutToken marks a logout token the hub refuses.
var errLogoutToken = errors.New("sso: logout token refused")

// checkLogoutClaims validates a logout token's verified payload by OpenID
// Connect Back-Channel Logout 1.0 §2.6 steps 3–7: iss is the issuer, aud
// holds the client, iat is recent (and exp, when present, not passed),
// events holds the back-channel logout member as a JSON object, sub or
// sid is present, nonce is absent; and jti is present (for step 8's
// replay check).
func checkLogoutClaims(payload []byte, issuer, clientID string, now time.Time) (logoutClaims, error) {
	var c logoutClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, fmt.Errorf("%w: claims: %w", errLogoutToken, err)
	}
	var problem string
	switch {
	case c.Issuer != issuer:
		problem = "iss is not the connection's issuer"
	case !hasAudience(c.Audience, clientID):
		problem = "aud does not hold the client"
	case c.IssuedAt == nil:
		problem = "no iat"
	case now.Sub(time.Unix(int64(*c.IssuedAt), 0)) > LogoutMaxAge || time.Unix(int64(*c.IssuedAt), 0).Sub(now) > time.Minute:
		problem = "iat is not recent"
	case c.Expires != nil && now.After(time.Unix(int64(*c.Expires), 0).Add(time.Minute)):
		problem = "expired"
	case !isObject(c.Events[backchannelEvent]):
		problem = "events lacks the back-channel logout event"
	case c.Subject == "" && c.SID == "":
		problem = "neither sub nor sid"
	case c.Nonce != nil:
		problem = "a nonce (an id_token, not a logout token)"
	case c.JTI == "" || len(c.JTI) > 255 || len(c.SID) > 255 || len(c.Subject) > 255:
		problem = "jti absent, or a claim too long"
	}
	if problem != "" {
		return c, fmt.Errorf("%w: %s", errLogoutToken, problem)
	}
	return c, nil
}

func hasAudience(raw json.RawMessage, clientID string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == clientID
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return false
	}
	for _, a := range many {
		if a == clientID {
			return true
		}
	}
	return false
}

func isObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return raw != nil && json.Unmarshal(raw, &m) == nil && m != nil
}

// BackchannelLogout acts on a logout token the provider of connection
// posted (OpenID Connect Back-Channel Logout 1.0 §2.5–§2.7): verified by
// the provider's keys and §2.6, its jti not seen before, it ends the
// connection's live sessions with its sid, or else of its sub; a disabled
// connection's too, whose sessions live on. An error
// wrapping errLogoutToken is the provider's fault (§2.8: 400).
func (s *Service) BackchannelLogout(ctx context.Context, connection, raw string) (int, error) {
	id, err := uuid.Parse(connection)
	if err != nil || raw == "" || len(raw) > 16384 {
		return 0, fmt.Errorf("%w: no such connection or no token", errLogoutToken)
	}
	var tenant uuid.UUID
	err = pg.InFoundTenant(ctx, s.db, "hub_sso_connection_tenant", id, func(_ *sqlx.Tx, t uuid.UUID) error { tenant = t; return nil })
	if errors.Is(err, pg.ErrNoTenant) {
		return 0, fmt.Errorf("%w: no such connection", errLogoutToken)
	}
	if err != nil {
		return 0, err
	}
	tg, err := s.readAnyTarget(ctx, tenant, &id)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errLogoutToken, err)
	}
	c := s.connection(tg.connRow)
	p, err := s.providers.get(c)
	if err != nil {
		return 0, err
	}
	payload, err := keySet{cache: s.keysets, url: p.meta.JWKSURI}.VerifySignature(ctx, raw)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errLogoutToken, err)
	}
	now := s.Now()
	claims, err := checkLogoutClaims(payload, c.TokenIssuer(), c.ClientID, now)
	if err != nil {
		return 0, err
	}
	return s.endByLogoutToken(ctx, c, claims, now)
}

func (s *Service) endByLogoutToken(ctx context.Context, c Connection, lc logoutClaims, now time.Time) (int, error) {
	var n int
	err := pg.InTenant(ctx, s.db, c.TenantID, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sso_logout_tokens WHERE tenant_id = $1 AND expires_at < $2`, c.TenantID, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO sso_logout_tokens (tenant_id, connection_id, jti, expires_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, c.TenantID, c.ID, lc.JTI, now.Add(2*LogoutMaxAge))
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return fmt.Errorf("%w: jti replayed", errLogoutToken)
		}
		var ended []struct {
			ID   uuid.UUID `db:"id"`
			User uuid.UUID `db:"user_id"`
		}
		if err := tx.SelectContext(ctx, &ended, `UPDATE sso_sessions SET ended_at = $5, end_reason = 'backchannel'
			WHERE tenant_id = $1 AND connection_id = $2 AND ended_at IS NULL
				AND (CASE WHEN $3 <> '' THEN sid = $3 ELSE subject = $4 END) AND ($3 = '' OR $4 = '' OR subject = $4)
			RETURNING id, user_id`, c.TenantID, c.ID, lc.SID, lc.Subject, now); err != nil {
			return err
		}
		n = len(ended)
		for _, e := range ended {
			if err := s.auditSessions(ctx, tx, c.TenantID, audit.Actor{Type: audit.ActorSystem, ID: "backchannel-logout"},
				"sso.session_ended", e.ID.String(), map[string]string{"reason": EndBackchannel, "user": e.User.String(),
					"connection": c.ID.String()}); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// IsLogoutTokenRefused reports an error that is the logout token's fault.
func IsLogoutTokenRefused(err error) bool { return errors.Is(err, errLogoutToken) }
