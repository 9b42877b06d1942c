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

// forget drops cached lookups of a registration that just changed, and
// every lookup by issuer: the change may route those elsewhere (a
// deployment added to another registration of the issuer, say). Other
// replicas see the change within CacheTTL.
func (t *Tool) forget(id uuid.UUID) {
	t.targets.mu.Lock()
	defer t.targets.mu.Unlock()
	for key, c := range t.targets.entries {
		if key.id == id || key.issuer != "" || slices.ContainsFunc(c.targets, func(tg target) bool { return tg.ID == id }) {
			delete(t.targets.entries, key)
		}
	}
}

// targetKey is what a lookup is asked: a login's registration id (its own
// login URL) or issuer and client_id, with its deployment id; or a
// launch's registration and tenant, which the sealed state names.
type targetKey struct {
	id, tenant                   uuid.UUID
	issuer, clientID, deployment string
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

// targetQuery reads a registration as the target of tenant's launches: one
// of its own, or a shared one with the deployments assigned to tenant.
const targetQuery = `SELECT r.id, $1::uuid AS tenant_id, r.shared, r.issuer, r.client_id, r.auth_login_url,
	r.auth_token_url, r.token_audience, r.jwks_url, r.trusted_audiences, r.adopt_first_deployment, r.created_at, r.updated_at,
	array(SELECT d.deployment_id FROM lti_deployments d WHERE d.tenant_id = $1 AND d.registration_id = r.id
		ORDER BY d.created_at, d.deployment_id) AS deployment_ids,
	t.slug AS tenant_slug, t.display_name AS tenant_name, t.status AS tenant_status
	FROM lti_registrations r JOIN tenants t ON t.id = $1
	WHERE r.id = $2 AND (r.tenant_id = $1 OR r.shared)`

// lookup finds the targets for key, at most two, to tell "one" from
// "several". A lookup the cache cannot answer counts against source's
// limit, when one is named.
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

// routeRow is one (registration, tenant) a login may be for; Tenant is nil
// for a shared registration none of whose deployments matched.
type routeRow struct {
	Registration uuid.UUID  `db:"registration_id"`
	Tenant       *uuid.UUID `db:"tenant_id"`
}

// route asks the one cross-tenant lookup logins need (hub_lti_route: ids
// only) for the candidates of a registration id, or of issuer and
// client_id, and a deployment id ("" for none).
func route(ctx context.Context, db *sqlx.DB, id *uuid.UUID, issuer, clientID, deployment string) ([]routeRow, error) {
	var routes []routeRow
	err := pg.InTx(ctx, db, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &routes, `SELECT * FROM hub_lti_route($1, $2, $3, $4)`, id, issuer, clientID, deployment)
	})
	if err != nil {
		return nil, pg.MapError(fmt.Errorf("lti: route login: %w", err))
	}
	return routes, nil
}

// findTargets reads a launch's target in its tenant's transaction, or
// routes a login's key and reads each candidate in its own tenant's. A
// candidate with no tenant is a target with none (TenantID nil).
func (t *Tool) findTargets(ctx context.Context, key targetKey) ([]target, error) {
	if key.tenant != uuid.Nil {
		return t.readTargets(ctx, []routeRow{{Registration: key.id, Tenant: &key.tenant}})
	}
	var id *uuid.UUID
	if key.id != uuid.Nil {
		id = &key.id
	}
	routes, err := route(ctx, t.db, id, key.issuer, key.clientID, key.deployment)
	if err != nil {
		return nil, err
	}
	return t.readTargets(ctx, routes)
}

func (t *Tool) readTargets(ctx context.Context, routes []routeRow) ([]target, error) {
	found := make([]target, 0, len(routes))
	for _, r := range routes {
		if r.Tenant == nil {
			found = append(found, target{Registration: Registration{ID: r.Registration, Shared: true}})
			continue
		}
		var tg target
		err := pg.InTenant(ctx, t.db, *r.Tenant, func(tx *sqlx.Tx) error {
			return tx.GetContext(ctx, &tg, targetQuery, *r.Tenant, r.Registration)
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

// targetOf is the registration and tenant a sealed state or deep linking
// session names. A state sealed before states named their tenant (nil)
// routes by the registration alone.
func (t *Tool) targetOf(ctx context.Context, id, tenant uuid.UUID) (target, error) {
	found, err := t.lookup(ctx, targetKey{id: id, tenant: tenant}, "")
	if err == nil && len(found) == 0 {
		err = fail(ReasonUnknownRegistration, "registration %s is gone", id)
	}
	if err != nil {
		return target{}, err
	}
	return one(found)
}

// loginTarget finds a login's registration and tenant: the one its own
// login URL names, or the one registration of its issuer and client_id
// (with none, the issuer's only one), the deployment id choosing among
// several. It never picks one of several: a platform that several
// registrations match must use its registration's own login URL.
func (t *Tool) loginTarget(ctx context.Context, in LoginRequest) (target, error) {
	key := targetKey{issuer: in.Issuer, clientID: in.ClientID, deployment: in.DeploymentID}
	if in.RegistrationID != "" {
		id, err := uuid.Parse(in.RegistrationID)
		if err != nil {
			return target{}, failErr(ReasonUnknownRegistration, err)
		}
		key = targetKey{id: id, deployment: in.DeploymentID}
	}
	found, err := t.lookup(ctx, key, in.Source)
	if err == nil && len(found) == 0 {
		err = fail(ReasonUnknownRegistration, "no registration for %q / %q / %q", in.Issuer, in.ClientID, in.RegistrationID)
	}
	if err != nil {
		return target{}, err
	}
	tg, err := one(found)
	if err == nil && key.id != uuid.Nil && (tg.Issuer != in.Issuer || (in.ClientID != "" && in.ClientID != tg.ClientID)) {
		return tg, fail(ReasonUnknownRegistration, "the login URL's registration does not match iss/client_id")
	}
	return tg, err
}

// one is the only target of found, which holds at least one.
func one(found []target) (target, error) {
	switch {
	case len(found) > 1:
		return target{}, fail(ReasonAmbiguousIssuer, "several registrations match: the platform must use the registration's own login URL")
	case found[0].TenantID == uuid.Nil:
		return target{}, fail(ReasonUnknownDeployment, "shared registration %s: no tenant holds the deployment", found[0].ID)
	}
	return found[0], nil
}
