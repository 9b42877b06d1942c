package lti

import (
	"context"
	"fmt"
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
// user, creating both on the first launch. A transaction-scoped lock on the
// identity keeps two first launches at once from making two users.
func (t *Tool) upsertUser(ctx context.Context, tx *sqlx.Tx, l *Launch) (uuid.UUID, error) {
	c, reg, now := l.Claims, l.Registration, t.Now()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		"lti-identity:"+reg.TenantID.String()+":"+c.Issuer+":"+*c.Subject); err != nil {
		return uuid.Nil, pg.MapError(err)
	}
	var id uuid.UUID
	err := tx.GetContext(ctx, &id, `UPDATE lti_identities SET institution_roles = $4, system_roles = $5, last_launch_at = $6
		WHERE tenant_id = $1 AND issuer = $2 AND subject = $3 RETURNING user_id`,
		reg.TenantID, c.Issuer, *c.Subject, pq.StringArray(l.Institution), pq.StringArray(l.System), now)
	if err == nil {
		_, err = tx.ExecContext(ctx, `UPDATE users SET name = coalesce(nullif($2, ''), name), given_name = coalesce(nullif($3, ''), given_name),
			family_name = coalesce(nullif($4, ''), family_name), email = coalesce(nullif($5, ''), email), locale = coalesce(nullif($6, ''), locale), updated_at = $7
			WHERE id = $1`, id, c.Name, c.GivenName, c.FamilyName, c.Email, locale(c), now)
		return id, pg.MapError(err)
	}
	if !pg.IsNoRows(err) {
		return uuid.Nil, pg.MapError(err)
	}
	id = uuid.New()
	if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, tenant_id, name, given_name, family_name, email, locale, created_at, updated_at)
		VALUES ($1, $2, nullif($3, ''), nullif($4, ''), nullif($5, ''), nullif($6, ''), nullif($7, ''), $8, $8)`,
		id, reg.TenantID, c.Name, c.GivenName, c.FamilyName, c.Email, locale(c), now); err != nil {
		return uuid.Nil, pg.MapError(err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO lti_identities (tenant_id, issuer, subject, user_id, institution_roles, system_roles, last_launch_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, reg.TenantID, c.Issuer, *c.Subject, id, pq.StringArray(l.Institution), pq.StringArray(l.System), now)
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

func (t *Tool) upsertContext(ctx context.Context, tx *sqlx.Tx, l *Launch) (*uuid.UUID, error) {
	c := l.Claims
	if c.Context == nil || c.Context.ID == "" {
		return nil, nil
	}
	var nrpsURL, lineItems *string
	nrpsVersions, agsScopes := []string{}, []string{}
	if c.NRPS != nil && c.NRPS.URL != "" {
		nrpsURL, nrpsVersions = &c.NRPS.URL, c.NRPS.Versions
	}
	if c.AGS != nil {
		if c.AGS.LineItems != "" {
			lineItems = &c.AGS.LineItems
		}
		agsScopes = c.AGS.Scope
	}
	var id uuid.UUID
	err := tx.GetContext(ctx, &id, `INSERT INTO contexts (id, tenant_id, registration_id, deployment_id, context_id, label, title, types,
			nrps_url, nrps_versions, ags_lineitems, ags_scopes, updated_at)
		VALUES ($1, $2, $3, $4, $5, nullif($6, ''), nullif($7, ''), $8, $9, $10, $11, $12, $13)
		ON CONFLICT (registration_id, deployment_id, context_id) DO UPDATE SET label = excluded.label, title = excluded.title,
			types = excluded.types, nrps_url = excluded.nrps_url, nrps_versions = excluded.nrps_versions,
			ags_lineitems = excluded.ags_lineitems, ags_scopes = excluded.ags_scopes, updated_at = excluded.updated_at
		RETURNING id`, uuid.New(), l.Registration.TenantID, l.Registration.ID, *c.DeploymentID, c.Context.ID,
		c.Context.Label, c.Context.Title, pq.StringArray(nonNil(c.Context.Type)), nrpsURL, pq.StringArray(nonNil(nrpsVersions)),
		lineItems, pq.StringArray(nonNil(agsScopes)), t.Now())
	return &id, pg.MapError(err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (t *Tool) upsertResourceLink(ctx context.Context, tx *sqlx.Tx, l *Launch, contextRef *uuid.UUID) (*uuid.UUID, error) {
	c := l.Claims
	if c.ResourceLink == nil || c.ResourceLink.ID == "" {
		return nil, nil // deep linking requests may carry none
	}
	var lineItem *string
	if c.AGS != nil && c.AGS.LineItem != "" {
		lineItem = &c.AGS.LineItem
	}
	var id uuid.UUID
	err := tx.GetContext(ctx, &id, `INSERT INTO resource_links (id, tenant_id, registration_id, deployment_id, resource_link_id,
			context_ref, title, description, ags_lineitem, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), nullif($8, ''), $9, $10)
		ON CONFLICT (registration_id, deployment_id, resource_link_id) DO UPDATE SET context_ref = excluded.context_ref,
			title = excluded.title, description = excluded.description, ags_lineitem = excluded.ags_lineitem, updated_at = excluded.updated_at
		RETURNING id`, uuid.New(), l.Registration.TenantID, l.Registration.ID, *c.DeploymentID, c.ResourceLink.ID,
		contextRef, c.ResourceLink.Title, c.ResourceLink.Description, lineItem, t.Now())
	return &id, pg.MapError(err)
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
