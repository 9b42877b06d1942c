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
)

// Recorded is what a launch stored: the ids the handoff names.
type Recorded struct {
	UserID       uuid.UUID
	ContextRef   *uuid.UUID
	ResourceLink *uuid.UUID
}

// Record stores a validated launch in one transaction: the nonce (a replay
// fails here, and nothing else is written), the user and their platform
// identity, the context with its NRPS and AGS endpoints, the resource link
// and the membership.
func (t *Tool) Record(ctx context.Context, l *Launch) (Recorded, error) {
	var rec Recorded
	err := pg.InTenant(ctx, t.db, l.Registration.TenantID, func(tx *sqlx.Tx) error {
		if err := t.useNonce(ctx, tx, l); err != nil {
			return err
		}
		var err error
		if rec.UserID, err = t.upsertUser(ctx, tx, l); err != nil {
			return err
		}
		if rec.ContextRef, err = t.upsertContext(ctx, tx, l); err != nil {
			return err
		}
		if rec.ResourceLink, err = t.upsertResourceLink(ctx, tx, l, rec.ContextRef); err != nil {
			return err
		}
		return t.upsertMembership(ctx, tx, l, rec)
	})
	return rec, err
}

func (t *Tool) useNonce(ctx context.Context, tx *sqlx.Tx, l *Launch) error {
	expires := unix(*l.Claims.ExpiresAt).Add(t.Leeway)
	res, err := tx.ExecContext(ctx, `INSERT INTO lti_nonces (tenant_id, registration_id, nonce, expires_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, l.Registration.TenantID, l.Registration.ID, l.Claims.Nonce, expires)
	if err != nil {
		return pg.MapError(fmt.Errorf("lti: nonce: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fail(ReasonNonceReplayed, "nonce already used")
	}
	return nil
}

// upsertUser links the platform identity (tenant, issuer, sub) to one hub
// user, creating both on the first launch, in one statement. The identity's
// unique key settles a race between two first launches: the second waits
// for the first and takes its user. (The foreign key from identity to user
// is checked at the end of the statement, after both rows exist.)
func (t *Tool) upsertUser(ctx context.Context, tx *sqlx.Tx, l *Launch) (uuid.UUID, error) {
	c, reg := l.Claims, l.Registration
	var id uuid.UUID
	err := tx.GetContext(ctx, &id, `WITH identity AS (
			INSERT INTO lti_identities (tenant_id, issuer, subject, user_id, institution_roles, system_roles, last_launch_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (tenant_id, issuer, subject) DO UPDATE SET institution_roles = excluded.institution_roles,
				system_roles = excluded.system_roles, last_launch_at = excluded.last_launch_at
			RETURNING user_id)
		INSERT INTO users (id, tenant_id, name, given_name, family_name, email, locale, created_at, updated_at)
		SELECT user_id, $1, nullif($8, ''), nullif($9, ''), nullif($10, ''), nullif($11, ''), nullif($12, ''), $7, $7 FROM identity
		ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, users.name),
			given_name = coalesce(excluded.given_name, users.given_name), family_name = coalesce(excluded.family_name, users.family_name),
			email = coalesce(excluded.email, users.email), locale = coalesce(excluded.locale, users.locale), updated_at = excluded.updated_at
		RETURNING id`,
		reg.TenantID, c.Issuer, *c.Subject, uuid.New(), pq.StringArray(l.Institution), pq.StringArray(l.System), t.Now(),
		c.Name, c.GivenName, c.FamilyName, c.Email, locale(c))
	return id, pg.MapError(err)
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
}

// upsertContext stores the course and its service endpoints. Every
// learner of a course launches into the same row, so it is written only
// when something changed: an unchanged row is read, not locked.
func (t *Tool) upsertContext(ctx context.Context, tx *sqlx.Tx, l *Launch) (*uuid.UUID, error) {
	c := l.Claims
	if c.Context == nil || c.Context.ID == "" {
		return nil, nil
	}
	want := contextRow{Label: nullable(c.Context.Label), Title: nullable(c.Context.Title), Types: nonNil(c.Context.Type),
		NRPSVersions: []string{}, AGSScopes: []string{}}
	if c.NRPS != nil && c.NRPS.URL != "" {
		want.NRPSURL, want.NRPSVersions = &c.NRPS.URL, nonNil(c.NRPS.Versions)
	}
	if c.AGS != nil {
		want.LineItems, want.AGSScopes = nullable(c.AGS.LineItems), nonNil(c.AGS.Scope)
	}
	var have contextRow
	err := tx.GetContext(ctx, &have, `SELECT id, label, title, types, nrps_url, nrps_versions, ags_lineitems, ags_scopes
		FROM contexts WHERE registration_id = $1 AND deployment_id = $2 AND context_id = $3`,
		l.Registration.ID, *c.DeploymentID, c.Context.ID)
	if err == nil && sameContext(have, want) {
		return &have.ID, nil
	}
	if err != nil && !pg.IsNoRows(err) {
		return nil, pg.MapError(err)
	}
	var id uuid.UUID
	err = tx.GetContext(ctx, &id, `INSERT INTO contexts (id, tenant_id, registration_id, deployment_id, context_id, label, title, types,
			nrps_url, nrps_versions, ags_lineitems, ags_scopes, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (registration_id, deployment_id, context_id) DO UPDATE SET label = excluded.label, title = excluded.title,
			types = excluded.types, nrps_url = excluded.nrps_url, nrps_versions = excluded.nrps_versions,
			ags_lineitems = excluded.ags_lineitems, ags_scopes = excluded.ags_scopes, updated_at = excluded.updated_at
		RETURNING id`, uuid.New(), l.Registration.TenantID, l.Registration.ID, *c.DeploymentID, c.Context.ID,
		want.Label, want.Title, want.Types, want.NRPSURL, want.NRPSVersions, want.LineItems, want.AGSScopes, t.Now())
	return &id, pg.MapError(err)
}

func sameContext(a, b contextRow) bool {
	return eqPtr(a.Label, b.Label) && eqPtr(a.Title, b.Title) && slices.Equal(a.Types, b.Types) &&
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
func (t *Tool) upsertResourceLink(ctx context.Context, tx *sqlx.Tx, l *Launch, contextRef *uuid.UUID) (*uuid.UUID, error) {
	c := l.Claims
	if c.ResourceLink == nil || c.ResourceLink.ID == "" {
		return nil, nil // deep linking requests may carry none
	}
	want := linkRow{ContextRef: contextRef, Title: nullable(c.ResourceLink.Title), Description: nullable(c.ResourceLink.Description)}
	if c.AGS != nil {
		want.LineItem = nullable(c.AGS.LineItem)
	}
	var have linkRow
	err := tx.GetContext(ctx, &have, `SELECT id, context_ref, title, description, ags_lineitem FROM resource_links
		WHERE registration_id = $1 AND deployment_id = $2 AND resource_link_id = $3`, l.Registration.ID, *c.DeploymentID, c.ResourceLink.ID)
	if err == nil && sameUUID(have.ContextRef, want.ContextRef) && eqPtr(have.Title, want.Title) &&
		eqPtr(have.Description, want.Description) && eqPtr(have.LineItem, want.LineItem) {
		return &have.ID, nil
	}
	if err != nil && !pg.IsNoRows(err) {
		return nil, pg.MapError(err)
	}
	var id uuid.UUID
	err = tx.GetContext(ctx, &id, `INSERT INTO resource_links (id, tenant_id, registration_id, deployment_id, resource_link_id,
			context_ref, title, description, ags_lineitem, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (registration_id, deployment_id, resource_link_id) DO UPDATE SET context_ref = excluded.context_ref,
			title = excluded.title, description = excluded.description, ags_lineitem = excluded.ags_lineitem, updated_at = excluded.updated_at
		RETURNING id`, uuid.New(), l.Registration.TenantID, l.Registration.ID, *c.DeploymentID, c.ResourceLink.ID,
		contextRef, want.Title, want.Description, want.LineItem, t.Now())
	return &id, pg.MapError(err)
}

func sameUUID(a, b *uuid.UUID) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func (t *Tool) upsertMembership(ctx context.Context, tx *sqlx.Tx, l *Launch, rec Recorded) error {
	if rec.ContextRef == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO memberships (tenant_id, context_ref, user_id, roles, source, updated_at)
		VALUES ($1, $2, $3, $4, 'launch', $5)
		ON CONFLICT (context_ref, user_id) DO UPDATE SET roles = excluded.roles, source = 'launch', updated_at = excluded.updated_at`,
		l.Registration.TenantID, *rec.ContextRef, rec.UserID, pq.StringArray(l.Roles), t.Now())
	return pg.MapError(err)
}

// PurgeNonces deletes nonces whose tokens can no longer be valid, for every
// tenant: the hub's own housekeeping.
func (t *Tool) PurgeNonces(ctx context.Context) (int64, error) {
	var n int64
	err := pg.CrossTenant(ctx, t.db, t.log, "lti: purge expired nonces", func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM lti_nonces WHERE expires_at < $1`, t.Now())
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, pg.MapError(err)
}

// RunHousekeeping purges expired nonces every interval until ctx ends.
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
		}
	}
}
