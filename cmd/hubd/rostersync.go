package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/klasterina/hub/sync/roster"
)

const rosterSyncUsage = "usage: hubd roster-sync TENANT CONTEXT (TENANT: the tenant's slug; CONTEXT: the hub's course id or the platform's context_id)"

// rosterSync runs one roster sync of a course in the foreground, for
// operators, with a progress bar on stderr: members and pages so far, the
// rate, and the time left when the course's size is known from its last
// sync. A sync a worker is running already is followed instead.
func rosterSync(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 2 {
		return &exitError{2, fmt.Errorf("%s", rosterSyncUsage)}
	}
	h, err := openHub(ctx, getenv, io.Discard)
	if err != nil {
		return err
	}
	defer h.db.Close()
	defer h.deps.CloseJobs()
	t, err := h.deps.Tenants.BySlug(ctx, args[0])
	if err != nil {
		return &exitError{2, fmt.Errorf("tenant %q: %w", args[0], err)}
	}
	courseID, err := h.deps.Roster.FindCourse(ctx, t.ID, args[1])
	if err != nil {
		return &exitError{2, err}
	}
	course, err := h.deps.Roster.Course(ctx, t.ID, courseID)
	if err != nil {
		return err
	}
	bar := newRosterBar(stderr, course)
	run, err := h.deps.Roster.SyncNow(ctx, t.ID, courseID, func(r roster.Run) {
		bar.Describe(fmt.Sprintf("%d pages", r.Pages))
		_ = bar.Set(r.Members)
	})
	if err == nil && run.Status == roster.StatusSucceeded {
		_ = bar.Finish()
	} else {
		_ = bar.Exit() // as far as it got: not filled up
	}
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	return reportRun(stdout, run)
}

// newRosterBar counts members; its end is the course's size at its last
// sync when this one will list them all (the bar runs on past it when the
// course grew); unknown before the first sync, and for a differences sync,
// which lists only what changed.
func newRosterBar(w io.Writer, c roster.Course) *progressbar.ProgressBar {
	max := int64(-1)
	if c.Members > 0 && !c.Differences {
		max = int64(c.Members)
	}
	return progressbar.NewOptions64(max, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("starting"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("members"),
		progressbar.OptionSetPredictTime(true), progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetWidth(30))
}

// reportRun prints the run's outcome on stdout; a failed run is an error.
func reportRun(w io.Writer, r roster.Run) error {
	took := time.Duration(0)
	if r.StartedAt != nil && r.FinishedAt != nil {
		took = r.FinishedAt.Sub(*r.StartedAt).Round(time.Millisecond)
	}
	fmt.Fprintf(w, "run %s %s (%s sync): %d pages, %d members, %d added, %d changed, %d removed in %s\n",
		r.ID, r.Status, r.Mode, r.Pages, r.Members, r.Added, r.Changed, r.Removed, took)
	if r.Status == roster.StatusFailed {
		return fmt.Errorf("roster sync failed: %s: %s", deref(r.ErrorCode), deref(r.Error))
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
