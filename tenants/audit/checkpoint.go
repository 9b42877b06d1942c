package audit

import (
	"context"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
)

// Checkpoint is a chain's head as the hub last wrote it, signed with the
// audit key. Entries can be removed from the end of a chain, or the whole
// chain recomputed, by someone with database access; neither can produce a
// checkpoint that matches, so Verify reports both.
type Checkpoint struct {
	Chain    string     `db:"chain" json:"-"`
	TenantID *uuid.UUID `db:"tenant_id" json:"-"`
	Seq      int64      `db:"seq" json:"seq"`
	Hash     []byte     `db:"hash" json:"hash"`
	At       time.Time  `db:"at" json:"at"`
	KeyID    string     `db:"key_id" json:"key_id"`
	MAC      []byte     `db:"mac" json:"-"`
}

func chainName(tenant *uuid.UUID) string {
	if tenant == nil {
		return "operator"
	}
	return tenant.String()
}

// checkpoint moves tenant's signed checkpoint to e, in the append's
// transaction.
func (k *Keyring) checkpoint(ctx context.Context, tx *sqlx.Tx, tenant *uuid.UUID, e Entry) error {
	c := Checkpoint{Chain: chainName(tenant), TenantID: tenant, Seq: e.Seq, Hash: e.Hash, At: e.At, KeyID: k.currentID}
	c.MAC, _ = k.checkpointMAC(c)
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (chain, tenant_id, seq, hash, at, key_id, mac)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at,
			key_id = excluded.key_id, mac = excluded.mac`, c.Chain, c.TenantID, c.Seq, c.Hash, c.At, c.KeyID, c.MAC)
	return pg.MapError(err)
}

func (k *Keyring) checkpointMAC(c Checkpoint) ([]byte, bool) {
	var seq, at [8]byte
	binary.BigEndian.PutUint64(seq[:], uint64(c.Seq))
	binary.BigEndian.PutUint64(at[:], uint64(c.At.UnixMicro()))
	return k.mac(c.KeyID, []byte("checkpoint:"), []byte(c.Chain), []byte{0}, seq[:], at[:], c.Hash)
}

// readCheckpoint returns tenant's checkpoint, nil when it has none.
func readCheckpoint(ctx context.Context, tx *sqlx.Tx, tenant *uuid.UUID) (*Checkpoint, error) {
	var c Checkpoint
	err := tx.GetContext(ctx, &c, `SELECT * FROM audit_checkpoints WHERE chain = $1`, chainName(tenant))
	if pg.IsNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, pg.MapError(fmt.Errorf("audit: read checkpoint: %w", err))
	}
	return &c, nil
}

// compare says why a chain whose newest entry is lastSeq with lastHash
// disagrees with its checkpoint c, or "" when it agrees. Every non-empty
// chain has one: a chain last written before checkpoints existed is
// reported too, since nothing can vouch for it.
func (k *Keyring) compare(c *Checkpoint, lastSeq int64, lastHash []byte) string {
	switch {
	case c == nil && lastSeq == 0:
		return ""
	case c == nil:
		return "the chain's signed checkpoint is missing (removed, or the chain was last written before checkpoints)"
	}
	if want, ok := k.checkpointMAC(*c); !ok {
		return fmt.Sprintf("the checkpoint is signed with key %q, which this hub does not hold (set HUB_SECRET_KEY_PREVIOUS)", c.KeyID)
	} else if !hmac.Equal(want, c.MAC) {
		return "the checkpoint's signature is invalid (checkpoint altered)"
	}
	switch {
	case c.Seq > lastSeq:
		return fmt.Sprintf("entries %d to %d were removed: the signed checkpoint is at entry %d", lastSeq+1, c.Seq, c.Seq)
	case c.Seq < lastSeq:
		return fmt.Sprintf("entries after %d are not covered by the signed checkpoint (entries added outside the hub)", c.Seq)
	case !hmac.Equal(lastHash, c.Hash):
		return "the chain was rewritten: its head does not match the signed checkpoint"
	}
	return ""
}
