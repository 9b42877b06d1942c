package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/secrets"
)

// Purpose says what a key signs.
type Purpose string

const (
	LTI     Purpose = "lti"     // LTI messages and client assertions, RS256
	Handoff Purpose = "handoff" // handoff tokens to the learning app, ES256
)

var algs = map[Purpose]jwa.SignatureAlgorithm{LTI: jwa.RS256, Handoff: jwa.ES256}

// Info describes a key without its private part.
type Info struct {
	KID         string     `db:"kid" json:"kid"`
	Purpose     Purpose    `db:"purpose" json:"purpose"`
	Alg         string     `db:"alg" json:"alg"`
	State       string     `db:"state" json:"state"`
	CreatedAt   time.Time  `db:"created_at" json:"created_at"`
	ActivatedAt *time.Time `db:"activated_at" json:"activated_at"`
	RetiredAt   *time.Time `db:"retired_at" json:"retired_at"`
}

type row struct {
	Info
	PublicJWK     []byte `db:"public_jwk"`
	PrivateSealed []byte `db:"private_sealed"`
}

// signer is a loaded private key.
type signer struct {
	kid string
	alg jwa.SignatureAlgorithm
	key crypto.Signer
}

// Store keeps the tool keys.
type Store struct {
	db      *sqlx.DB
	sealer  *secrets.Sealer
	log     *slog.Logger
	Now     func() time.Time
	Overlap time.Duration // how long a retired key stays published
	// JWKSTTL is how long the published keyset is served from memory
	// before the database is read again (a rotation on another replica
	// shows within it); JWKSWait how long a request waits for that read
	// before it is served the previous copy.
	JWKSTTL  time.Duration
	JWKSWait time.Duration

	mu     sync.Mutex
	active map[Purpose]signer
	loaded time.Time
	reload time.Duration

	published published
}

// NewStore returns a Store; call Ensure before signing.
func NewStore(db *sqlx.DB, sealer *secrets.Sealer, log *slog.Logger) *Store {
	return &Store{db: db, sealer: sealer, log: log, Now: time.Now, Overlap: 7 * 24 * time.Hour,
		JWKSTTL: 30 * time.Second, JWKSWait: 500 * time.Millisecond,
		active: map[Purpose]signer{}, reload: 30 * time.Second}
}

// ensureLockID serialises key generation across replicas starting at once.
const ensureLockID = 0x6875622d6b657973 // "hub-keys"

// Ensure creates any missing active or next key, once across replicas, and
// checks the active keys open with the secret keys at hand, so a changed
// HUB_SECRET_KEY stops the start instead of the first signature.
func (s *Store) Ensure(ctx context.Context) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	s.published.invalidate()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadActive(ctx)
}

func (s *Store) ensure(ctx context.Context) error {
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, ensureLockID); err != nil {
			return err
		}
		for _, p := range []Purpose{LTI, Handoff} {
			for _, state := range []string{"active", "next"} {
				var n int
				if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM tool_keys WHERE purpose = $1 AND state = $2`, p, state); err != nil {
					return err
				}
				if n > 0 {
					continue
				}
				if err := s.generate(ctx, tx, p, state); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return pg.MapError(err)
}

// JWKSMaxAge is how long a verifier may cache the keyset PublicJWKS
// returns: the JWKS endpoint says so in its Cache-Control max-age. A next
// key first published less than this long ago may be missing from a cached
// keyset, so Rotate does not promote it yet.
const JWKSMaxAge = 5 * time.Minute

// TooSoonError refuses a rotation that would promote a next key some
// verifiers may not have fetched: the last rotation of the purpose, which
// published that key, was less than JWKSMaxAge ago.
type TooSoonError struct {
	Purpose   Purpose
	RotatedAt time.Time     // the last rotation, when the next key was published
	NotBefore time.Time     // the first moment a rotation is possible
	Wait      time.Duration // from now until NotBefore
}

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("keys: %s key rotated at %s; next rotation from %s", e.Purpose,
		e.RotatedAt.UTC().Format(time.RFC3339), e.NotBefore.UTC().Format(time.RFC3339))
}

// Rotate retires the active key of purpose, promotes the next one and
// generates a new next key, in one transaction. It refuses (Conflict, with
// a *TooSoonError) while the next key is younger than JWKSMaxAge. record,
// when not nil, runs in the same transaction with the new active key, so the
// caller's record of the rotation (its audit entry) commits with it or the
// rotation does not happen. No tenant is set in the transaction: it sees
// the hub-wide tables and the operator's audit chain.
func (s *Store) Rotate(ctx context.Context, p Purpose, record func(*sqlx.Tx, Info) error) (Info, error) {
	if _, ok := algs[p]; !ok {
		return Info{}, fmt.Errorf("keys: unknown purpose %q", p)
	}
	var active Info
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, ensureLockID); err != nil {
			return err
		}
		now := s.Now()
		if err := s.checkRotatable(ctx, tx, p, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tool_keys SET state = 'retired', retired_at = $2 WHERE purpose = $1 AND state = 'active'`, p, now); err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &active, `UPDATE tool_keys SET state = 'active', activated_at = $2
			WHERE purpose = $1 AND state = 'next' RETURNING kid, purpose, alg, state, created_at, activated_at, retired_at`, p, now); err != nil {
			return fmt.Errorf("keys: no next key to promote: %w", err)
		}
		if err := s.generate(ctx, tx, p, "next"); err != nil {
			return err
		}
		if record == nil {
			return nil
		}
		return record(tx, active)
	})
	if err != nil {
		return Info{}, pg.MapError(fmt.Errorf("keys: rotate %s: %w", p, err))
	}
	s.mu.Lock()
	s.loaded = time.Time{} // sign with the new key from now on
	s.mu.Unlock()
	s.published.invalidate() // publish the new next key at once
	return active, nil
}

// checkRotatable refuses a rotation within JWKSMaxAge of the last one. A
// rotation generates the next key in the transaction that retires the
// active one, so the last retirement is when today's next key was first
// published. Keys never rotated were published together at first start.
func (s *Store) checkRotatable(ctx context.Context, tx *sqlx.Tx, p Purpose, now time.Time) error {
	var last *time.Time
	if err := tx.GetContext(ctx, &last, `SELECT max(retired_at) FROM tool_keys WHERE purpose = $1`, p); err != nil {
		return fmt.Errorf("keys: last rotation: %w", err)
	}
	if last == nil || !now.Before(last.Add(JWKSMaxAge)) {
		return nil
	}
	e := &TooSoonError{Purpose: p, RotatedAt: *last, NotBefore: last.Add(JWKSMaxAge)}
	e.Wait = e.NotBefore.Sub(now)
	return apperr.Wrap(apperr.Conflict, e, fmt.Sprintf(
		"the %s key was rotated at %s and verifiers may cache the published keys for %s, so the next rotation is possible from %s",
		p, e.RotatedAt.UTC().Format(time.RFC3339), JWKSMaxAge, e.NotBefore.UTC().Format(time.RFC3339)))
}

func (s *Store) generate(ctx context.Context, tx *sqlx.Tx, p Purpose, state string) error {
	priv, err := newPrivateKey(p)
	if err != nil {
		return err
	}
	pub, err := jwk.FromRaw(priv.Public())
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return fmt.Errorf("keys: thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	_ = pub.Set(jwk.KeyIDKey, kid)
	_ = pub.Set(jwk.AlgorithmKey, algs[p])
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	pubJSON, _ := json.Marshal(pub)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	sealed, err := s.sealer.Seal(der, []byte("tool_keys:"+kid))
	if err != nil {
		return err
	}
	now := s.Now()
	var activated *time.Time
	if state == "active" {
		activated = &now
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO tool_keys (kid, purpose, alg, public_jwk, private_sealed, state, created_at, activated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, kid, p, algs[p].String(), string(pubJSON), sealed, state, now, activated)
	if err != nil {
		return pg.MapError(fmt.Errorf("keys: store %s key: %w", p, err))
	}
	s.log.InfoContext(ctx, "generated signing key", "purpose", p, "kid", kid, "state", state)
	return nil
}

func newPrivateKey(p Purpose) (crypto.Signer, error) {
	if p == LTI {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// List returns every key, newest first.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	var infos []Info
	err := s.db.SelectContext(ctx, &infos, `SELECT kid, purpose, alg, state, created_at, activated_at, retired_at
		FROM tool_keys ORDER BY created_at DESC`)
	return infos, pg.MapError(err)
}

// Sign signs payload (JSON claims) with the active key of purpose, naming
// its kid in the header.
func (s *Store) Sign(ctx context.Context, p Purpose, payload []byte) ([]byte, error) {
	sg, err := s.signer(ctx, p)
	if err != nil {
		return nil, err
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, sg.kid)
	_ = hdr.Set(jws.TypeKey, "JWT")
	out, err := jws.Sign(payload, jws.WithKey(sg.alg, sg.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return nil, fmt.Errorf("keys: sign: %w", err)
	}
	return out, nil
}

// signer returns the cached active key, reloading it now and then so a
// rotation on another replica is picked up.
func (s *Store) signer(ctx context.Context, p Purpose) (signer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sg, ok := s.active[p]; ok && s.Now().Sub(s.loaded) < s.reload {
		return sg, nil
	}
	if err := s.loadActive(ctx); err != nil {
		return signer{}, err
	}
	sg, ok := s.active[p]
	if !ok {
		return signer{}, fmt.Errorf("keys: no active %s key (was Ensure called?)", p)
	}
	return sg, nil
}

func (s *Store) loadActive(ctx context.Context) error {
	var rows []row
	if err := s.db.SelectContext(ctx, &rows, `SELECT kid, purpose, alg, state, created_at, activated_at, retired_at, public_jwk, private_sealed
		FROM tool_keys WHERE state = 'active'`); err != nil {
		return pg.MapError(fmt.Errorf("keys: load: %w", err))
	}
	active := map[Purpose]signer{}
	for _, r := range rows {
		der, err := s.sealer.Open(r.PrivateSealed, []byte("tool_keys:"+r.KID))
		if err != nil {
			return fmt.Errorf("keys: open %s: %w", r.KID, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("keys: parse %s: %w", r.KID, err)
		}
		active[r.Purpose] = signer{kid: r.KID, alg: algs[r.Purpose], key: priv.(crypto.Signer)}
	}
	s.active, s.loaded = active, s.Now()
	return nil
}
