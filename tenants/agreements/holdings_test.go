package agreements_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/tenants/agreements"
)

// unheld reads the schema as db's role sees it and answers what Holdings
// misses: a table that names a user (a user_id column, or a foreign key
// to users) with no holding, and a holding's text, jsonb or text[]
// column the export neither shows nor omits with a reason. Foreign keys
// are read from pg_constraint: information_schema shows a key's
// referenced columns only to the owner of the table, and the application
// role owns none.
func unheld(t *testing.T, db *sqlx.DB, holdings []agreements.Holding) []string {
	t.Helper()
	var naming []string
	if err := db.Select(&naming, `SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'user_id'
		UNION SELECT c.relname FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
		WHERE k.contype = 'f' AND k.confrelid = 'public.users'::regclass ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	var problems []string
	held := map[string]bool{}
	for _, h := range holdings {
		held[h.Table] = true
		problems = append(problems, checkHolding(t, db, h)...)
	}
	for _, table := range naming {
		if !held[table] {
			problems = append(problems, fmt.Sprintf("table %s names a user but has no entry in agreements.Holdings", table))
		}
	}
	return problems
}

type column struct {
	Name     string `db:"column_name"`
	Type     string `db:"data_type"`
	UDT      string `db:"udt_name"`
	Nullable string `db:"is_nullable"`
}

func (c column) text() bool {
	return slices.Contains([]string{"text", "character varying", "character", "jsonb", "json"}, c.Type) ||
		(c.Type == "ARRAY" && slices.Contains([]string{"_text", "_varchar", "_jsonb", "_json"}, c.UDT))
}

func checkHolding(t *testing.T, db *sqlx.DB, h agreements.Holding) []string {
	t.Helper()
	var cols []column
	if err := db.Select(&cols, `SELECT column_name, data_type, udt_name, is_nullable FROM information_schema.columns
		WHERE table_schema = 'public' AND table_name = $1`, h.Table); err != nil {
		t.Fatal(err)
	}
	if len(cols) == 0 {
		return []string{fmt.Sprintf("holding %s: no such table", h.Table)}
	}
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.Name] = c
	}
	var problems []string
	for _, c := range slices.Concat(h.Export, h.Scrubbed, mapKeys(h.Omitted)) {
		if _, ok := byName[c]; !ok {
			problems = append(problems, fmt.Sprintf("holding %s names column %s, which the table lacks", h.Table, c))
		}
	}
	for _, c := range cols {
		if c.text() && !slices.Contains(h.Export, c.Name) && h.Omitted[c.Name] == "" {
			problems = append(problems, fmt.Sprintf("%s.%s (%s) is neither exported nor omitted with a reason", h.Table, c.Name, c.Type))
		}
	}
	switch h.Erase {
	case agreements.Detach:
		if byName["user_id"].Nullable != "YES" {
			problems = append(problems, fmt.Sprintf("holding %s detaches, but its user_id is not nullable", h.Table))
		}
	case agreements.Scrub:
		for _, c := range h.Scrubbed {
			if byName[c].Nullable != "YES" {
				problems = append(problems, fmt.Sprintf("holding %s scrubs %s, which is not nullable", h.Table, c))
			}
		}
	case agreements.Delete, agreements.Keep:
	default:
		problems = append(problems, fmt.Sprintf("holding %s says nothing of its erasure", h.Table))
	}
	if h.Section == "" {
		problems = append(problems, fmt.Sprintf("holding %s has no export section", h.Table))
	}
	return problems
}

func mapKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestHoldingsCoverTheSchema fails when a table that names a user is
// missing from Holdings, or a held table's text column is in neither of
// its lists: a new table or column cannot be forgotten by the export or
// the erasure.
func TestHoldingsCoverTheSchema(t *testing.T) {
	if problems := unheld(t, pgtest.Open(t), agreements.Holdings()); len(problems) > 0 {
		t.Fatal(strings.Join(problems, "\n"))
	}
}

// The check itself finds what a migration could add: a table with a
// user_id, a table with a key to users by another name, and a text
// column on a held table.
func TestHoldingsCheckFindsWhatIsMissing(t *testing.T) {
	d := pgtest.New(t)
	owner := pgtest.Connect(t, d.OwnerURL)
	for _, stmt := range []string{
		`CREATE TABLE learner_notes (tenant_id uuid, user_id uuid, note text)`,
		`CREATE TABLE mentors (tenant_id uuid, mentor uuid, FOREIGN KEY (tenant_id, mentor) REFERENCES users (tenant_id, id))`,
		`ALTER TABLE memberships ADD COLUMN nickname text`,
	} {
		if _, err := owner.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.GrantApplication(context.Background(), owner, pgtest.AppRole()); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(unheld(t, pgtest.Connect(t, d.URL), agreements.Holdings()), "\n")
	for _, want := range []string{"table learner_notes names a user", "table mentors names a user", "memberships.nickname (text) is neither"} {
		if !strings.Contains(got, want) {
			t.Errorf("the check missed %q; it found:\n%s", want, got)
		}
	}
	bad := agreements.Holdings()
	bad[0].Export = bad[0].Export[1:] // issuer neither exported nor omitted
	bad[1].Erase = 0
	got = strings.Join(unheld(t, pgtest.Connect(t, d.URL), bad), "\n")
	for _, want := range []string{"lti_identities.issuer (text) is neither", "holding memberships says nothing of its erasure"} {
		if !strings.Contains(got, want) {
			t.Errorf("the check missed %q; it found:\n%s", want, got)
		}
	}
}
