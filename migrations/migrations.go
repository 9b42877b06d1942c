// Package migrations holds the hub's schema as numbered SQL files, embedded
// into hubd and applied by `hubd migrate` (or at start with HUB_AUTO_MIGRATE).
//
// Every tenant-owned table has row-level security, forced so that the owning
// role is bound too. Policies admit a row when its tenant is the one set for
// the transaction (hub.tenant_id) or when the transaction has explicitly
// entered the operator's cross-tenant mode (hub.cross_tenant).
package migrations

import "embed"

// FS is the embedded set of migration files.
//
//go:embed *.sql
var FS embed.FS
