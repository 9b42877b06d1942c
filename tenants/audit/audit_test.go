package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/tenants/audit"
)

var (
	quiet       = slog.New(slog.NewTextHandler(io.Discard, nil))
	testKeys, _ = audit.NewKeyring(bytes.Repeat([]byte{7}, 32))
)

type fixture struct {
	db    *sqlx.DB
	owner *sqlx.DB
	super *sqlx.DB
	log   *audit.Log
}

func newFixture(t *testing.T) fixture {
	d := pgtest.New(t)
	db, err := pg.Open(context.Background(), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return fixture{db: db, owner: pgtest.Connect(t, d.OwnerURL), super: pgtest.Superuser(t, d), log: audit.NewLog(db, testKeys, quiet)}
}

func (f fixture) tenant(t *testing.T, slug string) *uuid.UUID {
	t.Helper()
	id := uuid.New()
	err := pg.InTenant(context.Background(), f.db, id, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO tenants (id, slug, display_name, kind) VALUES ($1, $2, $2, 'employer')`, id, slug)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return &id
}

func (f fixture) record(t *testing.T, tenant *uuid.UUID, action string) {
	t.Helper()
	err := f.log.Record(context.Background(), tenant, audit.Operator("req-"+action),
		audit.Event{Action: action, TargetType: "tenant", TargetID: "x", Details: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
}

func (f fixture) verify(t *testing.T, tenant *uuid.UUID) audit.Verification {
	t.Helper()
	v, err := f.log.Verify(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f fixture) entries(t *testing.T, tenant *uuid.UUID) []audit.Entry {
	t.Helper()
	es, _, err := f.log.List(context.Background(), tenant, audit.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestChainVerifies(t *testing.T) {
	f := newFixture(t)
	a := f.tenant(t, "a")
	for _, action := range []string{"tenant.created", "api_key.created", "api_key.revoked"} {
		f.record(t, a, action)
	}
	v := f.verify(t, a)
	if !v.Valid || v.Checked != 3 || v.Broken != nil {
		t.Fatalf("verify = %+v, want 3 valid entries", v)
	}
}

func TestVerifyNamesTamperedEntry(t *testing.T) {
	cases := map[string]struct {
		tamper     string // SQL run by hand as superuser; $1 is the target id
		wantReason string
	}{
		"altered action":   {`UPDATE audit_log SET action = 'nothing.happened' WHERE id = $1`, "altered"},
		"altered details":  {`UPDATE audit_log SET details = '{"k":"w"}' WHERE id = $1`, "altered"},
		"altered time":     {`UPDATE audit_log SET at = at + interval '1 second' WHERE id = $1`, "altered"},
		"rehashed link":    {`UPDATE audit_log SET prev_hash = '\x00' WHERE id = $1`, "link"},
		"entry removed":    {`DELETE FROM audit_log WHERE seq = (SELECT seq - 1 FROM audit_log WHERE id = $1) AND tenant_id = (SELECT tenant_id FROM audit_log WHERE id = $1)`, "gap"},
		"non-string value": {`UPDATE audit_log SET details = '{"k":1}' WHERE id = $1`, "details"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			a := f.tenant(t, "a")
			for i := range 4 {
				f.record(t, a, fmt.Sprintf("event.%d", i))
			}
			target := f.entries(t, a)[1] // newest first: this is seq 3
			if _, err := f.super.Exec(tc.tamper, target.ID); err != nil {
				t.Fatal(err)
			}
			v := f.verify(t, a)
			if v.Valid || v.Broken == nil || v.Broken.ID != target.ID || !strings.Contains(v.Broken.Reason, tc.wantReason) {
				t.Fatalf("verify = %+v (broken %+v), want entry %s named with %q", v, v.Broken, target.ID, tc.wantReason)
			}
		})
	}
}

// TestVerifyDetectsWhatDatabaseAccessAloneCanDo: someone who can write the
// database but does not hold HUB_SECRET_KEY removes the newest entries or
// rebuilds the chain; the keyed hashes and the signed checkpoint catch it.
func TestVerifyDetectsWhatDatabaseAccessAloneCanDo(t *testing.T) {
	evilKeys, _ := audit.NewKeyring(bytes.Repeat([]byte{8}, 32))
	cases := map[string]struct {
		tamper     func(f fixture, a *uuid.UUID)
		wantReason string
	}{
		"newest entries removed": {func(f fixture, a *uuid.UUID) {
			f.super.MustExec(`DELETE FROM audit_log WHERE tenant_id = $1 AND seq >= 3`, a)
		}, "entries 3 to 4 were removed"},
		"checkpoint removed": {func(f fixture, a *uuid.UUID) {
			f.super.MustExec(`DELETE FROM audit_checkpoints WHERE tenant_id = $1`, a)
		}, "checkpoint is missing"},
		"checkpoint moved back with the newest entries": {func(f fixture, a *uuid.UUID) {
			f.super.MustExec(`DELETE FROM audit_log WHERE tenant_id = $1 AND seq = 4`, a)
			f.super.MustExec(`UPDATE audit_checkpoints SET seq = 3, hash = (SELECT hash FROM audit_log WHERE tenant_id = $1 AND seq = 3)
				WHERE tenant_id = $1`, a)
		}, "signature is invalid"},
		"chain rebuilt under another key": {func(f fixture, a *uuid.UUID) {
			rebuild(t, f, a, evilKeys)
		}, "which this hub does not hold"},
		"chain rebuilt claiming the hub's key": {func(f fixture, a *uuid.UUID) {
			rebuild(t, f, a, evilKeys)
			f.super.MustExec(`UPDATE audit_log SET key_id = $2 WHERE tenant_id = $1`, a, testKeys.CurrentID())
		}, "altered"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			a := f.tenant(t, "a")
			for i := range 4 {
				f.record(t, a, fmt.Sprintf("event.%d", i))
			}
			if v := f.verify(t, a); !v.Valid || v.Checkpoint == nil || v.Checkpoint.Seq != 4 {
				t.Fatalf("before tampering: %+v", v)
			}
			tc.tamper(f, a)
			v := f.verify(t, a)
			if v.Valid || v.Broken == nil || !strings.Contains(v.Broken.Reason, tc.wantReason) {
				t.Fatalf("verify = %+v (broken %+v), want %q", v, v.Broken, tc.wantReason)
			}
		})
	}
}

// rebuild replaces a's chain and checkpoint with a new one of three
// entries written under keys, as someone with database access would.
func rebuild(t *testing.T, f fixture, a *uuid.UUID, keys *audit.Keyring) {
	t.Helper()
	f.super.MustExec(`DELETE FROM audit_log WHERE tenant_id = $1`, a)
	f.super.MustExec(`DELETE FROM audit_checkpoints WHERE tenant_id = $1`, a)
	forged := audit.NewLog(f.super, keys, quiet)
	for i := range 3 {
		err := forged.Record(context.Background(), a, audit.Operator("forged"), audit.Event{Action: fmt.Sprintf("forged.%d", i)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestApplicationCannotRewriteHistory(t *testing.T) {
	f := newFixture(t)
	a := f.tenant(t, "a")
	f.record(t, a, "tenant.created")
	for name, stmt := range map[string]string{
		"update":   `UPDATE audit_log SET action = 'x'`,
		"delete":   `DELETE FROM audit_log`,
		"truncate": `TRUNCATE audit_log`,
	} {
		t.Run(name+" by the application role", func(t *testing.T) {
			err := pg.InTenant(context.Background(), f.db, *a, func(tx *sqlx.Tx) error {
				_, err := tx.Exec(stmt)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Fatalf("err = %v, want permission denied", err)
			}
		})
		// The owner holds every privilege; the trigger still refuses it,
		// even with a temporary table named like the catalog it reads.
		t.Run(name+" by the owner", func(t *testing.T) {
			if _, err := f.owner.Exec(stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("err = %v, want append-only refusal", err)
			}
			tx := f.owner.MustBegin()
			defer tx.Rollback()
			tx.MustExec(`CREATE TEMP TABLE pg_roles AS SELECT current_user::name AS rolname, true AS rolsuper`)
			tx.MustExec(`SET LOCAL search_path = pg_temp, public`)
			if _, err := tx.Exec(stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("with a forged pg_roles: err = %v, want append-only refusal", err)
			}
		})
	}
	if v := f.verify(t, a); !v.Valid || v.Checked != 1 {
		t.Fatalf("after refused rewrites verify = %+v", v)
	}
}

func TestConcurrentAppendsKeepOneChain(t *testing.T) {
	f := newFixture(t)
	a := f.tenant(t, "a")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			errs <- f.log.Record(context.Background(), a, audit.System("test"), audit.Event{Action: fmt.Sprintf("event.%d", i)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if v := f.verify(t, a); !v.Valid || v.Checked != 20 {
		t.Fatalf("verify after concurrent appends = %+v (%+v)", v, v.Broken)
	}
}

func TestChainsAreSeparate(t *testing.T) {
	f := newFixture(t)
	a, b := f.tenant(t, "a"), f.tenant(t, "b")
	f.record(t, a, "a.one")
	f.record(t, b, "b.one")
	f.record(t, nil, "auth.failed")
	for name, tc := range map[string]struct {
		tenant *uuid.UUID
		action string
	}{"tenant a": {a, "a.one"}, "tenant b": {b, "b.one"}, "operator": {nil, "auth.failed"}} {
		es := f.entries(t, tc.tenant)
		if len(es) != 1 || es[0].Action != tc.action || es[0].Seq != 1 {
			t.Errorf("%s chain = %+v, want only %s as entry 1", name, es, tc.action)
		}
	}
}

func TestListFiltersAndPages(t *testing.T) {
	f := newFixture(t)
	a := f.tenant(t, "a")
	start := time.Now()
	for _, action := range []string{"api_key.created", "tenant.updated", "api_key.created", "api_key.revoked", "tenant.suspended"} {
		f.record(t, a, action)
	}
	ctx := context.Background()
	got := func(es []audit.Entry) (actions []string) {
		for _, e := range es {
			actions = append(actions, fmt.Sprintf("%d:%s", e.Seq, e.Action))
		}
		return actions
	}
	tests := map[string]struct {
		filter audit.Filter
		want   string
	}{
		"exact action":  {audit.Filter{Action: "api_key.created", Limit: 10}, "[3:api_key.created 1:api_key.created]"},
		"action prefix": {audit.Filter{Action: "api_key.", Limit: 10}, "[4:api_key.revoked 3:api_key.created 1:api_key.created]"},
		"first page":    {audit.Filter{Limit: 2}, "[5:tenant.suspended 4:api_key.revoked]"},
		"next page":     {audit.Filter{Limit: 2, Before: 4}, "[3:api_key.created 2:tenant.updated]"},
		"future since":  {audit.Filter{Since: time.Now().Add(time.Hour), Limit: 10}, "[]"},
		"until start":   {audit.Filter{Until: start.Add(-time.Second), Limit: 10}, "[]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			es, _, err := f.log.List(ctx, a, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if g := fmt.Sprint(got(es)); g != tc.want {
				t.Fatalf("got %s, want %s", g, tc.want)
			}
		})
	}
	_, next, _ := f.log.List(ctx, a, audit.Filter{Limit: 2})
	if next != 4 {
		t.Fatalf("next cursor = %d, want 4", next)
	}
	if _, next, _ := f.log.List(ctx, a, audit.Filter{Limit: 5}); next != 0 {
		t.Fatalf("cursor on the last page = %d, want 0", next)
	}
}

// TestVerifyWhileAppending: appends committing while a verify runs never
// make it report tampering.
func TestVerifyWhileAppending(t *testing.T) {
	f := newFixture(t)
	a := f.tenant(t, "a")
	f.record(t, a, "first")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f.record(t, a, fmt.Sprintf("event.%d", i))
		}
	}()
	for range 100 {
		if v := f.verify(t, a); !v.Valid {
			close(stop)
			<-done
			t.Fatalf("verify during appends: %+v (%+v)", v, v.Broken)
		}
	}
	close(stop)
	<-done
}

// TestVerifyInPages: a chain longer than a page is checked page by page,
// with every kind of fault still found, including on a page boundary.
func TestVerifyInPages(t *testing.T) {
	defer audit.SetVerifyPage(3)()
	cases := map[string]struct {
		tamper string // $1 the tenant
		want   string
	}{
		"intact":                 {``, ""},
		"entry on a boundary":    {`UPDATE audit_log SET action = 'x' WHERE tenant_id = $1 AND seq = 6`, "altered"},
		"entry inside a page":    {`UPDATE audit_log SET action = 'x' WHERE tenant_id = $1 AND seq = 8`, "altered"},
		"newest entries removed": {`DELETE FROM audit_log WHERE tenant_id = $1 AND seq > 9`, "removed"},
		"last page removed":      {`DELETE FROM audit_log WHERE tenant_id = $1 AND seq > 7`, "removed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			a := f.tenant(t, "a")
			for i := range 11 {
				f.record(t, a, fmt.Sprintf("event.%d", i))
			}
			if tc.tamper != "" {
				f.super.MustExec(tc.tamper, a)
			}
			v := f.verify(t, a)
			if tc.want == "" {
				if !v.Valid || v.Checked != 11 {
					t.Fatalf("verify = %+v", v)
				}
				return
			}
			if v.Valid || !strings.Contains(v.Broken.Reason, tc.want) {
				t.Fatalf("verify = %+v (%+v), want %q", v, v.Broken, tc.want)
			}
		})
	}
}
