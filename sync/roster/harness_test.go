package roster

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/keys/keystest"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/lti/servicetoken"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/tenants/audit"
)

// rig is a hub's roster sync against a fake LMS: real PostgreSQL as the
// application role, real HTTP on loopback, the hub's signing key verified
// by the platform's token endpoint through the hub's published keyset.
type rig struct {
	t        testing.TB
	db       *sqlx.DB
	jobsDB   *sqlx.DB
	s        *Service
	p        *ltitest.Platform
	tenant   uuid.UUID
	course   uuid.UUID
	tokens   *servicetoken.Source
	dbt      pgtest.DB
	regID    uuid.UUID
	contexts int
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newRig starts a platform whose course-1 has members, and a hub with a
// tenant that registered the platform and knows the course (as a launch
// would have recorded it).
func newRig(t testing.TB, members int) *rig {
	t.Helper()
	ctx := context.Background()
	d := pgtest.New(t)
	r := &rig{t: t, dbt: d, db: pgtest.Connect(t, d.URL), p: ltitest.New()}
	t.Cleanup(r.p.Close)
	var err error
	if r.jobsDB, err = jobs.Open(ctx, d.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.jobsDB.Close() })
	sealer, _ := secrets.New(bytes.Repeat([]byte{3}, 32))
	ks := keys.NewStore(r.db, sealer, quiet())
	if err := ks.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	jwks := keystest.Serve(t, ks)
	r.p.ToolJWKSURL, r.p.ToolClient = jwks.URL, jwks.Client()
	client := httpx.New(true)
	chain, _ := audit.NewKeyring(bytes.Repeat([]byte{4}, 32))
	r.tokens = servicetoken.NewSource(ks, client)
	r.s = New(r.db, r.jobsDB, r.tokens, client, chain, nil, quiet())
	r.s.Retry = RetryPolicy{Attempts: 6, ThrottledAttempts: 30, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond,
		MaxInlineWait: 5 * time.Second}
	r.s.PageTimeout = 5 * time.Second
	if r.s.Jobs, err = jobs.New(r.jobsDB, jobs.Config{Log: quiet()}); err != nil {
		t.Fatal(err)
	}
	r.addTenant()
	if members > 0 {
		r.p.SetRoster("course-1", members)
	}
	return r
}

// addTenant makes a tenant that registered the platform and knows its
// course-1, and makes it the rig's.
func (r *rig) addTenant() {
	r.tenant, r.regID = uuid.New(), uuid.New()
	r.inTenant(func(tx *sqlx.Tx) error {
		if _, err := tx.Exec(`INSERT INTO tenants (id, slug, display_name, kind) VALUES ($1, $2, 'University', 'institution')`,
			r.tenant, "uni-"+r.tenant.String()[:8]); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO lti_registrations (id, tenant_id, issuer, client_id, auth_login_url, auth_token_url, jwks_url,
				created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now())`,
			r.regID, r.tenant, r.p.Issuer(), r.p.ClientID, r.p.AuthURL(), r.p.TokenURL(), r.p.JWKSURL())
		if err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, created_at) VALUES ($1, $2, $3, now())`,
			r.tenant, r.regID, r.p.DeploymentID)
		return err
	})
	r.course = r.addCourse("course-1")
}

// addCourse records a course of the platform as its first launch would.
func (r *rig) addCourse(contextID string) uuid.UUID {
	id := uuid.New()
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO contexts (id, tenant_id, registration_id, deployment_id, context_id, title, nrps_url, nrps_versions,
				updated_at) VALUES ($1, $2, $3, $4, $5, 'Mathematics', $6, '{2.0}', now())`,
			id, r.tenant, r.regID, r.p.DeploymentID, contextID, r.p.Server.URL+"/nrps/"+contextID)
		return err
	})
	return id
}

func (r *rig) inTenant(fn func(*sqlx.Tx) error) {
	r.t.Helper()
	if err := pg.InTenant(context.Background(), r.db, r.tenant, fn); err != nil {
		r.t.Fatal(err)
	}
}

// syncNow runs the course's sync to its end, as `hubd roster-sync` does.
func (r *rig) syncNow() Run {
	r.t.Helper()
	run, err := r.s.SyncNow(context.Background(), r.tenant, r.course, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return run
}

// memberState is a member of the course as the hub stores them.
type memberState struct {
	Subject string `db:"subject"`
	Status  string `db:"status"`
	Name    string `db:"name"`
	Email   string `db:"email"`
	Roles   string `db:"roles"`
}

// members reads the course's members by platform subject.
func (r *rig) members() map[string]memberState {
	r.t.Helper()
	var rows []memberState
	r.inTenant(func(tx *sqlx.Tx) error {
		return tx.Select(&rows, `SELECT i.subject, m.status, coalesce(u.name, '') AS name, coalesce(u.email, '') AS email,
				array_to_string(m.roles, ' ') AS roles
			FROM memberships m JOIN lti_identities i ON i.tenant_id = m.tenant_id AND i.user_id = m.user_id
			JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
			WHERE m.tenant_id = $1 AND m.context_ref = $2`, r.tenant, r.course)
	})
	out := make(map[string]memberState, len(rows))
	for _, m := range rows {
		out[m.Subject] = m
	}
	return out
}

// countStatus counts the course's members in each status.
func countStatus(ms map[string]memberState) map[string]int {
	n := map[string]int{}
	for _, m := range ms {
		n[m.Status]++
	}
	return n
}
