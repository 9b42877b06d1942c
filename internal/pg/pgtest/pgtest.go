// Package pgtest gives each test its own freshly migrated PostgreSQL
// database with the two roles hubd runs with: an owner role that ran the
// migrations and owns every object, and an application role that owns
// nothing and holds only the grants hubd needs. Tests connect as the
// application role (DB.URL), so row-level security binds them just as it
// binds hubd; DB.OwnerURL is for tests of migrating itself.
//
// The first call in a process makes (or finds) a template database migrated
// to the embedded schema, named by a hash of the migrations so a changed
// schema gets a new template. Each database is then a cheap copy of that
// template, dropped when the test ends.
//
// Roles, templates and databases carry the run's name, HUB_TEST_RUN (set by
// `make test`; "local" otherwise), so two runs on one server never touch
// each other's objects and the clean-up after a run drops only its own.
//
// The server is named by HUB_TEST_DATABASE_URL, a superuser URL; without it
// the local server on 127.0.0.1:5432 is tried.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the driver

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/migrations"
)

// setupLockID serialises role and template creation across the test
// binaries that `go test ./...` runs in parallel.
const setupLockID = 0x6875622d74657374 // "hub-test"

var (
	setupOnce sync.Once
	setupErr  error
	template  string
)

var runPattern = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// Run is this test run's name: HUB_TEST_RUN, or "local".
func Run() string {
	if r := os.Getenv("HUB_TEST_RUN"); runPattern.MatchString(r) {
		return r
	}
	return "local"
}

// Prefix starts the name of every database and role of this run.
func Prefix() string { return "hub_test_" + Run() + "_" }

// AppRole and OwnerRole are this run's two roles; their passwords are
// their names.
func AppRole() string   { return Prefix() + "app" }
func OwnerRole() string { return Prefix() + "owner" }

// AdminURL is the superuser URL of the test server.
func AdminURL() string {
	if u := os.Getenv("HUB_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// DB is one test's database.
type DB struct {
	Name     string
	URL      string // the application role: what hubd serves as
	OwnerURL string // the owner role: what hubd migrates as
}

// New creates a fresh migrated database for t and drops it when t ends.
func New(t testing.TB) DB {
	t.Helper()
	mustSetup(t)
	return create(t, "TEMPLATE "+template)
}

// NewEmpty creates a database with no schema at all, owned by the owner
// role, for tests of migrating itself.
func NewEmpty(t testing.TB) DB {
	t.Helper()
	mustSetup(t)
	return create(t, "")
}

func mustSetup(t testing.TB) {
	t.Helper()
	setupOnce.Do(func() { setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("pgtest: %v (run the tests with `make test`, which starts PostgreSQL)", setupErr)
	}
}

func create(t testing.TB, from string) DB {
	t.Helper()
	name := Prefix() + randomSuffix()
	admin := mustAdmin(t, AdminURL())
	defer admin.Close()
	if _, err := admin.Exec(fmt.Sprintf(`CREATE DATABASE %s %s OWNER %s`, name, from, OwnerRole())); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { drop(t, name) })
	return DB{Name: name, URL: roleURL(AppRole(), name), OwnerURL: roleURL(OwnerRole(), name)}
}

// Open creates a fresh database for t and connects to it as the application
// role; the connection is closed before the database is dropped.
func Open(t testing.TB) *sqlx.DB {
	t.Helper()
	return Connect(t, New(t).URL)
}

// Connect opens u with the hub's settings and closes it when t ends.
func Connect(t testing.TB, u string) *sqlx.DB {
	t.Helper()
	db, err := pg.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Superuser connects to d as the superuser, for tests that must act "by
// hand" behind the application's back, such as tampering with the audit log.
func Superuser(t testing.TB, d DB) *sqlx.DB {
	t.Helper()
	u, _ := url.Parse(AdminURL())
	u.Path = "/" + d.Name
	db := mustAdmin(t, u.String())
	t.Cleanup(func() { db.Close() })
	return db
}

func drop(t testing.TB, name string) {
	admin, err := sqlx.Open("postgres", AdminURL())
	if err != nil {
		t.Errorf("pgtest: drop %s: %v", name, err)
		return
	}
	defer admin.Close()
	if _, err := admin.Exec(fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)); err != nil {
		t.Errorf("pgtest: drop %s: %v", name, err)
	}
}

func mustAdmin(t testing.TB, u string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", u)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return db
}

func setup() error {
	ctx := context.Background()
	admin, err := sqlx.Open("postgres", AdminURL())
	if err != nil {
		return err
	}
	defer admin.Close()
	conn, err := admin.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, setupLockID); err != nil {
		return fmt.Errorf("setup lock: %w", err)
	}
	defer conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, setupLockID)
	for _, role := range []string{OwnerRole(), AppRole()} {
		if err := ensureRole(ctx, conn, role); err != nil {
			return err
		}
	}
	name, err := templateName()
	if err != nil {
		return err
	}
	template = name
	return ensureTemplate(ctx, conn, name)
}

// ensureRole creates an ordinary login role: no superuser, no BYPASSRLS,
// no right to create databases or roles.
func ensureRole(ctx context.Context, conn *sqlx.Conn, role string) error {
	var exists bool
	if err := conn.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err := conn.ExecContext(ctx, fmt.Sprintf(
		`CREATE ROLE %s LOGIN PASSWORD '%s' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`, role, role))
	return err
}

func ensureTemplate(ctx context.Context, conn *sqlx.Conn, name string) error {
	var exists bool
	if err := conn.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := name + "_build"
	_, _ = conn.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, building))
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, building, OwnerRole())); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	if err := migrate(ctx, building); err != nil {
		return err
	}
	// Renamed only once complete, so a crash never leaves a half-built template.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, building, name)); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s IS_TEMPLATE true`, name))
	return err
}

// migrate applies the schema as the owner and grants the application role
// its privileges, as `hubd migrate` does.
func migrate(ctx context.Context, dbName string) error {
	db, err := pg.OpenWith(ctx, roleURL(OwnerRole(), dbName), pg.MigrateLimits)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := pg.NewMigrator(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	if err := m.Up(ctx); err != nil {
		return err
	}
	if err := pg.MigrateJobEngine(ctx, db); err != nil {
		return err
	}
	return pg.GrantApplication(ctx, db, AppRole())
}

// templateName hashes the migrations and the grants, so editing either
// makes a new template.
func templateName() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	h.Write([]byte(pg.ApplicationGrants))
	fmt.Fprint(h, pg.JobEngineVersion())
	return Prefix() + "tpl_" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

func roleURL(role, db string) string {
	u, _ := url.Parse(AdminURL())
	u.User = url.UserPassword(role, role)
	u.Path = "/" + db
	return u.String()
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
