package agreements

// Holding is one table that holds rows about a learner, and what the
// learner's rights do to them: which rows are theirs, what of them the
// export shows, and how the erasure disposes of them. Holdings is the one
// list of them: a table that names a user is added to the export and the
// erasure by one entry there, and a test fails while a table with a
// user_id column (or a key to users) has none.
type Holding struct {
	Table string
	// Section is the key of the table's rows in the export document.
	Section string
	// Single says the learner has one row here (an object in the export,
	// not a list).
	Single bool
	// Match selects the learner's rows of the table aliased t: $1 is the
	// tenant, $2 the user. Empty: t.tenant_id = $1 AND t.user_id = $2.
	Match string
	// Export lists the table's columns the export shows, in order.
	Export []string
	// Join and Joined add columns of related rows to the export: a join
	// clause on t, and the select expressions it makes available.
	Join, Joined string
	// Omitted names each text, jsonb or text[] column the export leaves
	// out, with why. A test fails when such a column is in neither list.
	Omitted map[string]string
	// Order orders the rows in the export.
	Order string
	Erase Erasure
	// Scrubbed are the columns a Scrub erasure sets NULL.
	Scrubbed []string
}

// Erasure is what erasing a learner does to a holding's rows.
type Erasure int

const (
	// Delete removes the learner's rows.
	Delete Erasure = iota + 1
	// Detach keeps the rows with their user_id set NULL: a record that
	// something happened, naming no one. The rows' other columns must hold
	// nothing personal.
	Detach
	// Scrub is the users row itself: kept (foreign keys and counts hold),
	// its Scrubbed columns set NULL and erased_at set.
	Scrub
	// Keep leaves the rows as they are: they hold ids only, never personal
	// data (the append-only audit log).
	Keep
)

// Holdings lists every table that holds rows about a learner. Erasure
// works through it in order; the users row comes last, so every row that
// names the user is gone or detached before it is scrubbed.
func Holdings() []Holding {
	return []Holding{
		{Table: "lti_identities", Section: "platform_identities", Erase: Delete, Order: "t.issuer, t.subject",
			Export: []string{"issuer", "subject", "institution_roles", "system_roles", "last_launch_at", "lis_person_sourcedid",
				"lti11_legacy_user_id", "picture", "synced_at"}},
		{Table: "memberships", Section: "memberships", Erase: Delete, Order: "t.updated_at, t.context_ref",
			Export: []string{"context_ref", "roles", "status", "source", "launched_at", "synced_at", "updated_at"},
			Join:   "LEFT JOIN contexts c ON c.tenant_id = t.tenant_id AND c.id = t.context_ref",
			Joined: "c.context_id AS course_id, c.title AS course_title, c.label AS course_label"},
		{Table: "lti_launch_log", Section: "launches", Erase: Detach, Order: "t.at, t.id",
			Export: []string{"at", "id", "outcome", "reason", "request_id", "registration_id", "deployment_id", "context_id",
				"context_title", "message_type"}},
		// The record of disclosures outlives the learner (it is the tenant's
		// proof of what went where), naming no one once they are erased.
		{Table: "disclosures", Section: "disclosures", Erase: Detach, Order: "t.decided_at, t.id",
			Export: []string{"id", "decided_at", "destination_kind", "destination_id", "category", "fields", "removed_fields",
				"agreement_id", "agreement_version", "decision", "reason", "record_type", "record_id"}},
		{Table: "consents", Section: "consents", Erase: Delete, Order: "t.answered_at, t.id",
			Export: []string{"id", "agreement_id", "agreement_version", "answer", "via", "answered_at"}},
		{Table: "consent_notices", Section: "consent_notices", Erase: Delete, Order: "t.shown_at, t.agreement_version",
			Export: []string{"agreement_id", "agreement_version", "shown_at"}},
		// Results the learning app reported: the learner's own work, deleted
		// with them (what went out of them stays in the record of
		// disclosures, naming no one).
		{Table: "results", Section: "results", Erase: Delete, Order: "t.occurred_at, t.id",
			Export: []string{"id", "activity_id", "resource_link_id", "score_given", "score_maximum", "activity_progress",
				"grading_progress", "completed", "success", "time_spent_seconds", "comment", "occurred_at", "received_at",
				"idempotency_key"},
			Omitted: map[string]string{}},
		// Deliveries of the learner's results: the record of where each went
		// and how, kept naming no one (a pending one then ends withheld,
		// learner_erased, when its job runs).
		{Table: "deliveries", Section: "deliveries", Erase: Detach, Order: "t.created_at, t.id",
			Export: []string{"id", "result_id", "destination_kind", "destination_id", "category", "status", "reason", "attempts",
				"throttled", "last_status", "last_error", "occurred_at", "score_timestamp", "created_at", "delivered_at"}},
		// Employer sign-in: the provider identities linked to the learner,
		// deleted (a later sign-in starts afresh), and their sessions, whose
		// sealed id_token only the logout reads.
		{Table: "sso_identities", Section: "sso_identities", Erase: Delete, Order: "t.issuer, t.subject",
			Export: []string{"issuer", "subject", "connection_id", "created_at", "last_sign_in_at"}},
		{Table: "sso_sessions", Section: "sso_sessions", Erase: Delete, Order: "t.created_at, t.id",
			Export: []string{"id", "connection_id", "sid", "subject", "groups", "created_at", "last_seen_at", "expires_at", "ended_at", "end_reason"}},
		// The directory's groups the learner is in: gone with them.
		{Table: "scim_group_members", Section: "directory_groups", Erase: Delete, Order: "t.group_id",
			Export: []string{"group_id"},
			Join:   "LEFT JOIN scim_groups g ON g.tenant_id = t.tenant_id AND g.id = t.group_id",
			Joined: "g.display_name AS group_display_name"},
		{Table: "learner_corrections", Section: "corrections", Erase: Delete, Order: "t.value_set_at, t.id",
			Export: []string{"field", "value_set_at", "by_actor"}},
		{Table: "audit_log", Section: "audit", Erase: Keep, Order: "t.seq",
			// The entries about the learner, and those whose details name
			// them; none holds personal data, only ids.
			Match:   "t.tenant_id = $1 AND (t.target_id = $2::text OR strpos(t.details::text, $2::text) > 0)",
			Export:  []string{"at", "seq", "actor_type", "actor_id", "action", "target_type", "target_id", "request_id", "details"},
			Omitted: map[string]string{"key_id": "names the hub's key that hashed the entry, nothing about the learner"}},
		{Table: "users", Section: "user", Single: true, Erase: Scrub, Match: "t.tenant_id = $1 AND t.id = $2",
			Export: []string{"id", "name", "given_name", "family_name", "email", "locale", "created_at", "updated_at",
				"user_name", "external_id", "display_name", "title", "employee_number", "department", "manager_id",
				"directory", "active", "provisioned_at", "deactivated_at", "deprovisioned_at"},
			Scrubbed: []string{"name", "given_name", "family_name", "email", "locale", "user_name", "external_id",
				"display_name", "title", "employee_number", "department", "manager_id", "directory"}},
	}
}
