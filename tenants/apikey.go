package tenants

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/tenants/audit"
)

// Scope is a permission an API key carries.
type Scope string

const (
	ScopeRead  Scope = "read"  // GET requests
	ScopeWrite Scope = "write" // changes; implies read
)

// Key is a tenant API key as listed; the token itself is never kept.
// ParentID names the key that minted it (nil: the operator did): such a key
// expires no later than its parent and is revoked with it.
type Key struct {
	ID         uuid.UUID      `db:"id" json:"id"`
	TenantID   uuid.UUID      `db:"tenant_id" json:"tenant_id"`
	ParentID   *uuid.UUID     `db:"parent_id" json:"parent_id"`
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

// tokenPrefix starts every tenant API key's token (token.NewKeyed).
const tokenPrefix = "hubk_"

// newToken returns a fresh token and its visible prefix.
func newToken() (tok, prefix string, err error) {
	tok, prefix = token.NewKeyed(tokenPrefix)
	return tok, prefix, nil
}

// PrefixOf is the visible lookup part of an API key token, "" when token
// is not shaped like one; it reads nothing from the database.
func PrefixOf(tok string) string { return prefixOf(tok) }

func prefixOf(tok string) string { return token.KeyedPrefix(tok, tokenPrefix) }

// hashToken is what a key is stored and found by: the SHA-256 of the bare
// token, as the keys already issued were stored.
func hashToken(t string) []byte { return token.Hash("", t) }

// CreateKey issues a key for tenant on the operator's behalf and returns it
// with the token, which is shown this once. Its expiry is whatever in asks,
// none included.
func (s *Store) CreateKey(ctx context.Context, by audit.Actor, tenant uuid.UUID, in NewKey) (Key, string, error) {
	return s.createKey(ctx, by, tenant, nil, in)
}

// CreateChildKey issues a key minted by parent, another key of tenant, so
// that no key outlives the key that made it: the child expires no later
// than its parent (at the parent's expiry when in names none; a later one
// is refused, naming expires_at) and is revoked with it.
func (s *Store) CreateChildKey(ctx context.Context, by audit.Actor, tenant, parent uuid.UUID, in NewKey) (Key, string, error) {
	return s.createKey(ctx, by, tenant, &parent, in)
}

func (s *Store) createKey(ctx context.Context, by audit.Actor, tenant uuid.UUID, parent *uuid.UUID, in NewKey) (Key, string, error) {
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
		expires := in.ExpiresAt
		if parent != nil {
			var err error
			if expires, err = s.childExpiry(ctx, tx, tenant, *parent, in.ExpiresAt, now); err != nil {
				return err
			}
		}
		err := tx.GetContext(ctx, &k, `INSERT INTO api_keys (id, tenant_id, parent_id, name, prefix, token_hash, scopes, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
			uuid.New(), tenant, parent, in.Name, prefix, hashToken(token), scopes, expires, now)
		if err != nil {
			return pg.MapError(fmt.Errorf("tenants: create key: %w", err))
		}
		return s.auditKey(ctx, tx, by, "api_key.created", k, nil)
	})
	return k, token, err
}

// childExpiry is when a key minted by parent expires, given the expiry
// asked for. It holds the tenant's key-tree lock until the transaction
// ends, so the parent cannot be revoked before its child is written.
func (s *Store) childExpiry(ctx context.Context, tx *sqlx.Tx, tenant, parent uuid.UUID, asked *time.Time, now time.Time) (*time.Time, error) {
	if err := lockKeyTree(ctx, tx, tenant); err != nil {
		return nil, err
	}
	p, err := s.getKeyTx(ctx, tx, tenant, parent)
	if err != nil {
		return nil, err
	}
	if p.RevokedAt != nil || (p.ExpiresAt != nil && !now.Before(*p.ExpiresAt)) {
		return nil, apperr.New(apperr.Unauthorized, "the API key minting this one is revoked or expired")
	}
	switch {
	case asked == nil:
		return p.ExpiresAt, nil
	case p.ExpiresAt != nil && asked.After(*p.ExpiresAt):
		return nil, apperr.InvalidFields(apperr.FieldError{Field: "expires_at",
			Message: "must be no later than the expiry of the key minting it, " + p.ExpiresAt.UTC().Format(time.RFC3339)})
	}
	return asked, nil
}

// lockKeyTree serialises minting by a key and revocation within tenant, so
// a revocation sees every child committed before it and no child is minted
// under a key being revoked.
func lockKeyTree(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "api_keys:"+tenant.String())
	return pg.MapError(err)
}

func (s *Store) auditKey(ctx context.Context, tx *sqlx.Tx, by audit.Actor, action string, k Key, extra map[string]string) error {
	details := map[string]string{"name": k.Name, "prefix": k.Prefix, "scopes": strings.Join(k.Scopes, ",")}
	if k.ParentID != nil {
		details["parent_id"] = k.ParentID.String()
	}
	maps.Copy(details, extra)
	_, err := s.chain.Append(ctx, tx, &k.TenantID, by, audit.Event{
		Action: action, TargetType: "api_key", TargetID: k.ID.String(), Details: details,
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

// RevokeKey ends a key for good, and with it every key it minted, their
// children and so on, in one transaction, each revocation audited.
// Revoking a revoked key changes nothing.
func (s *Store) RevokeKey(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) (Key, error) {
	var k Key
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if err := lockKeyTree(ctx, tx, tenant); err != nil {
			return err
		}
		var revoked []Key
		err := tx.SelectContext(ctx, &revoked, `WITH RECURSIVE tree (id) AS (
				SELECT id FROM api_keys WHERE tenant_id = $1 AND id = $2
				UNION
				SELECT c.id FROM api_keys c JOIN tree ON c.parent_id = tree.id WHERE c.tenant_id = $1)
			UPDATE api_keys SET revoked_at = $3 FROM tree
			WHERE api_keys.tenant_id = $1 AND api_keys.id = tree.id AND api_keys.revoked_at IS NULL
			RETURNING api_keys.*`, tenant, id, s.Now())
		if err != nil {
			return pg.MapError(fmt.Errorf("tenants: revoke key: %w", err))
		}
		if k, err = s.getKeyTx(ctx, tx, tenant, id); err != nil {
			return err // not found
		}
		return s.auditRevocations(ctx, tx, by, id, revoked)
	})
	return k, err
}

// auditRevocations records the revoked key first, then its descendants
// oldest first, each naming the key whose revocation took it.
func (s *Store) auditRevocations(ctx context.Context, tx *sqlx.Tx, by audit.Actor, root uuid.UUID, revoked []Key) error {
	rank := func(k Key) int {
		if k.ID == root {
			return 0
		}
		return 1
	}
	slices.SortFunc(revoked, func(a, b Key) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), a.CreatedAt.Compare(b.CreatedAt))
	})
	for _, r := range revoked {
		var extra map[string]string
		if r.ID != root {
			extra = map[string]string{"revoked_with": root.String()}
		}
		if err := s.auditKey(ctx, tx, by, "api_key.revoked", r, extra); err != nil {
			return err
		}
	}
	return nil
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
	err := pg.InFoundTenant(ctx, s.db, "hub_api_key_tenant", prefix, func(tx *sqlx.Tx, tenant uuid.UUID) error {
		err := tx.GetContext(ctx, &p.Key, `SELECT * FROM api_keys WHERE tenant_id = $1 AND prefix = $2`, tenant, prefix)
		if err != nil {
			return err
		}
		return tx.GetContext(ctx, &p.Tenant, `SELECT * FROM tenants WHERE id = $1`, tenant)
	})
	if pg.IsNoRows(err) || errors.Is(err, pg.ErrNoTenant) {
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
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2`, k.TenantID, k.ID, now)
		return err
	})
	if err != nil {
		s.log.WarnContext(ctx, "record api key use", "key_id", k.ID, "err", err)
	}
}
