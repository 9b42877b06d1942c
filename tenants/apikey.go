package tenants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Scope is a permission an API key carries.
type Scope string

const (
	ScopeRead  Scope = "read"  // GET requests
	ScopeWrite Scope = "write" // changes; implies read
)

// Key is a tenant API key as listed; the token itself is never kept.
type Key struct {
	ID         uuid.UUID      `db:"id" json:"id"`
	TenantID   uuid.UUID      `db:"tenant_id" json:"tenant_id"`
	Name       string         `db:"name" json:"name"`
	Prefix     string         `db:"prefix" json:"prefix"`
	TokenHash  []byte         `db:"token_hash" json:"-"`
	Scopes     pq.StringArray `db:"scopes" json:"scopes"`
	ExpiresAt  *time.Time     `db:"expires_at" json:"expires_at"`
	RevokedAt  *time.Time     `db:"revoked_at" json:"revoked_at"`
	LastUsedAt *time.Time     `db:"last_used_at" json:"last_used_at"`
	CreatedAt  time.Time      `db:"created_at" json:"created_at"`
}

// Allows reports whether the key carries scope (write implies read).
func (k Key) Allows(scope Scope) bool {
	return slices.Contains(k.Scopes, string(scope)) ||
		(scope == ScopeRead && slices.Contains(k.Scopes, string(ScopeWrite)))
}

// NewKey is what an admin supplies to issue a key.
type NewKey struct {
	Name      string     `json:"name"`
	Scopes    []Scope    `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Bounds of a new key, documented in the OpenAPI document.
const (
	MaxKeyName   = 100 // characters
	MaxKeyScopes = 2   // read and write, each once
)

func (n NewKey) validate(now time.Time) error {
	var v apperr.Validator
	v.CheckName("name", n.Name, MaxKeyName)
	checkScopes(&v, n.Scopes)
	v.Check(n.ExpiresAt == nil || n.ExpiresAt.After(now), "expires_at", "must be in the future")
	return v.Err()
}

// checkScopes reports the list once, whatever is wrong with it.
func checkScopes(v *apperr.Validator, scopes []Scope) {
	switch {
	case len(scopes) == 0:
		v.Check(false, "scopes", "must name at least one of read, write")
		return
	case len(scopes) > MaxKeyScopes:
		v.Check(false, "scopes", fmt.Sprintf("must name at most %d scopes: read, write", MaxKeyScopes))
		return
	}
	for _, s := range scopes {
		if s != ScopeRead && s != ScopeWrite {
			v.Check(false, "scopes", fmt.Sprintf("unknown scope %q (read, write)", apperr.CleanText(string(s))))
			return
		}
	}
}

const (
	tokenPrefix = "hubk_"
	lookupLen   = 10 // base32 characters: 50 bits, enough to keep prefixes unique
)

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newToken returns a fresh token and its visible prefix.
func newToken() (token, prefix string, err error) {
	b := make([]byte, 32+lookupLen)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("tenants: token: %w", err)
	}
	lookup := strings.ToLower(tokenEncoding.EncodeToString(b[32:]))[:lookupLen]
	prefix = tokenPrefix + lookup
	return prefix + "_" + strings.ToLower(tokenEncoding.EncodeToString(b[:32])), prefix, nil
}

// prefixOf returns a token's visible prefix, or "" if it is not shaped
// like one of ours. Only the lookup alphabet passes, so whatever a client
// sends (NUL characters, bytes that are not UTF-8) never reaches a query.
func prefixOf(token string) string {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) < len(tokenPrefix)+lookupLen+2 {
		return ""
	}
	p := token[:len(tokenPrefix)+lookupLen]
	if token[len(p)] != '_' || strings.IndexFunc(p[len(tokenPrefix):], notLookup) >= 0 {
		return ""
	}
	return p
}

// notLookup reports a rune outside the lowercase base32 alphabet of
// lookups.
func notLookup(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') }

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateKey issues a key for tenant and returns it with the token, which
// is shown this once.
func (s *Store) CreateKey(ctx context.Context, by audit.Actor, tenant uuid.UUID, in NewKey) (Key, string, error) {
	now := s.Now()
	if err := in.validate(now); err != nil {
		return Key{}, "", err
	}
	token, prefix, err := newToken()
	if err != nil {
		return Key{}, "", err
	}
	scopes := pq.StringArray{}
	for _, sc := range in.Scopes {
		if !slices.Contains(scopes, string(sc)) {
			scopes = append(scopes, string(sc))
		}
	}
	var k Key
	err = pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &k, `INSERT INTO api_keys (id, tenant_id, name, prefix, token_hash, scopes, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
			uuid.New(), tenant, in.Name, prefix, hashToken(token), scopes, in.ExpiresAt, now)
		if err != nil {
			return pg.MapError(fmt.Errorf("tenants: create key: %w", err))
		}
		return s.auditKey(ctx, tx, by, "api_key.created", k)
	})
	return k, token, err
}

func (s *Store) auditKey(ctx context.Context, tx *sqlx.Tx, by audit.Actor, action string, k Key) error {
	_, err := audit.Append(ctx, tx, &k.TenantID, by, audit.Event{
		Action: action, TargetType: "api_key", TargetID: k.ID.String(),
		Details: map[string]string{"name": k.Name, "prefix": k.Prefix, "scopes": strings.Join(k.Scopes, ",")},
	}, s.Now())
	return err
}

// ListKeys returns a page of tenant's keys, revoked ones included.
func (s *Store) ListKeys(ctx context.Context, tenant uuid.UUID, page pg.Page) ([]Key, *pg.Cursor, error) {
	var ks []Key
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		q, args := `SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2`, []any{tenant, page.Limit + 1}
		if page.After != nil {
			q = `SELECT * FROM api_keys WHERE tenant_id = $1 AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $2`
			args = append(args, page.After.At, page.After.ID)
		}
		return tx.SelectContext(ctx, &ks, q, args...)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("tenants: list keys: %w", err))
	}
	return pg.TrimPage(ks, page.Limit, func(k Key) pg.Cursor { return pg.Cursor{At: k.CreatedAt, ID: k.ID} })
}

// GetKey reads one of tenant's keys.
func (s *Store) GetKey(ctx context.Context, tenant, id uuid.UUID) (Key, error) {
	var k Key
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &k, `SELECT * FROM api_keys WHERE tenant_id = $1 AND id = $2`, tenant, id)
	})
	return k, notFound(err, "api key", id.String())
}

// RevokeKey ends a key for good. Revoking a revoked key changes nothing.
func (s *Store) RevokeKey(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) (Key, error) {
	var k Key
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &k, `UPDATE api_keys SET revoked_at = $3
			WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING *`, tenant, id, s.Now())
		if pg.IsNoRows(err) {
			k, err = s.getKeyTx(ctx, tx, tenant, id)
			return err // already revoked, or not found
		}
		if err != nil {
			return pg.MapError(err)
		}
		return s.auditKey(ctx, tx, by, "api_key.revoked", k)
	})
	return k, err
}

func (s *Store) getKeyTx(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID) (Key, error) {
	var k Key
	err := tx.GetContext(ctx, &k, `SELECT * FROM api_keys WHERE tenant_id = $1 AND id = $2`, tenant, id)
	return k, notFound(err, "api key", id.String())
}

// Principal is a caller authenticated by an API key.
type Principal struct {
	Key    Key
	Tenant Tenant
}

// AuthFailure says why a token was refused, and whose it was when known, so
// the refusal can be audited in the right chain.
type AuthFailure struct {
	Reason string     // "unknown", "revoked", "expired", "tenant_suspended"
	Tenant *uuid.UUID // nil when the token matched no key
	KeyID  string
}

func (f *AuthFailure) Error() string { return "tenants: api key refused: " + f.Reason }

// Authenticate finds the key a bearer token belongs to. It fails with an
// *AuthFailure (wrapped in an Unauthorized or Forbidden apperr) when the
// token is unknown, revoked or expired, or its tenant is suspended.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	prefix := prefixOf(token)
	if prefix == "" {
		return Principal{}, refused(&AuthFailure{Reason: "unknown"})
	}
	var p Principal
	err := pg.CrossTenant(ctx, s.db, s.log, "authenticate api key", func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &p.Key, `SELECT * FROM api_keys WHERE prefix = $1`, prefix); err != nil {
			return err
		}
		return tx.GetContext(ctx, &p.Tenant, `SELECT * FROM tenants WHERE id = $1`, p.Key.TenantID)
	})
	if pg.IsNoRows(err) {
		return Principal{}, refused(&AuthFailure{Reason: "unknown"})
	}
	if err != nil {
		return Principal{}, pg.MapError(fmt.Errorf("tenants: authenticate: %w", err))
	}
	if f := s.check(p, token); f != nil {
		return Principal{}, refused(f)
	}
	s.touch(ctx, p.Key)
	return p, nil
}

func (s *Store) check(p Principal, token string) *AuthFailure {
	f := &AuthFailure{Tenant: &p.Key.TenantID, KeyID: p.Key.ID.String()}
	switch {
	case subtle.ConstantTimeCompare(hashToken(token), p.Key.TokenHash) != 1:
		f.Reason = "unknown"
	case p.Key.RevokedAt != nil:
		f.Reason = "revoked"
	case p.Key.ExpiresAt != nil && !s.Now().Before(*p.Key.ExpiresAt):
		f.Reason = "expired"
	case p.Tenant.Status != Active:
		f.Reason = "tenant_suspended"
	default:
		return nil
	}
	return f
}

func refused(f *AuthFailure) error {
	if f.Reason == "tenant_suspended" {
		return apperr.Wrap(apperr.Forbidden, f, "the tenant is suspended")
	}
	return apperr.Wrap(apperr.Unauthorized, f, "the API key is missing, unknown, revoked or expired")
}

// touch records when a key was last used, at most once a minute per key so
// a busy key does not turn every read into a write.
func (s *Store) touch(ctx context.Context, k Key) {
	now := s.Now()
	if k.LastUsedAt != nil && now.Sub(*k.LastUsedAt) < time.Minute {
		return
	}
	err := pg.InTenant(ctx, s.db, k.TenantID, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1`, k.ID, now)
		return err
	})
	if err != nil {
		s.log.WarnContext(ctx, "record api key use", "key_id", k.ID, "err", err)
	}
}
