// Package audit is the hub's append-only record of admin mutations and
// security events.
//
// Each tenant has its own chain, and events that belong to no tenant (a
// bearer token nobody recognises, say) form the operator's chain. Every
// entry's hash covers its content and the previous entry's hash, and
// entries are numbered 1, 2, 3… within their chain, so altering, removing or
// reordering a stored entry breaks the chain at a place Verify can name.
//
// Appends to one chain are serialised with a transaction-scoped advisory
// lock, so concurrent writers on any number of replicas never fork a chain.
// Domain stores call Append inside their own transaction, so the entry
// commits or rolls back with the change it records. Events an outsider can
// cause at will (refused bearer tokens) are written with RecordBounded,
// which counts the chain's recent entries of that action under the same
// lock and writes nothing past the bound, whichever replica asks.
package audit
