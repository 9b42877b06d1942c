// Package delivery sends records about learners out of the hub: scores to
// the LMS gradebook (AGS, to come), and records to a tenant's named
// destinations as signed webhooks (Standard Webhooks) and as xAPI 1.0.3
// statements to a Learning Record Store.
//
// The senders here are the last step of a delivery and know nothing of
// jobs or the database. The delivery worker reads the outbox row when it
// runs, passes the record through agreements.Disclose (which decides, in
// the worker's transaction, what may go and records the decision), fills a
// Record with what the decision let go, opens the destination's
// credentials (tenants/destinations) and calls SendWebhook or
// SendStatement. Each answers a Result that says what the worker does
// next:
//
//   - Delivered: a 2xx answer (and for an LRS, 409: it holds a statement
//     with that id already, which is this one sent before);
//   - Retry: a 5xx, a timeout or a broken connection: try again with
//     backoff;
//   - Throttled: 429, or 503 with Retry-After: wait RetryAfter;
//   - Failed: any other answer (3xx, which is not followed, and 4xx), or an
//     address the outbound guard refuses: retrying will not help until the
//     destination changes;
//   - DryRun: the destination is in dry run: nothing was sent, and Request
//     is what would have been, for the record.
//
// Every request goes through the hub's guarded client (internal/httpx),
// which refuses private addresses unless HUB_OUTBOUND_ALLOW_PRIVATE, at
// each delivery, whatever the URL looked like when it was stored.
//
// A webhook's webhook-id and an xAPI statement's id are stable for one
// record and destination, so a receiver can drop a repeat and an LRS
// stores a resent statement once.
package delivery
