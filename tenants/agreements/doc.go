// Package agreements owns what the hub may share about a learner, and
// with whom: each tenant's data-sharing agreement (versioned: draft,
// active, superseded or terminated), and the policy function every
// outbound record passes through at the moment it is sent.
//
// An agreement names the data categories that may leave (scores,
// completion, progress, time spent, certificates), the identity fields
// that may accompany them (name, email, external id; the hub's
// pseudonymous user id always may), the destinations allowed (the
// tenant's LMS gradebooks, named webhook and xAPI destinations), whether
// the learner's consent is needed (opt-in) or may be refused (opt-out),
// how long disclosure records and kept copies are retained, and what
// becomes of shared data when the agreement ends (returned or deleted, as
// GDPR Art. 28(3)(g) expects of a processor). One version per tenant is
// active; activating a draft supersedes the last in the same transaction.
//
// Decide is the policy: a pure function of the agreement, the learner's
// consent as read when the record is sent, the record, the destination
// and the time. It shares, shares with fields removed, or withholds with
// a reason code.
//
// Every decision is kept in the record of disclosures (RecordDecision), in
// the transaction that sends or cancels the record it is about: who it was
// about, where it went or would have gone, which fields went and which
// were removed, under which agreement version, and why. Tenant admins list
// it and export it as CSV; it outlives the learner's erasure without
// naming them.
//
// Retention keeps the agreements' word on time: a run deletes the
// disclosures older than the retention of the version they were decided
// under, and, once an agreement terminated with delete is past its copy
// retention, erases the learners the tenant had then through the same
// erasure a tenant admin asks for (Learners). Deletions go a batch per
// transaction, and each run is recorded with its counts.
package agreements
