package lti_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/tenants/audit"
)

// TestCatalogChangesCommitWithTheirAuditEntry: each change of the activity
// catalog and its entry in the operator's audit chain are both there or
// both absent. An actor the audit log refuses (an unknown actor type fails
// its check constraint) makes the append fail inside the transaction.
func TestCatalogChangesCommitWithTheirAuditEntry(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := pgtest.Open(t)
	keys, _ := audit.NewKeyring(make([]byte, 32))
	cat, log := lti.NewCatalog(db, keys, quiet), audit.NewLog(db, keys, quiet)
	op, unrecordable := audit.Operator("req-1"), audit.Actor{Type: "nobody", ID: "x"}
	entries := func() []string {
		t.Helper()
		es, _, err := log.List(ctx, nil, audit.Filter{Action: "activity.", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range es {
			actions = append(actions, e.Action+" "+e.TargetID)
		}
		return actions
	}
	title := func() string {
		t.Helper()
		a, err := cat.Get(ctx, "quiz")
		if apperr.Is(err, apperr.NotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return a.Title
	}
	quiz := lti.Activity{ID: "quiz", Title: "Quiz"}

	if _, err := cat.Create(ctx, unrecordable, quiz); err == nil || title() != "" || len(entries()) != 0 {
		t.Fatalf("create whose audit failed: err %v, title %q, entries %v", err, title(), entries())
	}
	if _, err := cat.Create(ctx, op, quiz); err != nil || title() != "Quiz" || len(entries()) != 1 {
		t.Fatalf("create: err %v, title %q, entries %v", err, title(), entries())
	}
	renamed := lti.Activity{ID: "quiz", Title: "Renamed"}
	if err := cat.Upsert(ctx, unrecordable, renamed); err == nil || title() != "Quiz" || len(entries()) != 1 {
		t.Fatalf("upsert whose audit failed: err %v, title %q, entries %v", err, title(), entries())
	}
	if err := cat.Upsert(ctx, op, renamed); err != nil || title() != "Renamed" || len(entries()) != 2 {
		t.Fatalf("upsert: err %v, title %q, entries %v", err, title(), entries())
	}
	if err := cat.Delete(ctx, unrecordable, "quiz"); err == nil || title() != "Renamed" || len(entries()) != 2 {
		t.Fatalf("delete whose audit failed: err %v, title %q, entries %v", err, title(), entries())
	}
	if err := cat.Delete(ctx, op, "quiz"); err != nil || title() != "" {
		t.Fatalf("delete: err %v, title %q", err, title())
	}
	if err := cat.Delete(ctx, op, "quiz"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("deleting a missing activity: %v", err)
	}
	want := []string{"activity.deleted quiz", "activity.upserted quiz", "activity.created quiz"}
	if got := entries(); !slices.Equal(got, want) {
		t.Fatalf("audit entries %v, want %v", got, want)
	}
}
