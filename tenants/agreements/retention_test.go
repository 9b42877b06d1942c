package agreements

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

const day = 24 * time.Hour

// retentionRig is a gateRig with the tenant's retention, as the
// application role.
type retentionRig struct {
	*gateRig
	r *Retention
}

func newRetentionRig(t testing.TB) *retentionRig {
	g := newGateRig(t)
	chain, err := audit.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &retentionRig{gateRig: g, r: NewRetention(g.db, chain, 0)}
}

// addTenant makes another tenant, with a learner, and answers both.
func (g *retentionRig) addTenant(slug string) (tenant, learner uuid.UUID) {
	g.t.Helper()
	tenant, learner = uuid.New(), uuid.New()
	err := pg.InTenant(context.Background(), g.db, tenant, func(tx *sqlx.Tx) error {
		if _, err := tx.Exec(`INSERT INTO tenants (id, slug, display_name, kind) VALUES ($1, $2, 'Other', 'institution')`, tenant, slug); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO users (id, tenant_id, created_at, updated_at) VALUES ($1, $2, now(), now())`, learner, tenant)
		return err
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return tenant, learner
}

// decided records n shares about learner to the LMS, decided at at,
// under a (nil: no agreement), in tenant.
func (g *retentionRig) decided(tenant, learner uuid.UUID, n int, at time.Time, a *Agreement) {
	g.t.Helper()
	var id *uuid.UUID
	var version *int
	if a != nil {
		id, version = &a.ID, &a.Version
	}
	err := pg.InTenant(context.Background(), g.db, tenant, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO disclosures (id, tenant_id, user_id, destination_kind, category, decision, record_type,
				decided_at, agreement_id, agreement_version)
			SELECT gen_random_uuid(), $1, $2, 'lms', 'completion', 'share', 'result', $3, $4, $5 FROM generate_series(1, $6)`,
			tenant, learner, at, id, version, n)
		return err
	})
	if err != nil {
		g.t.Fatal(err)
	}
}

// kept counts tenant's disclosures by (days old at now, agreement
// version or 0), for a readable comparison.
func (g *retentionRig) kept(tenant uuid.UUID, now time.Time) map[[2]int]int {
	g.t.Helper()
	var rows []struct {
		At      time.Time `db:"decided_at"`
		Version *int      `db:"agreement_version"`
	}
	err := pg.InTenant(context.Background(), g.db, tenant, func(tx *sqlx.Tx) error {
		return tx.Select(&rows, `SELECT decided_at, agreement_version FROM disclosures`)
	})
	if err != nil {
		g.t.Fatal(err)
	}
	out := map[[2]int]int{}
	for _, r := range rows {
		v := 0
		if r.Version != nil {
			v = *r.Version
		}
		out[[2]int{int(now.Sub(r.At).Round(day) / day), v}]++
	}
	return out
}

// run queues a run for the tenant at now and works it to the end.
func (g *retentionRig) run(tenant uuid.UUID, now time.Time) RetentionRun {
	g.t.Helper()
	g.r.Now = func() time.Time { return now }
	run := g.queue(tenant)
	done, err := g.r.Work(context.Background(), tenant, run.ID, time.Time{})
	if err != nil {
		g.t.Fatalf("retention run: %v", err)
	}
	if done.Status != RetentionSucceeded || done.StartedAt == nil || done.FinishedAt == nil || done.Error != nil {
		g.t.Fatalf("run %+v", done)
	}
	return done
}

func (g *retentionRig) queue(tenant uuid.UUID) RetentionRun {
	g.t.Helper()
	var run RetentionRun
	err := pg.InTenant(context.Background(), g.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		run, _, err = g.r.QueueTx(context.Background(), tx, nil, tenant, RetentionBySchedule)
		return err
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return run
}

// addLearner makes a user of the tenant, created at the database's now.
func (g *retentionRig) addLearner() uuid.UUID {
	g.t.Helper()
	id := uuid.New()
	g.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO users (id, tenant_id, name, email, created_at, updated_at)
			VALUES ($1, $2, 'Ada Lovelace', 'ada@example.edu', now(), now())`, id, g.tenant)
		return err
	})
	return id
}

// erased lists which of users are erased.
func (g *retentionRig) erased(users ...uuid.UUID) []bool {
	g.t.Helper()
	out := make([]bool, len(users))
	for i, u := range users {
		g.inTenant(func(tx *sqlx.Tx) error {
			return tx.Get(&out[i], `SELECT erased_at IS NOT NULL AND name IS NULL FROM users WHERE id = $1`, u)
		})
	}
	return out
}

func (g *retentionRig) audited(action string) []audit.Entry {
	g.t.Helper()
	var es []audit.Entry
	g.inTenant(func(tx *sqlx.Tx) error {
		return tx.Select(&es, `SELECT id, tenant_id, seq, at, actor_type, actor_id, action, target_type, target_id, request_id,
			details, prev_hash, hash, key_id FROM audit_log WHERE action = $1 ORDER BY seq`, action)
	})
	for i := range es {
		if err := json.Unmarshal(es[i].RawDetails, &es[i].Details); err != nil {
			g.t.Fatal(err)
		}
	}
	return es
}

func (g *retentionRig) terminate(a Agreement) Agreement {
	g.t.Helper()
	ended, err := g.store.Terminate(context.Background(), g.admin, g.tenant, a.ID)
	if err != nil {
		g.t.Fatal(err)
	}
	return ended
}

func TestRetentionDeletesDisclosuresPastTheirVersionsRetention(t *testing.T) {
	g := newRetentionRig(t)
	now := time.Now()
	v1 := g.activate(func(t *Terms) { t.DisclosureRetentionDays = 30 })
	v2 := g.activate(func(t *Terms) { t.DisclosureRetentionDays = 365 })
	g.decided(g.tenant, g.learner, 3, now.Add(-31*day), &v1)
	g.decided(g.tenant, g.learner, 2, now.Add(-29*day), &v1)
	g.decided(g.tenant, g.learner, 4, now.Add(-31*day), &v2)
	g.decided(g.tenant, g.learner, 1, now.Add(-366*day), &v2)
	other, otherLearner := g.addTenant("other")
	g.decided(other, otherLearner, 2, now.Add(-4000*day), nil)

	run := g.run(g.tenant, now)
	if run.DisclosuresDeleted != 4 || run.LearnersErased != 0 || run.Trigger != RetentionBySchedule {
		t.Fatalf("run %+v, want 4 disclosures deleted", run)
	}
	want := map[[2]int]int{{29, 1}: 2, {31, 2}: 4}
	if got := g.kept(g.tenant, now); !maps.Equal(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if got := g.kept(other, now); got[[2]int{4000, 0}] != 2 {
		t.Fatalf("another tenant's record: %v", got)
	}
	// Nothing more is old enough: the next run deletes nothing.
	if again := g.run(g.tenant, now.Add(time.Second)); again.DisclosuresDeleted != 0 {
		t.Fatalf("second run %+v", again)
	}

	ran := g.audited("retention.ran")
	if len(ran) != 2 || ran[0].TargetID != run.ID.String() || ran[0].ActorType != audit.ActorSystem || ran[0].ActorID != "retention" ||
		ran[0].Details["disclosures_deleted"] != "4" || ran[0].Details["learners_erased"] != "0" ||
		ran[0].Details["status"] != "succeeded" || ran[0].Details["trigger"] != "schedule" || len(ran[0].Details) != 4 {
		t.Fatalf("retention.ran entries %+v", ran)
	}
	runs, next, err := g.r.Runs(context.Background(), g.tenant, pg.Page{Limit: 1})
	if err != nil || len(runs) != 1 || next == nil || runs[0].DisclosuresDeleted != 0 {
		t.Fatalf("newest run %+v, next %v, %v", runs, next, err)
	}
	runs, next, err = g.r.Runs(context.Background(), g.tenant, pg.Page{Limit: 5, After: next})
	if err != nil || len(runs) != 1 || next != nil || runs[0].ID != run.ID {
		t.Fatalf("older runs %+v, next %v, %v", runs, next, err)
	}
	if _, err := g.r.Run(context.Background(), other, run.ID); err == nil {
		t.Fatal("another tenant reads the run")
	}
}

// A decision made while the tenant had no agreement is kept as long as
// the agreement active now says, and with none, the operator's default.
func TestRetentionOfDisclosuresUnderNoAgreement(t *testing.T) {
	g := newRetentionRig(t)
	g.r.DefaultDays = 100
	now := time.Now()
	g.decided(g.tenant, g.learner, 2, now.Add(-101*day), nil)
	g.decided(g.tenant, g.learner, 3, now.Add(-99*day), nil)
	g.decided(g.tenant, g.learner, 1, now.Add(-20*day), nil)
	if run := g.run(g.tenant, now); run.DisclosuresDeleted != 2 {
		t.Fatalf("with no agreement: %+v, want 2 deleted", run)
	}
	if got, want := g.kept(g.tenant, now), map[[2]int]int{{99, 0}: 3, {20, 0}: 1}; !maps.Equal(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}

	g.activate(func(t *Terms) { t.DisclosureRetentionDays = 30 })
	if run := g.run(g.tenant, now); run.DisclosuresDeleted != 3 {
		t.Fatalf("with an agreement of 30 days: %+v, want 3 deleted", run)
	}
	if got, want := g.kept(g.tenant, now), map[[2]int]int{{20, 0}: 1}; !maps.Equal(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
}

func TestRetentionDeletesABacklogInBatches(t *testing.T) {
	g := newRetentionRig(t)
	g.r.Batch = 100
	var batches []int64
	g.r.batchHook = func(table string, n int64) {
		if table == "disclosures" && n > 0 {
			batches = append(batches, n)
		}
	}
	now := time.Now()
	a := g.activate(func(t *Terms) { t.DisclosureRetentionDays = 10 })
	g.decided(g.tenant, g.learner, 250, now.Add(-11*day), &a)
	g.decided(g.tenant, g.learner, 7, now.Add(-9*day), &a)
	if run := g.run(g.tenant, now); run.DisclosuresDeleted != 250 {
		t.Fatalf("run %+v, want 250 deleted", run)
	}
	if !slices.Equal(batches, []int64{100, 100, 50}) {
		t.Fatalf("batches %v, want 100, 100, 50", batches)
	}
	if got := g.kept(g.tenant, now); got[[2]int{9, 1}] != 7 || len(got) != 1 {
		t.Fatalf("kept %v", got)
	}
}

// A run stopped near its deadline keeps what it did, stays running, and
// the next try carries on; a run that has ended is not worked again.
func TestRetentionRunPausesAndResumes(t *testing.T) {
	g := newRetentionRig(t)
	now := time.Now()
	g.r.Now = func() time.Time { return now }
	a := g.activate(func(t *Terms) { t.DisclosureRetentionDays = 10 })
	g.decided(g.tenant, g.learner, 5, now.Add(-11*day), &a)
	run := g.queue(g.tenant)
	if again := g.queue(g.tenant); again.ID != run.ID {
		t.Fatalf("a second queued run %s beside %s", again.ID, run.ID)
	}
	ctx := context.Background()
	paused, err := g.r.Work(ctx, g.tenant, run.ID, time.Now().Add(retentionMargin/2))
	if !errors.Is(err, ErrRetentionPaused) || paused.Status != RetentionRunning {
		t.Fatalf("near its deadline: %+v, %v", paused, err)
	}
	done, err := g.r.Work(ctx, g.tenant, run.ID, time.Now().Add(time.Hour))
	if err != nil || done.Status != RetentionSucceeded || done.DisclosuresDeleted != 5 {
		t.Fatalf("resumed: %+v, %v", done, err)
	}
	if _, err := g.r.Work(ctx, g.tenant, run.ID, time.Time{}); !errors.Is(err, ErrRetentionRunEnded) {
		t.Fatalf("working an ended run: %v", err)
	}
	if _, err := g.r.Fail(ctx, g.tenant, run.ID, "x"); !errors.Is(err, ErrRetentionRunEnded) {
		t.Fatalf("failing an ended run: %v", err)
	}

	next := g.queue(g.tenant)
	failed, err := g.r.Fail(ctx, g.tenant, next.ID, "the job failed")
	if err != nil || next.ID == run.ID || failed.Status != RetentionFailed || failed.Error == nil || *failed.Error != "the job failed" {
		t.Fatalf("failed run %+v, %v", failed, err)
	}
	if ran := g.audited("retention.ran"); len(ran) != 2 || ran[1].Details["status"] != "failed" {
		t.Fatalf("retention.ran entries %+v", ran)
	}
}

// An agreement terminated with on_end delete has the hub erase the
// learners the tenant had then, once its copy retention has passed, and
// only then; those erased before are not erased again.
func TestRetentionErasesTheLearnersOfAnAgreementEndedForDeletion(t *testing.T) {
	g := newRetentionRig(t)
	a := g.activate(func(t *Terms) { t.OnEnd, t.CopyRetentionDays = OnEndDelete, 30 })
	second, gone := g.addLearner(), g.addLearner()
	if err := g.learners.Erase(context.Background(), g.admin, g.tenant, gone); err != nil {
		t.Fatal(err)
	}
	a = g.terminate(a)
	time.Sleep(5 * time.Millisecond)
	later := g.addLearner() // arrived after the agreement ended
	g.decided(g.tenant, g.learner, 1, time.Now(), &a)

	if run := g.run(g.tenant, a.EndedAt.Add(29*day)); run.LearnersErased != 0 {
		t.Fatalf("before the retention ran out: %+v", run)
	}
	if got := g.erased(g.learner, second, later); slices.Contains(got, true) {
		t.Fatalf("erased before the retention ran out: %v", got)
	}
	run := g.run(g.tenant, a.EndedAt.Add(30*day+time.Minute))
	if run.LearnersErased != 2 {
		t.Fatalf("after the retention: %+v, want 2 erased", run)
	}
	if got := g.erased(g.learner, second, gone, later); !slices.Equal(got, []bool{true, true, true, false}) {
		t.Fatalf("erased %v, want the two learners of the agreement (and the one erased before)", got)
	}
	erasures := g.audited("learner.erased")
	if len(erasures) != 3 || erasures[1].ActorType != audit.ActorSystem || erasures[1].ActorID != "retention" {
		t.Fatalf("learner.erased entries %+v", erasures)
	}
	// The record of what was disclosed stays, naming no one.
	var named int
	g.inTenant(func(tx *sqlx.Tx) error {
		return tx.Get(&named, `SELECT count(*) FROM disclosures WHERE user_id IS NOT NULL`)
	})
	if named != 0 || g.count() != 1 {
		t.Fatalf("disclosures: %d of %d name a learner", named, g.count())
	}
	if again := g.run(g.tenant, a.EndedAt.Add(31*day)); again.LearnersErased != 0 {
		t.Fatalf("a second run: %+v", again)
	}
}

func TestRetentionErasesNoOneUnlessTheNewestVersionEndedForDeletion(t *testing.T) {
	for name, tc := range map[string]struct {
		setup func(g *retentionRig)
	}{
		"a newer version is active": {func(g *retentionRig) {
			g.terminate(g.activate(func(t *Terms) { t.OnEnd = OnEndDelete }))
			g.activate(nil)
		}},
		"superseded, not terminated": {func(g *retentionRig) {
			g.activate(func(t *Terms) { t.OnEnd = OnEndDelete })
			g.activate(func(t *Terms) { t.OnEnd = OnEndReturn })
		}},
		"terminated with return": {func(g *retentionRig) {
			g.terminate(g.activate(func(t *Terms) { t.OnEnd = OnEndReturn }))
		}},
		"an older version ended for deletion, the newest with return": {func(g *retentionRig) {
			g.terminate(g.activate(func(t *Terms) { t.OnEnd = OnEndDelete }))
			g.terminate(g.activate(func(t *Terms) { t.OnEnd = OnEndReturn }))
		}},
	} {
		t.Run(name, func(t *testing.T) {
			g := newRetentionRig(t)
			tc.setup(g)
			// Past any retention an agreement may set.
			if run := g.run(g.tenant, time.Now().Add((MaxRetentionDays+1)*day)); run.LearnersErased != 0 {
				t.Fatalf("run %+v", run)
			}
			if got := g.erased(g.learner); got[0] {
				t.Fatal("the learner was erased")
			}
		})
	}
}
