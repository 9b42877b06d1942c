package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
)

// learnerExport is the parts of an export the tests read.
type learnerExport struct {
	UserID string `json:"user_id"`
	User   struct {
		Name      *string `json:"name"`
		GivenName *string `json:"given_name"`
		Email     *string `json:"email"`
		Locale    *string `json:"locale"`
	} `json:"user"`
	Provenance map[string]struct {
		Source string `json:"source"`
		By     string `json:"by"`
		Note   string `json:"note"`
	} `json:"provenance"`
	Identities []struct {
		Issuer  string   `json:"issuer"`
		Subject string   `json:"subject"`
		Roles   []string `json:"system_roles"`
	} `json:"platform_identities"`
	Memberships []struct {
		CourseID    string   `json:"course_id"`
		CourseTitle string   `json:"course_title"`
		Roles       []string `json:"roles"`
		Source      string   `json:"source"`
		Status      string   `json:"status"`
	} `json:"memberships"`
	Launches []struct {
		ContextID string `json:"context_id"`
		Outcome   string `json:"outcome"`
	} `json:"launches"`
	Consents []struct {
		AgreementVersion int    `json:"agreement_version"`
		Answer           string `json:"answer"`
	} `json:"consents"`
	Results []struct {
		Comment string `json:"comment"`
	} `json:"results"`
	ConsentNotices []struct {
		AgreementVersion int `json:"agreement_version"`
	} `json:"consent_notices"`
	Disclosures []struct {
		Decision      string   `json:"decision"`
		Category      string   `json:"category"`
		RemovedFields []string `json:"removed_fields"`
	} `json:"disclosures"`
	Corrections []struct {
		Field string `json:"field"`
		By    string `json:"by_actor"`
	} `json:"corrections"`
	Audit []struct {
		Action   string `json:"action"`
		TargetID string `json:"target_id"`
	} `json:"audit"`
}

// userOf is the hub user of a platform subject, read as the superuser.
func (ph *platformHub) userOf(subject string) string {
	ph.t.Helper()
	var id string
	if err := pgtest.Superuser(ph.t, ph.dbt).Get(&id, `SELECT user_id FROM lti_identities WHERE subject = $1`, subject); err != nil {
		ph.t.Fatalf("user of %s: %v", subject, err)
	}
	return id
}

func (ph *platformHub) export(key, user string) learnerExport {
	ph.t.Helper()
	var e learnerExport
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/learners/"+user+"/export", key, nil), 200).json(ph.t, &e)
	return e
}

// grantConsent activates a fresh opt-in agreement and records the
// learner's grant through the learning app's consent route.
func (ph *platformHub) grantConsent(key, user string) {
	ph.t.Helper()
	a := ph.createAgreement(key, map[string]any{"consent": "opt_in"})
	ph.expect(ph.do("POST", "/api/v1/tenants/uni/agreements/"+a.ID+"/activate", key, signatures), 200)
	ph.expect(ph.do("PUT", "/api/v1/tenants/uni/learners/"+user+"/consent", key, map[string]any{"answer": "granted"}), 200)
}

func (ph *platformHub) actions(key, action string) []audit.Entry {
	ph.t.Helper()
	var p auditPage
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/audit?limit=200&action="+action, key, nil), 200).json(ph.t, &p)
	return p.Items
}

func TestLearnerExportHoldsEverythingWithItsSource(t *testing.T) {
	ph := newPlatformHub(t)
	keyID, key := ph.createKey("uni", "write")
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1", Roles: []string{lti.RoleLearner}}))
	user := ph.userOf("learner-1")
	ph.grantConsent(key, user)
	ph.disclose(user)
	app := ph.createAppKey("learning app")
	ph.expect(ph.postResult(app.Token, "", scored(user, nil)), 201)
	ph.expect(ph.do("PATCH", "/api/v1/tenants/uni/learners/"+user, key, map[string]any{"email": "ada.king@example.edu"}), 200)
	// An entry about something else whose details name the learner.
	tenant := ph.tenantID()
	if err := ph.deps.Audit.Record(context.Background(), &tenant, audit.System("test"), audit.Event{Action: "test.named",
		TargetType: "tenant", TargetID: tenant.String(), Details: map[string]string{"user": user}}); err != nil {
		t.Fatal(err)
	}

	e := ph.export(key, user)
	if e.UserID != user || str(e.User.Name) != "Ada Lovelace" || str(e.User.Email) != "ada.king@example.edu" || str(e.User.Locale) != "en-GB" {
		t.Fatalf("user section %+v", e)
	}
	if p := e.Provenance["email"]; p.Source != "correction" || p.By != "api_key:"+keyID || !strings.HasPrefix(p.Note, "corrected by api_key:"+keyID+" at ") {
		t.Fatalf("email provenance %+v", p)
	}
	if p := e.Provenance["name"]; p.Source != "launch" {
		t.Fatalf("name provenance %+v", p)
	}
	if len(e.Identities) != 1 || e.Identities[0].Subject != "learner-1" || e.Identities[0].Issuer != ph.p.Issuer() {
		t.Fatalf("identities %+v", e.Identities)
	}
	if len(e.Memberships) != 1 || e.Memberships[0].CourseID != "course-1" || e.Memberships[0].CourseTitle != "Mathematics 101" ||
		e.Memberships[0].Source != "launch" || strings.Join(e.Memberships[0].Roles, " ") != lti.RoleLearner {
		t.Fatalf("memberships %+v", e.Memberships)
	}
	if len(e.Launches) != 1 || e.Launches[0].ContextID != "course-1" || e.Launches[0].Outcome != "launched" {
		t.Fatalf("launches %+v", e.Launches)
	}
	if len(e.Consents) != 1 || e.Consents[0].AgreementVersion != 1 || e.Consents[0].Answer != "granted" {
		t.Fatalf("consents %+v", e.Consents)
	}
	if len(e.Disclosures) != 1 || e.Disclosures[0].Decision != "share_minimized" || e.Disclosures[0].Category != "completion" ||
		strings.Join(e.Disclosures[0].RemovedFields, " ") != "email" {
		t.Fatalf("disclosures %+v", e.Disclosures)
	}
	if len(e.Results) != 1 || e.Results[0].Comment != "Well argued." {
		t.Fatalf("results %+v", e.Results)
	}
	if len(e.Corrections) != 1 || e.Corrections[0].Field != "email" || e.Corrections[0].By != "api_key:"+keyID {
		t.Fatalf("corrections %+v", e.Corrections)
	}
	var audited []string
	for _, a := range e.Audit {
		audited = append(audited, a.Action)
	}
	if strings.Join(audited, " ") != "consent.changed learner.corrected test.named" {
		t.Fatalf("audit section %v", audited)
	}
	exported := ph.actions(key, "learner.exported")
	if len(exported) != 1 || exported[0].TargetID != user || exported[0].ActorID != keyID {
		t.Fatalf("learner.exported entries %+v", exported)
	}

	// The next launch brings the LMS's email again: it wins, and the
	// export says the correction may be what a field still holds.
	time.Sleep(2 * time.Millisecond)
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1", Roles: []string{lti.RoleLearner}}))
	e = ph.export(key, user)
	if p := e.Provenance["email"]; str(e.User.Email) != "ada@example.edu" || p.Source != "launch" || !strings.Contains(p.Note, "correction by api_key:"+keyID) {
		t.Fatalf("after a launch: %s, %+v", str(e.User.Email), p)
	}
}

// disclose passes a completion record about user to the LMS through the
// agreements gate, as a delivery will, and answers the decision.
func (ph *platformHub) disclose(user string) agreements.Decision {
	ph.t.Helper()
	var d agreements.Decision
	tenant, ctx := ph.tenantID(), context.Background()
	err := pg.InTenant(ctx, ph.deps.DB, tenant, func(tx *sqlx.Tx) error {
		var err error
		d, err = agreements.Disclose(ctx, tx, tenant, agreements.Outbound{Learner: uuid.MustParse(user),
			Destination: agreements.Destination{Kind: agreements.DestinationLMS}, Category: agreements.CategoryCompletion,
			Fields: []agreements.Field{agreements.FieldEmail}, RecordType: "result"}, time.Now())
		return err
	})
	if err != nil {
		ph.t.Fatal(err)
	}
	return d
}

func (ph *platformHub) tenantID() uuid.UUID {
	ph.t.Helper()
	var id uuid.UUID
	if err := pgtest.Superuser(ph.t, ph.dbt).Get(&id, `SELECT id FROM tenants WHERE slug = 'uni'`); err != nil {
		ph.t.Fatal(err)
	}
	return id
}

// Every learner route answers a learner the tenant does not have (none,
// another tenant's, not an id) as the same 404, and checks its scope.
func TestLearnerRoutesRefuse(t *testing.T) {
	ph := newPlatformHub(t)
	ph.createTenant("other", "institution")
	_, key := ph.createKey("uni", "write")
	_, reader := ph.createKey("uni", "read")
	_, otherKey := ph.createKey("other", "write")
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1"}))
	user := ph.userOf("learner-1")
	patch := map[string]any{"name": "Someone Else"}
	for name, path := range map[string]string{
		"unknown learner":          "/api/v1/tenants/uni/learners/" + uuid.NewString(),
		"not an id":                "/api/v1/tenants/uni/learners/learner-1",
		"another tenant's learner": "/api/v1/tenants/other/learners/" + user,
	} {
		k := key
		if strings.Contains(path, "/other/") {
			k = otherKey
		}
		t.Run(name, func(t *testing.T) {
			ph.t = t
			for _, p := range []struct {
				method, path string
				body         any
			}{{"GET", path + "/export", nil}, {"PATCH", path, patch}, {"DELETE", path, nil}} {
				if pr := ph.problem(ph.do(p.method, p.path, k, p.body), 404, "not-found"); pr.Detail != "no such learner" {
					t.Fatalf("%s %s: %+v", p.method, p.path, pr)
				}
			}
		})
	}
	ph.t = t
	ph.problem(ph.do("GET", "/api/v1/tenants/uni/learners/"+user+"/export", otherKey, nil), 404, "not-found")
	ph.problem(ph.do("PATCH", "/api/v1/tenants/uni/learners/"+user, reader, patch), 403, "forbidden")
	ph.problem(ph.do("DELETE", "/api/v1/tenants/uni/learners/"+user, reader, nil), 403, "forbidden")
	ph.problem(ph.do("GET", "/api/v1/tenants/uni/learners/"+user+"/export", "", nil), 401, "unauthorized")
	e := ph.export(reader, user)
	if str(e.User.Name) != "Ada Lovelace" || len(e.Identities) != 1 {
		t.Fatalf("the learner after refused requests: %+v", e)
	}
	if n := len(ph.actions(key, "learner.")); n != 1 {
		t.Fatalf("%d learner entries audited, want the one export", n)
	}
}

func TestLearnerCorrectionIsValidated(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1"}))
	user := ph.userOf("learner-1")
	path := "/api/v1/tenants/uni/learners/" + user
	for _, tc := range []struct {
		name, field string
		body        any
	}{
		{"nothing to correct", "body", map[string]any{}},
		{"only nulls", "body", map[string]any{"name": nil, "email": nil}},
		{"an empty name", "name", map[string]any{"name": ""}},
		{"a blank given name", "given_name", map[string]any{"given_name": "   "}},
		{"a family name too long", "family_name", map[string]any{"family_name": strings.Repeat("x", 256)}},
		{"an email without @", "email", map[string]any{"email": "ada.example.edu"}},
		{"an email with a display name", "email", map[string]any{"email": "Ada <ada@example.edu>"}},
		{"an email with spaces", "email", map[string]any{"email": "ada lovelace@example.edu"}},
		{"an email too long", "email", map[string]any{"email": strings.Repeat("a", 250) + "@example.edu"}},
		{"a NUL in a name", "name", `{"name": "Ada\u0000"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ph.t = t
			p := ph.problem(ph.do("PATCH", path, key, tc.body), 400, "validation")
			found := false
			for _, f := range p.Errors {
				found = found || f.Field == tc.field
			}
			if !found {
				t.Fatalf("fields %+v, want %s", p.Errors, tc.field)
			}
		})
	}
	ph.t = t
	ph.problem(ph.do("PATCH", path, key, map[string]any{"locale": "fr"}), 400, "validation")
	ph.problem(ph.do("PATCH", path, key, "not json"), 400, "validation")
	if e := ph.export(key, user); str(e.User.Name) != "Ada Lovelace" || str(e.User.Email) != "ada@example.edu" || len(e.Corrections) != 0 {
		t.Fatalf("refused corrections changed the learner: %+v", e)
	}
	if n := len(ph.actions(key, "learner.corrected")); n != 0 {
		t.Fatalf("%d refused corrections audited", n)
	}

	var p struct {
		Name, Email string
		GivenName   string `json:"given_name"`
	}
	ph.expect(ph.do("PATCH", path, key, map[string]any{"name": "Ada King", "email": "ada.king@example.edu"}), 200).json(t, &p)
	if p.Name != "Ada King" || p.Email != "ada.king@example.edu" || p.GivenName != "Ada" {
		t.Fatalf("corrected %+v", p)
	}
	corrected := ph.actions(key, "learner.corrected")
	if len(corrected) != 1 || corrected[0].TargetID != user || corrected[0].Details["fields"] != "name,email" {
		t.Fatalf("audited %+v", corrected)
	}
	raw, _ := json.Marshal(corrected)
	if strings.Contains(string(raw), "Ada King") || strings.Contains(string(raw), "ada.king@") {
		t.Fatalf("the audit entry holds the values: %s", raw)
	}
	if e := ph.export(key, user); len(e.Corrections) != 2 || e.Provenance["name"].Source != "correction" ||
		e.Provenance["given_name"].Source != "launch" {
		t.Fatalf("after the correction: %+v", e)
	}
}

// The course's member listing names learners: each read is audited once,
// with the course as target.
func TestMemberListingIsAudited(t *testing.T) {
	ph := newPlatformHub(t)
	keyID, key := ph.createKey("uni", "read")
	id := ph.launchCourse(key, "teacher-1")
	ph.members(key, id, "")
	ph.members(key, id, "status=active")
	ph.problem(ph.do("GET", "/api/v1/tenants/uni/lti/contexts/"+uuid.NewString()+"/members", key, nil), 404, "not-found")
	ph.problem(ph.do("GET", "/api/v1/tenants/uni/lti/contexts/"+id+"/members?status=gone", key, nil), 400, "validation")
	read := ph.actions(key, "course.members_read")
	if len(read) != 2 {
		t.Fatalf("%d course.members_read entries, want 2", len(read))
	}
	for _, e := range read {
		if e.TargetType != "lti_context" || e.TargetID != id || e.ActorID != keyID || len(e.Details) != 0 {
			t.Fatalf("entry %+v", e)
		}
	}
}

// TestErasureLeavesNothingIdentifying touches a learner with every
// feature the hub has (a roster sync, a launch, a consent, a correction),
// erases them, and then reads every text column of every table for what
// identified them.
func TestErasureLeavesNothingIdentifying(t *testing.T) {
	ph := newPlatformHub(t)
	ph.p.ToolJWKSURL, ph.p.ToolClient = ph.url+"/.well-known/jwks.json", ph.client
	roster := ph.p.SetRoster("course-1", 2)
	listed := roster.Member(1)
	keyID, key := ph.createKey("uni", "write")
	ph.startJobs(t)
	course := ph.launchCourse(key, "teacher-1")
	r := ph.expect(ph.do("POST", "/api/v1/tenants/uni/lti/contexts/"+course+"/roster-syncs", key, nil), 202)
	if run := ph.finished(t, key, r.header.Get("Location")); run.Status != "succeeded" {
		t.Fatalf("roster sync %+v", run)
	}
	claims := map[string]any{"name": "Grace Brewster Hopper", "given_name": "Gracebrewster", "family_name": "Hopperlane",
		"email": "grace.hopper@navy.example", "locale": "en-US"}
	ph.succeeded(ph.launch(ltitest.Launch{Subject: listed.UserID, Claims: claims}))
	user := ph.userOf(listed.UserID)
	ph.grantConsent(key, user)
	ph.disclose(user)
	app := ph.createAppKey("learning app")
	ph.expect(ph.postResult(app.Token, "", scored(user, func(m map[string]any) { m["comment"] = "Grace Brewster Hopper, see me" })), 201)
	ph.expect(ph.do("PATCH", "/api/v1/tenants/uni/learners/"+user, key, map[string]any{"family_name": "Hopperfixed"}), 200)
	if e := ph.export(key, user); len(e.Memberships) != 1 || len(e.Consents) != 1 || len(e.Launches) != 1 || len(e.Corrections) != 1 ||
		len(e.Disclosures) < 1 || len(e.Results) != 1 { // the result's delivery may have been decided already
		t.Fatalf("before the erasure: %+v", e)
	}

	ph.expect(ph.do("DELETE", "/api/v1/tenants/uni/learners/"+user, key, nil), 204)
	ph.expect(ph.do("DELETE", "/api/v1/tenants/uni/learners/"+user, key, nil), 204)
	ph.problem(ph.do("GET", "/api/v1/tenants/uni/learners/"+user+"/export", key, nil), 404, "not-found")
	ph.problem(ph.do("PATCH", "/api/v1/tenants/uni/learners/"+user, key, map[string]any{"name": "Back"}), 404, "not-found")

	// The roster's given and family names are shared with other members
	// by construction: its full name and email are the learner's own.
	identifying := []string{listed.UserID, listed.Name, listed.Email, "Grace Brewster Hopper",
		"Gracebrewster", "Hopperlane", "grace.hopper@navy.example", "Hopperfixed"}
	if found := scanEveryTextColumn(t, ph, identifying); len(found) > 0 {
		t.Fatalf("after the erasure the database still holds: %s", strings.Join(found, "; "))
	}
	su := pgtest.Superuser(t, ph.dbt)
	var kept struct {
		Erased  bool `db:"erased"`
		Blank   bool `db:"blank"`
		Members int  `db:"members"`
		Logged  int  `db:"logged"`
		Kept    int  `db:"kept"`
		Naming  int  `db:"naming"`
	}
	if err := su.Get(&kept, `SELECT u.erased_at IS NOT NULL AS erased,
			num_nonnulls(u.name, u.given_name, u.family_name, u.email, u.locale) = 0 AS blank,
			(SELECT count(*) FROM memberships WHERE user_id = u.id) AS members,
			(SELECT count(*) FROM lti_launch_log WHERE user_id IS NULL AND context_id = 'course-1') AS logged,
			(SELECT count(*) FROM disclosures WHERE user_id IS NULL) AS kept,
			(SELECT count(*) FROM disclosures WHERE user_id = u.id) AS naming
		FROM users u WHERE u.id = $1`, user); err != nil {
		t.Fatal(err)
	}
	// The result's delivery adds a disclosure of its own, before the
	// erasure (then detached) or after it (withheld, naming no one).
	if !kept.Erased || !kept.Blank || kept.Members != 0 || kept.Logged != 1 || kept.Kept < 1 || kept.Naming != 0 {
		t.Fatalf("the erased user's row and launches: %+v", kept)
	}
	erased := ph.actions(key, "learner.erased")
	if len(erased) != 1 || erased[0].TargetID != user || erased[0].ActorID != keyID || erased[0].Details["lti_identities"] != "1" ||
		erased[0].Details["lti_launch_log"] != "1" || erased[0].Details["consents"] != "1" {
		t.Fatalf("learner.erased entries %+v", erased)
	}
	var v audit.Verification
	ph.expect(ph.do("GET", "/api/v1/tenants/uni/audit/verify", key, nil), 200).json(t, &v)
	if !v.Valid {
		t.Fatalf("the audit chain after the erasure: %+v", v)
	}

	if d := ph.disclose(user); d.Outcome != agreements.OutcomeWithhold || d.Reason != agreements.ReasonLearnerErased {
		t.Fatalf("a record about the erased learner: %+v", d)
	}

	// The same person launching again is someone new to the hub, asked
	// afresh: the erased user's consent went with them.
	ph.succeeded(ph.answerConsent(ph.launch(ltitest.Launch{Subject: listed.UserID, Claims: claims}), "allow"))
	again := ph.userOf(listed.UserID)
	if again == user {
		t.Fatal("a launch after the erasure found the erased user")
	}
	if e := ph.export(key, again); len(e.Launches) != 1 || len(e.Consents) != 1 || str(e.User.Email) != "grace.hopper@navy.example" {
		t.Fatalf("the new user %+v", e)
	}
}

// scanEveryTextColumn answers where, in any text, varchar, jsonb, json or
// array column of any table in the public schema, any of values occurs,
// read as the superuser (every tenant's rows).
func scanEveryTextColumn(t *testing.T, ph *platformHub, values []string) []string {
	t.Helper()
	su := pgtest.Superuser(t, ph.dbt)
	var cols []struct {
		Table  string `db:"table_name"`
		Column string `db:"column_name"`
	}
	if err := su.Select(&cols, `SELECT c.table_name, c.column_name FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
		WHERE c.table_schema = 'public' AND (c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json')
			OR (c.data_type = 'ARRAY' AND c.udt_name IN ('_text', '_varchar', '_jsonb', '_json')))`); err != nil {
		t.Fatal(err)
	}
	if len(cols) < 50 {
		t.Fatalf("only %d text columns found", len(cols))
	}
	var found []string
	for _, c := range cols {
		for _, v := range values {
			var n int
			q := fmt.Sprintf(`SELECT count(*) FROM %q WHERE strpos(lower(%q::text), lower($1)) > 0`, c.Table, c.Column)
			if err := su.Get(&n, q, v); err != nil {
				t.Fatalf("%s.%s: %v", c.Table, c.Column, err)
			}
			if n > 0 {
				found = append(found, fmt.Sprintf("%q in %s.%s", v, c.Table, c.Column))
			}
		}
	}
	return found
}

// TestErasureWhileTheLearnerLaunches erases a learner while their launches
// are in flight: each launch lands or is refused cleanly, and afterwards
// nothing links the platform identity to the erased user, whose row stays
// blank; the next launch makes someone new.
func TestErasureWhileTheLearnerLaunches(t *testing.T) {
	ph := newPlatformHub(t)
	_, key := ph.createKey("uni", "write")
	claims := map[string]any{"name": "Ada Lovelace", "email": "ada@example.edu"}
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1", Claims: claims}))
	user := ph.userOf("learner-1")

	const launches = 6
	statuses := make(chan string, launches)
	var wg sync.WaitGroup
	for range launches {
		wg.Go(func() {
			r := ph.launch(ltitest.Launch{Subject: "learner-1", Claims: claims})
			landed := r.status == 200 && strings.Contains(string(r.body), "<h1>Welcome")
			statuses <- fmt.Sprintf("%d %v %s", r.status, landed, regexp.MustCompile(`reason <code>[^<]*`).Find(r.body))
		})
	}
	ph.expect(ph.do("DELETE", "/api/v1/tenants/uni/learners/"+user, key, nil), 204)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if !strings.HasPrefix(s, "200 true") && !strings.HasPrefix(s, "409 ") && !strings.HasPrefix(s, "503 ") {
			t.Fatalf("a launch during the erasure answered %s\n%s", s, ph.logs.String())
		}
	}

	su := pgtest.Superuser(t, ph.dbt)
	var after struct {
		Blank  bool `db:"blank"`
		Linked int  `db:"linked"`
		Member int  `db:"member"`
	}
	if err := su.Get(&after, `SELECT num_nonnulls(u.name, u.email) = 0 AND u.erased_at IS NOT NULL AS blank,
			(SELECT count(*) FROM lti_identities WHERE user_id = u.id) AS linked,
			(SELECT count(*) FROM memberships WHERE user_id = u.id) AS member
		FROM users u WHERE u.id = $1`, user); err != nil {
		t.Fatal(err)
	}
	if !after.Blank || after.Linked != 0 || after.Member != 0 {
		t.Fatalf("the erased user after the launches: %+v", after)
	}
	ph.succeeded(ph.launch(ltitest.Launch{Subject: "learner-1", Claims: claims}))
	if again := ph.userOf("learner-1"); again == user {
		t.Fatal("a launch after the erasure found the erased user")
	}
}
