package roster

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/migrations"
)

// Courses launched before roster sync existed are put on the schedule by
// the migration that brings it, spread over its first six hours.
func TestCoursesFromBeforeRosterSyncAreScheduled(t *testing.T) {
	ctx := context.Background()
	d := pgtest.NewEmpty(t)
	owner, err := pg.OpenWith(ctx, d.OwnerURL, pg.MigrateLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, owner.DB, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 19); err != nil {
		t.Fatal(err)
	}
	tenant, reg := uuid.New(), uuid.New()
	for _, q := range []string{
		`INSERT INTO tenants (id, slug, display_name, kind) SELECT $1, 'uni', 'University', 'institution' WHERE $2::uuid IS NOT NULL`,
		`INSERT INTO lti_registrations (id, tenant_id, issuer, client_id, auth_login_url, auth_token_url, jwks_url, created_at, updated_at)
			VALUES ($2, $1, 'https://lms.example', 'c', 'https://lms.example/a', 'https://lms.example/t', 'https://lms.example/k', now(), now())`,
		`INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, created_at) VALUES ($1, $2, 'd', now())`,
		`INSERT INTO contexts (id, tenant_id, registration_id, deployment_id, context_id, nrps_url, updated_at)
			VALUES (gen_random_uuid(), $1, $2, 'd', 'with-nrps', 'https://lms.example/nrps', now()),
			       (gen_random_uuid(), $1, $2, 'd', 'without', NULL, now())`,
	} {
		if _, err := owner.Exec(q, tenant, reg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var withNRPS time.Time
	var without *time.Time
	if err := owner.QueryRow(`SELECT (SELECT roster_next_sync_at FROM contexts WHERE context_id = 'with-nrps'),
		(SELECT roster_next_sync_at FROM contexts WHERE context_id = 'without')`).Scan(&withNRPS, &without); err != nil {
		t.Fatal(err)
	}
	if d := time.Until(withNRPS); d > 6*time.Hour || d < -time.Minute || without != nil {
		t.Fatalf("next syncs: %s and %v", withNRPS, without)
	}
}
