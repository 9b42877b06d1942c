package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ags"
	"github.com/klasterina/hub/lti/servicetoken"
	"github.com/klasterina/hub/tenants/agreements"
)

// gradebook is what a score needs of its resource link, course and
// platform, and the learner's subject there.
type gradebook struct {
	ResourceLinkID string         `db:"resource_link_id"`
	Title          string         `db:"title"`
	ClaimLineItem  *string        `db:"ags_lineitem"`  // the launch's endpoint.lineitem
	LineItemsURL   *string        `db:"ags_lineitems"` // the launch's endpoint.lineitems
	Scopes         pq.StringArray `db:"ags_scopes"`
	RegistrationID uuid.UUID      `db:"registration_id"`
	ClientID       string         `db:"client_id"`
	TokenURL       string         `db:"auth_token_url"`
	TokenAudience  string         `db:"token_audience"`
	Subject        *string        `db:"subject"`
}

func loadGradebook(ctx context.Context, tx *sqlx.Tx, d row) (*gradebook, error) {
	var g gradebook
	err := tx.GetContext(ctx, &g, `SELECT rl.resource_link_id, coalesce(rl.title, '') AS title, rl.ags_lineitem,
			c.ags_lineitems, c.ags_scopes, r.id AS registration_id, r.client_id, r.auth_token_url, r.token_audience,
			(SELECT i.subject FROM lti_identities i WHERE i.tenant_id = rl.tenant_id AND i.issuer = r.issuer AND i.user_id = $3
				ORDER BY i.last_launch_at DESC NULLS LAST LIMIT 1) AS subject
		FROM resource_links rl
		JOIN contexts c ON c.tenant_id = rl.tenant_id AND c.id = rl.context_ref
		JOIN lti_registrations r ON r.id = rl.registration_id AND (r.tenant_id = rl.tenant_id OR r.shared)
		WHERE rl.tenant_id = $1 AND rl.id = $2`, d.TenantID, *d.ResourceLinkRef, *d.UserID)
	if pg.IsNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("delivery: read gradebook: %w", err)
	}
	return &g, nil
}

// host is where the course's grade services are: the container's host,
// else the claimed line item's. The service token goes nowhere else.
func (g gradebook) host() string {
	for _, raw := range []*string{g.LineItemsURL, g.ClaimLineItem} {
		if raw != nil {
			if u, err := url.Parse(*raw); err == nil && u.Host != "" {
				return u.Host
			}
		}
	}
	return ""
}

func (g gradebook) granted(scope string) bool { return slices.Contains(g.Scopes, scope) }

func onHost(raw, host string) bool {
	u, err := url.Parse(raw)
	return err == nil && host != "" && u.Host == host
}

// sendScore posts the result's score to the resource link's line item,
// in order for the pair (line item, learner): an older score than one
// sent or pending is superseded, and the AGS timestamp is later than any
// sent before.
func (s *Service) sendScore(ctx context.Context, tx *sqlx.Tx, d row) (outcome, error) {
	if d.ResourceLinkRef == nil {
		return outcome{end: StatusFailed, reason: ReasonResourceLinkGone}, nil
	}
	locked, err := lockPair(ctx, tx, d)
	if err != nil || !locked {
		return outcome{busy: time.Second}, err
	}
	newer, lastSent, err := pairState(ctx, tx, d)
	switch {
	case err != nil:
		return outcome{}, err
	case newer:
		return outcome{end: StatusSuperseded, reason: ReasonNewerScore}, nil
	}
	g, err := loadGradebook(ctx, tx, d)
	switch {
	case err != nil:
		return outcome{}, err
	case g == nil:
		return outcome{end: StatusFailed, reason: ReasonResourceLinkGone}, nil
	case g.Subject == nil:
		return outcome{end: StatusFailed, reason: ReasonNoIdentity}, nil
	case !g.granted(lti.ScopeAGSScore):
		return outcome{end: StatusFailed, reason: ReasonNoScoreScope}, nil
	}
	release, ok := s.acquire(ctx, "lms:"+g.host(), slotWait)
	if !ok {
		return outcome{busy: s.Policy.busyWait()}, nil
	}
	defer release()
	r, err := loadResult(ctx, tx, d)
	if err != nil {
		return outcome{}, err
	}
	var fields []agreements.Field
	if r.Comment != "" {
		fields = []agreements.Field{agreements.FieldComment}
	}
	decisions, records, err := agreements.DecideMany(ctx, tx, d.TenantID, []agreements.Outbound{{Learner: *d.UserID,
		Destination: d.destination(), Category: agreements.Category(d.Category), Fields: fields, RecordType: recordType,
		RecordID: d.ResultID}}, s.Now())
	if err != nil {
		return outcome{}, err
	}
	dec := decisions[0]
	if dec.Outcome == agreements.OutcomeWithhold {
		return outcome{end: StatusWithheld, reason: string(dec.Reason)}, agreements.RecordDecisions(ctx, tx, d.TenantID, records)
	}
	score := ags.Score{UserID: *g.Subject, ScoreGiven: r.ScoreGiven, ScoreMaximum: r.ScoreMaximum,
		Timestamp: scoreTimestamp(r.OccurredAt, lastSent), ActivityProgress: ags.ActivityProgress(r.ActivityProgress),
		GradingProgress: ags.GradingProgress(r.GradingProgress)}
	if slices.Contains(dec.Fields, agreements.FieldComment) {
		score.Comment = r.Comment
	}
	o := s.postScore(ctx, tx, d, *g, r, score)
	o.receivedAt = r.ReceivedAt
	if o.attempt != nil && o.attempt.Outcome == Delivered {
		o.scoreTimestamp = &score.Timestamp
	}
	if o.sent {
		// On record only when the score went out (or may have): a token
		// refused or a line item not found sent nothing about the learner.
		err = agreements.RecordDecisions(ctx, tx, d.TenantID, records)
	}
	return o, err
}

// lockPair takes the pair's lock for the rest of the transaction, or
// reports false when another worker holds it (sending the pair's older
// score): this one goes after it.
func lockPair(ctx context.Context, tx *sqlx.Tx, d row) (bool, error) {
	var ok bool
	err := tx.GetContext(ctx, &ok, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`,
		"delivery-pair:"+d.ResourceLinkRef.String()+":"+d.UserID.String())
	if err != nil {
		return false, fmt.Errorf("delivery: lock pair: %w", err)
	}
	return ok, nil
}

// pairState says whether a newer score of the pair is pending or went,
// and the latest AGS timestamp sent for the pair.
func pairState(ctx context.Context, tx *sqlx.Tx, d row) (newer bool, lastSent *time.Time, err error) {
	var st struct {
		Newer    bool       `db:"newer"`
		LastSent *time.Time `db:"last_sent"`
	}
	err = tx.GetContext(ctx, &st, `SELECT
			coalesce(bool_or(status IN ('pending', 'delivered', 'dry_run')
				AND (occurred_at > $4 OR (occurred_at = $4 AND created_at > $5))), false) AS newer,
			max(score_timestamp) FILTER (WHERE status = 'delivered') AS last_sent
		FROM deliveries
		WHERE tenant_id = $1 AND destination_kind = 'lms' AND resource_link_ref = $2 AND user_id = $3 AND id <> $6`,
		d.TenantID, *d.ResourceLinkRef, *d.UserID, d.OccurredAt, d.CreatedAt, d.ID)
	if err != nil {
		return false, nil, fmt.Errorf("delivery: read pair: %w", err)
	}
	return st.Newer, st.LastSent, nil
}

// scoreTimestamp is the AGS timestamp of a score: when it happened, but
// always later than the last one sent for the pair (platforms keep only a
// score newer than the last they accepted).
func scoreTimestamp(occurred time.Time, lastSent *time.Time) time.Time {
	ts := occurred.UTC().Truncate(time.Millisecond)
	if lastSent != nil && !ts.After(*lastSent) {
		ts = lastSent.UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	}
	return ts
}

// postScore gets a token, finds or creates the line item and posts the
// score: one attempt, whose Result the delivery records. A line item the
// hub found or made and the platform deleted is made again, once; the
// launch's own line item deleted fails the delivery.
func (s *Service) postScore(ctx context.Context, tx *sqlx.Tx, d row, g gradebook, r reported, score ags.Score) outcome {
	start := time.Now()
	scopes := []string{lti.ScopeAGSScore}
	if g.ClaimLineItem == nil {
		for _, sc := range []string{lti.ScopeAGSLineItem, lti.ScopeAGSLineItemRead} {
			if g.granted(sc) {
				scopes = append(scopes, sc)
				break
			}
		}
	}
	platform := servicetoken.Platform{RegistrationID: g.RegistrationID, ClientID: g.ClientID, TokenURL: g.TokenURL, Audience: g.TokenAudience}
	token, err := s.tokens.Token(ctx, platform, scopes)
	if err != nil {
		return tokenOutcome(err, start)
	}
	item, err := s.lineItem(ctx, tx, d, g, r, token)
	if err != nil {
		return agsOutcome(err, start)
	}
	if item.busy {
		return outcome{busy: time.Second}
	}
	if item.url == "" {
		return outcome{end: StatusFailed, reason: item.reason}
	}
	err = s.ags.PostScore(ctx, item.url, token, score)
	sent := !errors.Is(err, ags.ErrInvalid)
	var se *ags.StatusError
	if errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusGone) {
		if item.claimed || item.recreated {
			res := agsOutcome(err, start)
			res.attempt.Outcome, res.reason, res.sent = Failed, ReasonLineItemGone, true
			return res
		}
		if item, err = s.recreateLineItem(ctx, tx, d, g, r, token); err == nil {
			err = s.ags.PostScore(ctx, item.url, token, score)
		}
	}
	if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
		s.tokens.Invalidate(platform, scopes, token)
	}
	if err != nil {
		o := agsOutcome(err, start)
		o.sent = sent
		return o
	}
	return outcome{attempt: &Result{Outcome: Delivered, Latency: time.Since(start)}, sent: true}
}

// tokenOutcome is the attempt of a score whose token was refused: a
// platform that is down or throttling is tried again; one that refuses
// the hub's client or scope is not, until the registration changes.
func tokenOutcome(err error, start time.Time) outcome {
	var te *servicetoken.Error
	if errors.As(err, &te) {
		res := Result{Outcome: Failed, Status: te.Status, Latency: time.Since(start), Body: []byte(te.Body), RetryAfter: te.RetryAfter, Err: err}
		switch {
		case te.Status == http.StatusTooManyRequests,
			te.Status == http.StatusServiceUnavailable && te.RetryAfter > 0,
			te.Status == http.StatusForbidden && strings.Contains(strings.ToLower(te.Body), "rate limit exceeded"):
			res.Outcome = Throttled // as the grade services throttle (ags.StatusError)
		case te.Temporary():
			res.Outcome = Retry
		}
		o := outcome{attempt: &res}
		if res.Outcome == Failed {
			o.reason = ReasonTokenRefused
		}
		return o
	}
	res := unanswered(err, start)
	return outcome{attempt: &res}
}

// agsOutcome is the attempt of a grade service request that failed:
// throttled (429, 503 with Retry-After, Canvas's rate-limit 403), failing
// (5xx, 408, 401 with the token now dropped), refused (any other status),
// malformed, or unanswered.
func agsOutcome(err error, start time.Time) outcome {
	var se *ags.StatusError
	switch {
	case errors.As(err, &se):
		res := Result{Outcome: Failed, Status: se.Status, Latency: time.Since(start), Body: []byte(se.Body), RetryAfter: se.RetryAfter, Err: err}
		switch {
		case se.Throttled:
			res.Outcome = Throttled
		case se.Temporary(), se.Status == http.StatusRequestTimeout, se.Status == http.StatusUnauthorized:
			res.Outcome = Retry
		}
		return outcome{attempt: &res}
	case errors.Is(err, ags.ErrMalformed):
		res := Result{Outcome: Failed, Latency: time.Since(start), Err: err}
		return outcome{attempt: &res, reason: ReasonMalformedPlatform}
	case errors.Is(err, ags.ErrInvalid):
		res := Result{Outcome: Failed, Latency: time.Since(start), Err: err}
		return outcome{attempt: &res, reason: ReasonInvalidRecord}
	}
	res := unanswered(err, start)
	return outcome{attempt: &res}
}
