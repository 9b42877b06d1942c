package lti

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
)

// The launch log: each tenant's recent launches and refusals, so a tenant
// admin can look up the reference an error page showed (its request id)
// and see what the LMS sent. A successful launch's row is written by the
// statement that records the launch; a refusal's in a short transaction of
// its own, within RefusalLogLimit. Refusals that name no registration
// belong to no tenant and are only counted in the metrics.

// Outcomes in the launch log.
const (
	OutcomeLaunched = "launched"
	OutcomeRefused  = "refused"
)

// Defaults of the launch log's bounds.
const (
	DefaultLaunchLogRetention = 30 * 24 * time.Hour
	DefaultRefusalLogLimit    = 60 // per tenant, per minute, per replica
	// RefusalLogPerSource is how many of a tenant's refusal rows one source
	// (an address, IPv6 by /64) may write per minute per replica.
	RefusalLogPerSource = 10
	launchLogPurgeBatch = 5000
	refusalWriteTimeout = 2 * time.Second
)

// LaunchEntry is one launch or refusal in a tenant's launch log. The
// deployment, course and message type are what the platform signed; a
// refusal before the signature was checked names none of them.
type LaunchEntry struct {
	ID           uuid.UUID  `json:"id" db:"id"`
	At           time.Time  `json:"at" db:"at"`
	Outcome      string     `json:"outcome" db:"outcome"`
	Reason       string     `json:"reason,omitempty" db:"reason"`
	RequestID    string     `json:"request_id" db:"request_id"`
	Registration *uuid.UUID `json:"registration_id" db:"registration_id"`
	Deployment   *string    `json:"deployment_id" db:"deployment_id"`
	ContextID    *string    `json:"context_id" db:"context_id"`
	ContextTitle *string    `json:"context_title" db:"context_title"`
	MessageType  *string    `json:"message_type" db:"message_type"`
	UserID       *uuid.UUID `json:"user_id" db:"user_id"`
}

// LaunchFilter narrows a listing of the launch log, newest first.
type LaunchFilter struct {
	Outcome   string    // OutcomeLaunched, OutcomeRefused or "" for both
	Since     time.Time // zero: no lower bound
	RequestID string    // "": any
	Page      pg.Page
}

// Launches lists a tenant's launch log, newest first, and the cursor of
// the next page when there is one.
func (t *Tool) Launches(ctx context.Context, tenant uuid.UUID, f LaunchFilter) ([]LaunchEntry, *pg.Cursor, error) {
	var since, afterAt *time.Time
	var afterID *uuid.UUID
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if f.Page.After != nil {
		afterAt, afterID = &f.Page.After.At, &f.Page.After.ID
	}
	var entries []LaunchEntry
	err := pg.InTenant(ctx, t.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &entries, `SELECT id, at, outcome, reason, request_id, registration_id, deployment_id,
				context_id, context_title, message_type, user_id
			FROM lti_launch_log WHERE tenant_id = $1 AND ($2 = '' OR outcome = $2) AND ($3::timestamptz IS NULL OR at >= $3)
				AND ($4 = '' OR request_id = $4) AND ($5::timestamptz IS NULL OR (at, id) < ($5, $6::uuid))
			ORDER BY at DESC, id DESC LIMIT $7`, tenant, f.Outcome, since, f.RequestID, afterAt, afterID, f.Page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("lti: list launches: %w", err))
	}
	return pg.TrimPage(entries, f.Page.Limit, func(e LaunchEntry) pg.Cursor { return pg.Cursor{At: e.At, ID: e.ID} })
}

// launchLogRow is what a launch or refusal writes to the log.
type launchLogRow struct {
	ID           uuid.UUID
	Deployment   *string
	ContextID    *string
	ContextTitle *string
	MessageType  *string
}

// logFields takes from l's claims what the log keeps: only claims the
// platform signed (Claims is filled after the signature is checked), only
// text, cut to the column's bound.
// claimsAreTenants reports whether the launch's signed claims name one of
// its tenant's own deployments, so the tenant's log may show them.
func (l *Launch) claimsAreTenants() bool {
	d := l.Claims.DeploymentID
	return d != nil && (l.target.deploys(*d) || l.target.adopts())
}

func (l *Launch) logFields() launchLogRow {
	row := launchLogRow{ID: uuid.New()}
	c := l.Claims
	if c.DeploymentID != nil {
		row.Deployment = logText(*c.DeploymentID)
	}
	if c.Context != nil {
		row.ContextID, row.ContextTitle = logText(c.Context.ID), logText(c.Context.Title)
	}
	if c.MessageType != nil {
		row.MessageType = logText(*c.MessageType)
	}
	return row
}

// maxLogText bounds each text column of the launch log, in characters.
const maxLogText = 255

// logText is s as the log stores it: nil when empty or not text, and at
// most maxLogText characters.
func logText(s string) *string {
	if s == "" || !validIdentifier(s) {
		return nil
	}
	if r := []rune(s); len(r) > maxLogText {
		s = string(r[:maxLogText])
	}
	return &s
}

// refusalBudget counts the refusals each tenant wrote to its log in the
// current minute, on this replica: a flood of bad launches at one tenant
// writes at most the limit each minute. The counts start over each minute,
// so the map holds only tenants refused this minute.
type refusalBudget struct {
	mu      sync.Mutex
	minute  int64
	counts  map[uuid.UUID]int
	sources map[string]int // tenant and source (IPv6 by /64)
}

// take spends one of tenant's refusal rows this minute, and one of the
// source's within it: one source (anyone can start logins and post junk
// launches) cannot spend the whole tenant's budget and so hide the real
// refusals an admin looks up by reference.
func (b *refusalBudget) take(tenant uuid.UUID, source string, now time.Time, limit, perSource int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := now.Unix() / 60; m != b.minute || b.counts == nil {
		b.minute, b.counts, b.sources = m, map[uuid.UUID]int{}, map[string]int{}
	}
	key := tenant.String() + " " + sourceKey(source)
	if b.counts[tenant] >= limit || b.sources[key] >= perSource {
		return false
	}
	b.counts[tenant]++
	b.sources[key]++
	return true
}

// logRefusal counts a refusal of a launch whose registration was found,
// and writes it to the tenant's launch log unless the tenant is over its
// RefusalLogLimit this minute (then the metrics count it as dropped). The
// write has refusalWriteTimeout and its own transaction: the launch's, if
// any, was rolled back. The hub user is named when the platform's signed
// subject is one the hub knows.
func (t *Tool) logRefusal(ctx context.Context, l *Launch, reason Reason, requestID, source string) {
	tg := l.target
	t.Metrics.launches.WithLabelValues(tg.TenantSlug, OutcomeRefused).Inc()
	if reason == ReasonUnavailable {
		t.Metrics.logDropped.WithLabelValues(tg.TenantSlug, "unavailable").Inc()
		return
	}
	if !t.refusals.take(tg.TenantID, source, t.Now(), t.RefusalLogLimit, RefusalLogPerSource) {
		t.Metrics.logDropped.WithLabelValues(tg.TenantSlug, "over_limit").Inc()
		return
	}
	row := l.logFields()
	issuer, subject := "", ""
	if l.Claims.Subject != nil && validIdentifier(*l.Claims.Subject) {
		issuer, subject = l.Claims.Issuer, *l.Claims.Subject
	}
	if !l.claimsAreTenants() {
		// Signed for another installation (a login that named this
		// tenant's deployment, a launch from another's): none of it is
		// this tenant's to see.
		row, issuer, subject = launchLogRow{ID: row.ID}, "", ""
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refusalWriteTimeout)
	defer cancel()
	err := pg.InTenant(wctx, t.db, tg.TenantID, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(wctx, `INSERT INTO lti_launch_log (tenant_id, at, id, outcome, reason, request_id, registration_id,
				deployment_id, context_id, context_title, message_type, user_id)
			VALUES ($1, $2, $3, 'refused', $4, $5, $6, $7, $8, $9, $10,
				(SELECT user_id FROM lti_identities WHERE tenant_id = $1 AND issuer = $11 AND subject = $12))`,
			tg.TenantID, t.Now(), row.ID, string(reason), requestID, tg.ID, row.Deployment, row.ContextID, row.ContextTitle,
			row.MessageType, issuer, subject)
		return err
	})
	if err != nil {
		t.Metrics.logDropped.WithLabelValues(tg.TenantSlug, "failed").Inc()
		t.log.WarnContext(ctx, "lti launch log: refusal not written", "err", err)
	}
}

// PurgeLaunchLog deletes every tenant's launch log rows older than
// LaunchLogRetention, in batches of their own transactions, and says how
// many went.
func (t *Tool) PurgeLaunchLog(ctx context.Context) (int64, error) {
	before := t.Now().Add(-t.LaunchLogRetention)
	var total int64
	for {
		var n int64
		err := pg.InTx(ctx, t.db, func(tx *sqlx.Tx) error {
			return tx.GetContext(ctx, &n, `SELECT hub_purge_launch_log($1, $2)`, before, launchLogPurgeBatch)
		})
		if err != nil {
			return total, pg.MapError(fmt.Errorf("lti: purge launch log: %w", err))
		}
		total += n
		if n < launchLogPurgeBatch {
			return total, nil
		}
	}
}
