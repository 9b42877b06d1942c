// Package pg opens the hub's PostgreSQL database, applies the embedded
// migrations, and runs transactions with the tenant set.
//
// Row-level security reads the tenant from the transaction-local setting
// hub.tenant_id, which InTenant sets with SET LOCAL semantics before running
// the caller's function, so nothing can leak to the next user of a pooled
// connection. CrossTenant is the one explicit, logged way for the operator's
// work (listing tenants, finding an API key by its prefix) to see every
// tenant's rows.
package pg
