package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/pg/pgtest"
)

func TestRosterSyncCommand(t *testing.T) {
	d := pgtest.NewEmpty(t)
	e := baseEnv(d)
	e["HUB_AUTO_MIGRATE"] = "true"
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"demo"}, e.get, out, &syncBuffer{}) }()
	defer func() { stop(); <-done }()
	waitFor(t, "http://"+e["HUB_ADDR"]+"/readyz", 200)
	lms := regexp.MustCompile(`demo LMS:\s+(http://\S+)`).FindStringSubmatch(out.String())
	if lms == nil {
		t.Fatalf("no demo LMS printed:\n%s", out.String())
	}
	// The course as the demo LMS's first launch records it.
	db := pgtest.Superuser(t, d)
	if _, err := db.Exec(`INSERT INTO contexts (id, tenant_id, registration_id, deployment_id, context_id, title, nrps_url, updated_at)
		SELECT $1, r.tenant_id, r.id, dep.deployment_id, 'course-1', 'Demo course', $2, now()
		FROM lti_registrations r JOIN lti_deployments dep ON dep.registration_id = r.id
		JOIN tenants t ON t.id = r.tenant_id WHERE t.slug = 'demo-university' LIMIT 1`,
		uuid.New(), strings.Replace(lms[1], "localhost", "127.0.0.1", 1)+"/nrps/course-1"); err != nil {
		t.Fatal(err)
	}

	// The command is refused the loopback platform as hubd is by default…
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	if code := run(ctx, []string{"roster-sync", "demo-university", "course-1"}, e.get, stdout, stderr); code != 1 ||
		!strings.Contains(stdout.String(), "failed") || !strings.Contains(stderr.String(), "destination_refused") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	// …and syncs it when allowed, as the demo is.
	e["HUB_OUTBOUND_ALLOW_PRIVATE"] = "true"
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	if code := run(ctx, []string{"roster-sync", "demo-university", "course-1"}, e.get, stdout, stderr); code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`succeeded \(full sync\): 1 pages, 40 members, 40 added`).MatchString(stdout.String()) {
		t.Fatalf("stdout: %s", stdout)
	}
	if !strings.Contains(stderr.String(), "members") {
		t.Fatalf("no progress on stderr: %q", stderr)
	}
	var active int
	if err := db.Get(&active, `SELECT count(*) FROM memberships WHERE status = 'active'`); err != nil || active != 40 {
		t.Fatalf("%d active members (%v)", active, err)
	}

	// The demo LMS's page shows the hub's copy beside its own.
	res, err := http.Get(lms[1])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), "The tool's copy") || !strings.Contains(string(page), "40 active members, synced") {
		t.Fatalf("demo LMS page:\n%s", page)
	}

	for _, args := range [][]string{{"roster-sync"}, {"roster-sync", "no-such-tenant", "course-1"}, {"roster-sync", "demo-university", "no-such-course"}} {
		if code := run(ctx, args, e.get, &syncBuffer{}, &syncBuffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
