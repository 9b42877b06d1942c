package scim

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
)

// validFilters are filters the directories accept, by resource type.
var validFilters = map[string][]string{
	"User": {
		`userName eq "ada@acme.example"`,
		`UserName Eq "ADA@acme.example"`,
		`externalId eq "00u1"`,
		`id eq "` + uuid.Nil.String() + `"`,
		`emails eq "ada@acme.example"`,
		`emails.value sw "ada"`,
		`emails[type eq "work"]`,
		`emails[type eq "work" and value co "@acme"]`,
		`emails[primary eq true]`,
		`name.givenName ew "a"`,
		`name.familyName co "love"`,
		`displayName ne "x"`,
		`title pr`,
		`not (title pr)`,
		`active eq false`,
		`active ne "True"`,
		`meta.created gt "2020-01-02T03:04:05Z"`,
		`meta.lastModified le "2030-01-02T03:04:05.123456Z"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department co "sales"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "b-1"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter eq "4130"`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"`,
		`(userName eq "a" or userName eq "b") and not (active eq false)`,
		`phoneNumbers[type eq "mobile" and value sw "+1"]`,
		`addresses[locality eq "Redmond"]`,
		`userType eq "Member" or nickName gt "m"`,
		`userName eq "quote \" and backslash \\"`,
		`groups.value eq "` + uuid.Nil.String() + `"`,
		`groups[value eq "x"]`,
	},
	"Group": {
		`displayName eq "Engineering"`,
		`externalId eq "g-1"`,
		`id eq "x"`,
		`members[value eq "` + uuid.Nil.String() + `"]`,
		`members.value eq "x"`,
		`members eq "x"`,
		`meta.lastModified gt "2020-01-02T03:04:05Z" and displayName sw "E"`,
	},
}

// TestFilterSQLRuns runs every accepted filter's SQL on PostgreSQL as the
// application role: the translation is SQL the database takes.
func TestFilterSQLRuns(t *testing.T) {
	db := pgtest.Open(t)
	from := map[string]string{"User": "users u WHERE u.tenant_id = $1", "Group": "scim_groups g WHERE g.tenant_id = $1"}
	tenant := uuid.New()
	for rt, filters := range validFilters {
		for _, f := range filters {
			w, err := Filter(rt, f, 2)
			if err != nil {
				t.Errorf("%s %q: %v", rt, f, err)
				continue
			}
			err = pg.InTenant(context.Background(), db, tenant, func(tx *sqlx.Tx) error {
				var n int
				return tx.Get(&n, `SELECT count(*) FROM `+from[rt]+` AND `+w.SQL, append([]any{tenant}, w.Args...)...)
			})
			if err != nil {
				t.Errorf("%s %q: %s: %v", rt, f, w.SQL, err)
			}
		}
	}
}

func TestFilterRefusals(t *testing.T) {
	for name, f := range map[string]string{
		"empty parens":        `()`,
		"unknown attribute":   `shoeSize eq "1"`,
		"unknown sub":         `emails[shoe eq "1"]`,
		"nested value filter": `emails[type eq "work" and phoneNumbers[type eq "x"]]`,
		"number":              `userName eq 1`,
		"null":                `userName eq null`,
		"bool for string":     `userName eq true`,
		"gt on boolean":       `active gt true`,
		"sw on time":          `meta.created sw "2020"`,
		"not a time":          `meta.created eq "today"`,
		"group attribute":     `members.display eq "x"`,
		"groups display":      `groups.display eq "x"`,
		"too long":            `userName eq "` + strings.Repeat("a", MaxFilterLength) + `"`,
		"too deep":            strings.Repeat("not (", 60) + `userName pr` + strings.Repeat(")", 60),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Filter("User", f, 1)
			var se *Error
			if !errors.As(err, &se) || se.Status != 400 || se.ScimType != InvalidFilter {
				t.Fatalf("err = %v, want 400 invalidFilter", err)
			}
		})
	}
}

// quoted are the literals a translation may hold: constant names of the
// schemas and of JSON types, never a client's text.
var quoted = regexp.MustCompile(`'[^']*'`)

func allowedLiterals() map[string]bool {
	ok := map[string]bool{"'array'": true, "'boolean'": true, "'" + SchemaEnterprise + "'": true}
	var add func([]attribute)
	add = func(as []attribute) {
		for _, a := range as {
			ok["'"+a.name+"'"] = true
			add(a.subs)
		}
	}
	add(userAttributes)
	add(enterpriseAttributes)
	return ok
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// checkSQL is the translation's promise: every value a parameter, every
// parameter used, no literal but the schema's constants.
func checkSQL(t *testing.T, text string, w Where, first int) {
	allowed := allowedLiterals()
	for _, lit := range quoted.FindAllString(w.SQL, -1) {
		if !allowed[lit] {
			t.Fatalf("filter %q: literal %s in %s", text, lit, w.SQL)
		}
	}
	if strings.Contains(w.SQL, ";") || strings.Contains(w.SQL, "--") || strings.Contains(w.SQL, "/*") {
		t.Fatalf("filter %q: %s", text, w.SQL)
	}
	used := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(w.SQL, -1) {
		used[m[1]] = true
	}
	for i := range w.Args {
		if !used[fmt.Sprint(first+i)] {
			t.Fatalf("filter %q: $%d unused in %s", text, first+i, w.SQL)
		}
	}
	if len(used) != len(w.Args) {
		t.Fatalf("filter %q: %d placeholders, %d args: %s", text, len(used), len(w.Args), w.SQL)
	}
}

// FuzzFilter: any filter text either is refused with 400 invalidFilter or
// becomes SQL whose values are all parameters; it never panics.
func FuzzFilter(f *testing.F) {
	for _, fs := range validFilters {
		for _, s := range fs {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, rt := range []string{"User", "Group"} {
			w, err := Filter(rt, text, 3)
			if err != nil {
				var se *Error
				if !errors.As(err, &se) || se.Status != 400 || se.ScimType != InvalidFilter {
					t.Fatalf("filter %q: %v", text, err)
				}
				continue
			}
			checkSQL(t, text, w, 3)
		}
	})
}
