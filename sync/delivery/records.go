package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/tenants/agreements"
)

// reported is a result with what a record about it may carry, as read
// when it is sent.
type reported struct {
	ID               uuid.UUID `db:"id"`
	UserID           uuid.UUID `db:"user_id"`
	ActivityID       string    `db:"activity_id"`
	ActivityTitle    string    `db:"activity_title"`
	ResourceLinkID   string    `db:"resource_link_id"`
	ScoreGiven       *float64  `db:"score_given"`
	ScoreMaximum     *float64  `db:"score_maximum"`
	ActivityProgress string    `db:"activity_progress"`
	GradingProgress  string    `db:"grading_progress"`
	Completed        *bool     `db:"completed"`
	Success          *bool     `db:"success"`
	TimeSpentSeconds *int64    `db:"time_spent_seconds"`
	Comment          string    `db:"comment"`
	OccurredAt       time.Time `db:"occurred_at"`
	ReceivedAt       time.Time `db:"received_at"`
	Name             string    `db:"name"`
	Email            string    `db:"email"`
	ExternalID       string    `db:"external_id"`
	// The course of the result's resource link, for the record: the
	// newest of the learner's courses with that link.
	CourseID    string `db:"course_id"`
	CourseTitle string `db:"course_title"`
	LinkTitle   string `db:"link_title"`
}

// loadResult reads the delivery's result, its learner's identity fields
// (the institution's id for them: the newest lis_person_sourcedid) and
// the activity's title.
func loadResult(ctx context.Context, tx *sqlx.Tx, d row) (reported, error) {
	rs, err := loadResults(ctx, tx, d.TenantID, []uuid.UUID{*d.ResultID})
	if err != nil {
		return reported{}, err
	}
	r, ok := rs[*d.ResultID]
	if !ok {
		return reported{}, fmt.Errorf("delivery: result %s is gone", *d.ResultID)
	}
	return r, nil
}

// loadResults is loadResult for many results, by id.
func loadResults(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]reported, error) {
	var rows []reported
	err := tx.SelectContext(ctx, &rows, `SELECT r.id, r.user_id, coalesce(r.activity_id, '') AS activity_id,
			coalesce(a.title, '') AS activity_title, coalesce(r.resource_link_id, '') AS resource_link_id, r.score_given,
			r.score_maximum, r.activity_progress, r.grading_progress, r.completed, r.success, r.time_spent_seconds,
			coalesce(r.comment, '') AS comment, r.occurred_at, r.received_at, coalesce(u.name, '') AS name,
			coalesce(u.email, '') AS email,
			coalesce((SELECT i.lis_person_sourcedid FROM lti_identities i
				WHERE i.tenant_id = r.tenant_id AND i.user_id = r.user_id AND i.lis_person_sourcedid IS NOT NULL
				ORDER BY i.last_launch_at DESC NULLS LAST LIMIT 1), '') AS external_id,
			coalesce(c.context_id, '') AS course_id, coalesce(c.title, '') AS course_title, coalesce(c.link_title, '') AS link_title
		FROM results r
		JOIN users u ON u.tenant_id = r.tenant_id AND u.id = r.user_id
		LEFT JOIN activities a ON a.id = r.activity_id
		LEFT JOIN LATERAL (SELECT ctx.context_id, ctx.title, rl.title AS link_title
			FROM resource_links rl LEFT JOIN contexts ctx ON ctx.tenant_id = rl.tenant_id AND ctx.id = rl.context_ref
			WHERE rl.tenant_id = r.tenant_id AND rl.resource_link_id = r.resource_link_id
			ORDER BY EXISTS (SELECT 1 FROM memberships m WHERE m.tenant_id = rl.tenant_id AND m.context_ref = rl.context_ref
				AND m.user_id = r.user_id) DESC, rl.updated_at DESC LIMIT 1) c ON true
		WHERE r.tenant_id = $1 AND r.id = ANY ($2)`, tenant, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("delivery: read results: %w", err)
	}
	out := make(map[uuid.UUID]reported, len(rows))
	for _, r := range rows {
		out[r.ID] = r
	}
	return out, nil
}

// fields are the identity fields the learner has values for: what the
// record would carry if the agreement allowed everything.
func (r reported) fields() []agreements.Field {
	var fs []agreements.Field
	for _, f := range []struct {
		field agreements.Field
		value string
	}{{agreements.FieldName, r.Name}, {agreements.FieldEmail, r.Email}, {agreements.FieldExternalID, r.ExternalID}} {
		if f.value != "" {
			fs = append(fs, f.field)
		}
	}
	return fs
}

// EventID is the webhook-id of a delivery: the same for every attempt and
// redrive, so a receiver can drop repeats.
func EventID(delivery uuid.UUID) string { return "msg_" + delivery.String() }

// record is the outbound record of r, with the identity fields dec lets go.
func (s *Service) record(d row, r reported, dec agreements.Decision) Record {
	rec := Record{ID: r.ID, Category: agreements.Category(d.Category), Learner: r.UserID, Fields: dec.Fields,
		Name: r.Name, Email: r.Email, ExternalID: r.ExternalID, ScoreGiven: r.ScoreGiven, ScoreMax: r.ScoreMaximum,
		Completed: r.Completed, Success: r.Success, ActivityID: r.ActivityID, ActivityTitle: r.ActivityTitle,
		CourseID: r.CourseID, CourseTitle: r.CourseTitle, OccurredAt: r.OccurredAt}
	if r.TimeSpentSeconds != nil {
		rec.TimeSpentSeconds = *r.TimeSpentSeconds
	}
	if rec.ActivityID == "" {
		rec.ActivityID, rec.ActivityTitle = r.ResourceLinkID, r.LinkTitle
	}
	return rec
}

// busyWait is how long a delivery whose destination is at its limit
// waits before it looks again: about a second, spread so the waiting
// ones do not all come back at once.
func (p Policy) busyWait() time.Duration {
	return time.Second + jitter(time.Second)
}
