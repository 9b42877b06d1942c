package agreements

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
)

// disclosureRig is a tenant with one learner, in a fresh database.
type disclosureRig struct {
	t       testing.TB
	db      *sqlx.DB
	tenant  uuid.UUID
	learner uuid.UUID
}

func newDisclosureRig(t testing.TB) *disclosureRig {
	r := &disclosureRig{t: t, db: pgtest.Open(t), tenant: uuid.New(), learner: uuid.New()}
	r.inTenant(func(tx *sqlx.Tx) error {
		if _, err := tx.Exec(`INSERT INTO tenants (id, slug, display_name, kind) VALUES ($1, 'uni', 'University', 'institution')`,
			r.tenant); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO users (id, tenant_id, created_at, updated_at) VALUES ($1, $2, now(), now())`, r.learner, r.tenant)
		return err
	})
	return r
}

func (r *disclosureRig) inTenant(fn func(*sqlx.Tx) error) {
	r.t.Helper()
	if err := pg.InTenant(context.Background(), r.db, r.tenant, fn); err != nil {
		r.t.Fatal(err)
	}
}

func (r *disclosureRig) record(d Disclosure) (Disclosure, error) {
	var got Disclosure
	err := pg.InTenant(context.Background(), r.db, r.tenant, func(tx *sqlx.Tx) error {
		var err error
		got, err = RecordDecision(context.Background(), tx, r.tenant, d)
		return err
	})
	return got, err
}

func (r *disclosureRig) count() int {
	r.t.Helper()
	var n int
	r.inTenant(func(tx *sqlx.Tx) error { return tx.Get(&n, `SELECT count(*) FROM disclosures`) })
	return n
}

// valid is a minimised share to the LMS, changed by change.
func (r *disclosureRig) valid(change func(*Disclosure)) Disclosure {
	d := Disclosure{Learner: &r.learner, Destination: Destination{Kind: DestinationLMS}, Category: CategoryScores,
		Fields: []Field{FieldExternalID}, RemovedFields: []Field{FieldEmail}, Decision: "share_minimized",
		Reason: "field_not_allowed", RecordType: "result", DecidedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if change != nil {
		change(&d)
	}
	return d
}

func TestRecordDecisionRefusesWhatDoesNotHoldTogether(t *testing.T) {
	r := newDisclosureRig(t)
	hook := uuid.New()
	for _, tc := range []struct {
		name, field string
		change      func(*Disclosure)
	}{
		{"unknown decision", "decision", func(d *Disclosure) { d.Decision = "maybe" }},
		{"no decision", "decision", func(d *Disclosure) { d.Decision = "" }},
		{"unknown destination kind", "destination.kind", func(d *Disclosure) { d.Destination = Destination{Kind: "ftp"} }},
		{"a webhook without its id", "destination.id", func(d *Disclosure) { d.Destination = Destination{Kind: DestinationWebhook} }},
		{"the lms with an id", "destination.id", func(d *Disclosure) { d.Destination = Destination{Kind: DestinationLMS, ID: &hook} }},
		{"unknown category", "category", func(d *Disclosure) { d.Category = "grades" }},
		{"unknown field", "fields[0]", func(d *Disclosure) { d.Fields = []Field{"phone"} }},
		{"a field both went and was removed", "removed_fields[0]", func(d *Disclosure) { d.Fields = []Field{FieldEmail} }},
		{"no learner", "learner", func(d *Disclosure) { d.Learner = nil }},
		{"an agreement without its version", "agreement_version", func(d *Disclosure) { id := uuid.New(); d.AgreementID = &id }},
		{"a share with fields removed", "removed_fields", func(d *Disclosure) { d.Decision = "share" }},
		{"a minimised share with nothing removed", "removed_fields", func(d *Disclosure) { d.RemovedFields = nil }},
		{"a withheld record whose fields went", "fields", func(d *Disclosure) { d.Decision = "withhold" }},
		{"withheld without a reason", "reason", func(d *Disclosure) { d.Decision, d.Fields, d.Reason = "withhold", nil, "" }},
		{"a reason that is not a code", "reason", func(d *Disclosure) { d.Reason = "=HYPERLINK(\"x\")" }},
		{"no record type", "record_type", func(d *Disclosure) { d.RecordType = "" }},
		{"no time", "decided_at", func(d *Disclosure) { d.DecidedAt = time.Time{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.record(r.valid(tc.change))
			if !apperr.Is(err, apperr.Invalid) || !namesField(err, tc.field) {
				t.Fatalf("err = %v, want Invalid naming %s", err, tc.field)
			}
			if n := r.count(); n != 0 {
				t.Fatalf("%d disclosures stored after a refused one", n)
			}
		})
	}
}

func namesField(err error, field string) bool {
	var e *apperr.Error
	return errors.As(err, &e) && slices.ContainsFunc(e.Fields, func(f apperr.FieldError) bool { return f.Field == field })
}

func TestRecordDecisionKeepsTheDecisionPastTheLearnersErasure(t *testing.T) {
	r := newDisclosureRig(t)
	hook, record := uuid.New(), uuid.New()
	d, err := r.record(r.valid(func(d *Disclosure) {
		d.Destination, d.RecordID = Destination{Kind: DestinationWebhook, ID: &hook}, &record
	}))
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == uuid.Nil || *d.Learner != r.learner || *d.Destination.ID != hook || *d.RecordID != record ||
		!slices.Equal(d.RemovedFields, []Field{FieldEmail}) || d.AgreementID != nil || d.AgreementVersion != nil {
		t.Fatalf("recorded %+v", d)
	}
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`DELETE FROM users WHERE tenant_id = $1 AND id = $2`, r.tenant, r.learner)
		return err
	})
	s := NewStore(r.db, nil, nil)
	list, _, err := s.Disclosures(context.Background(), r.tenant, DisclosureFilter{Page: pg.Page{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != d.ID || list[0].Learner != nil || list[0].Decision != "share_minimized" {
		t.Fatalf("after the learner's erasure: %+v", list)
	}
}

// TestRecordDecisionNamesAnAgreementVersionThatExists: a decision cannot
// claim a version its agreement never had.
func TestRecordDecisionNamesAnAgreementVersionThatExists(t *testing.T) {
	r := newDisclosureRig(t)
	agreement := uuid.New()
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO agreements (id, tenant_id, version, status, effective_from, purposes, categories, fields,
				destinations, consent, disclosure_retention_days, copy_retention_days, on_end, created_at, updated_at)
			VALUES ($1, $2, 1, 'draft', now(), '[]', '{}', '{}', '[]', 'not_required', 1, 1, 'delete', now(), now())`, agreement, r.tenant)
		return err
	})
	for version, ok := range map[int]bool{1: true, 2: false} {
		_, err := r.record(r.valid(func(d *Disclosure) { d.AgreementID, d.AgreementVersion = &agreement, &version }))
		if (err == nil) != ok {
			t.Errorf("version %d: err = %v", version, err)
		}
	}
	if n := r.count(); n != 1 {
		t.Fatalf("%d disclosures stored, want 1", n)
	}
}

func TestNeutralizeCSVCell(t *testing.T) {
	for in, want := range map[string]string{
		"=1+2":                   "'=1+2",
		"+33 1 23":               "'+33 1 23",
		"-2":                     "'-2",
		"@SUM(A1)":               "'@SUM(A1)",
		"\tx":                    "'\tx",
		"\rx":                    "'\rx",
		"consent_declined":       "consent_declined",
		"":                       "",
		"a=b":                    "a=b",
		"2026-03-01T12:00:00Z":   "2026-03-01T12:00:00Z",
		"external_id;name;email": "external_id;name;email",
	} {
		if got := neutralizeCSVCell(in); got != want {
			t.Errorf("neutralizeCSVCell(%q) = %q, want %q", in, got, want)
		}
	}
}
