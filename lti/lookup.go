package lti

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants"
)

// target is everything a login or launch needs to know about where it is
// going: the registration, its deployments and its tenant. Logins and
// launches are the hub's hottest path, and these change rarely, so they
// are read in one query and cached for CacheTTL: a suspension, a removed
// deployment or a deleted registration takes effect within that time.
type target struct {
	Registration
	TenantSlug   string `db:"tenant_slug"`
	TenantName   string `db:"tenant_name"`
	TenantStatus string `db:"tenant_status"`
}

func (tg target) active() bool { return tg.TenantStatus == string(tenants.Active) }

func (tg target) deploys(id string) bool { return slices.Contains(tg.DeploymentIDs, id) }

// adopts reports a registration still waiting for its first deployment.
func (tg target) adopts() bool { return tg.AdoptFirstDeployment && len(tg.DeploymentIDs) == 0 }

// forget drops cached lookups of a registration that just changed.
func (t *Tool) forget(id uuid.UUID) {
	t.targets.mu.Lock()
	defer t.targets.mu.Unlock()
	for key, c := range t.targets.entries {
		if key.id == id || (len(c.targets) > 0 && c.targets[0].ID == id) {
			delete(t.targets.entries, key)
		}
	}
}

type targetKey struct {
	id               uuid.UUID
	issuer, clientID string
}

type cachedTarget struct {
	targets []target
	expires time.Time
}

// targetCache caches lookups by key.
type targetCache struct {
	mu      sync.Mutex
	entries map[targetKey]cachedTarget
}

const targetQuery = `SELECT ` + registrationColumns + `, t.slug AS tenant_slug, t.display_name AS tenant_name,
	t.status AS tenant_status FROM lti_registrations r JOIN tenants t ON t.id = r.tenant_id `

// lookup finds the targets for key: by id, by issuer and client_id, or by
// issuer alone (at most two, to tell "one" from "several"). A lookup the
// cache cannot answer counts against source's limit, when one is named.
func (t *Tool) lookup(ctx context.Context, key targetKey, source string) ([]target, error) {
	now := t.Now()
	t.targets.mu.Lock()
	c, ok := t.targets.entries[key]
	t.targets.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.targets, nil
	}
	if source != "" && t.LoginLimiter != nil {
		if ok, wait := t.LoginLimiter.Allow(source, now); !ok {
			return nil, &Failure{Reason: ReasonRateLimited, Detail: "the source is over its login lookup limit", RetryAfter: wait}
		}
	}
	found, err := t.findTargets(ctx, key)
	if err != nil {
		return nil, err
	}
	if t.CacheTTL > 0 {
		t.targets.mu.Lock()
		if t.targets.entries == nil || len(t.targets.entries) > 10000 {
			t.targets.entries = map[targetKey]cachedTarget{} // bounded: start over
		}
		t.targets.entries[key] = cachedTarget{targets: found, expires: now.Add(t.CacheTTL)}
		t.targets.mu.Unlock()
	}
	return found, nil
}

// findTargets routes key to its registrations through the one cross-tenant
// lookup logins need (hub_lti_route: ids only), then reads each inside its
// own tenant's transaction.
func (t *Tool) findTargets(ctx context.Context, key targetKey) ([]target, error) {
	var routes []struct {
		Registration uuid.UUID `db:"registration_id"`
		Tenant       uuid.UUID `db:"tenant_id"`
	}
	var id *uuid.UUID
	if key.id != uuid.Nil {
		id = &key.id
	}
	err := pg.InTx(ctx, t.db, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &routes, `SELECT * FROM hub_lti_route($1, $2, $3)`, id, key.issuer, key.clientID)
	})
	if err != nil {
		return nil, pg.MapError(fmt.Errorf("lti: route login: %w", err))
	}
	found := make([]target, 0, len(routes))
	for _, r := range routes {
		var tg target
		err := pg.InTenant(ctx, t.db, r.Tenant, func(tx *sqlx.Tx) error {
			return tx.GetContext(ctx, &tg, targetQuery+`WHERE r.tenant_id = $1 AND r.id = $2`, r.Tenant, r.Registration)
		})
		if pg.IsNoRows(err) {
			continue // deleted in between
		}
		if err != nil {
			return nil, pg.MapError(fmt.Errorf("lti: read registration %s: %w", r.Registration, err))
		}
		found = append(found, tg)
	}
	return found, nil
}

// targetByID is the registration a state or a login URL names; source is
// the client of a login ("" for a state, which the hub sealed).
func (t *Tool) targetByID(ctx context.Context, id uuid.UUID, source string) (target, error) {
	found, err := t.lookup(ctx, targetKey{id: id}, source)
	if err != nil {
		return target{}, err
	}
	if len(found) == 0 {
		return target{}, fail(ReasonUnknownRegistration, "registration %s is gone", id)
	}
	return found[0], nil
}

// targetFor finds a login's registration; with no client_id the issuer
// must have exactly one.
func (t *Tool) targetFor(ctx context.Context, issuer, clientID, source string) (target, error) {
	found, err := t.lookup(ctx, targetKey{issuer: issuer, clientID: clientID}, source)
	switch {
	case err != nil:
		return target{}, err
	case len(found) == 0:
		return target{}, fail(ReasonUnknownRegistration, "no registration for %q / %q", issuer, clientID)
	case len(found) > 1:
		return target{}, fail(ReasonAmbiguousIssuer, "the issuer has several registrations: the platform must send client_id, or use the registration's own login URL")
	}
	return found[0], nil
}
