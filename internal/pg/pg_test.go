package pg_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// seedTenant inserts a tenant and one API key row through its own tenant's
// transaction, as the application does.
func seedTenant(t *testing.T, db *sqlx.DB, slug string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	err := pg.InTenant(context.Background(), db, id, func(tx *sqlx.Tx) error {
		if _, err := tx.Exec(`INSERT INTO tenants (id, slug, display_name, kind) VALUES ($1, $2, $2, 'institution')`, id, slug); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO api_keys (id, tenant_id, name, prefix, token_hash, scopes) VALUES ($1, $2, 'k', $3, '\x00', '{read}')`,
			uuid.New(), id, "hub_"+slug)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func count(t *testing.T, q sqlx.Queryer, table string) int {
	t.Helper()
	var n int
	if err := sqlx.Get(q, &n, `SELECT count(*) FROM `+table); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRowLevelSecurity(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Open(t)
	a := seedTenant(t, db, "tenant-a")
	b := seedTenant(t, db, "tenant-b")

	t.Run("the application role is bound by row-level security", func(t *testing.T) {
		var super, bypass bool
		if err := db.QueryRow(`SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass); err != nil {
			t.Fatal(err)
		}
		if super || bypass {
			t.Fatalf("tests connect as superuser=%v bypassrls=%v: they would prove nothing", super, bypass)
		}
	})

	t.Run("no tenant set sees no rows", func(t *testing.T) {
		for _, table := range []string{"tenants", "api_keys", "audit_log", "lti_registrations", "lti_deployments",
			"lti_nonces", "users", "lti_identities", "contexts", "resource_links", "memberships", "lti_registration_links"} {
			if n := count(t, db, table); n != 0 {
				t.Errorf("%s: %d rows visible with no tenant set", table, n)
			}
		}
	})

	t.Run("tenant A sees only its own rows", func(t *testing.T) {
		err := pg.InTenant(ctx, db, a, func(tx *sqlx.Tx) error {
			var slugs []string
			if err := tx.Select(&slugs, `SELECT slug FROM tenants`); err != nil {
				return err
			}
			if len(slugs) != 1 || slugs[0] != "tenant-a" {
				t.Errorf("tenant A sees tenants %v", slugs)
			}
			if n := count(t, tx, "api_keys WHERE tenant_id = '"+b.String()+"'"); n != 0 {
				t.Errorf("tenant A sees %d of B's keys", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("tenant A cannot change B's rows", func(t *testing.T) {
		err := pg.InTenant(ctx, db, a, func(tx *sqlx.Tx) error {
			res, err := tx.Exec(`UPDATE tenants SET display_name = 'taken' WHERE id = $1`, b)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 0 {
				t.Errorf("A updated %d of B's tenant rows", n)
			}
			res, err = tx.Exec(`DELETE FROM api_keys WHERE tenant_id = $1`, b)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 0 {
				t.Errorf("A deleted %d of B's keys", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("tenant A cannot insert rows for B", func(t *testing.T) {
		err := pg.InTenant(ctx, db, a, func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`INSERT INTO api_keys (id, tenant_id, name, prefix, token_hash, scopes) VALUES ($1, $2, 'x', 'hub_x', '\x00', '{read}')`, uuid.New(), b)
			return err
		})
		if err == nil {
			t.Fatal("A inserted a key into B")
		}
	})

	t.Run("the setting ends with the transaction", func(t *testing.T) {
		db.SetMaxOpenConns(1) // the next query reuses the same connection
		defer db.SetMaxOpenConns(20)
		_ = pg.InTenant(ctx, db, a, func(*sqlx.Tx) error { return nil })
		if n := count(t, db, "tenants"); n != 0 {
			t.Fatalf("after commit, %d tenant rows visible on the pooled connection", n)
		}
	})

	t.Run("no setting widens the view", func(t *testing.T) {
		for name, q := range map[string]string{
			"the old cross-tenant switch": `SELECT set_config('hub.cross_tenant', 'please', true)`,
			"another tenant's id":         `SELECT set_config('hub.tenant_id', '` + b.String() + `', true)`,
		} {
			err := pg.InTenant(ctx, db, a, func(tx *sqlx.Tx) error {
				if _, err := tx.Exec(q); err != nil {
					return err
				}
				if strings.Contains(name, "cross") {
					if n := count(t, tx, "tenants"); n != 1 {
						t.Errorf("%s: %d tenants visible, want only A", name, n)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		err := pg.InTx(ctx, db, func(tx *sqlx.Tx) error {
			tx.MustExec(`SELECT set_config('hub.cross_tenant', 'please', true)`)
			for _, table := range []string{"tenants", "api_keys", "audit_log"} {
				if n := count(t, tx, table); n != 0 {
					t.Errorf("with hub.cross_tenant set, %d %s rows visible", n, table)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the nonce purge deletes only expired nonces, whatever the caller says", func(t *testing.T) {
		err := pg.InTenant(ctx, db, a, func(tx *sqlx.Tx) error {
			reg := uuid.New()
			tx.MustExec(`INSERT INTO lti_registrations (id, tenant_id, issuer, client_id, auth_login_url, auth_token_url, jwks_url, created_at, updated_at)
				VALUES ($1, $2, 'https://lms.example', 'c', 'https://lms.example/a', 'https://lms.example/t', 'https://lms.example/j', now(), now())`, reg, a)
			_, err := tx.Exec(`INSERT INTO lti_nonces (tenant_id, registration_id, nonce, expires_at) VALUES
				($1, $2, 'live', now() + interval '1 hour'), ($1, $2, 'spent', now() - interval '1 hour')`, a, reg)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := db.Get(&n, `SELECT hub_purge_expired_nonces('infinity')`); err != nil || n != 1 {
			t.Fatalf("purge with an infinite cutoff deleted %d, %v; want only the expired one", n, err)
		}
	})

	t.Run("the definer lookups cross tenants, and only for their one answer", func(t *testing.T) {
		var got uuid.UUID
		if err := db.Get(&got, `SELECT hub_api_key_tenant('hub_tenant-b')`); err != nil || got != b {
			t.Fatalf("hub_api_key_tenant = %v, %v", got, err)
		}
		var slugs []string
		if err := db.Select(&slugs, `SELECT slug FROM hub_tenant_by_slug('tenant-b')`); err != nil || len(slugs) != 1 {
			t.Fatalf("hub_tenant_by_slug = %v, %v", slugs, err)
		}
	})

	t.Run("a unique violation maps to Conflict", func(t *testing.T) {
		err := pg.InTenant(ctx, db, a, func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`UPDATE tenants SET slug = 'tenant-b' WHERE id = $1`, a)
			return pg.MapError(err)
		})
		if !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("err = %v, want Conflict", err)
		}
	})
}

// TestApplicationRoleCannotLeaveIsolation tries every way the application
// role might switch row-level security off, widen its view or rewrite the
// audit log. Each must fail.
func TestApplicationRoleCannotLeaveIsolation(t *testing.T) {
	d := pgtest.New(t)
	db := pgtest.Connect(t, d.URL)
	a := seedTenant(t, db, "tenant-a")
	seedTenant(t, db, "tenant-b")
	attacks := map[string][]string{
		"no force row level security": {`ALTER TABLE api_keys NO FORCE ROW LEVEL SECURITY`},
		"disable row level security":  {`ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY`},
		"drop the policy":             {`DROP POLICY tenant_isolation ON api_keys`},
		"add a permissive policy":     {`CREATE POLICY open ON api_keys USING (true)`},
		"disable the audit trigger":   {`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`},
		"replace the cross-tenant check": {`CREATE OR REPLACE FUNCTION hub_cross_tenant() RETURNS boolean
			LANGUAGE sql STABLE AS $$ SELECT true $$`},
		"shadow a function in a new schema": {`CREATE SCHEMA evil`},
		"create a function in public":       {`CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$`},
		"become the owner":                  {`SET ROLE ` + pgtest.OwnerRole()},
		"become the owner for the session":  {`SET SESSION AUTHORIZATION ` + pgtest.OwnerRole()},
		"switch row security off":           {`SET row_security = off`, `SELECT count(*) FROM api_keys`},
		"update the audit log":              {`UPDATE audit_log SET action = 'x'`},
		"delete from the audit log":         {`DELETE FROM audit_log`},
		"truncate the audit log":            {`TRUNCATE audit_log`},
		"truncate a tenant table":           {`TRUNCATE api_keys`},
		"drop a table":                      {`DROP TABLE memberships`},
		"rewrite the schema version":        {`DELETE FROM goose_db_version`},
		"grant itself more":                 {`GRANT UPDATE ON audit_log TO CURRENT_USER`, `UPDATE audit_log SET action = 'x'`},
	}
	for name, stmts := range attacks {
		t.Run(name, func(t *testing.T) {
			err := pg.InTenant(context.Background(), db, a, func(tx *sqlx.Tx) error {
				for _, q := range stmts {
					if _, err := tx.Exec(q); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				t.Fatalf("the application role could: %s", strings.Join(stmts, "; "))
			}
		})
	}
	super := pgtest.Superuser(t, d)
	var forced bool
	super.Get(&forced, `SELECT relforcerowsecurity FROM pg_class WHERE oid = 'api_keys'::regclass`)
	if !forced {
		t.Fatal("api_keys lost forced row-level security")
	}
}

func TestMigratorReportsCurrentSchema(t *testing.T) {
	d := pgtest.New(t)
	db := pgtest.Connect(t, d.URL)
	m, err := pg.NewMigrator(db, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := m.Current(context.Background())
	if err != nil || !ok {
		t.Fatalf("Current = %v, %v on a migrated database", ok, err)
	}
	if _, err := pgtest.Superuser(t, d).Exec(`DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)`); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.Current(context.Background()); ok {
		t.Fatal("Current = true with a migration missing")
	}
}

// TestEveryTenantTableIsIsolated fails when a table with a tenant_id
// column lacks forced row-level security, so a new table cannot forget it.
func TestEveryTenantTableIsIsolated(t *testing.T) {
	db := pgtest.Open(t)
	var unprotected []string
	err := db.Select(&unprotected, `SELECT c.relname FROM pg_class c
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
		WHERE c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity
			AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))`)
	if err != nil {
		t.Fatal(err)
	}
	if len(unprotected) > 0 {
		t.Fatalf("tenant tables without forced row-level security: %v", unprotected)
	}
	var tables int
	db.Get(&tables, `SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE a.attname = 'tenant_id' AND c.relkind = 'r' AND NOT a.attisdropped`)
	if tables < 10 {
		t.Fatalf("only %d tenant tables found: the check is not looking at the schema", tables)
	}
}

// TestTenantSetWithBegin: the hub's connections set the transaction's
// tenant in the round trip of BEGIN; other connections with a statement of
// its own. Either way the first statement sees it and it ends with the
// transaction.
func TestTenantSetWithBegin(t *testing.T) {
	ctx := context.Background()
	d := pgtest.New(t)
	hubDB := pgtest.Connect(t, d.URL)
	plain, err := sqlx.Open("postgres", d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	a := seedTenant(t, hubDB, "tenant-a")
	for name, db := range map[string]*sqlx.DB{"the hub's connection": hubDB, "a plain lib/pq connection": plain} {
		t.Run(name, func(t *testing.T) {
			db.SetMaxOpenConns(1) // every transaction on the same connection
			var got string
			err := pg.InTenant(ctx, db, a, func(tx *sqlx.Tx) error {
				return tx.Get(&got, `SELECT slug FROM tenants`)
			})
			if err != nil || got != "tenant-a" {
				t.Fatalf("first statement: %q, %v", got, err)
			}
			err = pg.InTenant(ctx, db, a, func(tx *sqlx.Tx) error {
				_, err := tx.Exec(`SELECT 1 / 0`)
				return err
			})
			if err == nil {
				t.Fatal("a failing statement did not fail")
			}
			if n := count(t, db, "tenants"); n != 0 {
				t.Fatalf("after the transaction, %d tenant rows visible on its connection", n)
			}
			err = pg.InTx(ctx, db, func(tx *sqlx.Tx) error {
				return tx.Get(&got, `SELECT coalesce(current_setting('hub.tenant_id', true), '')`)
			})
			if err != nil || got != "" {
				t.Fatalf("a transaction with no tenant has %q, %v", got, err)
			}
		})
	}
}
