package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

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
// in one transaction: each decided by the agreements now
// (agreements.DecideMany), sent over as many of the destination's slots
// as are free (at least the one d waited for), each attempt recorded. A
// throttling receiver stops the batch, and those not sent wait as it
// asked; those a batch has no time left for are left to their own jobs.
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
	key := "destination:" + dest.ID.String()
	release, ok := s.acquire(ctx, key, slotWait)
	if !ok {
		return []ran{{d, outcome{busy: s.Policy.busyWait()}}}, nil
	}
	defer release()
	siblings, err := s.claimSiblings(ctx, tx, d)
	if err != nil {
		return nil, err
	}
	batch := append([]row{d}, siblings...)
	decided, err := s.decideBatch(ctx, tx, batch)
	if err != nil {
		return nil, err
	}
	lanes := 1
	for lanes < min(len(batch), s.Policy.PerDestination) {
		more, ok := s.acquire(ctx, key, 0)
		if !ok {
			break
		}
		defer more()
		lanes++
	}
	sent, throttle, err := s.sendBatch(ctx, dest, creds, batch, decided, lanes)
	if err != nil {
		return nil, err
	}
	out := make([]ran, 0, len(batch))
	var record []agreements.Disclosure
	for i, b := range decided {
		switch {
		case b.withheld != nil:
			out = append(out, ran{batch[i], *b.withheld})
		case sent[i] != nil:
			out = append(out, ran{batch[i], *sent[i]})
			if a := sent[i].attempt; a == nil || a.Outcome == DryRun {
				continue // nothing left the hub (a dry run, a record that cannot be sent): not on record
			}
		case throttle > 0:
			out = append(out, ran{batch[i], outcome{deferred: throttle}})
			continue // not sent: not on record
		default:
			continue // no time left: its own job sends it
		}
		record = append(record, b.disclosure)
	}
	if err := agreements.RecordDecisions(ctx, tx, d.TenantID, record); err != nil {
		return nil, err
	}
	return out, nil
}

// sendBatch sends the batch's records the agreements let go, over lanes
// at once, until all went, a receiver throttled (throttle: the wait it
// asked for) or batchBudget ran out. sent answers each record's attempt,
// nil for one not sent.
func (s *Service) sendBatch(ctx context.Context, dest destinations.Destination, creds destinations.Credentials, batch []row,
	decided []decidedRecord, lanes int) (sent []*outcome, throttle time.Duration, err error) {
	sent = make([]*outcome, len(batch))
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	lane := make(chan struct{}, lanes)
	for i, b := range decided {
		if b.withheld != nil {
			continue
		}
		lane <- struct{}{}
		mu.Lock()
		stop := throttle > 0 || err != nil || time.Since(start) > batchBudget
		mu.Unlock()
		if stop {
			<-lane
			break
		}
		wg.Go(func() {
			defer func() { <-lane }()
			o, sendErr := s.sendOne(ctx, dest, creds, batch[i], b)
			mu.Lock()
			defer mu.Unlock()
			if sendErr != nil {
				err = sendErr
				return
			}
			sent[i] = &o
			if o.attempt != nil && o.attempt.Outcome == Throttled {
				throttle = max(throttle, s.Policy.throttleWait(o.attempt.RetryAfter, batch[i].Throttled+1))
			}
		})
	}
	wg.Wait()
	return sent, throttle, err
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
func (s *Service) sendOne(ctx context.Context, dest destinations.Destination, creds destinations.Credentials, d row,
	b decidedRecord) (outcome, error) {
	rec := s.record(d, b.result, b.decision)
	var res Result
	var err error
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
// due and no other worker holds, newest first (the oldest are the jobs
// about to run), up to Policy.Batch with d. Their learners' rows are then
// held FOR SHARE, skipping one an erasure holds: that delivery is left out
// (its job meets the erasure), so the batch never waits on an erasure
// while holding deliveries the erasure waits for.
func (s *Service) claimSiblings(ctx context.Context, tx *sqlx.Tx, d row) ([]row, error) {
	if s.Policy.Batch <= 1 {
		return nil, nil
	}
	var rows []row
	if err := tx.SelectContext(ctx, &rows, `SELECT `+rowColumns+` FROM deliveries
		WHERE tenant_id = $1 AND destination_id = $2 AND status = 'pending' AND id <> $3
			AND user_id IS NOT NULL AND result_id IS NOT NULL AND (not_before IS NULL OR not_before <= $4)
		ORDER BY created_at DESC LIMIT $5 FOR UPDATE SKIP LOCKED`, d.TenantID, *d.DestinationID, d.ID, s.Now(), s.Policy.Batch-1); err != nil {
		return nil, fmt.Errorf("delivery: claim batch: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	users := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		users[i] = *r.UserID
	}
	held, err := agreements.HoldLearners(ctx, tx, d.TenantID, users)
	if err != nil {
		return nil, err
	}
	if len(held) == len(users) {
		return rows, nil
	}
	out := rows[:0]
	for _, r := range rows {
		if slices.Contains(held, *r.UserID) {
			out = append(out, r)
		}
	}
	return out, nil
}
