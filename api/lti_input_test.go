package api_test

import (
	"testing"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

// launchTables are every table a launch writes.
var launchTables = []string{"users", "lti_identities", "contexts", "resource_links", "memberships", "lti_nonces"}

// TestDisplayFieldsNotTextAreCleaned: a learner whose name in the LMS
// holds a NUL character launches, and is stored without it.
func TestDisplayFieldsNotTextAreCleaned(t *testing.T) {
	ph := newPlatformHub(t)
	r := ph.launch(ltitest.Launch{Claims: map[string]any{
		"name": "Ada\u0000 Lovelace", "given_name": "\u0000Ada", "family_name": "Love\xfflace", "email": "ada\u0000@example.edu", "locale": "en\u0000",
		lti.ClaimContext:      map[string]any{"id": "course-1", "label": "MATH\u0000101", "title": "Mathematics\u0000 101"},
		lti.ClaimResourceLink: map[string]any{"id": "link-1", "title": "Week\u0000 1", "description": "Quiz\u0000"},
	}})
	ph.succeeded(r)
	var u struct{ Name, Given, Family, Email, Locale string }
	pgtest.Superuser(t, ph.dbt).QueryRow(`SELECT name, given_name, family_name, email, locale FROM users`).Scan(&u.Name, &u.Given, &u.Family, &u.Email, &u.Locale)
	if u != (struct{ Name, Given, Family, Email, Locale string }{"Ada Lovelace", "Ada", "Love\uFFFDlace", "ada@example.edu", "en"}) {
		t.Fatalf("stored user %+v", u)
	}
	var label, title, link, description string
	pgtest.Superuser(t, ph.dbt).QueryRow(`SELECT label, title FROM contexts`).Scan(&label, &title)
	pgtest.Superuser(t, ph.dbt).QueryRow(`SELECT title, description FROM resource_links`).Scan(&link, &description)
	if label != "MATH101" || title != "Mathematics 101" || link != "Week 1" || description != "Quiz" {
		t.Fatalf("stored course %q %q, link %q %q", label, title, link, description)
	}
	// The same name again changes nothing: the cleaned name is what is
	// compared with the stored one.
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "same", Claims: map[string]any{"name": "Grace\u0000 Hopper"}}))
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "same", Claims: map[string]any{"name": "Grace\u0000 Hopper"}}))
	var n int
	pgtest.Superuser(t, ph.dbt).Get(&n, `SELECT count(*) FROM users WHERE name = 'Grace Hopper'`)
	if n != 1 {
		t.Fatalf("%d users named Grace Hopper", n)
	}
}

// TestIdentifiersNotTextRefuseTheLaunch: an identifier with a NUL
// character, or bytes that were not UTF-8, refuses the launch with the
// readable page and writes nothing.
func TestIdentifiersNotTextRefuseTheLaunch(t *testing.T) {
	ph := newPlatformHub(t)
	set := func(name string, v any) func(_, c map[string]any) {
		return func(_, c map[string]any) { c[name] = v }
	}
	for _, tc := range []struct {
		name   string
		launch ltitest.Launch
	}{
		{"sub with NUL", ltitest.Launch{Subject: "user\u00001"}},
		{"sub not UTF-8", ltitest.Launch{Subject: "user-\xff"}},
		{"deployment id with NUL", ltitest.Launch{Tamper: set(lti.ClaimDeploymentID, "\u0000")}},
		{"context id with NUL", ltitest.Launch{Claims: map[string]any{lti.ClaimContext: map[string]any{"id": "course\u00001"}}}},
		{"resource link id with NUL", ltitest.Launch{Claims: map[string]any{lti.ClaimResourceLink: map[string]any{"id": "link\u0000"}}}},
		{"role with NUL", ltitest.Launch{Roles: []string{"Learner\u0000"}}},
		{"audience with NUL", ltitest.Launch{Tamper: func(_, c map[string]any) { c["aud"] = []any{c["aud"], "other\u0000"}; c["azp"] = c["aud"].([]any)[0] }}},
		{"nonce with NUL", ltitest.Launch{Tamper: func(_, c map[string]any) { c["nonce"] = c["nonce"].(string) + "\u0000" }}},
		{"issuer with NUL", ltitest.Launch{Tamper: func(_, c map[string]any) { c["iss"] = c["iss"].(string) + "\u0000" }}},
		{"NRPS URL with NUL", ltitest.Launch{Claims: map[string]any{lti.ClaimNRPS: map[string]any{"context_memberships_url": "https://lms.example/\u0000"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ph.t = t
			ph.refusedWith(ph.launch(tc.launch), lti.ReasonInvalidIdentifier)
		})
	}
	ph.t = t
	for _, table := range launchTables {
		if n := ph.rows(table); n != 0 {
			t.Errorf("refused launches wrote %d rows to %s", n, table)
		}
	}
}
