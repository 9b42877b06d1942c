package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/destinations"
)

// batchBudget is how long a batch goes on sending: the deliveries it has
// not got to by then are left to their own jobs.
const batchBudget = 10 * time.Second

// ran is a delivery and what one run came to.
type ran struct {
	d row
	o outcome
}

// sendRecords sends d, and with it the destination's other pending
// deliveries that are due (up to Policy.Batch), to a webhook or an LRS,
// one after another in one transaction: each decided by the agreements
// now (agreements.DecideMany), each attempt recorded. A throttling
// receiver stops the batch, and the rest wait as it asked; the others'
// jobs then find them sent, or send them.
func (s *Service) sendRecords(ctx context.Context, tx *sqlx.Tx, d row) ([]ran, error) {
	dest, creds, err := s.dests.CredentialsIn(ctx, tx, d.TenantID, *d.DestinationID)
	switch {
	case apperr.Is(err, apperr.NotFound):
		return []ran{{d, outcome{end: StatusFailed, reason: ReasonDestinationGone}}}, nil
	case err != nil:
		return nil, fmt.Errorf("delivery: destination: %w", err)
	case !dest.Enabled:
		return []ran{{d, outcome{end: StatusFailed, reason: ReasonDestinationOff}}}, nil
	}
	release, ok := s.acquire(ctx, "destination:"+dest.ID.String())
	if !ok {
		return []ran{{d, outcome{busy: s.Policy.busyWait()}}}, nil
	}
	defer release()
	batch, err := s.claimSiblings(ctx, tx, d)
	if err != nil {
		return nil, err
	}
	batch = append([]row{d}, batch...)
	decided, err := s.decideBatch(ctx, tx, batch)
	if err != nil {
		return nil, err
	}
	out := make([]ran, 0, len(batch))
	var record []agreements.Disclosure
	start := time.Now()
	for i, b := range decided {
		if b.withheld != nil {
			out = append(out, ran{batch[i], *b.withheld})
			record = append(record, b.disclosure)
			continue
		}
		if time.Since(start) > batchBudget {
			break // left pending, undecided: its own job sends it
		}
		o, err := s.sendOne(ctx, tx, dest, creds, batch[i], b)
		if err != nil {
			return nil, err
		}
		out = append(out, ran{batch[i], o})
		record = append(record, b.disclosure)
		if o.attempt != nil && o.attempt.Outcome == Throttled {
			// The receiver asked for a pause: the rest wait as long.
			wait := s.Policy.throttleWait(o.attempt.RetryAfter, batch[i].Throttled+1)
			for j := i + 1; j < len(batch); j++ {
				if decided[j].withheld == nil {
					out = append(out, ran{batch[j], outcome{deferred: wait}})
				} else {
					out = append(out, ran{batch[j], *decided[j].withheld})
					record = append(record, decided[j].disclosure)
				}
			}
			break
		}
	}
	if err := agreements.RecordDecisions(ctx, tx, d.TenantID, record); err != nil {
		return nil, err
	}
	return out, nil
}

// decidedRecord is one delivery of a batch as the agreements decided it.
type decidedRecord struct {
	result     reported
	decision   agreements.Decision
	disclosure agreements.Disclosure
	withheld   *outcome
}

// decideBatch reads the batch's results and decides each now.
func (s *Service) decideBatch(ctx context.Context, tx *sqlx.Tx, batch []row) ([]decidedRecord, error) {
	ids := make([]uuid.UUID, len(batch))
	for i, b := range batch {
		ids[i] = *b.ResultID
	}
	results, err := loadResults(ctx, tx, batch[0].TenantID, ids)
	if err != nil {
		return nil, err
	}
	outs := make([]agreements.Outbound, len(batch))
	for i, b := range batch {
		r, ok := results[*b.ResultID]
		if !ok {
			return nil, fmt.Errorf("delivery: result %s is gone", *b.ResultID)
		}
		outs[i] = agreements.Outbound{Learner: *b.UserID, Destination: b.destination(), Category: agreements.Category(b.Category),
			Fields: r.fields(), RecordType: recordType, RecordID: b.ResultID}
	}
	decisions, disclosures, err := agreements.DecideMany(ctx, tx, batch[0].TenantID, outs, s.Now())
	if err != nil {
		return nil, err
	}
	out := make([]decidedRecord, len(batch))
	for i, b := range batch {
		out[i] = decidedRecord{result: results[*b.ResultID], decision: decisions[i], disclosure: disclosures[i]}
		if decisions[i].Outcome == agreements.OutcomeWithhold {
			out[i].withheld = &outcome{end: StatusWithheld, reason: string(decisions[i].Reason)}
		}
	}
	return out, nil
}

// sendOne sends one decided record to the destination.
func (s *Service) sendOne(ctx context.Context, tx *sqlx.Tx, dest destinations.Destination, creds destinations.Credentials, d row,
	b decidedRecord) (outcome, error) {
	rec, err := s.record(ctx, tx, d, b.result, b.decision)
	if err != nil {
		return outcome{}, err
	}
	var res Result
	if dest.Kind == destinations.KindWebhook {
		res, err = s.sender.SendWebhook(ctx, Webhook{URL: dest.URL, Secrets: creds.Secrets, DryRun: dest.DryRun},
			RecordEvent(EventID(d.ID), rec))
	} else {
		var st Statement
		if st, err = NewStatement(rec, s.Home, dest.ID); err == nil {
			res, err = s.sender.SendStatement(ctx, LRS{Endpoint: dest.URL, Username: creds.Username, Password: creds.Password,
				DryRun: dest.DryRun}, st)
		}
	}
	if errors.Is(err, ErrInvalid) {
		s.log.Warn("delivery: record cannot be sent", "delivery", d.ID, "err", err)
		return outcome{end: StatusFailed, reason: ReasonInvalidRecord}, nil
	}
	if err != nil {
		return outcome{}, err
	}
	return outcome{attempt: &res, receivedAt: b.result.ReceivedAt}, nil
}

// claimSiblings locks the destination's other pending deliveries that are
// due, oldest first, up to Policy.Batch with d. Their learners' rows are
// held FOR SHARE first, as d's are; one an erasure holds is left out
// (its job meets the erasure), as is one another worker holds.
func (s *Service) claimSiblings(ctx context.Context, tx *sqlx.Tx, d row) ([]row, error) {
	if s.Policy.Batch <= 1 {
		return nil, nil
	}
	var cands []struct {
		ID     uuid.UUID `db:"id"`
		UserID uuid.UUID `db:"user_id"`
	}
	if err := tx.SelectContext(ctx, &cands, `SELECT id, user_id FROM deliveries
		WHERE tenant_id = $1 AND destination_id = $2 AND status = 'pending' AND id <> $3
			AND user_id IS NOT NULL AND result_id IS NOT NULL AND (not_before IS NULL OR not_before <= $4)
		ORDER BY created_at LIMIT $5`, d.TenantID, *d.DestinationID, d.ID, s.Now(), s.Policy.Batch-1); err != nil {
		return nil, fmt.Errorf("delivery: find batch: %w", err)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	users := make([]uuid.UUID, len(cands))
	for i, c := range cands {
		users[i] = c.UserID
	}
	var held []uuid.UUID
	if err := tx.SelectContext(ctx, &held, `SELECT id FROM users WHERE tenant_id = $1 AND id = ANY ($2)
		ORDER BY id FOR SHARE SKIP LOCKED`, d.TenantID, pq.Array(users)); err != nil {
		return nil, fmt.Errorf("delivery: lock batch learners: %w", err)
	}
	var ids []uuid.UUID
	for _, c := range cands {
		for _, u := range held {
			if c.UserID == u {
				ids = append(ids, c.ID)
				break
			}
		}
	}
	var rows []row
	if err := tx.SelectContext(ctx, &rows, `SELECT `+rowColumns+` FROM deliveries
		WHERE tenant_id = $1 AND id = ANY ($2) AND status = 'pending' AND user_id IS NOT NULL AND result_id IS NOT NULL
		ORDER BY created_at FOR UPDATE SKIP LOCKED`, d.TenantID, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("delivery: lock batch: %w", err)
	}
	return rows, nil
}
