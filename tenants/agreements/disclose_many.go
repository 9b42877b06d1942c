package agreements

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/pg"
)

// DecideMany is Disclose for a batch of outbound records sent together
// in tx, in a few statements whatever the batch's size: the same reads
// and decisions, each with the Disclosure that records it. It records
// nothing itself: the sender records (RecordDecisions, in tx) the
// decisions on the records it withheld and sent, and leaves out those it
// did not get to, which stay to be decided again. The learners' rows are
// held FOR SHARE (in id order) until tx ends. Decisions and disclosures
// answer os in order. Errors as Disclose's; one invalid record fails the
// batch.
func DecideMany(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, os []Outbound, now time.Time) ([]Decision, []Disclosure, error) {
	if len(os) == 0 {
		return nil, nil, nil
	}
	learners := make([]uuid.UUID, 0, len(os))
	for _, o := range os {
		if err := o.validate(); err != nil {
			return nil, nil, err
		}
		learners = append(learners, o.Learner)
	}
	slices.SortFunc(learners, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	learners = slices.Compact(learners)
	erased, err := lockLearners(ctx, tx, tenant, learners)
	if err != nil {
		return nil, nil, err
	}
	active, err := activeIn(ctx, tx, tenant)
	if err != nil {
		return nil, nil, fmt.Errorf("agreements: disclose: %w", err)
	}
	consents, err := consentStates(ctx, tx, tenant, learners, active)
	if err != nil {
		return nil, nil, fmt.Errorf("agreements: disclose: %w", err)
	}
	decisions := make([]Decision, len(os))
	records := make([]Disclosure, len(os))
	for i, o := range os {
		gone := erased[o.Learner]
		decisions[i] = Decide(active, consents[o.Learner], Record{Category: o.Category, Fields: o.Fields, Erased: gone}, o.Destination, now)
		records[i] = o.disclosure(decisions[i], active, gone, now)
	}
	return decisions, records, nil
}

// lockLearners holds the learners' rows FOR SHARE, in id order, and says
// which were erased; NotFound when one is not the tenant's.
func lockLearners(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, learners []uuid.UUID) (map[uuid.UUID]bool, error) {
	var rows []struct {
		ID     uuid.UUID  `db:"id"`
		Erased *time.Time `db:"erased_at"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT id, erased_at FROM users WHERE tenant_id = $1 AND id = ANY ($2)
		ORDER BY id FOR SHARE`, tenant, pq.Array(learners)); err != nil {
		return nil, pg.MapError(fmt.Errorf("agreements: disclose: read learners: %w", err))
	}
	if len(rows) != len(learners) {
		return nil, noLearner()
	}
	erased := make(map[uuid.UUID]bool, len(rows))
	for _, r := range rows {
		erased[r.ID] = r.Erased != nil
	}
	return erased, nil
}

// consentStates is consentState for many learners in one read.
func consentStates(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, learners []uuid.UUID, active *Agreement) (map[uuid.UUID]ConsentState, error) {
	out := make(map[uuid.UUID]ConsentState, len(learners))
	if active == nil {
		return out, nil
	}
	var rows []struct {
		User    uuid.UUID     `db:"user_id"`
		Answer  ConsentAnswer `db:"answer"`
		Version int           `db:"agreement_version"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT DISTINCT ON (user_id) user_id, answer, agreement_version FROM consents
		WHERE tenant_id = $1 AND user_id = ANY ($2) ORDER BY user_id, answered_at DESC, id DESC`, tenant, pq.Array(learners)); err != nil {
		return nil, pg.MapError(fmt.Errorf("read consents: %w", err))
	}
	for _, r := range rows {
		st, err := carry(ctx, tx, tenant, ConsentState{Answer: r.Answer, Version: r.Version}, active)
		if err != nil {
			return nil, err
		}
		out[r.User] = st
	}
	return out, nil
}

// RecordDecisions is RecordDecision for many, in one statement: the
// decisions DecideMany made on the records sent or withheld.
func RecordDecisions(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, ds []Disclosure) error {
	if len(ds) == 0 {
		return nil
	}
	const cols = 15
	args := make([]any, 0, len(ds)*cols)
	for _, d := range ds {
		if err := d.validate(); err != nil {
			return err
		}
		args = append(args, uuid.New(), tenant, d.Learner, d.Destination.Kind, d.Destination.ID, d.Category, fields(d.Fields),
			fields(d.RemovedFields), d.AgreementID, d.AgreementVersion, d.Decision, d.Reason, d.RecordType, d.RecordID, d.DecidedAt)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO disclosures (id, tenant_id, user_id, destination_kind, destination_id, category,
			fields, removed_fields, agreement_id, agreement_version, decision, reason, record_type, record_id, decided_at)
		VALUES `+pg.Values(len(ds), cols), args...)
	if err != nil {
		return pg.MapError(fmt.Errorf("agreements: record decisions: %w", err))
	}
	return nil
}
