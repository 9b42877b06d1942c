package scim

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/tenants/audit"
)

// Token is a tenant's SCIM bearer token as listed; the token itself is
// shown once, when issued, and kept only as its hash.
type Token struct {
	ID         uuid.UUID  `db:"id" json:"id"`
	TenantID   uuid.UUID  `db:"tenant_id" json:"tenant_id"`
	Name       string     `db:"name" json:"name"`
	Prefix     string     `db:"prefix" json:"prefix"`
	TokenHash  []byte     `db:"token_hash" json:"-"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	ExpiresAt  *time.Time `db:"expires_at" json:"expires_at"`
	RevokedAt  *time.Time `db:"revoked_at" json:"revoked_at"`
	LastUsedAt *time.Time `db:"last_used_at" json:"last_used_at"`
}

// NewToken is what an admin sends to issue a token.
type NewToken struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// MaxTokenName bounds a token's name (characters), as the OpenAPI
// document says.
const MaxTokenName = 100

// tokenKind starts every SCIM token (token.NewKeyed); tokenPurpose is
// hashed in front of it (token.Hash), so no other kind of token matches.
const (
	tokenKind    = "hubscim_"
	tokenPurpose = "scim token"
)

// Tokens issues, lists, revokes and checks SCIM tokens; every change is
// audited in the tenant's chain.
type Tokens struct {
	db    *sqlx.DB
	chain *audit.Keyring
	log   *slog.Logger
	Now   func() time.Time
}

// NewTokens returns the SCIM tokens of db, audited under chain.
func NewTokens(db *sqlx.DB, chain *audit.Keyring, log *slog.Logger) *Tokens {
	return &Tokens{db: db, chain: chain, log: log, Now: time.Now}
}

// Create issues a token for tenant and returns it with the token text,
// shown this once. A name of 1 to 100 characters is required, an expiry
// must be in the future.
func (s *Tokens) Create(ctx context.Context, by audit.Actor, tenant uuid.UUID, in NewToken) (Token, string, error) {
	now := s.Now()
	var v apperr.Validator
	v.CheckName("name", in.Name, MaxTokenName)
	v.Check(in.ExpiresAt == nil || in.ExpiresAt.After(now), "expires_at", "must be in the future")
	if err := v.Err(); err != nil {
		return Token{}, "", err
	}
	tok, prefix := token.NewKeyed(tokenKind)
	var t Token
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &t, `INSERT INTO scim_tokens (id, tenant_id, name, prefix, token_hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
			uuid.New(), tenant, in.Name, prefix, token.Hash(tokenPurpose, tok), now, in.ExpiresAt)
		if err != nil {
			return pg.MapError(fmt.Errorf("scim: create token: %w", err))
		}
		return s.audit(ctx, tx, by, "scim_token.created", t)
	})
	return t, tok, err
}

func (s *Tokens) audit(ctx context.Context, tx *sqlx.Tx, by audit.Actor, action string, t Token) error {
	_, err := s.chain.Append(ctx, tx, &t.TenantID, by, audit.Event{Action: action, TargetType: "scim_token",
		TargetID: t.ID.String(), Details: map[string]string{"name": t.Name, "prefix": t.Prefix}}, s.Now())
	return err
}

// List returns a page of tenant's tokens, oldest first, revoked ones
// included.
func (s *Tokens) List(ctx context.Context, tenant uuid.UUID, page pg.Page) ([]Token, *pg.Cursor, error) {
	var ts []Token
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		q, args := `SELECT * FROM scim_tokens WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2`, []any{tenant, page.Limit + 1}
		if page.After != nil {
			q = `SELECT * FROM scim_tokens WHERE tenant_id = $1 AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $2`
			args = append(args, page.After.At, page.After.ID)
		}
		return tx.SelectContext(ctx, &ts, q, args...)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("scim: list tokens: %w", err))
	}
	return pg.TrimPage(ts, page.Limit, func(t Token) pg.Cursor { return pg.Cursor{At: t.CreatedAt, ID: t.ID} })
}

// Get reads one of tenant's tokens; NotFound when tenant has no such.
func (s *Tokens) Get(ctx context.Context, tenant, id uuid.UUID) (Token, error) {
	var t Token
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &t, `SELECT * FROM scim_tokens WHERE tenant_id = $1 AND id = $2`, tenant, id)
	})
	return t, tokenNotFound(err, id)
}

func tokenNotFound(err error, id uuid.UUID) error {
	if pg.IsNoRows(err) {
		return apperr.New(apperr.NotFound, "scim token %q not found", id)
	}
	return pg.MapError(err)
}

// Revoke ends a token for good, audited; revoking a revoked token changes
// nothing.
func (s *Tokens) Revoke(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) (Token, error) {
	var t Token
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &t, `UPDATE scim_tokens SET revoked_at = $3
			WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING *`, tenant, id, s.Now())
		if pg.IsNoRows(err) {
			return tx.GetContext(ctx, &t, `SELECT * FROM scim_tokens WHERE tenant_id = $1 AND id = $2`, tenant, id)
		}
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, by, "scim_token.revoked", t)
	})
	return t, tokenNotFound(err, id)
}

// errToken is a bearer token that is missing, unknown, revoked, expired or
// another tenant's: 401 (RFC 6750 §3.1, invalid_token).
var errToken = &Error{Status: 401, Detail: "the bearer token is missing, unknown, revoked or expired"}

// Refusal says why Authenticate refused a token, and which of the
// tenant's tokens it was when its prefix named one (uuid.Nil otherwise), so
// the refusal can be audited in the right chain.
type Refusal struct {
	Reason string // "unknown", "revoked", "expired"
	Token  uuid.UUID
}

func (r *Refusal) Error() string { return "scim: token refused: " + r.Reason }

// Authenticate finds tenant's token tok. A token of another tenant is not
// found in this one: a *Refusal, as for one that is unknown, revoked or
// expired.
func (s *Tokens) Authenticate(ctx context.Context, tenant uuid.UUID, tok string) (Token, error) {
	prefix := token.KeyedPrefix(tok, tokenKind)
	if prefix == "" {
		return Token{}, &Refusal{Reason: "unknown"}
	}
	var t Token
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &t, `SELECT * FROM scim_tokens WHERE tenant_id = $1 AND prefix = $2`, tenant, prefix)
	})
	if pg.IsNoRows(err) {
		return Token{}, &Refusal{Reason: "unknown"}
	}
	if err != nil {
		return Token{}, pg.MapError(fmt.Errorf("scim: authenticate: %w", err))
	}
	now := s.Now()
	switch {
	case subtle.ConstantTimeCompare(token.Hash(tokenPurpose, tok), t.TokenHash) != 1:
		return Token{}, &Refusal{Reason: "unknown", Token: t.ID}
	case t.RevokedAt != nil:
		return Token{}, &Refusal{Reason: "revoked", Token: t.ID}
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return Token{}, &Refusal{Reason: "expired", Token: t.ID}
	}
	s.touch(ctx, t, now)
	return t, nil
}

// touch records when a token was last used, at most once a minute.
func (s *Tokens) touch(ctx context.Context, t Token, now time.Time) {
	if t.LastUsedAt != nil && now.Sub(*t.LastUsedAt) < time.Minute {
		return
	}
	err := pg.InTenant(ctx, s.db, t.TenantID, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE scim_tokens SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2`, t.TenantID, t.ID, now)
		return err
	})
	if err != nil {
		s.log.WarnContext(ctx, "record scim token use", "token_id", t.ID, "err", err)
	}
}
