package lti_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

// TestTwoTenantIsolation runs every store method that takes a tenant as
// tenant B against tenant A's objects. Each must answer exactly what it
// answers for an object that does not exist (so B cannot even learn that
// A's exists) and change nothing of A's.
func TestTwoTenantIsolation(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := pgtest.Open(t)
	keys, _ := audit.NewKeyring(make([]byte, 32))
	ts, regs := tenants.NewStore(db, keys, quiet), lti.NewRegistrations(db, keys, quiet)
	op := audit.Operator("isolation")
	mk := func(slug string) tenants.Tenant {
		tn, err := ts.Create(ctx, op, tenants.NewTenant{Slug: slug, DisplayName: slug, Kind: tenants.Institution})
		if err != nil {
			t.Fatal(err)
		}
		return tn
	}
	a, b := mk("tenant-a"), mk("tenant-b")
	keyA, _, err := ts.CreateKey(ctx, op, a.ID, tenants.NewKey{Name: "a", Scopes: []tenants.Scope{tenants.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	regA, err := regs.Create(ctx, op, a.ID, lti.NewRegistration{Issuer: "https://lms.a.example", ClientID: "a-client",
		AuthLoginURL: "https://lms.a.example/auth", AuthTokenURL: "https://lms.a.example/token",
		JWKSURL: "https://lms.a.example/jwks", DeploymentIDs: []string{"dep-a"}})
	if err != nil {
		t.Fatal(err)
	}
	name := "taken"
	tool := lti.NewTool(db, regs, nil, nil, &url.URL{Scheme: "https", Host: "hub.example"}, nil, quiet)
	linkA, err := tool.CreateRegistrationLink(ctx, op, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A shared registration is no tenant's: the tenant methods treat it as
	// another tenant's.
	shared, err := regs.CreateShared(ctx, op, lti.NewSharedRegistration{Issuer: "https://lms.shared.example", ClientID: "one-for-all",
		AuthLoginURL: "https://lms.shared.example/auth", AuthTokenURL: "https://lms.shared.example/token", JWKSURL: "https://lms.shared.example/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := regs.AssignDeployment(ctx, op, shared.ID, "dep-shared-a", a.ID); err != nil {
		t.Fatal(err)
	}
	jwks := "https://lms.b.example/jwks"

	// Each case runs as B on A's object and on an id nobody has.
	cases := map[string]func(id uuid.UUID) error{
		"get key": func(id uuid.UUID) error { _, err := ts.GetKey(ctx, b.ID, id); return err },
		"revoke key": func(id uuid.UUID) error {
			_, err := ts.RevokeKey(ctx, op, b.ID, id)
			return err
		},
		"get registration": func(id uuid.UUID) error { _, err := regs.Get(ctx, b.ID, id); return err },
		"delete registration": func(id uuid.UUID) error {
			return regs.Delete(ctx, op, b.ID, id, true)
		},
		"update registration": func(id uuid.UUID) error {
			_, err := regs.Update(ctx, op, b.ID, id, lti.RegistrationPatch{JWKSURL: &jwks})
			return err
		},
		"get shared registration as a tenant's": func(id uuid.UUID) error { _, err := regs.Get(ctx, b.ID, id); return err },
		"update shared registration as a tenant's": func(id uuid.UUID) error {
			_, err := regs.Update(ctx, op, a.ID, id, lti.RegistrationPatch{JWKSURL: &jwks})
			return err
		},
		"delete shared registration as a tenant's": func(id uuid.UUID) error { return regs.Delete(ctx, op, a.ID, id, true) },
		"remove shared deployment as a tenant's": func(id uuid.UUID) error {
			_, err := regs.RemoveDeployment(ctx, op, a.ID, id, "dep-shared-a", true)
			return err
		},
		"revoke registration link": func(id uuid.UUID) error {
			_, err := tool.RevokeRegistrationLink(ctx, op, b.ID, id)
			return err
		},
		"add deployment": func(id uuid.UUID) error {
			_, err := regs.AddDeployment(ctx, op, b.ID, id, "dep-b")
			return err
		},
		"remove deployment": func(id uuid.UUID) error {
			_, err := regs.RemoveDeployment(ctx, op, b.ID, id, "dep-a", true)
			return err
		},
	}
	ids := map[string]uuid.UUID{"get key": keyA.ID, "revoke key": keyA.ID, "revoke registration link": linkA.ID}
	for name := range cases {
		if strings.Contains(name, "shared") {
			ids[name] = shared.ID
		}
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			target, ok := ids[name]
			if !ok {
				target = regA.ID
			}
			nobody := uuid.New()
			errA, errNone := run(target), run(nobody)
			if !apperr.Is(errA, apperr.NotFound) || !apperr.Is(errNone, apperr.NotFound) {
				t.Fatalf("on A's object: %v; on no object: %v; want both not found", errA, errNone)
			}
			if masked(errA.Error(), target) != masked(errNone.Error(), nobody) {
				t.Fatalf("answers differ, so B learns A's exists: %q vs %q", errA, errNone)
			}
		})
	}

	t.Run("lists show only B's own", func(t *testing.T) {
		keys, _, err := ts.ListKeys(ctx, b.ID, pg.Page{Limit: 100})
		if err != nil || len(keys) != 0 {
			t.Fatalf("B lists keys %v, %v", keys, err)
		}
		rs, _, err := regs.List(ctx, b.ID, pg.Page{Limit: 100})
		if err != nil || len(rs) != 0 {
			t.Fatalf("B lists registrations %v, %v", rs, err)
		}
		ls, _, err := tool.ListRegistrationLinks(ctx, b.ID, pg.Page{Limit: 100})
		if err != nil || len(ls) != 0 {
			t.Fatalf("B lists registration links %v, %v", ls, err)
		}
	})

	t.Run("B registers A's issuer and client_id as it would a fresh pair", func(t *testing.T) {
		for _, client := range []string{"a-client", "fresh-client"} {
			r, err := regs.Create(ctx, op, b.ID, lti.NewRegistration{Issuer: "https://lms.a.example", ClientID: client,
				AuthLoginURL: "https://lms.a.example/auth", AuthTokenURL: "https://lms.a.example/token",
				JWKSURL: "https://lms.a.example/jwks", DeploymentIDs: []string{"dep-a"}})
			if err != nil || r.TenantID != b.ID || r.ID == regA.ID {
				t.Fatalf("B registering %s: %+v, %v", client, r, err)
			}
		}
	})

	t.Run("the operator's tenant methods change only the tenant named", func(t *testing.T) {
		if _, err := ts.Update(ctx, op, b.ID, tenants.Patch{DisplayName: &name}); err != nil {
			t.Fatal(err)
		}
		got, err := ts.BySlug(ctx, "tenant-a")
		if err != nil || got.DisplayName != "tenant-a" {
			t.Fatalf("A after B's update: %+v, %v", got, err)
		}
	})

	t.Run("A's objects are unchanged", func(t *testing.T) {
		k, err := ts.GetKey(ctx, a.ID, keyA.ID)
		if err != nil || k.RevokedAt != nil {
			t.Fatalf("A's key: %+v, %v", k, err)
		}
		r, err := regs.Get(ctx, a.ID, regA.ID)
		if err != nil || strings.Join(r.DeploymentIDs, ",") != "dep-a" || r.JWKSURL != "https://lms.a.example/jwks" {
			t.Fatalf("A's registration: %+v, %v", r, err)
		}
		ls, _, err := tool.ListRegistrationLinks(ctx, a.ID, pg.Page{Limit: 100})
		if err != nil || len(ls) != 1 || ls[0].Status != lti.LinkActive {
			t.Fatalf("A's links: %+v, %v", ls, err)
		}
		sh, err := regs.GetShared(ctx, shared.ID)
		if err != nil || len(sh.Deployments) != 1 || sh.Deployments[0].Tenant != "tenant-a" || sh.JWKSURL != "https://lms.shared.example/jwks" {
			t.Fatalf("the shared registration: %+v, %v", sh, err)
		}
	})
}

// masked replaces an id in an error message, so two answers can be compared.
func masked(msg string, id uuid.UUID) string {
	return strings.ReplaceAll(msg, id.String(), "ID")
}

// TestSharedRegistrationRowLevelSecurity: as the application role, every
// tenant reads a shared registration and none changes it; only a
// transaction with no tenant set does. A tenant's deployment or course
// can name its own registration, or a shared one with its own
// deployment, never another tenant's.
func TestSharedRegistrationRowLevelSecurity(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := pgtest.Open(t)
	keys, _ := audit.NewKeyring(make([]byte, 32))
	ts, regs := tenants.NewStore(db, keys, quiet), lti.NewRegistrations(db, keys, quiet)
	op := audit.Operator("rls")
	var ids []uuid.UUID
	for _, slug := range []string{"tenant-a", "tenant-b"} {
		tn, err := ts.Create(ctx, op, tenants.NewTenant{Slug: slug, DisplayName: slug, Kind: tenants.Institution})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tn.ID)
	}
	a, b := ids[0], ids[1]
	shared, err := regs.CreateShared(ctx, op, lti.NewSharedRegistration{Issuer: "https://bb.example", ClientID: "one",
		AuthLoginURL: "https://bb.example/auth", AuthTokenURL: "https://bb.example/token", JWKSURL: "https://bb.example/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := regs.AssignDeployment(ctx, op, shared.ID, "dep-a", a); err != nil {
		t.Fatal(err)
	}
	regA, err := regs.Create(ctx, op, a, lti.NewRegistration{Issuer: "https://lms.a.example", ClientID: "a",
		AuthLoginURL: "https://lms.a.example/auth", AuthTokenURL: "https://lms.a.example/token", JWKSURL: "https://lms.a.example/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	affected := func(tx *sqlx.Tx, q string, args ...any) int64 {
		t.Helper()
		res, err := tx.Exec(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		n, _ := res.RowsAffected()
		return n
	}
	refused := func(tenant uuid.UUID, name, q string, args ...any) {
		t.Helper()
		err := pg.InTenant(ctx, db, tenant, func(tx *sqlx.Tx) error { _, err := tx.Exec(q, args...); return err })
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	err = pg.InTenant(ctx, db, b, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.Get(&n, `SELECT count(*) FROM lti_registrations WHERE id = $1`, shared.ID); err != nil || n != 1 {
			t.Errorf("tenant B reads %d shared registrations (%v)", n, err)
		}
		if n := affected(tx, `UPDATE lti_registrations SET jwks_url = 'https://evil.example/jwks' WHERE id = $1`, shared.ID); n != 0 {
			t.Errorf("tenant B updated the shared registration")
		}
		if n := affected(tx, `DELETE FROM lti_registrations WHERE id = $1`, shared.ID); n != 0 {
			t.Errorf("tenant B deleted the shared registration")
		}
		if n := affected(tx, `SELECT 1 FROM lti_deployments WHERE registration_id = $1`, shared.ID); n != 0 {
			t.Errorf("tenant B sees A's deployment of the shared registration")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	refused(b, "a tenant making a shared registration", `INSERT INTO lti_registrations (id, tenant_id, shared, issuer, client_id,
		auth_login_url, auth_token_url, jwks_url, created_at, updated_at) VALUES ($1, NULL, true, 'https://x.example', 'x', 'https://x.example/a',
		'https://x.example/t', 'https://x.example/j', now(), now())`, uuid.New())
	refused(b, "a deployment of another tenant's registration", `INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, created_at)
		VALUES ($1, $2, 'dep-b', now())`, b, regA.ID)
	refused(b, "a tenant deployment row on a shared registration", `INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, created_at)
		VALUES ($1, $2, 'dep-b', now())`, b, shared.ID)
	refused(b, "a course on another tenant's deployment", `INSERT INTO contexts (id, tenant_id, registration_id, deployment_id, context_id, updated_at)
		VALUES ($1, $2, $3, 'dep-a', 'course', now())`, uuid.New(), b, shared.ID)

	err = pg.InTx(ctx, db, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.Get(&n, `SELECT count(*) FROM lti_registrations`); err != nil || n != 1 {
			t.Errorf("with no tenant set, %d registrations visible (%v); want the shared one only", n, err)
		}
		if err := tx.Get(&n, `SELECT count(*) FROM lti_deployments`); err != nil || n != 0 {
			t.Errorf("with no tenant set, %d deployments visible (%v)", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
