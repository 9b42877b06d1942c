package agreements

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
)

// Disclosure is one decision on an outbound record about a learner: what
// went (or would have gone) where, under which agreement version, what was
// decided and why. Together they are the record of disclosures FERPA
// §99.32 and GDPR Art. 30 ask for, kept for withheld records too.
type Disclosure struct {
	ID       uuid.UUID `json:"id"`
	TenantID uuid.UUID `json:"-"`
	// Learner is the user the record was about; nil once they are erased.
	Learner     *uuid.UUID  `json:"learner"`
	Destination Destination `json:"destination"`
	Category    Category    `json:"category"`
	// Fields are the identity fields that went with the record;
	// RemovedFields those taken out of it before it went (or, when it was
	// withheld, that would have gone).
	Fields        []Field `json:"fields"`
	RemovedFields []Field `json:"removed_fields"`
	// The agreement decided under; both nil when the tenant had none.
	AgreementID      *uuid.UUID `json:"agreement_id"`
	AgreementVersion *int       `json:"agreement_version"`
	// Decision is the policy's outcome; Reason its code (required to
	// withhold).
	Decision   Outcome    `json:"decision"`
	Reason     Reason     `json:"reason"`
	RecordType string     `json:"record_type"` // the kind of outbound record: result, test, ...
	RecordID   *uuid.UUID `json:"record_id"`
	DecidedAt  time.Time  `json:"decided_at"`
}

// Outcomes lists the decisions a disclosure may record.
var Outcomes = []Outcome{OutcomeShare, OutcomeShareMinimized, OutcomeWithhold}

// maxCode bounds a reason code and a record type.
const maxCode = 64

// RecordDecision records one decision in the caller's transaction tx,
// which must be in tenant (pg.InTenant): the decision is on record exactly
// when the record it is about was sent or cancelled in the same
// transaction. An ID left nil is made; DecidedAt is the time the decision
// was made for, and is required. Invalid for a disclosure that does not
// hold together (an unknown decision, destination or field, a withheld
// record whose fields went); nothing is stored then.
func RecordDecision(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, d Disclosure) (Disclosure, error) {
	if err := d.validate(); err != nil {
		return Disclosure{}, err
	}
	if d.ID == uuid.Nil {
		d.ID = uuid.New()
	}
	var r disclosureRow
	err := tx.GetContext(ctx, &r, `INSERT INTO disclosures (id, tenant_id, user_id, destination_kind, destination_id, category,
			fields, removed_fields, agreement_id, agreement_version, decision, reason, record_type, record_id, decided_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING `+disclosureColumns,
		d.ID, tenant, d.Learner, d.Destination.Kind, d.Destination.ID, d.Category, fields(d.Fields), fields(d.RemovedFields),
		d.AgreementID, d.AgreementVersion, d.Decision, d.Reason, d.RecordType, d.RecordID, d.DecidedAt)
	if err != nil {
		return Disclosure{}, pg.MapError(fmt.Errorf("agreements: record decision: %w", err))
	}
	return r.disclosure(), nil
}

// validate checks that d is a decision the record can hold: known codes,
// and fields that agree with the decision.
func (d Disclosure) validate() error {
	var v apperr.Validator
	// Only a record about an erased learner names no one: the decision
	// is on record without relinking them.
	v.Check(d.Learner != nil && *d.Learner != uuid.Nil || d.Reason == ReasonLearnerErased, "learner",
		"is required: the user the record is about")
	d.Destination.check(&v, "destination")
	v.Check(slices.Contains(Categories, d.Category), "category", fmt.Sprintf("must be one of %v", Categories))
	checkSet(&v, "fields", d.Fields, Fields)
	checkSet(&v, "removed_fields", d.RemovedFields, Fields)
	for i, f := range d.RemovedFields {
		v.Check(!slices.Contains(d.Fields, f), fmt.Sprintf("removed_fields[%d]", i), "is also among the fields that went")
	}
	v.Check((d.AgreementID == nil) == (d.AgreementVersion == nil), "agreement_version", "goes with agreement_id: both or neither")
	v.Check(d.AgreementVersion == nil || *d.AgreementVersion > 0, "agreement_version", "must be 1 or more")
	switch d.Decision {
	case OutcomeShare:
		v.Check(len(d.RemovedFields) == 0, "removed_fields", "must be empty for a record shared whole (share_minimized removes fields)")
	case OutcomeShareMinimized:
		v.Check(len(d.RemovedFields) > 0, "removed_fields", "must name what was removed from a minimised record")
	case OutcomeWithhold:
		v.Check(len(d.Fields) == 0, "fields", "must be empty: nothing of a withheld record went")
		v.Check(d.Reason != "", "reason", "is required to withhold a record")
	default:
		v.Check(false, "decision", "must be share, share_minimized or withhold")
	}
	v.Check(d.Reason == "" || isCode(string(d.Reason)), "reason", "must be a code: a lowercase letter, then letters, digits, _ . or -, at most 64")
	v.Check(isCode(d.RecordType), "record_type", "must be a code: a lowercase letter, then letters, digits, _ . or -, at most 64")
	v.Check(!d.DecidedAt.IsZero(), "decided_at", "is required: the time the decision was made for")
	return v.Err()
}

// isCode reports whether s is a short machine code such as
// consent_declined: what a reason or record type is, never free text.
func isCode(s string) bool {
	if len(s) == 0 || len(s) > maxCode || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// disclosureRow is a disclosure as stored.
type disclosureRow struct {
	ID               uuid.UUID       `db:"id"`
	TenantID         uuid.UUID       `db:"tenant_id"`
	UserID           *uuid.UUID      `db:"user_id"`
	DestinationKind  DestinationKind `db:"destination_kind"`
	DestinationID    *uuid.UUID      `db:"destination_id"`
	Category         Category        `db:"category"`
	Fields           pq.StringArray  `db:"fields"`
	RemovedFields    pq.StringArray  `db:"removed_fields"`
	AgreementID      *uuid.UUID      `db:"agreement_id"`
	AgreementVersion *int            `db:"agreement_version"`
	Decision         Outcome         `db:"decision"`
	Reason           Reason          `db:"reason"`
	RecordType       string          `db:"record_type"`
	RecordID         *uuid.UUID      `db:"record_id"`
	DecidedAt        time.Time       `db:"decided_at"`
}

const disclosureColumns = `id, tenant_id, user_id, destination_kind, destination_id, category, fields, removed_fields,
	agreement_id, agreement_version, decision, reason, record_type, record_id, decided_at`

func (r disclosureRow) disclosure() Disclosure {
	d := Disclosure{ID: r.ID, TenantID: r.TenantID, Learner: r.UserID, Category: r.Category,
		Destination: Destination{Kind: r.DestinationKind, ID: r.DestinationID}, AgreementID: r.AgreementID,
		AgreementVersion: r.AgreementVersion, Decision: r.Decision, Reason: r.Reason, RecordType: r.RecordType,
		RecordID: r.RecordID, DecidedAt: r.DecidedAt, Fields: make([]Field, len(r.Fields)),
		RemovedFields: make([]Field, len(r.RemovedFields))}
	for i, f := range r.Fields {
		d.Fields[i] = Field(f)
	}
	for i, f := range r.RemovedFields {
		d.RemovedFields[i] = Field(f)
	}
	return d
}

// DisclosureFilter selects disclosures. Zero values mean "any".
type DisclosureFilter struct {
	Learner *uuid.UUID
	// Destination is a kind, and the one destination of that kind when
	// its ID is set.
	Destination *Destination
	Decision    Outcome
	Since       time.Time // decided at or after
	Until       time.Time // decided before
	Page        pg.Page
}

// Disclosures lists the tenant's disclosures that f selects, newest first,
// one page.
func (s *Store) Disclosures(ctx context.Context, tenant uuid.UUID, f DisclosureFilter) ([]Disclosure, *pg.Cursor, error) {
	var kind DestinationKind
	var destination, afterID *uuid.UUID
	if f.Destination != nil {
		kind, destination = f.Destination.Kind, f.Destination.ID
	}
	var since, until, afterAt *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	if f.Page.After != nil {
		afterAt, afterID = &f.Page.After.At, &f.Page.After.ID
	}
	var rows []disclosureRow
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `SELECT `+disclosureColumns+` FROM disclosures
			WHERE tenant_id = $1 AND ($2::uuid IS NULL OR user_id = $2) AND ($3 = '' OR destination_kind = $3)
				AND ($4::uuid IS NULL OR destination_id = $4) AND ($5 = '' OR decision = $5)
				AND ($6::timestamptz IS NULL OR decided_at >= $6) AND ($7::timestamptz IS NULL OR decided_at < $7)
				AND ($8::timestamptz IS NULL OR (decided_at, id) < ($8, $9::uuid))
			ORDER BY decided_at DESC, id DESC LIMIT $10`,
			tenant, f.Learner, kind, destination, f.Decision, since, until, afterAt, afterID, f.Page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("agreements: list disclosures: %w", err))
	}
	list := make([]Disclosure, len(rows))
	for i, r := range rows {
		list[i] = r.disclosure()
	}
	return pg.TrimPage(list, f.Page.Limit, func(d Disclosure) pg.Cursor { return pg.Cursor{At: d.DecidedAt, ID: d.ID} })
}

// csvBatch is how many disclosures an export reads at a time: its memory
// stays that of one batch however long the record is.
const csvBatch = 1000

// DisclosureCSVHeader names the columns of an export, in order.
var DisclosureCSVHeader = []string{"id", "decided_at", "learner", "destination_kind", "destination_id", "category", "fields",
	"removed_fields", "agreement_id", "agreement_version", "decision", "reason", "record_type", "record_id"}

// WriteDisclosuresCSV writes every disclosure f selects to w as CSV,
// newest first, after a header row (DisclosureCSVHeader); f.Page does not
// apply. It reads a batch at a time and writes each batch out before
// reading the next, so nothing reaches w until the first read succeeded.
// Times are RFC 3339 in UTC; lists of fields are joined with ";"; an
// absent value is an empty cell.
func (s *Store) WriteDisclosuresCSV(ctx context.Context, tenant uuid.UUID, f DisclosureFilter, w io.Writer) error {
	cw := csv.NewWriter(w)
	writeCSVRow(cw, DisclosureCSVHeader)
	f.Page = pg.Page{Limit: csvBatch}
	for {
		batch, next, err := s.Disclosures(ctx, tenant, f)
		if err != nil {
			return err
		}
		for _, d := range batch {
			writeCSVRow(cw, d.csvRecord())
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("agreements: write disclosures: %w", err)
		}
		if next == nil {
			return nil
		}
		f.Page.After = next
	}
}

func (d Disclosure) csvRecord() []string {
	optional := func(id *uuid.UUID) string {
		if id == nil {
			return ""
		}
		return id.String()
	}
	version := ""
	if d.AgreementVersion != nil {
		version = strconv.Itoa(*d.AgreementVersion)
	}
	return []string{d.ID.String(), d.DecidedAt.UTC().Format(time.RFC3339Nano), optional(d.Learner), string(d.Destination.Kind),
		optional(d.Destination.ID), string(d.Category), joinFields(d.Fields), joinFields(d.RemovedFields),
		optional(d.AgreementID), version, string(d.Decision), string(d.Reason), d.RecordType, optional(d.RecordID)}
}

func joinFields(fs []Field) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ";")
}

// writeCSVRow writes one row with every cell through neutralizeCSVCell:
// the one place an export's cells pass on their way out. Errors stay in
// cw until its Flush.
func writeCSVRow(cw *csv.Writer, cells []string) {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = neutralizeCSVCell(c)
	}
	_ = cw.Write(out)
}

// neutralizeCSVCell keeps a spreadsheet from reading a cell as a formula
// (CSV injection): a cell starting with =, +, -, @, a tab or a carriage
// return gets a leading apostrophe. The record holds codes and ids, none
// of which start so; this holds should one ever come to.
func neutralizeCSVCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
