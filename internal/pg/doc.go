// Package pg opens the hub's PostgreSQL database, applies the embedded
// migrations, and runs transactions with the tenant set.
//
// Row-level security reads the tenant from the transaction-local setting
// hub.tenant_id, which InTenant sets with SET LOCAL semantics before running
// the caller's function, so nothing can leak to the next user of a pooled
// connection.
//
// hubd serves as an application role that owns nothing (CheckApplicationRole
// refuses anything else) and migrates as a separate owner role, which
// grants the application role ApplicationGrants after every migration. No
// setting widens the application's view: only the schema owner sees across
// tenants, and the application reaches that only through a few SECURITY
// DEFINER functions, each one lookup made before a tenant is known (an API
// key's tenant, a slug, an LTI login's registration). See
// migrations/00008_isolation.sql.
package pg
