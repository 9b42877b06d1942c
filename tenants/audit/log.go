package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
)

// Log reads, verifies and records audit entries in their own transactions.
type Log struct {
	db   *sqlx.DB
	keys *Keyring
	log  *slog.Logger
	Now  func() time.Time
}

// NewLog returns a Log on db whose entries are keyed by keys.
func NewLog(db *sqlx.DB, keys *Keyring, log *slog.Logger) *Log {
	return &Log{db: db, keys: keys, log: log, Now: time.Now}
}

// Record appends one event in a transaction of its own, for events that
// change nothing else (a failed sign-in, say).
func (l *Log) Record(ctx context.Context, tenant *uuid.UUID, actor Actor, ev Event) error {
	return l.inChain(ctx, tenant, func(tx *sqlx.Tx) error {
		_, err := l.keys.Append(ctx, tx, tenant, actor, ev, l.Now())
		return err
	})
}

// Append adds ev to tenant's chain inside the caller's transaction tx,
// stamped with the Log's clock; see Keyring.Append.
func (l *Log) Append(ctx context.Context, tx *sqlx.Tx, tenant *uuid.UUID, actor Actor, ev Event) (Entry, error) {
	return l.keys.Append(ctx, tx, tenant, actor, ev, l.Now())
}

// inChain runs fn in a transaction that sees tenant's chain.
func (l *Log) inChain(ctx context.Context, tenant *uuid.UUID, fn func(*sqlx.Tx) error) error {
	if tenant == nil {
		return pg.InTx(ctx, l.db, fn) // the operator's chain: visible only outside any tenant
	}
	return pg.InTenant(ctx, l.db, *tenant, fn)
}

// Filter narrows a listing. Zero values mean "any".
type Filter struct {
	Action string    // exact, or a prefix ending in "." ("api_key.")
	Since  time.Time // at or after
	Until  time.Time // before
	Before int64     // cursor: entries with seq below this
	Limit  int
}

// List returns tenant's entries newest first, and the cursor for the next
// page (0 when there is none).
func (l *Log) List(ctx context.Context, tenant *uuid.UUID, f Filter) ([]Entry, int64, error) {
	q, args := listQuery(tenant, f)
	var entries []Entry
	err := l.inChain(ctx, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &entries, q, args...)
	})
	if err != nil {
		return nil, 0, pg.MapError(fmt.Errorf("audit: list: %w", err))
	}
	var next int64
	if len(entries) > f.Limit {
		entries = entries[:f.Limit]
		next = entries[len(entries)-1].Seq
	}
	for i := range entries {
		if err := entries[i].decodeDetails(); err != nil {
			entries[i].Details = map[string]string{"undecodable": "true"}
		}
	}
	return entries, next, nil
}

func listQuery(tenant *uuid.UUID, f Filter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if tenant == nil {
		where = append(where, "tenant_id IS NULL")
	} else {
		add("tenant_id = $%d", *tenant)
	}
	if strings.HasSuffix(f.Action, ".") {
		add("starts_with(action, $%d)", f.Action)
	} else if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if !f.Since.IsZero() {
		add("at >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("at < $%d", f.Until)
	}
	if f.Before > 0 {
		add("seq < $%d", f.Before)
	}
	args = append(args, f.Limit+1)
	return fmt.Sprintf(`SELECT * FROM audit_log WHERE %s ORDER BY seq DESC LIMIT $%d`,
		strings.Join(where, " AND "), len(args)), args
}

func (e *Entry) decodeDetails() error {
	e.Details = map[string]string{}
	return json.Unmarshal(e.RawDetails, &e.Details)
}

// Verification is the outcome of checking one chain.
type Verification struct {
	Valid      bool        `json:"valid"`
	Checked    int         `json:"checked"` // entries read, up to and including a broken one
	Broken     *Broken     `json:"first_broken,omitempty"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"` // the signed head it was compared with
}

// Broken names the first entry at which the chain fails. For a fault found
// by the checkpoint (entries removed from the end, a recomputed chain) it
// names the newest entry left.
type Broken struct {
	ID     uuid.UUID `json:"id"`
	Seq    int64     `json:"seq"`
	Reason string    `json:"reason"`
}

// verifyPage is how many entries Verify reads per transaction, so a long
// chain is checked in many short transactions, each well within the
// database deadline.
var verifyPage = 5000

// Verify walks tenant's chain oldest first, reports the first entry whose
// number, link or keyed hash is wrong, and then compares the chain's head
// with its signed checkpoint. Entries are read a page at a time; the last
// page and the checkpoint are read together under the chain's lock, so an
// append committing meanwhile is never mistaken for tampering.
func (l *Log) Verify(ctx context.Context, tenant *uuid.UUID) (Verification, error) {
	w := walker{keys: l.keys, prev: genesis}
	v := Verification{Valid: true}
	for done := false; !done; {
		err := l.inChain(ctx, tenant, func(tx *sqlx.Tx) error {
			if err := lockChain(ctx, tx, tenant); err != nil {
				return err
			}
			rows, err := tx.QueryxContext(ctx, verifyQuery(tenant), chainArgs(tenant, w.last.Seq)...)
			if err != nil {
				return err
			}
			n := w.walk(rows, &v)
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if done = !v.Valid || n < verifyPage; !done || !v.Valid {
				return nil
			}
			return l.checkHead(ctx, tx, tenant, &w, &v)
		})
		if err != nil {
			return Verification{}, pg.MapError(fmt.Errorf("audit: verify: %w", err))
		}
	}
	return v, nil
}

// checkHead compares the chain's newest entry with its signed checkpoint.
func (l *Log) checkHead(ctx context.Context, tx *sqlx.Tx, tenant *uuid.UUID, w *walker, v *Verification) error {
	var err error
	if v.Checkpoint, err = readCheckpoint(ctx, tx, tenant); err != nil {
		return err
	}
	if reason := l.keys.compare(v.Checkpoint, w.last.Seq, w.last.Hash); reason != "" {
		v.Valid, v.Broken = false, &Broken{ID: w.last.ID, Seq: w.last.Seq, Reason: reason}
	}
	return nil
}

func verifyQuery(tenant *uuid.UUID) string {
	if tenant == nil {
		return fmt.Sprintf(`SELECT * FROM audit_log WHERE tenant_id IS NULL AND seq > $1 ORDER BY seq LIMIT %d`, verifyPage)
	}
	return fmt.Sprintf(`SELECT * FROM audit_log WHERE tenant_id = $2 AND seq > $1 ORDER BY seq LIMIT %d`, verifyPage)
}

func chainArgs(tenant *uuid.UUID, after int64) []any {
	if tenant == nil {
		return []any{after}
	}
	return []any{after, *tenant}
}

// walker checks a chain entry by entry, remembering the last good one.
type walker struct {
	keys  *Keyring
	prev  []byte
	last  Entry
	keyed bool // a keyed entry was seen: every later one must be keyed
}

// walk checks the entries of one page, counting them in v, and returns how
// many rows it read; it stops at the first broken entry.
func (w *walker) walk(rows *sqlx.Rows, v *Verification) int {
	n := 0
	for rows.Next() {
		var e Entry
		n++
		v.Checked++
		reason := ""
		if err := rows.StructScan(&e); err != nil {
			reason = "unreadable entry"
		} else {
			reason = w.check(&e, int64(v.Checked))
		}
		if reason != "" {
			v.Valid, v.Broken = false, &Broken{ID: e.ID, Seq: e.Seq, Reason: reason}
			return n
		}
		w.prev, w.last = e.Hash, e
	}
	return n
}

// check returns why e does not follow the entries walked so far as entry
// wantSeq, or "" when it does.
func (w *walker) check(e *Entry, wantSeq int64) string {
	switch {
	case e.Seq != wantSeq:
		return fmt.Sprintf("sequence gap: expected entry %d, found %d (entries removed)", wantSeq, e.Seq)
	case !bytes.Equal(e.PrevHash, w.prev):
		return "previous-hash link does not match the entry before it"
	case e.KeyID == "" && w.keyed:
		return "an unkeyed entry follows keyed ones (entry rewritten without the audit key)"
	case e.decodeDetails() != nil:
		return "details are not a string map"
	}
	w.keyed = w.keyed || e.KeyID != ""
	want, ok := w.keys.entryHash(e)
	switch {
	case !ok:
		return fmt.Sprintf("entry is keyed with %q, which this hub does not hold (set HUB_SECRET_KEY_PREVIOUS)", e.KeyID)
	case !hmac.Equal(want, e.Hash):
		return "content does not match its hash (entry altered)"
	}
	return ""
}
