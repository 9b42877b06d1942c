package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg/pgtest"
)

const testAdminToken = "operator-token-for-tests-0123456789abcdef"

var testSecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))

// env is a fake environment for run.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func baseEnv(d pgtest.DB) env {
	return env{
		"HUB_DATABASE_URL":         d.URL,
		"HUB_MIGRATE_DATABASE_URL": d.OwnerURL,
		"HUB_ADDR":                 freeAddr(),
		"HUB_ADMIN_TOKEN":          testAdminToken,
		"HUB_SECRET_KEY":           testSecretKey,
		"HUB_LOG_LEVEL":            "warn",
	}
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe to write from the serving goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestConfigErrorsStopWithOneLine(t *testing.T) {
	d := pgtest.New(t)
	tests := map[string]struct {
		change  env
		wantVar string
	}{
		"missing database url":   {env{"HUB_DATABASE_URL": ""}, "HUB_DATABASE_URL"},
		"database url not pg":    {env{"HUB_DATABASE_URL": "mysql://x"}, "HUB_DATABASE_URL"},
		"10-byte secret key":     {env{"HUB_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 10))}, "HUB_SECRET_KEY"},
		"secret key not base64":  {env{"HUB_SECRET_KEY": "!!!"}, "HUB_SECRET_KEY"},
		"missing secret key":     {env{"HUB_SECRET_KEY": ""}, "HUB_SECRET_KEY"},
		"short admin token":      {env{"HUB_ADMIN_TOKEN": "secret"}, "HUB_ADMIN_TOKEN"},
		"bad address":            {env{"HUB_ADDR": "8080"}, "HUB_ADDR"},
		"bad auto migrate":       {env{"HUB_AUTO_MIGRATE": "yes please"}, "HUB_AUTO_MIGRATE"},
		"bad app url":            {env{"HUB_APP_URL": "ftp://app"}, "HUB_APP_URL"},
		"bad public url":         {env{"HUB_PUBLIC_URL": "hub.example"}, "HUB_PUBLIC_URL"},
		"bad log level":          {env{"HUB_LOG_LEVEL": "loud"}, "HUB_LOG_LEVEL"},
		"bad outbound flag":      {env{"HUB_OUTBOUND_ALLOW_PRIVATE": "2"}, "HUB_OUTBOUND_ALLOW_PRIVATE"},
		"short previous key":     {env{"HUB_SECRET_KEY_PREVIOUS": testSecretKey + "," + base64.StdEncoding.EncodeToString(make([]byte, 10))}, "HUB_SECRET_KEY_PREVIOUS"},
		"proxy not a CIDR":       {env{"HUB_TRUSTED_PROXIES": "10.0.0.0/8,lb.internal"}, "HUB_TRUSTED_PROXIES"},
		"leeway of an hour":      {env{"HUB_LTI_LEEWAY": "1h"}, "HUB_LTI_LEEWAY"},
		"leeway not a duration":  {env{"HUB_LTI_LEEWAY": "30"}, "HUB_LTI_LEEWAY"},
		"retention of no days":   {env{"HUB_DISCLOSURE_RETENTION_DAYS": "0"}, "HUB_DISCLOSURE_RETENTION_DAYS"},
		"retention every second": {env{"HUB_RETENTION_INTERVAL": "1s"}, "HUB_RETENTION_INTERVAL"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := baseEnv(d)
			for k, v := range tc.change {
				e[k] = v
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"serve"}, e.get, &stdout, &stderr)
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "hubd: config: "+tc.wantVar+" ") {
				t.Fatalf("exit %d, stderr %q: want one line naming %s", code, stderr.String(), tc.wantVar)
			}
		})
	}
}

// TestServeRefusesRolesRowSecurityDoesNotBind: the owner of the tables or
// a superuser could switch tenant isolation off, so serve will not run as
// one. One line, exit 2.
func TestServeRefusesRolesRowSecurityDoesNotBind(t *testing.T) {
	d := pgtest.New(t)
	super, _ := url.Parse(pgtest.AdminURL())
	super.Path = "/" + d.Name
	for name, dbURL := range map[string]string{"the owner": d.OwnerURL, "a superuser": super.String()} {
		t.Run(name, func(t *testing.T) {
			e := baseEnv(d)
			e["HUB_DATABASE_URL"] = dbURL
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"serve"}, e.get, &stdout, &stderr)
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if code != 2 || !strings.Contains(last, "row-level security would not isolate tenants") {
				t.Fatalf("exit %d, stderr %s", code, stderr.String())
			}
		})
	}
}

func TestMigrateNeedsTheOwnersURL(t *testing.T) {
	d := pgtest.NewEmpty(t)
	e := baseEnv(d)
	delete(e, "HUB_MIGRATE_DATABASE_URL")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"migrate"}, e.get, &stdout, &stderr)
	if code != 2 || !strings.HasPrefix(stderr.String(), "hubd: config: HUB_MIGRATE_DATABASE_URL ") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	e["HUB_MIGRATE_DATABASE_URL"] = d.URL // the application role as its own owner
	stderr.Reset()
	if code := run(context.Background(), []string{"migrate"}, e.get, &stdout, &stderr); code == 0 {
		t.Fatalf("migrating as the application role succeeded: %s", stdout.String())
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version"}, env{}.get, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "hubd ") {
		t.Fatalf("version: exit %d, %q", code, out.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, env{}.get, &out, &errOut); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

func TestServeRefusesAnOutdatedSchema(t *testing.T) {
	d := pgtest.NewEmpty(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve"}, baseEnv(d).get, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "run `hubd migrate`") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
}

// TestMigrateThenServe is the operator's path: a fresh database, `hubd
// migrate`, `hubd serve`, then SIGTERM with a request in flight.
func TestMigrateThenServe(t *testing.T) {
	d := pgtest.NewEmpty(t)
	e := baseEnv(d)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"migrate"}, e.get, &stdout, &stderr); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, stderr.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"migrate", "status"}, e.get, &stdout, &stderr); code != 0 || strings.Contains(stdout.String(), "pending") {
		t.Fatalf("migrate status: exit %d: %s", code, stdout.String())
	}

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, e.get, &syncBuffer{}, &syncBuffer{}) }()
	base := "http://" + e["HUB_ADDR"]
	waitFor(t, base+"/readyz", 200)
	if code := get(t, base+"/healthz", ""); code != 200 {
		t.Fatalf("healthz = %d", code)
	}

	// Hold a lock the next request needs, stop the server while it waits,
	// then release: the request must still finish, and serve exit cleanly.
	super := pgtest.Superuser(t, d)
	tx := super.MustBegin()
	tx.MustExec(`LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE`)
	inFlight := make(chan int, 1)
	go func() { inFlight <- get(t, base+"/api/v1/tenants", testAdminToken) }()
	waitForLockWait(t, super)
	stop()
	time.Sleep(200 * time.Millisecond)
	select {
	case code := <-done:
		t.Fatalf("serve exited (%d) with a request in flight", code)
	default:
	}
	tx.Rollback()
	if code := <-inFlight; code != 200 {
		t.Fatalf("in-flight request = %d, want 200", code)
	}
	if code := <-done; code != 0 {
		t.Fatalf("serve exit %d after SIGTERM", code)
	}
}

// TestConcurrentAutoMigrations starts several replicas at once on an empty
// database; the advisory lock lets each migration run exactly once.
func TestConcurrentAutoMigrations(t *testing.T) {
	d := pgtest.NewEmpty(t)
	var wg sync.WaitGroup
	codes := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), []string{"migrate"}, baseEnv(d).get, &out, &errOut); code != 0 {
				codes <- errOut.String()
			}
		})
	}
	wg.Wait()
	close(codes)
	for msg := range codes {
		t.Errorf("a concurrent migrate failed: %s", msg)
	}
}

func TestAutoMigrateServe(t *testing.T) {
	d := pgtest.NewEmpty(t)
	e := baseEnv(d)
	e["HUB_AUTO_MIGRATE"] = "true"
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, e.get, &syncBuffer{}, &syncBuffer{}) }()
	waitFor(t, "http://"+e["HUB_ADDR"]+"/readyz", 200)
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestServeRiverUIWithinTheGrace: a serving hub answers the operator from
// River's UI, whose background counting runs with the server, and still
// stops well within its grace.
func TestServeRiverUIWithinTheGrace(t *testing.T) {
	d := pgtest.NewEmpty(t)
	e := baseEnv(d)
	e["HUB_AUTO_MIGRATE"] = "true"
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, e.get, &syncBuffer{}, &syncBuffer{}) }()
	base := "http://" + e["HUB_ADDR"]
	waitFor(t, base+"/readyz", 200)
	req, _ := http.NewRequest("GET", base+"/riverui/api/states", nil)
	req.SetBasicAuth("operator", testAdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("River's UI: %d", res.StatusCode)
	}
	stopped := time.Now()
	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(shutdownGrace):
		t.Fatalf("serve still running %s after it was stopped", shutdownGrace)
	}
	t.Logf("stopped in %s", time.Since(stopped))
}

// TestDemo runs what `make run` runs, twice: the second run keeps the
// tenant, issues a new key and revokes the first.
func TestDemo(t *testing.T) {
	d := pgtest.NewEmpty(t)
	var keys []string
	for range 2 {
		e := baseEnv(d)
		e["HUB_AUTO_MIGRATE"] = "true"
		ctx, stop := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"demo"}, e.get, out, &syncBuffer{}) }()
		base := "http://" + e["HUB_ADDR"]
		waitFor(t, base+"/readyz", 200)
		key := regexp.MustCompile(`demo API key:\s+(hubk_\S+)`).FindStringSubmatch(out.String())
		if key == nil || !strings.Contains(out.String(), testAdminToken) || !strings.Contains(out.String(), "curl") {
			t.Fatalf("demo printed:\n%s", out.String())
		}
		keys = append(keys, key[1])
		checkDemoLMS(t, out.String())
		for i, k := range keys {
			want := 200
			if i < len(keys)-1 {
				want = 401 // an earlier run's key
			}
			if code := get(t, base+"/api/v1/tenants/demo-university", k); code != want {
				t.Fatalf("demo key %d of %d: %d, want %d", i+1, len(keys), code, want)
			}
		}
		stop()
		<-done
	}
}

func get(t *testing.T, url, token string) int {
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

func waitFor(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if get(t, url, "") == status {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered %d", url, status)
}

// checkDemoLMS follows the demo LMS's student link as far as the platform's
// authorization endpoint: the LMS is registered and the login accepted.
func checkDemoLMS(t *testing.T, printed string) {
	t.Helper()
	m := regexp.MustCompile(`demo LMS:\s+(http://\S+)`).FindStringSubmatch(printed)
	if m == nil {
		t.Fatalf("no demo LMS printed:\n%s", printed)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(m[1] + "/start?as=student")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	login := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.Contains(login, "/lti/login?") {
		t.Fatalf("demo LMS start: %d to %q", res.StatusCode, login)
	}
	res, err = noFollow.Get(login)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), strings.Replace(m[1], "localhost", "127.0.0.1", 1)+"/auth?") {
		t.Fatalf("hub login for the demo LMS: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestSecretKeyRotation: after HUB_SECRET_KEY changes, the hub's sealed
// signing keys open with the old key given as HUB_SECRET_KEY_PREVIOUS, and
// without it the hub refuses to start rather than sign with unknown keys.
func TestSecretKeyRotation(t *testing.T) {
	d := pgtest.NewEmpty(t)
	serveOnce := func(e env) (int, string) {
		ctx, stop := context.WithCancel(context.Background())
		errOut := &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, nil, e.get, &syncBuffer{}, errOut) }()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case code := <-done:
				stop()
				return code, errOut.String()
			default:
			}
			if get(t, "http://"+e["HUB_ADDR"]+"/.well-known/jwks.json", "") == 200 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		return <-done, errOut.String()
	}
	first := baseEnv(d)
	first["HUB_AUTO_MIGRATE"] = "true"
	if code, out := serveOnce(first); code != 0 {
		t.Fatalf("first start: %d %s", code, out)
	}
	newKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	rotated := baseEnv(d)
	rotated["HUB_SECRET_KEY"] = newKey
	if code, out := serveOnce(rotated); code == 0 || !strings.Contains(out, "set HUB_SECRET_KEY_PREVIOUS") {
		t.Fatalf("with sealed keys it cannot open: exit %d, %s", code, out)
	}
	rotated = baseEnv(d)
	rotated["HUB_SECRET_KEY"], rotated["HUB_SECRET_KEY_PREVIOUS"] = newKey, testSecretKey
	if code, out := serveOnce(rotated); code != 0 {
		t.Fatalf("start with the previous key: %d %s", code, out)
	}
}

// waitForLockWait returns once some backend waits on a lock: the request
// under test is then in flight inside the hub.
func waitForLockWait(t *testing.T, super *sqlx.DB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var waiting int
		if err := super.Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the request never reached the database")
}
