package results

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/tenants/audit"
)

// AppKey is a credential of the learning app, which reports results for
// every tenant's learners; the operator issues and revokes them. The
// token itself is shown once and never kept.
type AppKey struct {
	ID         uuid.UUID  `db:"id" json:"id"`
	Name       string     `db:"name" json:"name"`
	Prefix     string     `db:"prefix" json:"prefix"`
	TokenHash  []byte     `db:"token_hash" json:"-"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	RevokedAt  *time.Time `db:"revoked_at" json:"revoked_at"`
	LastUsedAt *time.Time `db:"last_used_at" json:"last_used_at"`
}

// MaxAppKeyName bounds an app key's name, in characters.
const MaxAppKeyName = 100

// appTokenPrefix starts every app key's token (token.NewKeyed), told
// apart from a tenant key's (hubk_) before any lookup.
const appTokenPrefix = "hubapp_"

func appPrefixOf(tok string) string { return token.KeyedPrefix(tok, appTokenPrefix) }

func hashAppToken(t string) []byte { return token.Hash("app key", t) }

// CreateAppKey issues an app key named name and returns it with its
// token, shown this once; audited as app_key.created in the operator's
// chain. Invalid for a name that is empty, too long or not plain text.
func (s *Store) CreateAppKey(ctx context.Context, by audit.Actor, name string) (AppKey, string, error) {
	var v apperr.Validator
	v.CheckName("name", name, MaxAppKeyName)
	if err := v.Err(); err != nil {
		return AppKey{}, "", err
	}
	tok, prefix := token.NewKeyed(appTokenPrefix)
	var k AppKey
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		now := s.Now()
		if err := tx.GetContext(ctx, &k, `INSERT INTO app_keys (id, name, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)
			RETURNING *`, uuid.New(), name, prefix, hashAppToken(tok), now); err != nil {
			return err
		}
		return s.auditAppKey(ctx, tx, by, "app_key.created", k, now)
	})
	return k, tok, pg.MapError(err)
}

// ListAppKeys lists every app key, revoked ones included, oldest first.
func (s *Store) ListAppKeys(ctx context.Context, page pg.Page) ([]AppKey, *pg.Cursor, error) {
	var ks []AppKey
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var after *time.Time
		var afterID *uuid.UUID
		if page.After != nil {
			after, afterID = &page.After.At, &page.After.ID
		}
		return tx.SelectContext(ctx, &ks, `SELECT * FROM app_keys
			WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2::uuid) ORDER BY created_at, id LIMIT $3`,
			after, afterID, page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("results: list app keys: %w", err))
	}
	return pg.TrimPage(ks, page.Limit, func(k AppKey) pg.Cursor { return pg.Cursor{At: k.CreatedAt, ID: k.ID} })
}

// RevokeAppKey ends an app key for good (audited as app_key.revoked);
// revoking a revoked key changes nothing. NotFound for an unknown id.
func (s *Store) RevokeAppKey(ctx context.Context, by audit.Actor, id uuid.UUID) (AppKey, error) {
	var k AppKey
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		now := s.Now()
		err := tx.GetContext(ctx, &k, `UPDATE app_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING *`, id, now)
		if pg.IsNoRows(err) {
			if err := tx.GetContext(ctx, &k, `SELECT * FROM app_keys WHERE id = $1`, id); pg.IsNoRows(err) {
				return apperr.New(apperr.NotFound, "no such app key")
			} else {
				return err
			}
		}
		if err != nil {
			return err
		}
		return s.auditAppKey(ctx, tx, by, "app_key.revoked", k, now)
	})
	return k, pg.MapError(err)
}

func (s *Store) auditAppKey(ctx context.Context, tx *sqlx.Tx, by audit.Actor, action string, k AppKey, now time.Time) error {
	_, err := s.chain.Append(ctx, tx, nil, by, audit.Event{Action: action, TargetType: "app_key", TargetID: k.ID.String(),
		Details: map[string]string{"name": k.Name, "prefix": k.Prefix}}, now)
	return err
}

// AuthenticateApp finds the live app key of token. Unauthorized for a
// token that is not one, unknown, or revoked (alike to the caller).
func (s *Store) AuthenticateApp(ctx context.Context, tok string) (AppKey, error) {
	refused := apperr.New(apperr.Unauthorized, "the app key is unknown or revoked")
	prefix := appPrefixOf(tok)
	if prefix == "" {
		return AppKey{}, refused
	}
	var k AppKey
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &k, `SELECT * FROM app_keys WHERE prefix = $1`, prefix)
	})
	if pg.IsNoRows(err) {
		return AppKey{}, refused
	}
	if err != nil {
		return AppKey{}, pg.MapError(fmt.Errorf("results: authenticate app: %w", err))
	}
	if subtle.ConstantTimeCompare(hashAppToken(tok), k.TokenHash) != 1 || k.RevokedAt != nil {
		return AppKey{}, refused
	}
	s.touch(ctx, k)
	return k, nil
}

// touchEvery is how stale last_used_at may get: a key used all the time
// writes it once a minute, not at every request.
const touchEvery = time.Minute

func (s *Store) touch(ctx context.Context, k AppKey) {
	now := s.Now()
	if k.LastUsedAt != nil && now.Sub(*k.LastUsedAt) < touchEvery {
		return
	}
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE app_keys SET last_used_at = $2 WHERE id = $1`, k.ID, now)
		return err
	})
	if err != nil {
		s.log.WarnContext(ctx, "app key: last use not recorded", "err", err)
	}
}
