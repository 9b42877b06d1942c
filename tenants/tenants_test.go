package tenants_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	op    = audit.Operator("req-1")
)

func newStore(t *testing.T) *tenants.Store {
	s, _ := newStoreAndLog(t)
	return s
}

func newStoreAndLog(t *testing.T) (*tenants.Store, *audit.Log) {
	db := pgtest.Open(t)
	keys, _ := audit.NewKeyring(make([]byte, 32))
	return tenants.NewStore(db, keys, quiet), audit.NewLog(db, keys, quiet)
}

func mustTenant(t *testing.T, s *tenants.Store, slug string) tenants.Tenant {
	t.Helper()
	tn, err := s.Create(ctx, op, tenants.NewTenant{Slug: slug, DisplayName: "Tenant " + slug, Kind: tenants.Institution})
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func mustKey(t *testing.T, s *tenants.Store, tenant uuid.UUID, scopes ...tenants.Scope) (tenants.Key, string) {
	t.Helper()
	k, token, err := s.CreateKey(ctx, op, tenant, tenants.NewKey{Name: "ci", Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return k, token
}

func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	if !apperr.Is(err, code) {
		t.Fatalf("err = %v, want %s", err, code)
	}
}

func TestCreateValidates(t *testing.T) {
	s := newStore(t)
	cases := map[string]struct {
		in     tenants.NewTenant
		fields []string
	}{
		"uppercase slug":    {tenants.NewTenant{Slug: "Uni", DisplayName: "U", Kind: tenants.Institution}, []string{"slug"}},
		"slug with slash":   {tenants.NewTenant{Slug: "a/b", DisplayName: "U", Kind: tenants.Institution}, []string{"slug"}},
		"trailing hyphen":   {tenants.NewTenant{Slug: "uni-", DisplayName: "U", Kind: tenants.Institution}, []string{"slug"}},
		"blank name":        {tenants.NewTenant{Slug: "uni", DisplayName: "  ", Kind: tenants.Institution}, []string{"display_name"}},
		"unknown kind":      {tenants.NewTenant{Slug: "uni", DisplayName: "U", Kind: "school"}, []string{"kind"}},
		"everything wrong":  {tenants.NewTenant{}, []string{"slug", "display_name", "kind"}},
		"slug of 64 chars":  {tenants.NewTenant{Slug: strings.Repeat("a", 64), DisplayName: "U", Kind: tenants.Employer}, []string{"slug"}},
		"name of 201 chars": {tenants.NewTenant{Slug: "uni", DisplayName: strings.Repeat("é", 201), Kind: tenants.Employer}, []string{"display_name"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.Create(ctx, op, tc.in)
			var e *apperr.Error
			if !errors.As(err, &e) || e.Code != apperr.Invalid {
				t.Fatalf("err = %v, want Invalid", err)
			}
			var got []string
			for _, f := range e.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields = %v, want %v", got, tc.fields)
			}
		})
	}
	if ts, _, _ := s.List(ctx, pg.Page{Limit: 10}); len(ts) != 0 {
		t.Fatalf("rejected creations left %d tenants", len(ts))
	}
}

func TestCreateDuplicateSlugConflicts(t *testing.T) {
	s := newStore(t)
	mustTenant(t, s, "uni")
	_, err := s.Create(ctx, op, tenants.NewTenant{Slug: "uni", DisplayName: "Again", Kind: tenants.Employer})
	wantCode(t, err, apperr.Conflict)
}

func TestListPages(t *testing.T) {
	s := newStore(t)
	for _, slug := range []string{"a", "b", "c"} {
		mustTenant(t, s, slug)
	}
	first, next, err := s.List(ctx, pg.Page{Limit: 2})
	if err != nil || len(first) != 2 || next == nil {
		t.Fatalf("first page = %d tenants, next %v, err %v", len(first), next, err)
	}
	second, last, err := s.List(ctx, pg.Page{Limit: 2, After: next})
	if err != nil || len(second) != 1 || last != nil || second[0].Slug != "c" {
		t.Fatalf("second page = %+v, next %v, err %v", second, last, err)
	}
}

func TestUpdateAndSuspend(t *testing.T) {
	s, log := newStoreAndLog(t)
	tn := mustTenant(t, s, "uni")
	name := "University of Somewhere"
	got, err := s.Update(ctx, op, tn.ID, tenants.Patch{DisplayName: &name})
	if err != nil || got.DisplayName != name || got.Slug != "uni" {
		t.Fatalf("Update = %+v, %v", got, err)
	}
	blank := ""
	_, err = s.Update(ctx, op, tn.ID, tenants.Patch{DisplayName: &blank})
	wantCode(t, err, apperr.Invalid)

	got, err = s.SetStatus(ctx, op, tn.ID, tenants.Suspended)
	if err != nil || got.Status != tenants.Suspended {
		t.Fatalf("SetStatus = %+v, %v", got, err)
	}
	_, err = s.SetStatus(ctx, op, uuid.New(), tenants.Suspended)
	wantCode(t, err, apperr.NotFound)

	entries, _, _ := log.List(ctx, &tn.ID, audit.Filter{Limit: 10})
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, " ") != "tenant.suspended tenant.updated tenant.created" {
		t.Fatalf("audit actions = %v", actions)
	}
}

func TestAuthenticate(t *testing.T) {
	s := newStore(t)
	tn := mustTenant(t, s, "uni")
	key, token := mustKey(t, s, tn.ID, tenants.ScopeRead)

	p, err := s.Authenticate(ctx, token)
	if err != nil || p.Key.ID != key.ID || p.Tenant.ID != tn.ID {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	if !strings.HasPrefix(token, key.Prefix+"_") || !strings.HasPrefix(key.Prefix, "hubk_") {
		t.Fatalf("token %q does not start with its prefix %q", token, key.Prefix)
	}
	if p.Key.Allows(tenants.ScopeWrite) || !p.Key.Allows(tenants.ScopeRead) {
		t.Fatal("a read key's scopes are wrong")
	}

	cases := map[string]struct {
		token  func() string
		reason string
		code   apperr.Code
	}{
		"garbage":                    {func() string { return "not-a-token" }, "unknown", apperr.Unauthorized},
		"unknown prefix":             {func() string { return "hubk_aaaaaaaaaa_" + strings.Repeat("b", 52) }, "unknown", apperr.Unauthorized},
		"right prefix, wrong secret": {func() string { return key.Prefix + "_" + strings.Repeat("b", 52) }, "unknown", apperr.Unauthorized},
		"revoked": {func() string {
			_, tok := mustKey(t, s, tn.ID, tenants.ScopeRead)
			p, _ := s.Authenticate(ctx, tok)
			if _, err := s.RevokeKey(ctx, op, tn.ID, p.Key.ID); err != nil {
				t.Fatal(err)
			}
			return tok
		}, "revoked", apperr.Unauthorized},
		"expired": {func() string {
			_, tok, _ := s.CreateKey(ctx, op, tn.ID, tenants.NewKey{Name: "x", Scopes: []tenants.Scope{"read"}, ExpiresAt: ptr(time.Now().Add(time.Minute))})
			s.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
			return tok
		}, "expired", apperr.Unauthorized},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() { s.Now = time.Now }()
			_, err := s.Authenticate(ctx, tc.token())
			var f *tenants.AuthFailure
			if !errors.As(err, &f) || f.Reason != tc.reason || !apperr.Is(err, tc.code) {
				t.Fatalf("err = %v, want %s (%s)", err, tc.reason, tc.code)
			}
		})
	}

	t.Run("suspended tenant", func(t *testing.T) {
		if _, err := s.SetStatus(ctx, op, tn.ID, tenants.Suspended); err != nil {
			t.Fatal(err)
		}
		_, err := s.Authenticate(ctx, token)
		wantCode(t, err, apperr.Forbidden)
		if _, err := s.SetStatus(ctx, op, tn.ID, tenants.Active); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, token); err != nil {
			t.Fatalf("after reactivation: %v", err)
		}
	})
}

func TestCreateKeyValidates(t *testing.T) {
	s := newStore(t)
	tn := mustTenant(t, s, "uni")
	cases := map[string]tenants.NewKey{
		"no name":       {Scopes: []tenants.Scope{"read"}},
		"no scopes":     {Name: "k"},
		"unknown scope": {Name: "k", Scopes: []tenants.Scope{"admin"}},
		"expired":       {Name: "k", Scopes: []tenants.Scope{"read"}, ExpiresAt: ptr(time.Now().Add(-time.Hour))},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := s.CreateKey(ctx, op, tn.ID, in)
			wantCode(t, err, apperr.Invalid)
		})
	}
	if ks, _, _ := s.ListKeys(ctx, tn.ID, pg.Page{Limit: 10}); len(ks) != 0 {
		t.Fatalf("rejected keys left %d rows", len(ks))
	}
}

// TestTwoTenantIsolation proves, store method by store method, that calls
// made for tenant t2 cannot read, change or revoke tenant t1's objects.
func TestTwoTenantIsolation(t *testing.T) {
	s := newStore(t)
	t1, t2 := mustTenant(t, s, "t1"), mustTenant(t, s, "t2")
	k1, _ := mustKey(t, s, t1.ID, tenants.ScopeRead)

	checks := map[string]func() error{
		"GetKey":    func() error { _, err := s.GetKey(ctx, t2.ID, k1.ID); return err },
		"RevokeKey": func() error { _, err := s.RevokeKey(ctx, op, t2.ID, k1.ID); return err },
	}
	for name, call := range checks {
		t.Run(name, func(t *testing.T) { wantCode(t, call(), apperr.NotFound) })
	}
	if ks, _, _ := s.ListKeys(ctx, t2.ID, pg.Page{Limit: 10}); len(ks) != 0 {
		t.Fatalf("t2 lists %d keys, want none of t1's", len(ks))
	}
	if got, _ := s.GetKey(ctx, t1.ID, k1.ID); got.RevokedAt != nil {
		t.Fatal("t2's revoke reached t1's key")
	}
}

func ptr[T any](v T) *T { return &v }
