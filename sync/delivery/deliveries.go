package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/riverqueue/river"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
)

// Delivery is one (result, destination) as the tenant's admin sees it:
// where it was meant to go, how it ended or why it is still pending.
type Delivery struct {
	ID     uuid.UUID  `db:"id" json:"id"`
	Result *uuid.UUID `db:"result_id" json:"result_id"` // null once the result is erased
	// Learner is the hub's user id of the learner; null once erased.
	Learner         *uuid.UUID             `db:"user_id" json:"learner"`
	Kind            string                 `db:"destination_kind" json:"-"`
	DestinationID   *uuid.UUID             `db:"destination_id" json:"-"`
	Destination     agreements.Destination `db:"-" json:"destination"`
	ResourceLinkRef *uuid.UUID             `db:"resource_link_ref" json:"resource_link_ref"`
	Category        string                 `db:"category" json:"category"`
	Status          string                 `db:"status" json:"status"`
	Reason          *string                `db:"reason" json:"reason"`
	Attempts        int                    `db:"attempts" json:"attempts"`
	Throttled       int                    `db:"throttled" json:"throttled"`
	LastStatus      *int                   `db:"last_status" json:"last_status"`
	LastError       *string                `db:"last_error" json:"last_error"`
	OccurredAt      time.Time              `db:"occurred_at" json:"occurred_at"`
	ScoreTimestamp  *time.Time             `db:"score_timestamp" json:"score_timestamp"`
	CreatedAt       time.Time              `db:"created_at" json:"created_at"`
	UpdatedAt       time.Time              `db:"updated_at" json:"updated_at"`
	DeliveredAt     *time.Time             `db:"delivered_at" json:"delivered_at"`
}

const deliveryColumns = `id, result_id, user_id, destination_kind, destination_id, resource_link_ref, category, status,
	reason, attempts, throttled, last_status, last_error, occurred_at, score_timestamp, created_at, updated_at, delivered_at`

// named fills Destination from the columns it is read from.
func (d Delivery) named() Delivery {
	d.Destination = agreements.Destination{Kind: agreements.DestinationKind(d.Kind), ID: d.DestinationID}
	return d
}

// Attempt is one try at sending a delivery, with the receiver's answer.
type Attempt struct {
	N         int       `db:"n" json:"n"`
	At        time.Time `db:"at" json:"at"`
	Outcome   string    `db:"outcome" json:"outcome"`
	Status    *int      `db:"status" json:"status"`
	LatencyMS *float64  `db:"latency_ms" json:"latency_ms"`
	Error     *string   `db:"error" json:"error"`
	Response  *string   `db:"response" json:"response"`
	// Request is, in a dry run, the request as it would have gone, its
	// credentials redacted; null otherwise.
	Request *json.RawMessage `db:"request" json:"request"`
}

// Filter selects deliveries: zero values mean any.
type Filter struct {
	Status          string
	DestinationID   *uuid.UUID
	DestinationKind string
	Learner         *uuid.UUID
	Page            pg.Page
}

// Statuses are a delivery's statuses, for validating a filter.
var Statuses = []string{StatusPending, StatusDelivered, StatusDryRun, StatusWithheld, StatusSuperseded, StatusFailed, StatusDead}

// Redrivable are the statuses a delivery may be redriven from.
var Redrivable = []string{StatusDead, StatusFailed}

// List lists the tenant's deliveries f selects, newest first by
// (created_at, id), the keyset of the tenants' and statuses' indexes.
func (s *Service) List(ctx context.Context, tenant uuid.UUID, f Filter) ([]Delivery, *pg.Cursor, error) {
	var afterAt *time.Time
	var afterID *uuid.UUID
	if f.Page.After != nil {
		afterAt, afterID = &f.Page.After.At, &f.Page.After.ID
	}
	var list []Delivery
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &list, `SELECT `+deliveryColumns+` FROM deliveries
			WHERE tenant_id = $1 AND ($2 = '' OR status = $2) AND ($3::uuid IS NULL OR destination_id = $3)
				AND ($4 = '' OR destination_kind = $4) AND ($5::uuid IS NULL OR user_id = $5)
				AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
			ORDER BY created_at DESC, id DESC LIMIT $8`,
			tenant, f.Status, f.DestinationID, f.DestinationKind, f.Learner, afterAt, afterID, f.Page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("delivery: list: %w", err))
	}
	for i := range list {
		list[i] = list[i].named()
	}
	return pg.TrimPage(list, f.Page.Limit, func(d Delivery) pg.Cursor { return pg.Cursor{At: d.CreatedAt, ID: d.ID} })
}

// Get is one of the tenant's deliveries with its attempts, oldest first;
// NotFound when the tenant has none by that id.
func (s *Service) Get(ctx context.Context, tenant, id uuid.UUID) (Delivery, []Attempt, error) {
	var d Delivery
	var attempts []Attempt
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		if d, err = getDelivery(ctx, tx, tenant, id, false); err != nil {
			return err
		}
		return tx.SelectContext(ctx, &attempts, `SELECT n, at, outcome, status, latency_ms, error, response, request
			FROM delivery_attempts WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY n`, tenant, id)
	})
	if err != nil {
		return Delivery{}, nil, pg.MapError(fmt.Errorf("delivery: get: %w", err))
	}
	return d, attempts, nil
}

var errNoDelivery = apperr.New(apperr.NotFound, "no such delivery")

// getDelivery reads the delivery in tx, locked for the rest of it when
// lock is set.
func getDelivery(ctx context.Context, tx *sqlx.Tx, tenant, id uuid.UUID, lock bool) (Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM deliveries WHERE tenant_id = $1 AND id = $2`
	if lock {
		q += ` FOR UPDATE`
	}
	var d Delivery
	err := tx.GetContext(ctx, &d, q, tenant, id)
	if pg.IsNoRows(err) {
		return Delivery{}, errNoDelivery
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("read: %w", err)
	}
	return d.named(), nil
}

// Redrive sends a dead or failed delivery again: back to pending with
// its attempts and throttles counted from zero and its reason cleared,
// its job queued and the redrive audited, in one transaction. Its
// attempts so far stay on record, and the worker decides it afresh
// (the agreement and consent as they are now). Conflict for a delivery
// in any other status; NotFound for none.
func (s *Service) Redrive(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) (Delivery, error) {
	if s.Jobs == nil {
		return Delivery{}, fmt.Errorf("delivery: redrive: no job engine")
	}
	var d Delivery
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		was, err := getDelivery(ctx, tx, tenant, id, true)
		if err != nil {
			return err
		}
		if was.Status != StatusDead && was.Status != StatusFailed {
			return apperr.New(apperr.Conflict, "the delivery is %s: only a dead or failed delivery can be redriven", was.Status)
		}
		now := s.Now()
		if err := tx.GetContext(ctx, &d, `UPDATE deliveries SET status = 'pending', reason = NULL, not_before = NULL, attempts = 0, throttled = 0,
				updated_at = $3
			WHERE tenant_id = $1 AND id = $2 RETURNING `+deliveryColumns, tenant, id, now); err != nil {
			return fmt.Errorf("requeue: %w", err)
		}
		job, err := s.Jobs.InsertTx(ctx, tx.Tx, DeliverArgs{TenantID: tenant, DeliveryID: id}, nil)
		if err != nil {
			return fmt.Errorf("queue job: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET job_id = $3 WHERE tenant_id = $1 AND id = $2`, tenant, id, job.Job.ID); err != nil {
			return fmt.Errorf("note job: %w", err)
		}
		details := map[string]string{"status": was.Status, "destination_kind": was.Kind}
		if was.Reason != nil {
			details["reason"] = *was.Reason
		}
		_, err = s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "delivery.redriven", TargetType: "delivery",
			TargetID: id.String(), Details: details}, now)
		return err
	})
	if err != nil {
		return Delivery{}, pg.MapError(fmt.Errorf("delivery: redrive: %w", err))
	}
	s.m.count(d.Kind, "redriven", 1)
	return d.named(), nil
}

// RedriveBatch is how many deliveries RedriveAll redrives per
// transaction, each batch audited once.
const RedriveBatch = 1000

// RedriveAll redrives every dead or failed delivery of the tenant that f
// selects (f.Status: dead, failed, or "" for both; f.Page is not used),
// as Redrive does one, in batches of RedriveBatch per transaction, each
// audited as delivery.redriven_bulk with its count. Deliveries are taken
// oldest first, and each at most once: one that fails again while later
// batches run is not redriven again. It answers how many it redrove;
// after an error, the batches before it stay redriven.
func (s *Service) RedriveAll(ctx context.Context, by audit.Actor, tenant uuid.UUID, f Filter) (int, error) {
	if s.Jobs == nil {
		return 0, fmt.Errorf("delivery: redrive: no job engine")
	}
	statuses := Redrivable
	switch f.Status {
	case "":
	case StatusDead, StatusFailed:
		statuses = []string{f.Status}
	default:
		return 0, apperr.InvalidFields(apperr.FieldError{Field: "status", Message: "must be dead or failed"})
	}
	var after *pg.Cursor
	total := 0
	for {
		n, last, err := s.redriveBatch(ctx, by, tenant, f, statuses, after)
		total += n
		if err != nil {
			return total, pg.MapError(fmt.Errorf("delivery: redrive: %w", err))
		}
		if n < RedriveBatch {
			return total, nil
		}
		after = last
	}
}

// redriveBatch redrives up to RedriveBatch deliveries after the keyset
// position after (oldest first), and answers the last one's position.
func (s *Service) redriveBatch(ctx context.Context, by audit.Actor, tenant uuid.UUID, f Filter, statuses []string, after *pg.Cursor) (int, *pg.Cursor, error) {
	var afterAt *time.Time
	var afterID *uuid.UUID
	if after != nil {
		afterAt, afterID = &after.At, &after.ID
	}
	var redriven []struct {
		ID        uuid.UUID `db:"id"`
		Kind      string    `db:"destination_kind"`
		CreatedAt time.Time `db:"created_at"`
	}
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		now := s.Now()
		if err := tx.SelectContext(ctx, &redriven, `UPDATE deliveries SET status = 'pending', reason = NULL, not_before = NULL, attempts = 0,
				throttled = 0, updated_at = $9
			WHERE tenant_id = $1 AND id IN (SELECT id FROM deliveries
				WHERE tenant_id = $1 AND status = ANY ($2::text[]) AND ($3::uuid IS NULL OR destination_id = $3)
					AND ($4 = '' OR destination_kind = $4) AND ($5::uuid IS NULL OR user_id = $5)
					AND ($6::timestamptz IS NULL OR (created_at, id) > ($6, $7::uuid))
				ORDER BY created_at, id LIMIT $8 FOR UPDATE)
			RETURNING id, destination_kind, created_at`,
			tenant, pq.StringArray(statuses), f.DestinationID, f.DestinationKind, f.Learner, afterAt, afterID, RedriveBatch, now); err != nil {
			return fmt.Errorf("requeue: %w", err)
		}
		if len(redriven) == 0 {
			return nil
		}
		params := make([]river.InsertManyParams, len(redriven))
		for i, d := range redriven {
			params[i] = river.InsertManyParams{Args: DeliverArgs{TenantID: tenant, DeliveryID: d.ID}}
		}
		jobs, err := s.Jobs.InsertManyTx(ctx, tx.Tx, params)
		if err != nil {
			return fmt.Errorf("queue jobs: %w", err)
		}
		ids, jobIDs := make([]uuid.UUID, len(redriven)), make([]int64, len(redriven))
		for i, d := range redriven {
			ids[i], jobIDs[i] = d.ID, jobs[i].Job.ID
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries d SET job_id = v.job_id
			FROM unnest($2::uuid[], $3::bigint[]) AS v (id, job_id) WHERE d.tenant_id = $1 AND d.id = v.id`,
			tenant, pq.Array(ids), pq.Array(jobIDs)); err != nil {
			return fmt.Errorf("note jobs: %w", err)
		}
		_, err = s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "delivery.redriven_bulk", TargetType: "tenant",
			TargetID: tenant.String(), Details: filterDetails(f, len(redriven))}, now)
		return err
	})
	if err != nil || len(redriven) == 0 {
		return 0, nil, err
	}
	last := redriven[0]
	for _, d := range redriven[1:] {
		if d.CreatedAt.After(last.CreatedAt) || (d.CreatedAt.Equal(last.CreatedAt) && d.ID.String() > last.ID.String()) {
			last = d
		}
	}
	for _, d := range redriven {
		s.m.count(d.Kind, "redriven", 1)
	}
	return len(redriven), &pg.Cursor{At: last.CreatedAt, ID: last.ID}, nil
}

// filterDetails is a bulk redrive's audit details: how many, and the
// filter that chose them.
func filterDetails(f Filter, n int) map[string]string {
	d := map[string]string{"count": strconv.Itoa(n)}
	if f.Status != "" {
		d["status"] = f.Status
	}
	if f.DestinationID != nil {
		d["destination"] = f.DestinationID.String()
	}
	if f.DestinationKind != "" {
		d["kind"] = f.DestinationKind
	}
	if f.Learner != nil {
		d["learner"] = f.Learner.String()
	}
	return d
}
