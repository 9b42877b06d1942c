package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti/ltitest"
)

// TestMain lets a test run hubd as a process of its own: the test binary
// started with HUBD_TEST_ARGS set is hubd with those arguments, so a test
// can kill it with SIGKILL.
func TestMain(m *testing.M) {
	if args := os.Getenv("HUBD_TEST_ARGS"); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		code := run(ctx, strings.Fields(args), os.Getenv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// startProcess runs `hubd serve` with e as a child process.
func startProcess(t *testing.T, e env) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HUBD_TEST_ARGS=serve")
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "http://"+e["HUB_ADDR"]+"/readyz", 200)
	return cmd
}

type runState struct {
	Status  string `db:"status"`
	Pages   int    `db:"pages"`
	Members int    `db:"members"`
}

func TestAKilledHubdCompletesTheSyncAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the job engine to rescue a killed process's job")
	}
	d := pgtest.NewEmpty(t)
	e := baseEnv(d)
	e["HUB_AUTO_MIGRATE"] = "true"
	e["HUB_OUTBOUND_ALLOW_PRIVATE"] = "true"
	e["HUB_JOBS_RESCUE_AFTER"] = "30s"
	e["HUB_PUBLIC_URL"] = "http://" + e["HUB_ADDR"]
	const members = 3000
	p := ltitest.New()
	defer p.Close()
	p.ToolJWKSURL = e["HUB_PUBLIC_URL"] + "/.well-known/jwks.json"
	p.SetRoster("course-1", members)
	p.NRPSDelay = 40 * time.Millisecond // 60 pages: a few seconds

	hubd := startProcess(t, e)
	db := pgtest.Superuser(t, d)
	tenant, course := seedCourse(t, db, p)
	base := "http://" + e["HUB_ADDR"] + "/api/v1/tenants/" + tenant
	if code := post(t, base+"/lti/contexts/"+course.String()+"/roster-syncs", testAdminToken); code != 202 {
		t.Fatalf("request a sync: %d", code)
	}
	var at runState
	deadline := time.Now().Add(20 * time.Second)
	for at.Pages < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("the sync did not get going: %+v", at)
		}
		time.Sleep(20 * time.Millisecond)
		_ = db.Get(&at, `SELECT status, pages, members FROM roster_syncs`)
	}
	if err := hubd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = hubd.Wait()

	// What the killed process committed is consistent: whole pages.
	var stored int
	_ = db.Get(&at, `SELECT status, pages, members FROM roster_syncs`)
	if err := db.Get(&stored, `SELECT count(*) FROM memberships`); err != nil {
		t.Fatal(err)
	}
	if at.Status != "running" || at.Pages >= 60 || stored != at.Members {
		t.Fatalf("after the kill: run %+v, %d members stored", at, stored)
	}

	startProcess(t, e)
	deadline = time.Now().Add(100 * time.Second)
	for at.Status != "succeeded" {
		if time.Now().After(deadline) {
			t.Fatalf("the sync was not completed after the restart: %+v", at)
		}
		time.Sleep(200 * time.Millisecond)
		_ = db.Get(&at, `SELECT status, pages, members FROM roster_syncs`)
	}
	var active int
	if err := db.Get(&active, `SELECT count(*) FROM memberships WHERE status = 'active'`); err != nil || active != members {
		t.Fatalf("%d active members after the restart (%v), want %d", active, err, members)
	}
	if at.Members != members {
		t.Fatalf("the run counted %d members: it started over or counted twice", at.Members)
	}
}

// seedCourse makes a tenant that registered p and a course of p's, as a
// first launch records it, and returns the tenant's slug and the course.
func seedCourse(t *testing.T, db *sqlx.DB, p *ltitest.Platform) (string, uuid.UUID) {
	t.Helper()
	tenant, reg, course := uuid.New(), uuid.New(), uuid.New()
	slug := "uni-" + tenant.String()[:8]
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO tenants (id, slug, display_name, kind) VALUES ($1, $2, 'University', 'institution')`, []any{tenant, slug}},
		{`INSERT INTO lti_registrations (id, tenant_id, issuer, client_id, auth_login_url, auth_token_url, jwks_url, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now())`,
			[]any{reg, tenant, p.Issuer(), p.ClientID, p.AuthURL(), p.TokenURL(), p.JWKSURL()}},
		{`INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, created_at) VALUES ($1, $2, $3, now())`,
			[]any{tenant, reg, p.DeploymentID}},
		{`INSERT INTO contexts (id, tenant_id, registration_id, deployment_id, context_id, nrps_url, updated_at)
			VALUES ($1, $2, $3, $4, 'course-1', $5, now())`, []any{course, tenant, reg, p.DeploymentID, p.Server.URL + "/nrps/course-1"}},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatal(fmt.Errorf("seed: %w", err))
		}
	}
	return slug, course
}

func post(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
