package agreements

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
)

// TestDecideManyDecidesAsDiscloseDoes: a batch of learners in every
// consent state, erased among them, gets from DecideMany the decisions
// and disclosures Disclose gives each alone.
func TestDecideManyDecidesAsDiscloseDoes(t *testing.T) {
	g := newGateRig(t)
	g.activate(func(t *Terms) {
		t.Consent, t.Categories, t.Fields = ConsentOptOut, []Category{CategoryScores, CategoryCompletion}, []Field{FieldExternalID}
	})
	ctx := context.Background()
	learners := []uuid.UUID{g.learner}
	for range 4 {
		id := uuid.New()
		g.inTenant(func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`INSERT INTO users (id, tenant_id, created_at, updated_at) VALUES ($1, $2, now(), now())`, id, g.tenant)
			return err
		})
		learners = append(learners, id)
	}
	for i, answer := range []ConsentAnswer{ConsentWithdrawn, ConsentGranted, ConsentDeclined} {
		if _, err := g.store.SetConsent(ctx, g.admin, g.tenant, learners[i+1], answer, ViaAPI); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.learners.Erase(ctx, g.admin, g.tenant, learners[4]); err != nil {
		t.Fatal(err)
	}
	var os []Outbound
	for _, l := range learners {
		for _, c := range []Category{CategoryScores, CategoryProgress} {
			os = append(os, Outbound{Learner: l, Destination: Destination{Kind: DestinationLMS}, Category: c,
				Fields: []Field{FieldName, FieldExternalID}, RecordType: "result"})
		}
	}
	var many []Decision
	var records []Disclosure
	err := pg.InTenant(ctx, g.db, g.tenant, func(tx *sqlx.Tx) error {
		var err error
		many, records, err = DecideMany(ctx, tx, g.tenant, os, g.store.Now())
		if err != nil {
			return err
		}
		return RecordDecisions(ctx, tx, g.tenant, records)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range os {
		one := g.mustDisclose(o)
		if one.Outcome != many[i].Outcome || one.Reason != many[i].Reason || !slices.Equal(one.Fields, many[i].Fields) ||
			!slices.Equal(one.Removed, many[i].Removed) {
			t.Errorf("record %d: DecideMany %+v, Disclose %+v", i, many[i], one)
		}
		last := g.last()
		rec := records[i]
		if (rec.Learner == nil) != (last.Learner == nil) || rec.Decision != last.Decision || rec.Reason != last.Reason ||
			!slices.Equal(rec.RemovedFields, last.RemovedFields) || *rec.AgreementVersion != *last.AgreementVersion {
			t.Errorf("record %d: disclosure %+v, Disclose's %+v", i, rec, last)
		}
	}
	if n := g.count(); n != 2*len(os) {
		t.Fatalf("%d disclosures, want %d", n, 2*len(os))
	}
}

func TestDecideManyRefusesWhatDiscloseRefuses(t *testing.T) {
	g := newGateRig(t)
	g.activate(nil)
	ctx := context.Background()
	good := Outbound{Learner: g.learner, Destination: Destination{Kind: DestinationLMS}, Category: CategoryCompletion, RecordType: "result"}
	for name, bad := range map[string]Outbound{
		"unknown learner":  {Learner: uuid.New(), Destination: good.Destination, Category: good.Category, RecordType: "result"},
		"unknown category": {Learner: g.learner, Destination: good.Destination, Category: "grades", RecordType: "result"},
	} {
		err := pg.InTenant(ctx, g.db, g.tenant, func(tx *sqlx.Tx) error {
			_, _, err := DecideMany(ctx, tx, g.tenant, []Outbound{good, bad}, g.store.Now())
			return err
		})
		if !apperr.Is(err, apperr.NotFound) && !apperr.Is(err, apperr.Invalid) {
			t.Errorf("%s: %v, want NotFound or Invalid", name, err)
		}
	}
	if g.count() != 0 {
		t.Fatal("a refused batch left disclosures")
	}
}
