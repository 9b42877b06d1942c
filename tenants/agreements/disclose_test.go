package agreements

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// gateRig is a disclosureRig with the agreements and learners' rights
// stores over the same database, as the application role.
type gateRig struct {
	*disclosureRig
	store    *Store
	learners *Learners
	admin    audit.Actor
}

func newGateRig(t testing.TB) *gateRig {
	r := newDisclosureRig(t)
	chain, err := audit.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &gateRig{disclosureRig: r, store: NewStore(r.db, chain, slog.New(slog.NewTextHandler(io.Discard, nil))),
		learners: NewLearners(r.db, chain), admin: audit.System("test")}
}

// activate makes terms (completion and external_id only, to the LMS,
// unless changed) the tenant's active agreement.
func (g *gateRig) activate(change func(*Terms)) Agreement {
	g.t.Helper()
	terms := Terms{EffectiveFrom: time.Now().Add(-time.Hour), Purposes: []Purpose{{Code: PurposeCompliance}},
		Categories: []Category{CategoryCompletion}, Fields: []Field{FieldExternalID},
		Destinations: []Destination{{Kind: DestinationLMS}}, Consent: ConsentNotRequired,
		DisclosureRetentionDays: 365, CopyRetentionDays: 30, OnEnd: OnEndDelete}
	if change != nil {
		change(&terms)
	}
	ctx := context.Background()
	a, err := g.store.Create(ctx, g.admin, g.tenant, terms)
	if err != nil {
		g.t.Fatal(err)
	}
	signed := time.Now().Add(-time.Minute)
	a, err = g.store.Activate(ctx, g.admin, g.tenant, a.ID, Signatures{Institution: &Signatory{Name: "Registrar", SignedAt: signed},
		Provider: &Signatory{Name: "Counsel", SignedAt: signed}})
	if err != nil {
		g.t.Fatal(err)
	}
	return a
}

func (g *gateRig) answer(a ConsentAnswer) {
	g.t.Helper()
	if _, err := g.store.SetConsent(context.Background(), g.admin, g.tenant, g.learner, a, ViaAPI); err != nil {
		g.t.Fatal(err)
	}
}

// disclose passes o through the gate in a transaction of its own.
func (g *gateRig) disclose(o Outbound) (Decision, error) {
	var d Decision
	err := pg.InTenant(context.Background(), g.db, g.tenant, func(tx *sqlx.Tx) error {
		var err error
		d, err = Disclose(context.Background(), tx, g.tenant, o, time.Now())
		return err
	})
	return d, err
}

func (g *gateRig) mustDisclose(o Outbound) Decision {
	g.t.Helper()
	d, err := g.disclose(o)
	if err != nil {
		g.t.Fatal(err)
	}
	return d
}

// last is the newest disclosure on record.
func (g *gateRig) last() Disclosure {
	g.t.Helper()
	ds, _, err := g.store.Disclosures(context.Background(), g.tenant, DisclosureFilter{Page: pg.Page{Limit: 1}})
	if err != nil || len(ds) != 1 {
		g.t.Fatalf("newest disclosure: %v %v", ds, err)
	}
	return ds[0]
}

func (g *gateRig) outbound(c Category, fs ...Field) Outbound {
	return Outbound{Learner: g.learner, Destination: Destination{Kind: DestinationLMS}, Category: c, Fields: fs, RecordType: "result"}
}

func TestDiscloseWithNoAgreementSharesNothing(t *testing.T) {
	g := newGateRig(t)
	d := g.mustDisclose(g.outbound(CategoryCompletion, FieldExternalID))
	if d.Outcome != OutcomeWithhold || d.Reason != ReasonNoAgreement {
		t.Fatalf("decision %+v", d)
	}
	rec := g.last()
	if rec.Decision != OutcomeWithhold || rec.Reason != ReasonNoAgreement || rec.AgreementID != nil || *rec.Learner != g.learner ||
		len(rec.Fields) != 0 || !slices.Equal(rec.RemovedFields, []Field{FieldExternalID}) {
		t.Fatalf("on record %+v", rec)
	}
}

func TestDiscloseSharesOnlyWhatTheAgreementAllows(t *testing.T) {
	g := newGateRig(t)
	a := g.activate(nil)

	score := g.mustDisclose(g.outbound(CategoryScores, FieldExternalID))
	if score.Outcome != OutcomeWithhold || score.Reason != ReasonCategoryNotAllowed {
		t.Fatalf("a score: %+v", score)
	}
	completion := g.mustDisclose(g.outbound(CategoryCompletion, FieldName, FieldEmail, FieldExternalID))
	if completion.Outcome != OutcomeShareMinimized || !slices.Equal(completion.Fields, []Field{FieldExternalID}) ||
		!slices.Equal(completion.Removed, []Field{FieldName, FieldEmail}) {
		t.Fatalf("a completion: %+v", completion)
	}
	rec := g.last()
	if rec.Decision != OutcomeShareMinimized || *rec.AgreementID != a.ID || *rec.AgreementVersion != a.Version ||
		!slices.Equal(rec.Fields, []Field{FieldExternalID}) || !slices.Equal(rec.RemovedFields, []Field{FieldName, FieldEmail}) {
		t.Fatalf("on record %+v", rec)
	}
	hook := uuid.New()
	elsewhere := g.outbound(CategoryCompletion)
	elsewhere.Destination = Destination{Kind: DestinationWebhook, ID: &hook}
	if d := g.mustDisclose(elsewhere); d.Reason != ReasonDestinationNotAllowed {
		t.Fatalf("to a webhook the agreement does not name: %+v", d)
	}
	if n := g.count(); n != 3 {
		t.Fatalf("%d decisions on record, want 3", n)
	}
}

// TestDiscloseReadsConsentAtTheMomentOfSending: each send reads the
// learner's answer as it stands then; a withdrawal stops the next record.
func TestDiscloseReadsConsentAtTheMomentOfSending(t *testing.T) {
	g := newGateRig(t)
	g.activate(func(t *Terms) { t.Consent = ConsentOptIn })
	record := g.outbound(CategoryCompletion, FieldExternalID)

	for _, step := range []struct {
		answer ConsentAnswer
		want   Outcome
		reason Reason
	}{
		{"", OutcomeWithhold, ReasonConsentMissing},
		{ConsentGranted, OutcomeShare, ""},
		{ConsentWithdrawn, OutcomeWithhold, ReasonConsentWithdrawn},
		{ConsentGranted, OutcomeShare, ""},
		{ConsentDeclined, OutcomeWithhold, ReasonConsentDeclined},
	} {
		if step.answer != "" {
			g.answer(step.answer)
		}
		d := g.mustDisclose(record)
		if d.Outcome != step.want || d.Reason != step.reason {
			t.Fatalf("after %q: %+v, want %s %s", step.answer, d, step.want, step.reason)
		}
		if rec := g.last(); rec.Decision != step.want || rec.Reason != step.reason {
			t.Fatalf("after %q on record: %+v", step.answer, rec)
		}
	}
}

// TestDiscloseCarriesAGrantOnlyToAVersionThatSharesNoMore: a grant for
// version 1 counts for a version 2 that allows the same; a version 3 that
// adds a category is asked again.
func TestDiscloseCarriesAGrantOnlyToAVersionThatSharesNoMore(t *testing.T) {
	g := newGateRig(t)
	g.activate(func(t *Terms) { t.Consent = ConsentOptIn })
	g.answer(ConsentGranted)
	g.activate(func(t *Terms) { t.Consent = ConsentOptIn; t.Purposes[0].Description = "reworded" })
	if d := g.mustDisclose(g.outbound(CategoryCompletion)); d.Outcome != OutcomeShare {
		t.Fatalf("under a version sharing no more: %+v", d)
	}
	g.activate(func(t *Terms) { t.Consent = ConsentOptIn; t.Categories = append(t.Categories, CategoryScores) })
	if d := g.mustDisclose(g.outbound(CategoryCompletion)); d.Reason != ReasonConsentMissing {
		t.Fatalf("under a version sharing more: %+v", d)
	}
}

func TestDiscloseWithholdsAboutAnErasedLearnerNamingNoOne(t *testing.T) {
	g := newGateRig(t)
	g.activate(nil)
	g.mustDisclose(g.outbound(CategoryCompletion))
	if err := g.learners.Erase(context.Background(), g.admin, g.tenant, g.learner); err != nil {
		t.Fatal(err)
	}
	d := g.mustDisclose(g.outbound(CategoryCompletion, FieldExternalID))
	if d.Outcome != OutcomeWithhold || d.Reason != ReasonLearnerErased {
		t.Fatalf("after the erasure: %+v", d)
	}
	rec := g.last()
	if rec.Learner != nil || rec.Reason != ReasonLearnerErased {
		t.Fatalf("on record %+v", rec)
	}
	var named int
	g.inTenant(func(tx *sqlx.Tx) error {
		return tx.Get(&named, `SELECT count(*) FROM disclosures WHERE user_id IS NOT NULL`)
	})
	if named != 0 {
		t.Fatalf("%d disclosures still name the erased learner", named)
	}
}

func TestDiscloseRefusesWhatItCannotDecideAndRecordsNothing(t *testing.T) {
	g := newGateRig(t)
	g.activate(nil)
	for _, tc := range []struct {
		name   string
		change func(*Outbound)
		code   apperr.Code
	}{
		{"an unknown learner", func(o *Outbound) { o.Learner = uuid.New() }, apperr.NotFound},
		{"no learner", func(o *Outbound) { o.Learner = uuid.Nil }, apperr.Invalid},
		{"an unknown category", func(o *Outbound) { o.Category = "grades" }, apperr.Invalid},
		{"an unknown field", func(o *Outbound) { o.Fields = []Field{"phone"} }, apperr.Invalid},
		{"a repeated field", func(o *Outbound) { o.Fields = []Field{FieldName, FieldName} }, apperr.Invalid},
		{"a webhook with no id", func(o *Outbound) { o.Destination = Destination{Kind: DestinationWebhook} }, apperr.Invalid},
		{"free text as record type", func(o *Outbound) { o.RecordType = "Final grade" }, apperr.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := g.outbound(CategoryCompletion, FieldExternalID)
			tc.change(&o)
			if _, err := g.disclose(o); !apperr.Is(err, tc.code) {
				t.Fatalf("error %v, want %v", err, tc.code)
			}
			if n := g.count(); n != 0 {
				t.Fatalf("%d decisions on record", n)
			}
		})
	}
}

// BenchmarkDisclose measures the cost of recording a decision: the gate
// as a sender calls it (read the learner, the agreement and the consent,
// decide, insert the disclosure), against the real database as the
// application role: one transaction per record (each commit waits for the
// write-ahead log), and a hundred records to a transaction as a batch of
// deliveries would.
func BenchmarkDisclose(b *testing.B) {
	g := newGateRig(b)
	g.activate(func(t *Terms) { t.Consent = ConsentOptIn })
	g.answer(ConsentGranted)
	o := g.outbound(CategoryCompletion, FieldName, FieldExternalID)
	for _, perTx := range []int{1, 100} {
		b.Run(fmt.Sprintf("records_per_tx=%d", perTx), func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				err := pg.InTenant(context.Background(), g.db, g.tenant, func(tx *sqlx.Tx) error {
					for range perTx {
						if d, err := Disclose(context.Background(), tx, g.tenant, o, time.Now()); err != nil || d.Outcome != OutcomeShareMinimized {
							return fmt.Errorf("%+v %w", d, err)
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				n += perTx
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "decisions/s")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/decision")
		})
	}
}
