package results

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
)

// ActivityProgress and GradingProgress are AGS 2.0's enumerations of a
// score's state (Assignment and Grade Services 2.0, §3.4 Score service:
// activityProgress, gradingProgress).
var (
	ActivityProgress = []string{"Initialized", "Started", "InProgress", "Submitted", "Completed"}
	GradingProgress  = []string{"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}
)

// Bounds of a report.
const (
	MaxComment       = 4000             // characters
	MaxScore         = 1e9              // score_given and score_maximum
	MaxTimeSpent     = 10 * 365 * 86400 // seconds: ten years
	MaxLinkID        = 255              // characters of a resource link id (LTI 1.3 §5.3.5)
	MaxIdempotency   = 255              // characters of an Idempotency-Key
	futureClockSkew  = 5 * time.Minute  // how far ahead of the hub's clock occurred_at may be
	earliestOccurred = 2000             // the year before which occurred_at is a mistake
)

// Report is what the learning app reports of a learner's work on an
// activity: a score (given of maximum), AGS progress, completion and
// success, time spent, a comment, and when it happened. It names the
// activity by its catalog id, by the LMS resource link the learner
// launched it from (the handoff's activity id), or both.
type Report struct {
	User             string   `json:"user"`
	Activity         string   `json:"activity,omitempty"`
	ResourceLink     string   `json:"resource_link,omitempty"`
	ScoreGiven       *float64 `json:"score_given"`
	ScoreMaximum     *float64 `json:"score_maximum"`
	ActivityProgress string   `json:"activity_progress"`
	GradingProgress  string   `json:"grading_progress"`
	Completed        *bool    `json:"completed"`
	Success          *bool    `json:"success"`
	TimeSpentSeconds *int64   `json:"time_spent_seconds"`
	// Comment is plain text for the learner and their instructor (AGS
	// comment); it goes only where the agreement allows.
	Comment    string    `json:"comment"`
	OccurredAt time.Time `json:"occurred_at"`
}

// Result is a report as the hub keeps it.
type Result struct {
	ID uuid.UUID `json:"id"`
	Report
	ReceivedAt time.Time `json:"received_at"`
}

// Validate checks a report as the app sent it, naming each field at
// fault; it reads nothing.
func (r Report) Validate(now time.Time) error {
	var v apperr.Validator
	_, err := uuid.Parse(r.User)
	v.Check(err == nil, "user", "is required: the learner's hub user id (the handoff's sub)")
	v.Check(r.Activity != "" || r.ResourceLink != "", "activity", "name the activity by its catalog id (activity), its LMS resource link (resource_link), or both")
	if r.ResourceLink != "" {
		v.CheckText("resource_link", r.ResourceLink, 1, MaxLinkID)
	}
	v.Check(slices.Contains(ActivityProgress, r.ActivityProgress), "activity_progress", fmt.Sprintf("must be one of %v", ActivityProgress))
	v.Check(slices.Contains(GradingProgress, r.GradingProgress), "grading_progress", fmt.Sprintf("must be one of %v", GradingProgress))
	checkScore(&v, "score_given", r.ScoreGiven, 0)
	checkScore(&v, "score_maximum", r.ScoreMaximum, math.SmallestNonzeroFloat64)
	v.Check(r.ScoreGiven == nil || r.ScoreMaximum != nil, "score_maximum", "is required with score_given")
	v.Check(r.TimeSpentSeconds == nil || (*r.TimeSpentSeconds >= 0 && *r.TimeSpentSeconds <= MaxTimeSpent),
		"time_spent_seconds", fmt.Sprintf("must be from 0 to %d", MaxTimeSpent))
	if r.Comment != "" {
		v.CheckText("comment", r.Comment, 1, MaxComment)
		v.Check(!strings.ContainsFunc(r.Comment, isControl), "comment", "must be plain text: no control characters but tabs and line breaks")
	}
	v.Check(!r.OccurredAt.IsZero(), "occurred_at", "is required (RFC 3339): when the learner did it")
	v.Check(r.OccurredAt.IsZero() || (r.OccurredAt.Year() >= earliestOccurred && !r.OccurredAt.After(now.Add(futureClockSkew))),
		"occurred_at", "must be a time from the year 2000 to now")
	return v.Err()
}

// isControl is a control character a plain-text comment has no use for:
// gradebooks show the comment as it is.
func isControl(r rune) bool { return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' }

// checkScore checks an optional score: finite, at least min, at most
// MaxScore.
func checkScore(v *apperr.Validator, field string, s *float64, min float64) {
	if s == nil {
		return
	}
	v.Check(!math.IsNaN(*s) && !math.IsInf(*s, 0) && *s >= min && *s <= MaxScore, field,
		fmt.Sprintf("must be a number from %g to %g", min, float64(MaxScore)))
}

// hash is what tells a repeat of a request from a different one under the
// same Idempotency-Key: the SHA-256 of the report's canonical JSON (the
// same report however its JSON was spelled).
func (r Report) hash() []byte {
	r.OccurredAt = r.OccurredAt.UTC()
	b, _ := json.Marshal(r) // a Report always marshals
	h := sha256.Sum256(b)
	return h[:]
}

// Store keeps results and the app keys that report them.
type Store struct {
	db    *sqlx.DB
	chain *audit.Keyring
	log   *slog.Logger
	Now   func() time.Time
	// Route queues a new result's deliveries in the transaction that
	// records it (delivery.Service.Route), so a result and the jobs it
	// causes commit together; nil routes nothing.
	Route func(ctx context.Context, tx *sqlx.Tx, tenant, result uuid.UUID) (int, error)
}

// NewStore returns the results store over db, auditing in chain. With a
// Route, db must be the job engine's pool (jobs.Open), whose transactions
// the jobs are inserted in.
func NewStore(db *sqlx.DB, chain *audit.Keyring, log *slog.Logger) *Store {
	return &Store{db: db, chain: chain, log: log, Now: time.Now}
}

// ErrIdempotencyReused is the answer to a report under an
// Idempotency-Key the app already used for a different report.
var ErrIdempotencyReused = errors.New("results: the Idempotency-Key was used for a different report")

// Record keeps a report from app key by, in the learner's tenant. With an
// idempotency key (the Idempotency-Key header, scoped to the app key and
// the tenant), a repeat of the same report answers the first result with
// replayed set and changes nothing; a different report under the same key
// is ErrIdempotencyReused (Unprocessable: 422). Invalid
// names each field at fault (an unknown learner, activity or resource
// link included); nothing is written then.
func (s *Store) Record(ctx context.Context, by AppKey, r Report, idempotencyKey string) (res Result, replayed bool, err error) {
	now := s.Now()
	if err := r.Validate(now); err != nil {
		return Result{}, false, err
	}
	var v apperr.Validator
	if idempotencyKey != "" {
		v.CheckText("Idempotency-Key", idempotencyKey, 1, MaxIdempotency)
		if err := v.Err(); err != nil {
			return Result{}, false, err
		}
	}
	user := uuid.MustParse(r.User)
	r.User = user.String() // one spelling, so a repeat hashes the same
	for try := 1; ; try++ {
		res, replayed, err = s.record(ctx, by, r, user, idempotencyKey, now)
		// An erasure of the learner committing meanwhile refuses the
		// result at commit; the next try finds no learner.
		if try == 3 || !pg.LostToAnother(err) {
			break
		}
	}
	if errors.Is(err, pg.ErrNoTenant) {
		return Result{}, false, apperr.InvalidFields(apperr.FieldError{Field: "user", Message: "is not a learner the hub has"})
	}
	if err != nil {
		return Result{}, false, pg.MapError(fmt.Errorf("results: record: %w", err))
	}
	return res, replayed, nil
}

// record is one try of Record, in the learner's tenant.
func (s *Store) record(ctx context.Context, by AppKey, r Report, user uuid.UUID, idempotencyKey string, now time.Time) (res Result, replayed bool, err error) {
	err = pg.InFoundTenant(ctx, s.db, "hub_user_tenant", user, func(tx *sqlx.Tx, tenant uuid.UUID) error {
		// An erasure of the learner under way goes first: this result then
		// finds them erased (refused at commit, then no such learner).
		if err := agreements.WaitForLearner(ctx, tx, user); err != nil {
			return err
		}
		if idempotencyKey != "" {
			found, err := s.byIdempotencyKey(ctx, tx, tenant, by.ID, idempotencyKey, r.hash())
			if err != nil || found != nil {
				res, replayed = derefResult(found), found != nil
				return err
			}
		}
		if err := s.checkRefs(ctx, tx, tenant, r); err != nil {
			return err
		}
		if res, err = s.insert(ctx, tx, tenant, by, r, idempotencyKey, now); err != nil || s.Route == nil {
			return err
		}
		_, err = s.Route(ctx, tx, tenant, res.ID)
		return err
	})
	return res, replayed, err
}

func derefResult(r *Result) Result {
	if r == nil {
		return Result{}
	}
	return *r
}

// byIdempotencyKey finds the result first recorded under key, locking
// the key (a transaction-scoped advisory lock) so two concurrent repeats
// record one result. A different report under the key is
// ErrIdempotencyReused.
func (s *Store) byIdempotencyKey(ctx context.Context, tx *sqlx.Tx, tenant, appKey uuid.UUID, key string, hash []byte) (*Result, error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		"results:"+tenant.String()+":"+appKey.String()+":"+key); err != nil {
		return nil, err
	}
	var row resultRow
	err := tx.GetContext(ctx, &row, `SELECT `+resultColumns+` FROM results
		WHERE tenant_id = $1 AND app_key_id = $2 AND idempotency_key = $3`, tenant, appKey, key)
	if pg.IsNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if string(row.RequestHash) != string(hash) {
		return nil, apperr.Wrap(apperr.Unprocessable, ErrIdempotencyReused, "the Idempotency-Key was used for a different report")
	}
	res := row.result()
	return &res, nil
}

// checkRefs checks that the activity is in the catalog and the resource
// link is one the learner's tenant has.
func (s *Store) checkRefs(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, r Report) error {
	var refs struct {
		Activity bool `db:"activity"`
		Link     bool `db:"link"`
	}
	if err := tx.GetContext(ctx, &refs, `SELECT
			$2 = '' OR EXISTS (SELECT 1 FROM activities WHERE id = $2) AS activity,
			$3 = '' OR EXISTS (SELECT 1 FROM resource_links WHERE tenant_id = $1 AND resource_link_id = $3) AS link`,
		tenant, r.Activity, r.ResourceLink); err != nil {
		return err
	}
	var v apperr.Validator
	v.Check(refs.Activity, "activity", "is not an activity of the catalog")
	v.Check(refs.Link, "resource_link", "is not a resource link the learner's LMS launched")
	return v.Err()
}

func (s *Store) insert(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, by AppKey, r Report, key string, now time.Time) (Result, error) {
	var row resultRow
	err := tx.GetContext(ctx, &row, `INSERT INTO results (id, tenant_id, user_id, activity_id, resource_link_id, score_given,
			score_maximum, activity_progress, grading_progress, completed, success, time_spent_seconds, comment, occurred_at,
			received_at, app_key_id, idempotency_key, request_hash)
		VALUES ($1, $2, $3, nullif($4, ''), nullif($5, ''), $6, $7, $8, $9, $10, $11, $12, nullif($13, ''), $14, $15, $16,
			nullif($17, ''), $18)
		RETURNING `+resultColumns,
		uuid.New(), tenant, r.User, r.Activity, r.ResourceLink, r.ScoreGiven, r.ScoreMaximum, r.ActivityProgress,
		r.GradingProgress, r.Completed, r.Success, r.TimeSpentSeconds, r.Comment, r.OccurredAt, now, by.ID, key, r.hash())
	if err != nil {
		return Result{}, err
	}
	return row.result(), nil
}

const resultColumns = `id, user_id, coalesce(activity_id, '') AS activity_id, coalesce(resource_link_id, '') AS resource_link_id,
	score_given, score_maximum, activity_progress, grading_progress, completed, success, time_spent_seconds,
	coalesce(comment, '') AS comment, occurred_at, received_at, request_hash`

type resultRow struct {
	ID               uuid.UUID `db:"id"`
	UserID           uuid.UUID `db:"user_id"`
	ActivityID       string    `db:"activity_id"`
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
	RequestHash      []byte    `db:"request_hash"`
}

func (r resultRow) result() Result {
	return Result{ID: r.ID, ReceivedAt: r.ReceivedAt, Report: Report{User: r.UserID.String(), Activity: r.ActivityID,
		ResourceLink: r.ResourceLinkID, ScoreGiven: r.ScoreGiven, ScoreMaximum: r.ScoreMaximum,
		ActivityProgress: r.ActivityProgress, GradingProgress: r.GradingProgress, Completed: r.Completed, Success: r.Success,
		TimeSpentSeconds: r.TimeSpentSeconds, Comment: r.Comment, OccurredAt: r.OccurredAt}}
}
