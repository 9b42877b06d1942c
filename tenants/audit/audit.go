package audit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
)

// ActorType says who acted.
type ActorType string

const (
	ActorOperator  ActorType = "operator"   // the HUB_ADMIN_TOKEN holder
	ActorAPIKey    ActorType = "api_key"    // a tenant API key, ID = key id
	ActorSystem    ActorType = "system"     // the hub itself (seeding, workers)
	ActorAnonymous ActorType = "anonymous"  // an unauthenticated caller
	ActorLearner   ActorType = "learner"    // a learner on one of the hub's pages, ID = their hub user id
	ActorSCIMToken ActorType = "scim_token" // an employer's directory pushing over SCIM, ID = token id
)

// Actor is who caused an event, and in which request.
type Actor struct {
	Type      ActorType
	ID        string
	RequestID string
}

// Operator is the operator acting in request requestID.
func Operator(requestID string) Actor {
	return Actor{Type: ActorOperator, ID: "operator", RequestID: requestID}
}

// System is the hub acting on its own.
func System(what string) Actor { return Actor{Type: ActorSystem, ID: what} }

// Event is what happened, to what.
type Event struct {
	Action     string // dotted, past tense: "api_key.revoked"
	TargetType string
	TargetID   string
	Details    map[string]string // no secrets, no personal data
}

// Entry is one stored audit record.
type Entry struct {
	ID         uuid.UUID         `db:"id" json:"id"`
	TenantID   *uuid.UUID        `db:"tenant_id" json:"tenant_id"`
	Seq        int64             `db:"seq" json:"seq"`
	At         time.Time         `db:"at" json:"at"`
	ActorType  ActorType         `db:"actor_type" json:"actor_type"`
	ActorID    string            `db:"actor_id" json:"actor_id"`
	Action     string            `db:"action" json:"action"`
	TargetType string            `db:"target_type" json:"target_type"`
	TargetID   string            `db:"target_id" json:"target_id"`
	RequestID  string            `db:"request_id" json:"request_id"`
	Details    map[string]string `db:"-" json:"details"`
	RawDetails []byte            `db:"details" json:"-"`
	PrevHash   []byte            `db:"prev_hash" json:"prev_hash"`
	Hash       []byte            `db:"hash" json:"hash"`
	KeyID      string            `db:"key_id" json:"key_id"` // "" for entries from before keyed chains
}

// genesis is the previous hash of every chain's first entry.
var genesis = make([]byte, sha256.Size)

// Append adds ev to tenant's chain (nil: the operator's chain) inside tx,
// hashed under the keyring's current key, and moves the chain's signed
// checkpoint to it. The caller's transaction must see that chain: InTenant
// for a tenant, InTx for the operator's. The entry commits or rolls back
// with whatever else tx does.
func (k *Keyring) Append(ctx context.Context, tx *sqlx.Tx, tenant *uuid.UUID, actor Actor, ev Event, at time.Time) (Entry, error) {
	if err := lockChain(ctx, tx, tenant); err != nil {
		return Entry{}, err
	}
	seq, prev, err := head(ctx, tx, tenant)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{
		ID: uuid.New(), TenantID: tenant, Seq: seq + 1, At: at.UTC().Truncate(time.Microsecond),
		ActorType: actor.Type, ActorID: actor.ID, Action: ev.Action,
		TargetType: ev.TargetType, TargetID: ev.TargetID, RequestID: actor.RequestID,
		Details: ev.Details, PrevHash: prev, KeyID: k.currentID,
	}
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	e.Hash, _ = k.entryHash(&e)
	e.RawDetails, _ = json.Marshal(e.Details)
	// details goes as text: a JSON document, whatever the driver's
	// parameter format.
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log
		(id, tenant_id, seq, at, actor_type, actor_id, action, target_type, target_id, request_id, details, prev_hash, hash, key_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		e.ID, e.TenantID, e.Seq, e.At, e.ActorType, e.ActorID, e.Action, e.TargetType, e.TargetID, e.RequestID,
		string(e.RawDetails), e.PrevHash, e.Hash, e.KeyID)
	if err != nil {
		return Entry{}, pg.MapError(fmt.Errorf("audit: append %s: %w", ev.Action, err))
	}
	if err := k.checkpoint(ctx, tx, tenant, e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// lockChain serialises writers of tenant's chain until tx ends, on every
// replica. Taking it again in the same transaction is harmless.
func lockChain(ctx context.Context, tx *sqlx.Tx, tenant *uuid.UUID) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, chainKey(tenant)); err != nil {
		return pg.MapError(fmt.Errorf("audit: lock chain: %w", err))
	}
	return nil
}

func chainKey(tenant *uuid.UUID) string {
	if tenant == nil {
		return "audit:operator"
	}
	return "audit:" + tenant.String()
}

// head returns the last sequence number and hash of the chain.
func head(ctx context.Context, tx *sqlx.Tx, tenant *uuid.UUID) (int64, []byte, error) {
	var last struct {
		Seq  int64  `db:"seq"`
		Hash []byte `db:"hash"`
	}
	q := `SELECT seq, hash FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1`
	args := []any{tenant}
	if tenant == nil {
		q, args = `SELECT seq, hash FROM audit_log WHERE tenant_id IS NULL ORDER BY seq DESC LIMIT 1`, nil
	}
	err := tx.GetContext(ctx, &last, q, args...)
	if pg.IsNoRows(err) {
		return 0, genesis, nil
	}
	if err != nil {
		return 0, nil, pg.MapError(fmt.Errorf("audit: chain head: %w", err))
	}
	return last.Seq, last.Hash, nil
}

// entryHash is the entry's link in its chain: HMAC-SHA256 under the key
// named by e.KeyID over the previous hash and a canonical JSON of the
// entry's content, or plain SHA-256 for entries written before keyed
// chains (KeyID ""). false when the keyring lacks the entry's key.
// encoding/json writes struct fields in declaration order and map keys
// sorted, so the encoding is stable.
func (k *Keyring) entryHash(e *Entry) ([]byte, bool) {
	content, _ := json.Marshal(struct {
		ID         uuid.UUID         `json:"id"`
		TenantID   *uuid.UUID        `json:"tenant_id"`
		Seq        int64             `json:"seq"`
		At         string            `json:"at"`
		ActorType  ActorType         `json:"actor_type"`
		ActorID    string            `json:"actor_id"`
		Action     string            `json:"action"`
		TargetType string            `json:"target_type"`
		TargetID   string            `json:"target_id"`
		RequestID  string            `json:"request_id"`
		Details    map[string]string `json:"details"`
	}{e.ID, e.TenantID, e.Seq, e.At.UTC().Format(time.RFC3339Nano), e.ActorType, e.ActorID,
		e.Action, e.TargetType, e.TargetID, e.RequestID, e.Details})
	if e.KeyID == "" {
		h := sha256.New()
		h.Write(e.PrevHash)
		h.Write(content)
		return h.Sum(nil), true
	}
	return k.mac(e.KeyID, []byte("entry:"), e.PrevHash, content)
}
