package sso

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/tenants/audit"
)

// SessionCookie is the name of the hub's session cookie.
const SessionCookie = "hub_session"

// slideEvery is how often a session's last use is written: at most once a
// minute, so a busy session costs no write per request.
const slideEvery = time.Minute

// Why a session ended.
const (
	EndLogout      = "logout"
	EndAdmin       = "admin"
	EndBackchannel = "backchannel"
)

// Session is a hub session, as its tenant's admins see it.
type Session struct {
	ID            uuid.UUID  `db:"id" json:"id"`
	TenantID      uuid.UUID  `db:"tenant_id" json:"-"`
	UserID        uuid.UUID  `db:"user_id" json:"user"`
	ConnectionID  *uuid.UUID `db:"connection_id" json:"connection"`
	CreatedAt     time.Time  `db:"created_at" json:"created_at"`
	LastSeenAt    time.Time  `db:"last_seen_at" json:"last_seen_at"`
	IdleExpiresAt time.Time  `db:"idle_expires_at" json:"idle_expires_at"`
	ExpiresAt     time.Time  `db:"expires_at" json:"expires_at"`
	EndedAt       *time.Time `db:"ended_at" json:"ended_at"`
	EndReason     *string    `db:"end_reason" json:"end_reason"`
}

const sessionColumns = `id, tenant_id, user_id, connection_id, created_at, last_seen_at, idle_expires_at, expires_at, ended_at, end_reason`

func sessionHash(tok string) []byte { return token.Hash("sso session", tok) }

func idTokenAAD(tenant, id uuid.UUID) []byte {
	return []byte("hub sso id_token\x00" + tenant.String() + "\x00" + id.String())
}

// openSession stores a new session in tx and returns its cookie value,
// random (256 bits) and stored only as its SHA-256, and when it ends.
func (s *Service) openSession(ctx context.Context, tx *sqlx.Tx, tenant, user, connection uuid.UUID, p profile, idToken string, now time.Time) (string, time.Time, error) {
	tok, id := token.Random(32), uuid.New()
	sealed, err := s.sealer.Seal([]byte(idToken), idTokenAAD(tenant, id))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sso: seal id_token: %w", err)
	}
	expires, groups := now.Add(s.SessionMax), pq.StringArray(p.Groups)
	if groups == nil {
		groups = pq.StringArray{} // NULL is no list
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sso_sessions (id, tenant_id, user_id, connection_id, token_hash, sid, subject, groups,
			id_token, created_at, last_seen_at, idle_expires_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, nullif($6, ''), $7, $8, $9, $10, $10, $11, $12)`,
		id, tenant, user, connection, sessionHash(tok), p.SID, p.Sub, groups, sealed, now,
		minTime(now.Add(s.SessionIdle), expires), expires)
	return tok, expires, err
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Current is the session a hub_session cookie names, with its user.
type Current struct {
	Session
	TenantSlug string
	TenantName string
	User       User
	Groups     []string // the mapped groups claim at sign-in
}

// ErrNoSession is a cookie that names no live session: none, ended,
// expired idle or past its absolute end.
var ErrNoSession = errors.New("sso: no live session")

// Lookup finds the live session of a hub_session cookie and slides its
// idle expiry (written at most once a minute).
func (s *Service) Lookup(ctx context.Context, cookie string) (Current, error) {
	var cur Current
	if cookie == "" || len(cookie) > 100 {
		return cur, ErrNoSession
	}
	now := s.Now()
	err := pg.InFoundTenant(ctx, s.db, "hub_sso_session_tenant", sessionHash(cookie), func(tx *sqlx.Tx, tenant uuid.UUID) error {
		var err error
		cur, err = s.live(ctx, tx, tenant, cookie, now)
		if err != nil || now.Sub(cur.LastSeenAt) < slideEvery {
			return err
		}
		return tx.GetContext(ctx, &cur.Session, `UPDATE sso_sessions SET last_seen_at = $3, idle_expires_at = least($4::timestamptz, expires_at)
			WHERE tenant_id = $1 AND id = $2 RETURNING `+sessionColumns, tenant, cur.ID, now, now.Add(s.SessionIdle))
	})
	if errors.Is(err, pg.ErrNoTenant) || pg.IsNoRows(err) {
		return cur, ErrNoSession
	}
	return cur, pg.MapError(err)
}

func (s *Service) live(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, cookie string, now time.Time) (Current, error) {
	var row struct {
		Session
		Groups     pq.StringArray `db:"groups"`
		TenantSlug string         `db:"tenant_slug"`
		TenantName string         `db:"tenant_name"`
	}
	err := tx.GetContext(ctx, &row, `SELECT s.id, s.tenant_id, s.user_id, s.connection_id, s.created_at, s.last_seen_at,
			s.idle_expires_at, s.expires_at, s.ended_at, s.end_reason, s.groups, t.slug AS tenant_slug, t.display_name AS tenant_name
		FROM sso_sessions s JOIN tenants t ON t.id = s.tenant_id
		WHERE s.tenant_id = $1 AND s.token_hash = $2 AND s.ended_at IS NULL AND s.idle_expires_at > $3 AND s.expires_at > $3
			AND t.status = 'active'`, tenant, sessionHash(cookie), now)
	if err != nil {
		return Current{}, err
	}
	cur := Current{Session: row.Session, TenantSlug: row.TenantSlug, TenantName: row.TenantName, Groups: row.Groups}
	err = tx.GetContext(ctx, &cur.User, `SELECT `+userColumns+` FROM users WHERE tenant_id = $1 AND id = $2 AND active AND erased_at IS NULL`,
		tenant, row.UserID)
	return cur, err
}

// Ended is a session a logout ended: what the provider's logout needs.
type Ended struct {
	Tenant     uuid.UUID
	Connection *uuid.UUID
	IDToken    string // for id_token_hint; "" when it cannot be opened
}

// Logout ends the session of cookie (RP-initiated: the person asked).
// ErrNoSession when there is none live.
func (s *Service) Logout(ctx context.Context, cookie string) (Ended, error) {
	if cookie == "" || len(cookie) > 100 {
		return Ended{}, ErrNoSession
	}
	var out Ended
	err := pg.InFoundTenant(ctx, s.db, "hub_sso_session_tenant", sessionHash(cookie), func(tx *sqlx.Tx, tenant uuid.UUID) error {
		var row struct {
			ID         uuid.UUID  `db:"id"`
			UserID     uuid.UUID  `db:"user_id"`
			Connection *uuid.UUID `db:"connection_id"`
			IDToken    []byte     `db:"id_token"`
		}
		err := tx.GetContext(ctx, &row, `UPDATE sso_sessions SET ended_at = $3, end_reason = 'logout'
			WHERE tenant_id = $1 AND token_hash = $2 AND ended_at IS NULL RETURNING id, user_id, connection_id, id_token`,
			tenant, sessionHash(cookie), s.Now())
		if err != nil {
			return err
		}
		out = Ended{Tenant: tenant, Connection: row.Connection}
		if b, err := s.sealer.Open(row.IDToken, idTokenAAD(tenant, row.ID)); err == nil {
			out.IDToken = string(b)
		}
		return s.auditSessions(ctx, tx, tenant, audit.Actor{Type: audit.ActorLearner, ID: row.UserID.String()},
			"sso.session_ended", row.ID.String(), map[string]string{"reason": EndLogout})
	})
	if errors.Is(err, pg.ErrNoTenant) || pg.IsNoRows(err) {
		return Ended{}, ErrNoSession
	}
	return out, pg.MapError(err)
}

// SessionFilter narrows a listing: one user's, live ones only.
type SessionFilter struct {
	User     *uuid.UUID
	LiveOnly bool
}

// ListSessions is the tenant's sessions, newest first.
func (s *Service) ListSessions(ctx context.Context, tenant uuid.UUID, f SessionFilter, page pg.Page) ([]Session, *pg.Cursor, error) {
	after := pg.Cursor{At: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: uuid.Max}
	if page.After != nil {
		after = *page.After
	}
	list := []Session{}
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &list, `SELECT `+sessionColumns+` FROM sso_sessions
			WHERE tenant_id = $1 AND ($2::uuid IS NULL OR user_id = $2) AND (NOT $3 OR (ended_at IS NULL AND idle_expires_at > $4 AND expires_at > $4))
				AND (created_at, id) < ($5, $6)
			ORDER BY created_at DESC, id DESC LIMIT $7`, tenant, f.User, f.LiveOnly, s.Now(), after.At, after.ID, page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("sso: list sessions: %w", err))
	}
	return pg.TrimPage(list, page.Limit, func(x Session) pg.Cursor { return pg.Cursor{At: x.CreatedAt, ID: x.ID} })
}

// EndSession ends one of the tenant's sessions (an admin's doing).
// NotFound for none; an ended one answers as it is.
func (s *Service) EndSession(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) (Session, error) {
	var out Session
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &out, `UPDATE sso_sessions SET ended_at = coalesce(ended_at, $3), end_reason = coalesce(end_reason, 'admin')
			WHERE tenant_id = $1 AND id = $2 RETURNING `+sessionColumns, tenant, id, s.Now())
		if pg.IsNoRows(err) {
			return apperr.New(apperr.NotFound, "no such session")
		}
		if err != nil {
			return err
		}
		return s.auditSessions(ctx, tx, tenant, by, "sso.session_ended", id.String(), map[string]string{"reason": EndAdmin, "user": out.UserID.String()})
	})
	return out, pg.MapError(err)
}

// EndUserSessions ends every live session of one of the tenant's users
// and says how many.
func (s *Service) EndUserSessions(ctx context.Context, by audit.Actor, tenant, user uuid.UUID) (int, error) {
	var n int
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var ids []uuid.UUID
		if err := tx.SelectContext(ctx, &ids, `UPDATE sso_sessions SET ended_at = $3, end_reason = 'admin'
			WHERE tenant_id = $1 AND user_id = $2 AND ended_at IS NULL RETURNING id`, tenant, user, s.Now()); err != nil {
			return err
		}
		n = len(ids)
		return s.auditSessions(ctx, tx, tenant, by, "sso.sessions_ended", user.String(),
			map[string]string{"reason": EndAdmin, "count": fmt.Sprint(n)})
	})
	return n, pg.MapError(err)
}

func (s *Service) auditSessions(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, by audit.Actor, action, target string, details map[string]string) error {
	targetType := "sso_session"
	if action == "sso.sessions_ended" {
		targetType = "user"
	}
	_, err := s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: action, TargetType: targetType, TargetID: target, Details: details}, s.Now())
	return err
}
