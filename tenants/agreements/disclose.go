package agreements

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
)

// Outbound is a record about a learner that a sender is about to send:
// whom it is about, where it goes, its data category, the identity fields
// it would carry besides the pseudonymous user id, and what it is (a
// RecordType code such as "result", and the record's id).
type Outbound struct {
	Learner     uuid.UUID
	Destination Destination
	Category    Category
	Fields      []Field
	RecordType  string
	RecordID    *uuid.UUID
}

// Disclose is the gate every outbound record passes at the moment it is
// sent: in the sender's transaction tx (pg.InTenant for tenant) it reads
// the tenant's active agreement and the learner's consent as they stand
// now — never a copy kept in a job or a session — decides with Decide,
// and records the decision in the record of disclosures (FERPA §99.32,
// GDPR Art. 30). The sender sends exactly when the Decision is not
// withhold, with only its Fields, and commits tx after sending: the
// decision is on record exactly when the send happened.
//
// The learner's users row is held FOR SHARE until tx ends, so an erasure
// waits for a send in flight and a send after an erasure sees it (and
// withholds with learner_erased, recorded without naming the learner).
// Errors: Invalid for an outbound record that does not hold together (an
// unknown category, field or destination); NotFound for a learner the
// tenant never had; database errors wrapped.
func Disclose(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, o Outbound, now time.Time) (Decision, error) {
	if err := o.validate(); err != nil {
		return Decision{}, err
	}
	var erased *time.Time
	err := tx.GetContext(ctx, &erased, `SELECT erased_at FROM users WHERE tenant_id = $1 AND id = $2 FOR SHARE`, tenant, o.Learner)
	if pg.IsNoRows(err) {
		return Decision{}, noLearner()
	}
	if err != nil {
		return Decision{}, pg.MapError(fmt.Errorf("agreements: disclose: read learner: %w", err))
	}
	active, err := activeIn(ctx, tx, tenant)
	if err != nil {
		return Decision{}, fmt.Errorf("agreements: disclose: %w", err)
	}
	var consent ConsentState
	if erased == nil && active != nil {
		if consent, err = consentState(ctx, tx, tenant, o.Learner, active); err != nil {
			return Decision{}, fmt.Errorf("agreements: disclose: %w", err)
		}
	}
	d := Decide(active, consent, Record{Category: o.Category, Fields: o.Fields, Erased: erased != nil}, o.Destination, now)
	if _, err := RecordDecision(ctx, tx, tenant, o.disclosure(d, active, erased != nil, now)); err != nil {
		return Decision{}, err
	}
	return d, nil
}

func (o Outbound) validate() error {
	var v apperr.Validator
	v.Check(o.Learner != uuid.Nil, "learner", "is required: the user the record is about")
	o.Destination.check(&v, "destination")
	v.Check(slices.Contains(Categories, o.Category), "category", fmt.Sprintf("must be one of %v", Categories))
	checkSet(&v, "fields", o.Fields, Fields)
	v.Check(isCode(o.RecordType), "record_type", "must be a code: a lowercase letter, then letters, digits, _ . or -, at most 64")
	return v.Err()
}

// disclosure is the record of decision d on o: what went, what was
// removed (or, withheld, what would have gone), under which version.
func (o Outbound) disclosure(d Decision, a *Agreement, erased bool, now time.Time) Disclosure {
	learner := &o.Learner
	if erased {
		learner = nil
	}
	rec := Disclosure{Learner: learner, Destination: o.Destination, Category: o.Category, Fields: d.Fields,
		RemovedFields: d.Removed, Decision: d.Outcome, Reason: d.Reason, RecordType: o.RecordType, RecordID: o.RecordID, DecidedAt: now}
	if d.Outcome == OutcomeWithhold {
		rec.Fields, rec.RemovedFields = nil, dedupe(o.Fields)
	}
	if a != nil {
		rec.AgreementID, rec.AgreementVersion = &a.ID, &a.Version
	}
	return rec
}

// dedupe is fs in the package's order of Fields, each once.
func dedupe(fs []Field) []Field {
	out := make([]Field, 0, len(fs))
	for _, f := range Fields {
		if slices.Contains(fs, f) {
			out = append(out, f)
		}
	}
	return out
}

// consentState is the learner's newest answer as the policy reads it
// against active: a grant for an earlier version counts for active when
// active shares nothing more (carriesOver).
func consentState(ctx context.Context, tx *sqlx.Tx, tenant, user uuid.UUID, active *Agreement) (ConsentState, error) {
	var st ConsentState
	err := tx.QueryRowxContext(ctx, `SELECT answer, agreement_version FROM consents WHERE tenant_id = $1 AND user_id = $2
		ORDER BY answered_at DESC, id DESC LIMIT 1`, tenant, user).Scan(&st.Answer, &st.Version)
	if pg.IsNoRows(err) {
		return ConsentState{}, nil
	}
	if err != nil {
		return ConsentState{}, pg.MapError(fmt.Errorf("read consent: %w", err))
	}
	return carry(ctx, tx, tenant, st, active)
}

// carry counts a grant given for an earlier version as given for active
// when active widens nothing it allowed.
func carry(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, st ConsentState, active *Agreement) (ConsentState, error) {
	if st.Answer != ConsentGranted || st.Version == active.Version {
		return st, nil
	}
	carried, err := carriesOver(ctx, tx, tenant, st.Version, active)
	if err != nil {
		return st, err
	}
	if carried {
		st.Version = active.Version
	}
	return st, nil
}
