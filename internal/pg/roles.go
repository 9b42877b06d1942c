package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ApplicationGrants is every privilege the application role holds: data
// access to the schema owner's tables and nothing that changes the schema.
// The audit log is append-only for it, the migrations' own table read-only.
// PUBLIC loses CREATE on the schema, as PostgreSQL 15 does by default (13
// and 14 granted it).
// %[1]s is the quoted role. The functions include the few SECURITY
// DEFINER lookups that cross tenants (see the migrations); their EXECUTE
// was revoked from PUBLIC when they were made.
const ApplicationGrants = `
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %[1]s;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_log FROM %[1]s;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON goose_db_version FROM %[1]s;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %[1]s;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO %[1]s;
`

// GrantApplication gives role exactly ApplicationGrants on owner's schema.
// It runs after every migration, as the owner, so tables a migration adds
// are granted too. role must not be the owner itself: a table's owner can
// switch its row-level security off.
func GrantApplication(ctx context.Context, owner *sqlx.DB, role string) error {
	var current string
	if err := owner.GetContext(ctx, &current, `SELECT current_user`); err != nil {
		return fmt.Errorf("pg: grant: %w", err)
	}
	if current == role {
		return fmt.Errorf("pg: grant: the application role %q is the schema owner: migrate with HUB_MIGRATE_DATABASE_URL as a separate owner role", role)
	}
	// Under the migration lock: replicas starting together would otherwise
	// update the same catalog rows at once.
	err := InTx(ctx, owner, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, MigrationLockID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(ApplicationGrants, pq.QuoteIdentifier(role)))
		return err
	})
	if err != nil {
		return fmt.Errorf("pg: grant %s: %w", role, err)
	}
	return nil
}

// ErrUnsafeRole is returned by CheckApplicationRole for a role that
// row-level security would not bind.
var ErrUnsafeRole = errors.New("unsafe database role")

// CheckApplicationRole refuses to serve as a role that row-level security
// does not bind: a superuser, a role with BYPASSRLS, or the owner (or a
// member of the owner) of any table with a tenant_id column.
func CheckApplicationRole(ctx context.Context, db *sqlx.DB) error {
	var r struct {
		Name   string         `db:"rolname"`
		Super  bool           `db:"rolsuper"`
		Bypass bool           `db:"rolbypassrls"`
		Owns   pq.StringArray `db:"owns"`
	}
	err := db.GetContext(ctx, &r, `SELECT rolname, rolsuper, rolbypassrls, array(
		SELECT DISTINCT c.relname FROM pg_class c
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname IN ('tenant_id', 'id') AND NOT a.attisdropped
		JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
		WHERE c.relkind = 'r' AND c.relrowsecurity AND pg_has_role(current_user, c.relowner, 'USAGE')
		ORDER BY c.relname) AS owns
		FROM pg_roles WHERE rolname = current_user`)
	if err != nil {
		return MapError(fmt.Errorf("pg: check role: %w", err))
	}
	var why []string
	if r.Super {
		why = append(why, "is a superuser")
	}
	if r.Bypass {
		why = append(why, "has BYPASSRLS")
	}
	if len(r.Owns) > 0 {
		why = append(why, fmt.Sprintf("owns tenant tables (%s)", strings.Join(r.Owns, ", ")))
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: HUB_DATABASE_URL's role %q %s, so row-level security would not isolate tenants: serve as a role that owns nothing and migrate with HUB_MIGRATE_DATABASE_URL",
			ErrUnsafeRole, r.Name, strings.Join(why, " and "))
	}
	return nil
}
