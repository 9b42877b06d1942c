package agreements

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Learners serves the rights of a tenant's learners over what the hub
// holds about them: the export of all of it (GDPR Art. 15 and 20), the
// correction of their name and email (Art. 16) and erasure (Art. 17).
// Each works through Holdings and writes its audit entry in its own
// transaction. An erased learner is, to all three, no learner at all.
//
// Every one of them takes the learner's users row first (shared for the
// export, exclusive for the others), so a correction or an export never
// sees an erasure half done. Writers that name the user (a launch, a
// roster page) take its key-share lock through their foreign keys; one
// that read the learner before an erasure and writes after it is refused
// when it commits, and the erased row stays blank whatever it writes (see
// migration 00024).
type Learners struct {
	db    *sqlx.DB
	chain *audit.Keyring
	Now   func() time.Time
}

// NewLearners returns the learners' rights over db, audited in chain.
func NewLearners(db *sqlx.DB, chain *audit.Keyring) *Learners {
	return &Learners{db: db, chain: chain, Now: time.Now}
}

func noLearner() error { return apperr.New(apperr.NotFound, "no such learner") }

// lockLearner locks the learner's users row (lock: "FOR SHARE" or "FOR
// UPDATE"); NotFound for a user the tenant does not have or has erased.
func lockLearner(ctx context.Context, tx *sqlx.Tx, tenant, user uuid.UUID, lock string) error {
	var erased *time.Time
	err := tx.GetContext(ctx, &erased, `SELECT erased_at FROM users WHERE tenant_id = $1 AND id = $2 `+lock, tenant, user)
	if pg.IsNoRows(err) || (err == nil && erased != nil) {
		return noLearner()
	}
	return err
}

// Export is everything the hub holds about a learner, one section per
// holding (Holding.Section), with user_id, exported_at and provenance.
type Export map[string]any

// Export gathers the learner's rows of every holding in one transaction,
// and records that the caller read them (learner.exported).
func (l *Learners) Export(ctx context.Context, by audit.Actor, tenant, user uuid.UUID) (Export, error) {
	doc := Export{"user_id": user}
	err := pg.InTenant(ctx, l.db, tenant, func(tx *sqlx.Tx) error {
		if err := lockLearner(ctx, tx, tenant, user, "FOR SHARE"); err != nil {
			return err
		}
		sections := map[string]json.RawMessage{}
		for _, h := range Holdings() {
			var raw []byte
			if err := tx.GetContext(ctx, &raw, h.exportQuery(), tenant, user); err != nil {
				return fmt.Errorf("agreements: export %s: %w", h.Table, err)
			}
			sections[h.Section] = raw
			doc[h.Section] = json.RawMessage(raw)
		}
		prov, err := provenance(sections)
		if err != nil {
			return err
		}
		now := l.Now()
		doc["exported_at"], doc["provenance"] = now.UTC(), prov
		_, err = l.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "learner.exported", TargetType: "user",
			TargetID: user.String()}, now)
		return err
	})
	if err != nil {
		return nil, pg.MapError(err)
	}
	return doc, nil
}

// exportQuery answers the holding's rows of the learner as one JSON
// value: an object for a Single holding, else an array.
func (h Holding) exportQuery() string {
	cols := make([]string, 0, len(h.Export)+2)
	for _, c := range h.Export {
		cols = append(cols, "t."+pq.QuoteIdentifier(c))
	}
	if h.Joined != "" {
		cols = append(cols, h.Joined)
	}
	order := ""
	if h.Order != "" {
		order = "ORDER BY " + h.Order
	}
	cols = append(cols, "row_number() OVER ("+order+") AS export_order")
	inner := fmt.Sprintf(`SELECT %s FROM %s t %s WHERE %s`, strings.Join(cols, ", "), pq.QuoteIdentifier(h.Table), h.Join, h.match())
	if h.Single {
		return `SELECT coalesce((SELECT to_jsonb(x) - 'export_order' FROM (` + inner + `) x LIMIT 1), 'null'::jsonb)`
	}
	return `SELECT coalesce(jsonb_agg(to_jsonb(x) - 'export_order' ORDER BY x.export_order), '[]'::jsonb) FROM (` + inner + `) x`
}

func (h Holding) match() string {
	if h.Match != "" {
		return h.Match
	}
	return "t.tenant_id = $1 AND t.user_id = $2"
}

// Provenance says where a profile value came from. Source is
// "correction" when a tenant admin's correction of the field is the
// newest write of the learner's record (users.updated_at): the value is
// the one they set. Otherwise the value came from the LMS, and Source
// names its newest contact with the learner's platform identities:
// "launch" (last_launch_at) or "roster" (synced_at), at At; "lms" when
// neither is recorded. The hub keeps no history of values, so this is
// the newest writer that could have set the value: a launch or sync that
// leaves a field out keeps what was stored, and Note then says the
// field may still hold an older correction.
type Provenance struct {
	Source string     `json:"source"`
	At     *time.Time `json:"at,omitempty"`
	By     string     `json:"by,omitempty"`
	Note   string     `json:"note"`
}

// correctable are the profile fields a correction may set.
var correctable = []string{"name", "given_name", "family_name", "email"}

func provenance(sections map[string]json.RawMessage) (map[string]Provenance, error) {
	var user map[string]any
	var updated struct {
		UpdatedAt time.Time `json:"updated_at"`
	}
	var corrections []struct {
		Field string    `json:"field"`
		At    time.Time `json:"value_set_at"`
		By    string    `json:"by_actor"`
	}
	var identities []struct {
		Launch *time.Time `json:"last_launch_at"`
		Synced *time.Time `json:"synced_at"`
	}
	for _, d := range []struct {
		section string
		to      any
	}{{"user", &user}, {"user", &updated}, {"corrections", &corrections}, {"platform_identities", &identities}} {
		if err := json.Unmarshal(sections[d.section], d.to); err != nil {
			return nil, fmt.Errorf("agreements: export %s: %w", d.section, err)
		}
	}
	writer, note, at := "lms", "from the LMS", updated.UpdatedAt
	var newest time.Time
	for _, i := range identities {
		if i.Launch != nil && i.Launch.After(newest) {
			writer, note, newest = "launch", "from the LMS, by a launch", *i.Launch
		}
		if i.Synced != nil && i.Synced.After(newest) {
			writer, note, newest = "roster", "from the LMS, by a roster sync", *i.Synced
		}
	}
	if !newest.IsZero() {
		at = newest
	}
	out := map[string]Provenance{}
	for _, f := range correctable {
		if user[f] == nil {
			continue
		}
		p := Provenance{Source: writer, At: &at, Note: note}
		var latest *time.Time
		by := ""
		for _, c := range corrections {
			if c.Field == f && (latest == nil || c.At.After(*latest)) {
				latest, by = &c.At, c.By
			}
		}
		switch {
		case latest != nil && !latest.Before(updated.UpdatedAt):
			p = Provenance{Source: "correction", At: latest, By: by,
				Note: fmt.Sprintf("corrected by %s at %s", by, latest.UTC().Format(time.RFC3339))}
		case latest != nil:
			p.Note = fmt.Sprintf("%s at %s; a field the LMS leaves out keeps its value, so this may still be the correction by %s at %s",
				note, at.UTC().Format(time.RFC3339), by, latest.UTC().Format(time.RFC3339))
		}
		out[f] = p
	}
	return out, nil
}

// Correction is what a tenant admin corrects of a learner's profile; a
// field left out (or null) keeps its value. The LMS may write the field
// again at the learner's next launch or the course's next roster sync.
type Correction struct {
	Name       *string `json:"name"`
	GivenName  *string `json:"given_name"`
	FamilyName *string `json:"family_name"`
	Email      *string `json:"email"`
}

func (c Correction) fields() map[string]*string {
	return map[string]*string{"name": c.Name, "given_name": c.GivenName, "family_name": c.FamilyName, "email": c.Email}
}

// Validate names each field at fault.
func (c Correction) Validate() error {
	var v apperr.Validator
	set := 0
	for _, f := range correctable {
		val := c.fields()[f]
		if val == nil {
			continue
		}
		set++
		if f == "email" {
			v.CheckText(f, *val, 3, 254)
			v.Check(isEmail(*val), f, "must be an email address such as ada@example.edu")
			continue
		}
		v.CheckName(f, *val, 255)
	}
	v.Check(set > 0, "body", "must set at least one of name, given_name, family_name, email")
	return v.Err()
}

// isEmail accepts a bare address (local@domain), nothing around it.
func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n")
}

// Profile is a learner's profile as a correction leaves it.
type Profile struct {
	ID         uuid.UUID `db:"id" json:"id"`
	Name       *string   `db:"name" json:"name"`
	GivenName  *string   `db:"given_name" json:"given_name"`
	FamilyName *string   `db:"family_name" json:"family_name"`
	Email      *string   `db:"email" json:"email"`
	Locale     *string   `db:"locale" json:"locale"`
	CreatedAt  time.Time `db:"created_at" json:"created_at"`
	UpdatedAt  time.Time `db:"updated_at" json:"updated_at"`
}

// Correct sets the given fields of the learner's profile, records a
// correction per field (who and when, not the value) and audits
// learner.corrected with the fields' names only.
func (l *Learners) Correct(ctx context.Context, by audit.Actor, tenant, user uuid.UUID, c Correction) (Profile, error) {
	if err := c.Validate(); err != nil {
		return Profile{}, err
	}
	var p Profile
	err := pg.InTenant(ctx, l.db, tenant, func(tx *sqlx.Tx) error {
		if err := lockLearner(ctx, tx, tenant, user, "FOR UPDATE"); err != nil {
			return err
		}
		now := l.Now()
		err := tx.GetContext(ctx, &p, `UPDATE users SET name = coalesce($3, name), given_name = coalesce($4, given_name),
				family_name = coalesce($5, family_name), email = coalesce($6, email), updated_at = $7
			WHERE tenant_id = $1 AND id = $2
			RETURNING id, name, given_name, family_name, email, locale, created_at, updated_at`,
			tenant, user, c.Name, c.GivenName, c.FamilyName, c.Email, now)
		if err != nil {
			return err
		}
		var changed []string
		for _, f := range correctable {
			if c.fields()[f] == nil {
				continue
			}
			changed = append(changed, f)
			if _, err := tx.ExecContext(ctx, `INSERT INTO learner_corrections (id, tenant_id, user_id, field, value_set_at, by_actor)
				VALUES ($1, $2, $3, $4, $5, $6)`, uuid.New(), tenant, user, f, now, actorName(by)); err != nil {
				return err
			}
		}
		_, err = l.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "learner.corrected", TargetType: "user",
			TargetID: user.String(), Details: map[string]string{"fields": strings.Join(changed, ",")}}, now)
		return err
	})
	return p, pg.MapError(err)
}

// actorName is how a correction names who made it.
func actorName(a audit.Actor) string {
	if a.Type == audit.ActorOperator {
		return "operator"
	}
	return string(a.Type) + ":" + a.ID
}

// Erase removes what identifies the learner, in one transaction: each
// holding's rows are deleted, detached or kept (ids only) as Holdings
// says, the users row is scrubbed and marked erased, and learner.erased
// is audited with how many rows of each table went (no personal data).
// Erasing an erased learner does nothing and succeeds; NotFound for a
// user the tenant never had. A deadlock with a launch or sync writing the
// learner at that moment is retried.
func (l *Learners) Erase(ctx context.Context, by audit.Actor, tenant, user uuid.UUID) error {
	err := pg.RetryInTenant(ctx, l.db, tenant, func(tx *sqlx.Tx) error {
		_, err := l.erase(ctx, tx, by, tenant, user)
		return err
	})
	return pg.MapError(err)
}

// learnerLock is the advisory lock of a learner that sends hold shared
// (HoldLearners) and an erasure exclusive: PostgreSQL queues a new shared
// request behind a waiting exclusive one, so a stream of sends cannot
// keep an erasure waiting for ever, as row share locks could.
func learnerLock(user string) string { return `hashtextextended('learner:' || ` + user + `::text, 0)` }

// WaitForLearner takes the learner lock shared in tx until tx ends,
// waiting behind an erasure of the learner that holds or waits for it:
// what writes about a learner (a result the app reports) then finds them
// erased, rather than keeping an erasure waiting.
func WaitForLearner(ctx context.Context, tx *sqlx.Tx, user uuid.UUID) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared(`+learnerLock("$1")+`)`, user); err != nil {
		return fmt.Errorf("agreements: wait for learner: %w", err)
	}
	return nil
}

// HoldLearners holds learners for a send in tx until tx ends: each
// learner's lock shared and their users row FOR SHARE, so an erasure
// waits for the send and a send after the erasure sees it. It answers
// those it holds (in id order) and holds none of the others: one an
// erasure holds or waits for is left out, for the sender to come back to
// later (and then find erased).
func HoldLearners(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, users []uuid.UUID) ([]uuid.UUID, error) {
	var held []uuid.UUID
	err := tx.SelectContext(ctx, &held, `SELECT u.id FROM users u
		WHERE u.tenant_id = $1 AND u.id = ANY ($2) AND pg_try_advisory_xact_lock_shared(`+learnerLock("u.id")+`)
		ORDER BY u.id FOR SHARE OF u SKIP LOCKED`, tenant, pq.Array(users))
	if err != nil {
		return nil, pg.MapError(fmt.Errorf("agreements: hold learners: %w", err))
	}
	return held, nil
}

// erase erases the learner in tx, and says whether it did: false for a
// learner erased already. It takes the learner lock first: sends in
// flight end, new ones wait their turn after it.
func (l *Learners) erase(ctx context.Context, tx *sqlx.Tx, by audit.Actor, tenant, user uuid.UUID) (bool, error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(`+learnerLock("$1")+`)`, user); err != nil {
		return false, err
	}
	var erased *time.Time
	err := tx.GetContext(ctx, &erased, `SELECT erased_at FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, user)
	if pg.IsNoRows(err) {
		return false, noLearner()
	}
	if err != nil || erased != nil {
		return false, err
	}
	now := l.Now()
	details := map[string]string{}
	for _, h := range Holdings() {
		n, err := h.erase(ctx, tx, tenant, user, now)
		if err != nil {
			return false, fmt.Errorf("agreements: erase %s: %w", h.Table, err)
		}
		if h.Erase == Delete || h.Erase == Detach {
			details[h.Table] = strconv.FormatInt(n, 10)
		}
	}
	_, err = l.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "learner.erased", TargetType: "user", TargetID: user.String(),
		Details: details}, now)
	return err == nil, err
}

// erase disposes of the holding's rows of the learner and says how many.
func (h Holding) erase(ctx context.Context, tx *sqlx.Tx, tenant, user uuid.UUID, now time.Time) (int64, error) {
	table, args := pq.QuoteIdentifier(h.Table), []any{tenant, user}
	var q string
	switch h.Erase {
	case Delete:
		q = `DELETE FROM ` + table + ` t WHERE ` + h.match()
	case Detach:
		q = `UPDATE ` + table + ` t SET user_id = NULL WHERE ` + h.match()
	case Scrub:
		set := make([]string, len(h.Scrubbed))
		for i, c := range h.Scrubbed {
			set[i] = pq.QuoteIdentifier(c) + " = NULL"
		}
		q = `UPDATE ` + table + ` t SET ` + strings.Join(set, ", ") + `, erased_at = $3, updated_at = $3 WHERE ` + h.match()
		args = append(args, now)
	case Keep:
		return 0, nil
	default:
		return 0, fmt.Errorf("holding %s has no erasure", h.Table)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
