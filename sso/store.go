package sso

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/jmoiron/sqlx/types"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/tenants/audit"
)

// Store keeps the tenants' connections, domains, identities and
// sessions. Every admin change is audited in the tenant's chain, in the
// change's transaction.
type Store struct {
	db        *sqlx.DB
	chain     *audit.Keyring
	sealer    *secrets.Sealer
	publicURL *url.URL
	log       *slog.Logger
	Now       func() time.Time
	// AllowHTTP lets issuers be plain http on loopback; main sets it from
	// HUB_OUTBOUND_ALLOW_PRIVATE (tests, the demo).
	AllowHTTP bool
	// SessionIdle and SessionMax bound a session: it ends after SessionIdle
	// without use, and SessionMax after it began whatever happens.
	SessionIdle, SessionMax time.Duration
}

// NewStore returns the sign-in records of db; client secrets and id_tokens
// are sealed with sealer, changes audited under chain, redirect URIs made
// under publicURL (HUB_PUBLIC_URL).
func NewStore(db *sqlx.DB, chain *audit.Keyring, sealer *secrets.Sealer, publicURL *url.URL, log *slog.Logger) *Store {
	return &Store{db: db, chain: chain, sealer: sealer, publicURL: publicURL, log: log, Now: time.Now,
		SessionIdle: 30 * time.Minute, SessionMax: 12 * time.Hour}
}

// PublicURL is HUB_PUBLIC_URL as text, without a trailing slash.
func (s *Store) PublicURL() string { return strings.TrimSuffix(s.publicURL.String(), "/") }

// RedirectURI is connection id's callback: its redirect URI at the provider.
func (s *Store) RedirectURI(id uuid.UUID) string {
	return s.PublicURL() + "/sso/callback/" + id.String()
}

type connRow struct {
	ID                   uuid.UUID      `db:"id"`
	TenantID             uuid.UUID      `db:"tenant_id"`
	Name                 string         `db:"name"`
	Issuer               string         `db:"issuer"`
	ExpectedIssuer       *string        `db:"expected_issuer"`
	ClientID             string         `db:"client_id"`
	ClientSecret         []byte         `db:"client_secret"`
	SecretSetAt          *time.Time     `db:"secret_set_at"`
	Scopes               pq.StringArray `db:"scopes"`
	Claims               types.JSONText `db:"claims"`
	RequireEmailVerified bool           `db:"require_email_verified"`
	JIT                  bool           `db:"jit"`
	Enabled              bool           `db:"enabled"`
	CreatedAt            time.Time      `db:"created_at"`
	UpdatedAt            time.Time      `db:"updated_at"`
}

var connColumnNames = []string{"id", "tenant_id", "name", "issuer", "expected_issuer", "client_id", "client_secret", "secret_set_at",
	"scopes", "claims", "require_email_verified", "jit", "enabled", "created_at", "updated_at"}

var connColumns = strings.Join(connColumnNames, ", ")

// connColumnsOf is connColumns qualified by a table alias.
func connColumnsOf(alias string) string {
	return alias + "." + strings.Join(connColumnNames, ", "+alias+".")
}

func (s *Store) connection(r connRow) Connection {
	c := Connection{ID: r.ID, TenantID: r.TenantID, Name: r.Name, Issuer: r.Issuer, ClientID: r.ClientID,
		HasClientSecret: r.ClientSecret != nil, SecretSetAt: r.SecretSetAt, Scopes: []string(r.Scopes),
		RequireEmailVerified: r.RequireEmailVerified, JIT: r.JIT, Enabled: r.Enabled, RedirectURI: s.RedirectURI(r.ID),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.ExpectedIssuer != nil {
		c.ExpectedIssuer = *r.ExpectedIssuer
	}
	_ = r.Claims.Unmarshal(&c.Claims)
	c.Claims = c.Claims.withDefaults()
	return c
}

// secretAAD binds a sealed value to its tenant, connection and slot.
func secretAAD(tenant, id uuid.UUID, slot string) []byte {
	return []byte("hub sso\x00" + tenant.String() + "\x00" + id.String() + "\x00" + slot)
}

func (s *Store) sealSecret(tenant, id uuid.UUID, secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	b, err := s.sealer.Seal([]byte(secret), secretAAD(tenant, id, "client_secret"))
	if err != nil {
		return nil, fmt.Errorf("sso: seal client secret: %w", err)
	}
	return b, nil
}

// CreateConnection stores a connection; its secret is sealed and never
// shown again.
func (s *Store) CreateConnection(ctx context.Context, by audit.Actor, tenant uuid.UUID, in NewConnection) (Connection, error) {
	if err := in.validate(s.AllowHTTP); err != nil {
		return Connection{}, err
	}
	id, now := uuid.New(), s.Now()
	sealed, err := s.sealSecret(tenant, id, in.ClientSecret)
	if err != nil {
		return Connection{}, err
	}
	var setAt *time.Time
	if sealed != nil {
		setAt = &now
	}
	scopes := in.Scopes
	if scopes == nil {
		scopes = DefaultScopes
	}
	claims := DefaultClaims
	if in.Claims != nil {
		claims = in.Claims.withDefaults()
	}
	claimsJSON, err := marshalJSON(claims)
	if err != nil {
		return Connection{}, err
	}
	var c Connection
	err = pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var r connRow
		err := tx.GetContext(ctx, &r, `INSERT INTO sso_connections (id, tenant_id, name, issuer, expected_issuer, client_id,
				client_secret, secret_set_at, scopes, claims, require_email_verified, jit, enabled, created_at, updated_at)
			VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING `+connColumns,
			id, tenant, in.Name, in.Issuer, in.ExpectedIssuer, in.ClientID, sealed, setAt, pq.StringArray(scopes), string(claimsJSON),
			orTrue(in.RequireEmailVerified), orTrue(in.JIT), orTrue(in.Enabled), now)
		if err != nil {
			return err
		}
		c = s.connection(r)
		return s.auditConnection(ctx, tx, tenant, by, "sso_connection.created", c, nil)
	})
	return c, mapError(err)
}

func orTrue(b *bool) bool { return b == nil || *b }

// GetConnection is one of the tenant's connections; NotFound for none.
func (s *Store) GetConnection(ctx context.Context, tenant, id uuid.UUID) (Connection, error) {
	var r connRow
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		r, err = getConn(ctx, tx, tenant, id, "")
		return err
	})
	if err != nil {
		return Connection{}, pg.MapError(err)
	}
	return s.connection(r), nil
}

// ListConnections is the tenant's connections, newest first.
func (s *Store) ListConnections(ctx context.Context, tenant uuid.UUID, page pg.Page) ([]Connection, *pg.Cursor, error) {
	after := pg.Cursor{At: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: uuid.Max}
	if page.After != nil {
		after = *page.After
	}
	var rows []connRow
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `SELECT `+connColumns+` FROM sso_connections
			WHERE tenant_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4`,
			tenant, after.At, after.ID, page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("sso: list connections: %w", err))
	}
	list := make([]Connection, len(rows))
	for i, r := range rows {
		list[i] = s.connection(r)
	}
	return pg.TrimPage(list, page.Limit, func(c Connection) pg.Cursor { return pg.Cursor{At: c.CreatedAt, ID: c.ID} })
}

// UpdateConnection changes the settings p names; a client secret given
// replaces the sealed one (audited as sso_connection.secret_rotated).
func (s *Store) UpdateConnection(ctx context.Context, by audit.Actor, tenant, id uuid.UUID, p ConnectionPatch) (Connection, error) {
	if err := p.validate(s.AllowHTTP); err != nil {
		return Connection{}, err
	}
	var c Connection
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		cur, err := getConn(ctx, tx, tenant, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		next, err := s.patched(cur, p)
		if err != nil {
			return err
		}
		var r connRow
		err = tx.GetContext(ctx, &r, `UPDATE sso_connections SET name = $3, issuer = $4, expected_issuer = $5, client_id = $6,
				client_secret = $7, secret_set_at = $8, scopes = $9, claims = $10, require_email_verified = $11, jit = $12,
				enabled = $13, updated_at = $14
			WHERE tenant_id = $1 AND id = $2 RETURNING `+connColumns, tenant, id, next.Name, next.Issuer, next.ExpectedIssuer,
			next.ClientID, next.ClientSecret, next.SecretSetAt, next.Scopes, string(next.Claims), next.RequireEmailVerified,
			next.JIT, next.Enabled, s.Now())
		if err != nil {
			return err
		}
		c = s.connection(r)
		if err := s.auditConnection(ctx, tx, tenant, by, "sso_connection.updated", c,
			map[string]string{"fields": strings.Join(p.fields(), ",")}); err != nil {
			return err
		}
		if p.ClientSecret != nil {
			return s.auditConnection(ctx, tx, tenant, by, "sso_connection.secret_rotated", c, nil)
		}
		return nil
	})
	return c, mapError(err)
}

func (s *Store) patched(cur connRow, p ConnectionPatch) (connRow, error) {
	next := cur
	if p.Name != nil {
		next.Name = *p.Name
	}
	if p.Issuer != nil {
		next.Issuer = *p.Issuer
	}
	if p.ExpectedIssuer != nil {
		next.ExpectedIssuer = p.ExpectedIssuer
		if *p.ExpectedIssuer == "" {
			next.ExpectedIssuer = nil
		}
	}
	if p.ClientID != nil {
		next.ClientID = *p.ClientID
	}
	if p.Scopes != nil {
		next.Scopes = pq.StringArray(*p.Scopes)
	}
	if p.Claims != nil {
		b, err := marshalJSON(p.Claims.withDefaults())
		if err != nil {
			return connRow{}, err
		}
		next.Claims = b
	}
	for _, f := range []struct {
		to *bool
		v  *bool
	}{{&next.RequireEmailVerified, p.RequireEmailVerified}, {&next.JIT, p.JIT}, {&next.Enabled, p.Enabled}} {
		if f.v != nil {
			*f.to = *f.v
		}
	}
	if p.ClientSecret != nil {
		sealed, err := s.sealSecret(cur.TenantID, cur.ID, *p.ClientSecret)
		if err != nil {
			return connRow{}, err
		}
		now := s.Now()
		next.ClientSecret, next.SecretSetAt = sealed, &now
		if sealed == nil {
			next.SecretSetAt = nil
		}
	}
	return next, nil
}

// DeleteConnection removes a connection; the domains it signed in stay
// the tenant's, signing in with none until another is picked, and its
// identities stay linked to their users. The sessions it opened end: its
// provider's back-channel logout could reach them no more.
func (s *Store) DeleteConnection(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) error {
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		cur, err := getConn(ctx, tx, tenant, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if err := s.endConnectionSessions(ctx, tx, by, tenant, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sso_connections WHERE tenant_id = $1 AND id = $2`, tenant, id); err != nil {
			return err
		}
		return s.auditConnection(ctx, tx, tenant, by, "sso_connection.deleted", s.connection(cur), nil)
	})
	return mapError(err)
}

// endConnectionSessions ends the live sessions connection id opened,
// audited when there were any.
func (s *Store) endConnectionSessions(ctx context.Context, tx *sqlx.Tx, by audit.Actor, tenant, id uuid.UUID) error {
	var ended []uuid.UUID
	if err := tx.SelectContext(ctx, &ended, `UPDATE sso_sessions SET ended_at = $3, end_reason = 'admin'
		WHERE tenant_id = $1 AND connection_id = $2 AND ended_at IS NULL RETURNING id`, tenant, id, s.Now()); err != nil {
		return err
	}
	if len(ended) == 0 {
		return nil
	}
	_, err := s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "sso.sessions_ended", TargetType: "sso_connection",
		TargetID: id.String(), Details: map[string]string{"reason": EndAdmin, "count": fmt.Sprint(len(ended))}}, s.Now())
	return err
}

// clientSecret opens c's client secret; "" when it has none.
func (s *Store) clientSecret(r connRow) (Secret, error) {
	if r.ClientSecret == nil {
		return "", nil
	}
	b, err := s.sealer.Open(r.ClientSecret, secretAAD(r.TenantID, r.ID, "client_secret"))
	if err != nil {
		return "", fmt.Errorf("sso: open client secret of connection %s: %w", r.ID, err)
	}
	return Secret(b), nil
}

func getConn(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID, lock string) (connRow, error) {
	var r connRow
	err := tx.GetContext(ctx, &r, `SELECT `+connColumns+` FROM sso_connections WHERE tenant_id = $1 AND id = $2 `+lock, tenant, id)
	if pg.IsNoRows(err) {
		return connRow{}, apperr.New(apperr.NotFound, "no such connection")
	}
	return r, err
}

// auditConnection records a change with the connection's name, issuer and
// client id: never its secret.
func (s *Store) auditConnection(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, by audit.Actor, action string, c Connection, extra map[string]string) error {
	details := map[string]string{"name": c.Name, "issuer": c.Issuer, "client_id": c.ClientID}
	for k, v := range extra {
		details[k] = v
	}
	_, err := s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: action, TargetType: "sso_connection",
		TargetID: c.ID.String(), Details: details}, s.Now())
	return err
}

// mapError names the unique values a tenant can collide on.
func mapError(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Constraint == "sso_connections_tenant_id_name_key" {
		return apperr.Wrap(apperr.Conflict, err, "the tenant has a connection of that name already")
	}
	return pg.MapError(err)
}
