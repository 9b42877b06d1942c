// Package tenants owns the hub's tenants (one per institution or employer)
// and the API keys their admins use.
//
// Every mutation runs in one transaction with the audit entry that records
// it. Reads and writes of one tenant run with that tenant set, so row-level
// security checks what the queries already scope; listing all tenants and
// finding an API key by its prefix are the operator's cross-tenant paths.
//
// An API key is shown once, at creation: "hubk_" + a public lookup id + "_"
// + 256 random bits. Only its SHA-256 is stored; the token's entropy makes a
// slow password hash unnecessary.
package tenants
