package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/klasterina/hub/internal/pg/pgtest"
)

// acceptedToken is the form scripts/admin-token.sh keeps: 32 random bytes
// in URL-safe base64 without padding.
var acceptedToken = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// adminTokenFile runs scripts/admin-token.sh on file, as `make run` does,
// and returns what it printed.
func adminTokenFile(t *testing.T, file string) string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(bash, filepath.Join("..", "..", "scripts", "admin-token.sh"), file)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("admin-token.sh: %v\n%s", err, errOut.String())
	}
	return out.String()
}

func readToken(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", file, fi.Mode().Perm())
	}
	return string(b)
}

// TestAdminTokenFile: the file `make run` keeps the operator token in holds
// exactly the token the hub accepts, so a newcomer can copy it; a file in
// the older form (standard base64, converted on each use) is rewritten to
// the token the hub was given, keeping the operator's token unchanged.
func TestAdminTokenFile(t *testing.T) {
	dir := t.TempDir()

	fresh := filepath.Join(dir, "fresh")
	printed := adminTokenFile(t, fresh)
	if stored := readToken(t, fresh); stored != printed || !acceptedToken.MatchString(stored) {
		t.Fatalf("first run stored %q and printed %q", stored, printed)
	}
	if again := adminTokenFile(t, fresh); again != printed {
		t.Fatalf("second run printed %q, want the kept %q", again, printed)
	}

	raw := bytes.Repeat([]byte{0xfb, 0xef, 0xff}, 11)[:32] // encodes with '+' and '/'
	old := filepath.Join(dir, "old")
	if err := os.WriteFile(old, []byte(base64.StdEncoding.EncodeToString(raw)), 0o600); err != nil {
		t.Fatal(err)
	}
	printed = adminTokenFile(t, old)
	stored := readToken(t, old)
	if want := base64.RawURLEncoding.EncodeToString(raw); stored != want || printed != want {
		t.Fatalf("old-form file: stored %q, printed %q; want %q", stored, printed, want)
	}
	if strings.ContainsAny(stored, "+/=\n") {
		t.Fatalf("rewritten file %q is still in the old form", stored)
	}

	// The hub, given the printed token, accepts the file's content.
	e := baseEnv(pgtest.NewEmpty(t))
	e["HUB_AUTO_MIGRATE"], e["HUB_ADMIN_TOKEN"] = "true", printed
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, e.get, &syncBuffer{}, &syncBuffer{}) }()
	base := "http://" + e["HUB_ADDR"]
	waitFor(t, base+"/readyz", 200)
	if code := get(t, base+"/api/v1/tenants", stored); code != 200 {
		t.Errorf("the token copied from the file got %d", code)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}
