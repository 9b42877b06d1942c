package lti

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Recorded is what a launch stored: the ids the handoff names.
type Recorded struct {
	UserID       uuid.UUID
	ContextRef   *uuid.UUID
	ResourceLink *uuid.UUID
	// RosterDue says the course is new to the hub, or its platform had
	// lost it and launches into it again: its roster should be synced.
	RosterDue bool
}

// Record stores a validated launch in one transaction: the nonce (a replay
// fails here, and nothing else is written), the user and their platform
// identity, the context with its NRPS and AGS endpoints, the resource link,
// the membership and the launch's row in the launch log, under requestID.
// A launch that changes nothing but the log costs two statements: the
// nonce with the read of what is stored, and the log row; a first launch
// into a known course the same two, the second also writing the user, the
// identity and the membership.
func (t *Tool) Record(ctx context.Context, l *Launch, requestID string) (Recorded, error) {
	var rec Recorded
	// Retried: an erasure of the learner committing meanwhile refuses the
	// identity at commit, and the next try finds no identity (a new user).
	err := pg.RetryInTenant(ctx, t.db, l.Registration.TenantID, func(tx *sqlx.Tx) error {
		rec = Recorded{}
		have, err := t.stored(ctx, tx, l)
		if err != nil {
			return err
		}
		if l.target.adopts() {
			if err := t.adoptDeployment(ctx, tx, l); err != nil {
				return err
			}
		}
		if rec.ContextRef, rec.RosterDue, err = t.upsertContext(ctx, tx, l, have); err != nil {
			return err
		}
		if rec.ResourceLink, err = t.upsertResourceLink(ctx, tx, l, rec.ContextRef, have); err != nil {
			return err
		}
		rec.UserID, err = t.writeLaunch(ctx, tx, l, have, rec.ContextRef, requestID)
		return err
	})
	if err == nil && rec.RosterDue && t.CourseFound != nil {
		t.CourseFound(l.Registration.TenantID, *rec.ContextRef)
	}
	return rec, pg.MapError(err)
}

// storedRows is what the hub already has of a launch's course, link and
// membership, read in one query so that a launch that changes nothing
// (most launches) writes nothing but the nonce and the user's last launch.
type storedRows struct {
	User       *userRow
	Context    contextRow
	Link       linkRow
	HasContext bool
	HasLink    bool
	Member     bool
	Roles      pq.StringArray
}

// userRow is a platform identity and its user as stored.
type userRow struct {
	ID          uuid.UUID
	Institution pq.StringArray
	System      pq.StringArray
	LastLaunch  time.Time
	Fields      [5]*string // name, given_name, family_name, email, locale
}

type storedScan struct {
	Fresh           bool           `db:"fresh"`
	UserID          *uuid.UUID     `db:"user_id"`
	UserInstitution pq.StringArray `db:"user_institution"`
	UserSystem      pq.StringArray `db:"user_system"`
	UserLastLaunch  *time.Time     `db:"user_last_launch"`
	UserName        *string        `db:"user_name"`
	UserGiven       *string        `db:"user_given"`
	UserFamily      *string        `db:"user_family"`
	UserEmail       *string        `db:"user_email"`
	UserLocale      *string        `db:"user_locale"`
	CtxID           *uuid.UUID     `db:"ctx_id"`
	CtxLabel        *string        `db:"ctx_label"`
	CtxTitle        *string        `db:"ctx_title"`
	CtxTypes        pq.StringArray `db:"ctx_types"`
	CtxNRPS         *string        `db:"ctx_nrps"`
	CtxNRPSVersions pq.StringArray `db:"ctx_nrps_versions"`
	CtxLineItems    *string        `db:"ctx_lineitems"`
	CtxScopes       pq.StringArray `db:"ctx_scopes"`
	CtxGone         bool           `db:"ctx_gone"`
	MemberRoles     pq.StringArray `db:"member_roles"`
	Member          bool           `db:"member"`
	LinkID          *uuid.UUID     `db:"link_id"`
	LinkContext     *uuid.UUID     `db:"link_context"`
	LinkTitle       *string        `db:"link_title"`
	LinkDescription *string        `db:"link_description"`
	LinkLineItem    *string        `db:"link_lineitem"`
}

// stored consumes the launch's nonce and reads what the hub has of its
// identity, user, course, membership and link, in one statement. A nonce
// already used fails with ReasonNonceReplayed.
func (t *Tool) stored(ctx context.Context, tx *sqlx.Tx, l *Launch) (storedRows, error) {
	c := l.Claims
	contextID, linkID := "", ""
	if c.Context != nil {
		contextID = c.Context.ID
	}
	if c.ResourceLink != nil {
		linkID = c.ResourceLink.ID
	}
	var sc storedScan
	stmt, err := t.prepared.In(ctx, tx, storedQuery)
	if err != nil {
		return storedRows{}, err
	}
	expires := unix(*c.ExpiresAt).Add(t.Leeway)
	err = stmt.GetContext(ctx, &sc, l.Registration.ID, *c.DeploymentID, contextID, linkID, l.Registration.TenantID, c.Issuer, *c.Subject,
		c.Nonce, expires)
	if err != nil {
		return storedRows{}, pg.MapError(fmt.Errorf("lti: nonce and stored rows: %w", err))
	}
	if !sc.Fresh {
		return storedRows{}, fail(ReasonNonceReplayed, "nonce already used")
	}
	return storedFrom(sc), nil
}

// storedQuery inserts the nonce (fresh is false when it was there already)
// and reads a launch's identity, user, course, membership and link. The
// reads see the transaction's snapshot from before the insert, which they
// do not need.
const storedQuery = `WITH nonce AS (
			INSERT INTO lti_nonces (tenant_id, registration_id, nonce, expires_at) VALUES ($5, $1, $8, $9)
			ON CONFLICT DO NOTHING RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM nonce) AS fresh,
			i.user_id, i.institution_roles AS user_institution, i.system_roles AS user_system,
			i.last_launch_at AS user_last_launch, u.name AS user_name, u.given_name AS user_given, u.family_name AS user_family,
			u.email AS user_email, u.locale AS user_locale,
			c.id AS ctx_id, c.label AS ctx_label, c.title AS ctx_title, c.types AS ctx_types,
			c.nrps_url AS ctx_nrps, c.nrps_versions AS ctx_nrps_versions, c.ags_lineitems AS ctx_lineitems, c.ags_scopes AS ctx_scopes,
			c.roster_gone_at IS NOT NULL AS ctx_gone,
			m.roles AS member_roles, m.user_id IS NOT NULL AS member,
			r.id AS link_id, r.context_ref AS link_context, r.title AS link_title, r.description AS link_description, r.ags_lineitem AS link_lineitem
		FROM (SELECT 1) AS one
		LEFT JOIN lti_identities i ON i.tenant_id = $5 AND i.issuer = $6 AND i.subject = $7
		LEFT JOIN LATERAL (SELECT name, given_name, family_name, email, locale FROM users
			WHERE tenant_id = $5 AND id = i.user_id LIMIT 1) u ON true
		LEFT JOIN contexts c ON c.tenant_id = $5 AND c.registration_id = $1 AND c.deployment_id = $2 AND c.context_id = $3
		-- LATERAL with LIMIT (so the planner keeps it a subquery): the user's
		-- and the membership's whole keys are their index conditions; a
		-- generic plan otherwise reads every user of the tenant and every
		-- member of the course.
		LEFT JOIN LATERAL (SELECT roles, user_id FROM memberships
			WHERE tenant_id = $5 AND context_ref = c.id AND user_id = i.user_id AND status = 'active' LIMIT 1) m ON true
		LEFT JOIN resource_links r ON r.tenant_id = $5 AND r.registration_id = $1 AND r.deployment_id = $2 AND r.resource_link_id = $4`

func storedFrom(sc storedScan) storedRows {
	st := storedRows{HasContext: sc.CtxID != nil, HasLink: sc.LinkID != nil, Member: sc.Member, Roles: sc.MemberRoles}
	if st.HasContext {
		st.Context = contextRow{ID: *sc.CtxID, Label: sc.CtxLabel, Title: sc.CtxTitle, Types: sc.CtxTypes, NRPSURL: sc.CtxNRPS,
			NRPSVersions: sc.CtxNRPSVersions, LineItems: sc.CtxLineItems, AGSScopes: sc.CtxScopes, Gone: sc.CtxGone}
	}
	if sc.UserID != nil && sc.UserLastLaunch != nil {
		st.User = &userRow{ID: *sc.UserID, Institution: sc.UserInstitution, System: sc.UserSystem, LastLaunch: *sc.UserLastLaunch,
			Fields: [5]*string{sc.UserName, sc.UserGiven, sc.UserFamily, sc.UserEmail, sc.UserLocale}}
	}
	if st.HasLink {
		st.Link = linkRow{ID: *sc.LinkID, ContextRef: sc.LinkContext, Title: sc.LinkTitle, Description: sc.LinkDescription, LineItem: sc.LinkLineItem}
	}
	return st
}

// adoptDeployment records the first deployment of a registration that was
// registered without one. Only one launch can adopt: the flag is cleared in
// the same transaction, and a launch that lost the race must name the
// deployment that won.
func (t *Tool) adoptDeployment(ctx context.Context, tx *sqlx.Tx, l *Launch) error {
	reg, deployment := l.Registration, *l.Claims.DeploymentID
	defer t.forget(reg.ID)
	res, err := tx.ExecContext(ctx, `UPDATE lti_registrations SET adopt_first_deployment = false
		WHERE tenant_id = $1 AND id = $2 AND adopt_first_deployment`, reg.TenantID, reg.ID)
	if err != nil {
		return pg.MapError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var known bool
		if err := tx.GetContext(ctx, &known, `SELECT EXISTS (SELECT 1 FROM lti_deployments
			WHERE tenant_id = $1 AND registration_id = $2 AND deployment_id = $3)`, reg.TenantID, reg.ID, deployment); err != nil {
			return pg.MapError(err)
		}
		if !known {
			return fail(ReasonUnknownDeployment, "deployment %q (another was adopted)", deployment)
		}
		return nil
	}
	if err := addDeployment(ctx, tx, reg, deployment, t.Now()); err != nil {
		return err
	}
	_, err = t.registrations.chain.Append(ctx, tx, &reg.TenantID, audit.System("lti launch"), audit.Event{Action: "lti_deployment.adopted",
		TargetType: "lti_registration", TargetID: reg.ID.String(), Details: map[string]string{"deployment_id": deployment}}, t.Now())
	return err
}

// writeLaunch writes, in one statement, what the launch brings that the
// hub lacks of the user and their platform identity (both created on a
// first launch) and of the membership, and the launch's row in the launch
// log; it returns the hub user. The identity's unique key settles a race
// between two first launches: the second waits for the first and takes its
// user. (Foreign keys to the user are checked at the end of the statement,
// after every row exists.) What is unchanged is skipped by the statement's
// own flags, so one prepared statement serves every launch.
func (t *Tool) writeLaunch(ctx context.Context, tx *sqlx.Tx, l *Launch, stored storedRows, contextRef *uuid.UUID, requestID string) (uuid.UUID, error) {
	c, reg := l.Claims, l.Registration
	userID, writeUser := uuid.New(), true
	if u := stored.User; u != nil {
		userID, writeUser = u.ID, t.userChanged(*u, l)
	}
	writeMember := contextRef != nil && !(stored.Member && stored.User != nil && stored.HasContext &&
		stored.Context.ID == *contextRef && slices.Equal(stored.Roles, l.Roles))
	row := l.logFields()
	if !writeUser && !writeMember {
		return userID, t.logLaunch(ctx, tx, l, row, userID, requestID)
	}
	stmt, err := t.prepared.In(ctx, tx, writeLaunchQuery)
	if err != nil {
		return uuid.Nil, err
	}
	var id uuid.UUID
	err = stmt.GetContext(ctx, &id, reg.TenantID, c.Issuer, *c.Subject, userID, pq.StringArray(l.Institution), pq.StringArray(l.System),
		t.Now(), c.Name, c.GivenName, c.FamilyName, c.Email, locale(c), writeUser,
		contextRef, pq.StringArray(l.Roles), writeMember,
		row.ID, requestID, reg.ID, row.Deployment, row.ContextID, row.ContextTitle, row.MessageType)
	if err != nil {
		return uuid.Nil, pg.MapError(fmt.Errorf("lti: record launch: %w", err))
	}
	return id, nil
}

// logLaunch writes only the launch's row in the launch log: the launch of
// someone the hub knows, into a course they are a member of, with nothing
// changed.
func (t *Tool) logLaunch(ctx context.Context, tx *sqlx.Tx, l *Launch, row launchLogRow, userID uuid.UUID, requestID string) error {
	stmt, err := t.prepared.In(ctx, tx, `INSERT INTO lti_launch_log (tenant_id, at, id, outcome, reason, request_id, registration_id,
			deployment_id, context_id, context_title, message_type, user_id)
		VALUES ($1, $2, $3, 'launched', '', $4, $5, $6, $7, $8, $9, $10)`)
	if err != nil {
		return err
	}
	reg := l.Registration
	_, err = stmt.ExecContext(ctx, reg.TenantID, t.Now(), row.ID, requestID, reg.ID, row.Deployment, row.ContextID, row.ContextTitle,
		row.MessageType, userID)
	if err != nil {
		return pg.MapError(fmt.Errorf("lti: log launch: %w", err))
	}
	return nil
}

// writeLaunchQuery: $13 says whether to write the identity and user ($4 is
// then the new user's id, else the stored one), $16 the membership.
const writeLaunchQuery = `WITH identity AS (
			INSERT INTO lti_identities (tenant_id, issuer, subject, user_id, institution_roles, system_roles, last_launch_at)
			SELECT $1::uuid, $2::text, $3::text, $4::uuid, $5::text[], $6::text[], $7::timestamptz WHERE $13::boolean
			ON CONFLICT (tenant_id, issuer, subject) DO UPDATE SET institution_roles = excluded.institution_roles,
				system_roles = excluded.system_roles, last_launch_at = excluded.last_launch_at
			RETURNING user_id),
		written AS (
			INSERT INTO users (id, tenant_id, name, given_name, family_name, email, locale, created_at, updated_at)
			SELECT user_id, $1, nullif($8::text, ''), nullif($9::text, ''), nullif($10::text, ''), nullif($11::text, ''),
				nullif($12::text, ''), $7, $7 FROM identity
			ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, users.name),
				given_name = coalesce(excluded.given_name, users.given_name), family_name = coalesce(excluded.family_name, users.family_name),
				email = coalesce(excluded.email, users.email), locale = coalesce(excluded.locale, users.locale), updated_at = excluded.updated_at
				WHERE users.tenant_id = excluded.tenant_id
			RETURNING id),
		who AS (SELECT id FROM written UNION ALL SELECT $4 WHERE NOT $13),
		member AS (
			INSERT INTO memberships (tenant_id, context_ref, user_id, roles, source, status, launched_at, updated_at)
			SELECT $1, $14::uuid, id, $15::text[], 'launch', 'active', $7, $7 FROM who WHERE $16::boolean
			ON CONFLICT (context_ref, user_id) DO UPDATE SET roles = excluded.roles, source = 'launch', status = 'active',
				launched_at = excluded.launched_at, updated_at = excluded.updated_at
				WHERE memberships.tenant_id = excluded.tenant_id)
		INSERT INTO lti_launch_log (tenant_id, at, id, outcome, reason, request_id, registration_id, deployment_id,
			context_id, context_title, message_type, user_id)
		SELECT $1, $7, $17::uuid, 'launched', '', $18::text, $19::uuid, $20::text, $21::text, $22::text, $23::text, id FROM who
		RETURNING user_id`

// lastLaunchResolution is how stale an identity's last_launch_at may get
// before a launch that changes nothing else writes it.
const lastLaunchResolution = time.Hour

// userChanged reports whether a launch brings anything the stored user and
// identity lack. Absent claims keep the stored values, as the upsert does.
func (t *Tool) userChanged(u userRow, l *Launch) bool {
	c := l.Claims
	for i, claim := range []string{c.Name, c.GivenName, c.FamilyName, c.Email, locale(c)} {
		if claim != "" && (u.Fields[i] == nil || *u.Fields[i] != claim) {
			return true
		}
	}
	return !slices.Equal(u.Institution, l.Institution) || !slices.Equal(u.System, l.System) ||
		t.Now().Sub(u.LastLaunch) > lastLaunchResolution
}

func locale(c Claims) string {
	if c.Locale != "" {
		return c.Locale
	}
	if c.Presentation != nil {
		return c.Presentation.Locale
	}
	return ""
}

// contextRow is a course as stored, for comparing with a launch's claims.
type contextRow struct {
	ID           uuid.UUID      `db:"id"`
	Label        *string        `db:"label"`
	Title        *string        `db:"title"`
	Types        pq.StringArray `db:"types"`
	NRPSURL      *string        `db:"nrps_url"`
	NRPSVersions pq.StringArray `db:"nrps_versions"`
	LineItems    *string        `db:"ags_lineitems"`
	AGSScopes    pq.StringArray `db:"ags_scopes"`
	Gone         bool           // the platform answered 404 to its roster sync
}

// upsertContext stores the course and its service endpoints. Every
// learner of a course launches into the same row, so it is written only
// when something changed: an unchanged row is read, not locked. due says
// the course's roster should be synced: the course is new, or its
// platform had answered a sync with 404 and launches into it again. A new
// course's roster is due on the schedule in a few minutes too, in case
// the sync the launch asks for is lost.
func (t *Tool) upsertContext(ctx context.Context, tx *sqlx.Tx, l *Launch, stored storedRows) (_ *uuid.UUID, due bool, _ error) {
	c := l.Claims
	if c.Context == nil || c.Context.ID == "" {
		return nil, false, nil
	}
	want := contextRow{Label: nullable(c.Context.Label), Title: nullable(c.Context.Title), Types: nonNil(c.Context.Type),
		NRPSVersions: []string{}, AGSScopes: []string{}}
	if c.NRPS != nil && c.NRPS.URL != "" {
		want.NRPSURL, want.NRPSVersions = &c.NRPS.URL, nonNil(c.NRPS.Versions)
	}
	if c.AGS != nil {
		want.LineItems, want.AGSScopes = nullable(c.AGS.LineItems), nonNil(c.AGS.Scope)
	}
	if stored.HasContext && sameContext(stored.Context, want) {
		return &stored.Context.ID, false, nil
	}
	var id uuid.UUID
	err := tx.GetContext(ctx, &id, `INSERT INTO contexts (id, tenant_id, registration_id, deployment_id, context_id, label, title, types,
			nrps_url, nrps_versions, ags_lineitems, ags_scopes, updated_at, roster_next_sync_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13::timestamptz + interval '5 minutes')
		ON CONFLICT (registration_id, deployment_id, context_id) DO UPDATE SET label = excluded.label, title = excluded.title,
			types = excluded.types, nrps_url = excluded.nrps_url, nrps_versions = excluded.nrps_versions,
			ags_lineitems = excluded.ags_lineitems, ags_scopes = excluded.ags_scopes, updated_at = excluded.updated_at,
			roster_gone_at = NULL,
			roster_differences_url = CASE WHEN contexts.nrps_url IS NOT DISTINCT FROM excluded.nrps_url
				THEN contexts.roster_differences_url END,
			roster_next_sync_at = CASE WHEN contexts.roster_gone_at IS NULL THEN contexts.roster_next_sync_at
				ELSE excluded.roster_next_sync_at END
			WHERE contexts.tenant_id = excluded.tenant_id
		RETURNING id`, uuid.New(), l.Registration.TenantID, l.Registration.ID, *c.DeploymentID, c.Context.ID,
		want.Label, want.Title, want.Types, want.NRPSURL, want.NRPSVersions, want.LineItems, want.AGSScopes, t.Now())
	due = want.NRPSURL != nil && (!stored.HasContext || stored.Context.Gone)
	return &id, due, pg.MapError(err)
}

func sameContext(a, b contextRow) bool {
	return a.Gone == b.Gone && eqPtr(a.Label, b.Label) && eqPtr(a.Title, b.Title) && slices.Equal(a.Types, b.Types) &&
		eqPtr(a.NRPSURL, b.NRPSURL) && slices.Equal(a.NRPSVersions, b.NRPSVersions) &&
		eqPtr(a.LineItems, b.LineItems) && slices.Equal(a.AGSScopes, b.AGSScopes)
}

func eqPtr(a, b *string) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNil(s []string) pq.StringArray {
	if s == nil {
		return pq.StringArray{}
	}
	return s
}

type linkRow struct {
	ID          uuid.UUID  `db:"id"`
	ContextRef  *uuid.UUID `db:"context_ref"`
	Title       *string    `db:"title"`
	Description *string    `db:"description"`
	LineItem    *string    `db:"ags_lineitem"`
}

// upsertResourceLink stores the placement launched, writing only changes,
// for the same reason as upsertContext.
func (t *Tool) upsertResourceLink(ctx context.Context, tx *sqlx.Tx, l *Launch, contextRef *uuid.UUID, stored storedRows) (*uuid.UUID, error) {
	c := l.Claims
	if c.ResourceLink == nil || c.ResourceLink.ID == "" {
		return nil, nil // deep linking requests may carry none
	}
	want := linkRow{ContextRef: contextRef, Title: nullable(c.ResourceLink.Title), Description: nullable(c.ResourceLink.Description)}
	if c.AGS != nil {
		want.LineItem = nullable(c.AGS.LineItem)
	}
	have := stored.Link
	if stored.HasLink && sameUUID(have.ContextRef, want.ContextRef) && eqPtr(have.Title, want.Title) &&
		eqPtr(have.Description, want.Description) && eqPtr(have.LineItem, want.LineItem) {
		return &have.ID, nil
	}
	var id uuid.UUID
	err := tx.GetContext(ctx, &id, `INSERT INTO resource_links (id, tenant_id, registration_id, deployment_id, resource_link_id,
			context_ref, title, description, ags_lineitem, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (registration_id, deployment_id, resource_link_id) DO UPDATE SET context_ref = excluded.context_ref,
			title = excluded.title, description = excluded.description, ags_lineitem = excluded.ags_lineitem, updated_at = excluded.updated_at
			WHERE resource_links.tenant_id = excluded.tenant_id
		RETURNING id`, uuid.New(), l.Registration.TenantID, l.Registration.ID, *c.DeploymentID, c.ResourceLink.ID,
		contextRef, want.Title, want.Description, want.LineItem, t.Now())
	return &id, pg.MapError(err)
}

func sameUUID(a, b *uuid.UUID) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// PurgeNonces deletes nonces whose tokens can no longer be valid, for every
// tenant: the hub's own housekeeping.
func (t *Tool) PurgeNonces(ctx context.Context) (int64, error) {
	var n int64
	err := pg.InTx(ctx, t.db, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &n, `SELECT hub_purge_expired_nonces($1)`, t.Now())
	})
	return n, pg.MapError(err)
}

// RunHousekeeping purges expired nonces and launch log rows past
// LaunchLogRetention every interval until ctx ends.
func (t *Tool) RunHousekeeping(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := t.PurgeNonces(ctx); err != nil && !apperr.Is(err, apperr.Unavailable) {
				t.log.ErrorContext(ctx, "purge lti nonces", "err", err)
			}
			if _, err := t.PurgeLaunchLog(ctx); err != nil && !apperr.Is(err, apperr.Unavailable) {
				t.log.ErrorContext(ctx, "purge lti launch log", "err", err)
			}
		}
	}
}
