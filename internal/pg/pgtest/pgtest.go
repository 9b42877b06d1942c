// Package pgtest gives each test its own freshly migrated PostgreSQL
// database, connected as an ordinary role (no superuser, no BYPASSRLS) so
// that row-level security binds it just as it binds hubd.
//
// The first call in a process makes (or finds) a template database migrated
// to the embedded schema, named by a hash of the migrations so a changed
// schema gets a new template. Each database is then a cheap copy of that
// template, dropped when the test ends. `make test` removes the template and
// the role after the run.
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
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the driver

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/migrations"
)

const (
	appRole     = "hub_test_app"
	appPassword = "hub_test_app"
	dbPrefix    = "hub_test_"
	// setupLockID serialises role and template creation across the test
	// binaries that `go test ./...` runs in parallel.
	setupLockID = 0x6875622d74657374 // "hub-test"
)

var (
	setupOnce sync.Once
	setupErr  error
	template  string
)

// AdminURL is the superuser URL of the test server.
func AdminURL() string {
	if u := os.Getenv("HUB_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// DB is one test's database.
type DB struct {
	Name string
	URL  string // connects as the ordinary application role
}

// New creates a fresh migrated database for t and drops it when t ends.
func New(t testing.TB) DB {
	t.Helper()
	setupOnce.Do(func() { setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("pgtest: %v (run the tests with `make test`, which starts PostgreSQL)", setupErr)
	}
	name := dbPrefix + randomSuffix()
	admin := mustAdmin(t, AdminURL())
	defer admin.Close()
	if _, err := admin.Exec(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s OWNER %s`, name, template, appRole)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { drop(t, name) })
	return DB{Name: name, URL: withUserAndDB(AdminURL(), appRole, appPassword, name)}
}

// NewEmpty creates a database with no schema at all, owned by the
// application role, for tests of migrating itself.
func NewEmpty(t testing.TB) DB {
	t.Helper()
	setupOnce.Do(func() { setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("pgtest: %v", setupErr)
	}
	name := dbPrefix + randomSuffix()
	admin := mustAdmin(t, AdminURL())
	defer admin.Close()
	if _, err := admin.Exec(fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, name, appRole)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { drop(t, name) })
	return DB{Name: name, URL: withUserAndDB(AdminURL(), appRole, appPassword, name)}
}

// Open creates a fresh database for t and connects to it as the application
// role; the connection is closed before the database is dropped.
func Open(t testing.TB) *sqlx.DB {
	t.Helper()
	d := New(t)
	db, err := pg.Open(context.Background(), d.URL)
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
	admin, err := pg.Open(ctx, AdminURL())
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
	if err := ensureRole(ctx, conn); err != nil {
		return err
	}
	name, err := templateName()
	if err != nil {
		return err
	}
	template = name
	return ensureTemplate(ctx, conn, name)
}

func ensureRole(ctx context.Context, conn *sqlx.Conn) error {
	var exists bool
	if err := conn.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, appRole); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err := conn.ExecContext(ctx, fmt.Sprintf(
		`CREATE ROLE %s LOGIN PASSWORD '%s' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`, appRole, appPassword))
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
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, building, appRole)); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	if err := migrate(ctx, withUserAndDB(AdminURL(), appRole, appPassword, building)); err != nil {
		return err
	}
	// Renamed only once complete, so a crash never leaves a half-built template.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, building, name)); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s IS_TEMPLATE true`, name))
	return err
}

func migrate(ctx context.Context, u string) error {
	db, err := pg.Open(ctx, u)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := pg.NewMigrator(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	return m.Up(ctx)
}

// templateName hashes the migration files, so editing one makes a new template.
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
	return dbPrefix + "tpl_" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

func withUserAndDB(raw, user, password, db string) string {
	u, _ := url.Parse(raw)
	u.User = url.UserPassword(user, password)
	u.Path = "/" + db
	return u.String()
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
