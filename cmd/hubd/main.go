// Command hubd is the hub: `hubd serve` (the default) runs the HTTP server,
// `hubd migrate [status]` applies or reports the schema, `hubd demo` seeds a
// demo tenant and serves (what `make run` uses), `hubd roster-sync TENANT
// CONTEXT` syncs one course's roster in the foreground, `hubd version`
// prints the build.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/klasterina/hub/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// exitError carries the process exit code with the one line to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

const usage = `usage: hubd [serve | migrate [status] | demo | roster-sync TENANT CONTEXT | version]`

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, getenv, stderr, nil)
	case "demo":
		err = demo(ctx, getenv, stdout, stderr)
	case "migrate":
		err = migrate(ctx, args, getenv, stdout, stderr)
	case "roster-sync":
		err = rosterSync(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "hubd", version)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
	default:
		err = &exitError{2, fmt.Errorf("unknown command %q; %s", cmd, usage)}
	}
	return exitCode(err, stderr)
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "hubd:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// loadConfig stops the process with one line naming the bad variable.
func loadConfig(getenv func(string) string, need config.Need) (*config.Config, error) {
	cfg, err := config.Load(getenv, need)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("config: %w", err)}
	}
	return cfg, nil
}

// newLogger writes JSON lines with the request id of each record's context.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(apiLogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})))
}
