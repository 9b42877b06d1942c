package tenants_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

func mustChild(t *testing.T, s *tenants.Store, tenant uuid.UUID, parent tenants.Key, expires *time.Time) (tenants.Key, string) {
	t.Helper()
	by := audit.Actor{Type: audit.ActorAPIKey, ID: parent.ID.String()}
	k, token, err := s.CreateChildKey(ctx, by, tenant, parent.ID, tenants.NewKey{Name: "child", Scopes: []tenants.Scope{tenants.ScopeWrite}, ExpiresAt: expires})
	if err != nil {
		t.Fatal(err)
	}
	return k, token
}

func TestChildKeyExpiry(t *testing.T) {
	s := newStore(t)
	tn := mustTenant(t, s, "uni")
	parentExp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Microsecond)
	parent, _, err := s.CreateKey(ctx, op, tn.ID, tenants.NewKey{Name: "p", Scopes: []tenants.Scope{tenants.ScopeWrite}, ExpiresAt: &parentExp})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("none asked: the parent's expiry", func(t *testing.T) {
		k, _ := mustChild(t, s, tn.ID, parent, nil)
		if k.ExpiresAt == nil || !k.ExpiresAt.Equal(parentExp) || k.ParentID == nil || *k.ParentID != parent.ID {
			t.Fatalf("child expires %v with parent %v, want %v and %s", k.ExpiresAt, k.ParentID, parentExp, parent.ID)
		}
	})
	t.Run("earlier asked: kept", func(t *testing.T) {
		earlier := parentExp.Add(-time.Hour)
		if k, _ := mustChild(t, s, tn.ID, parent, &earlier); k.ExpiresAt == nil || !k.ExpiresAt.Equal(earlier) {
			t.Fatalf("child expires %v, want %v", k.ExpiresAt, earlier)
		}
	})
	t.Run("later asked: refused, naming expires_at", func(t *testing.T) {
		later := parentExp.Add(time.Second)
		_, _, err := s.CreateChildKey(ctx, op, tn.ID, parent.ID, tenants.NewKey{Name: "c", Scopes: []tenants.Scope{"read"}, ExpiresAt: &later})
		var e *apperr.Error
		if !errors.As(err, &e) || e.Code != apperr.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != "expires_at" {
			t.Fatalf("err = %v, want Invalid on expires_at", err)
		}
	})
	t.Run("grandchild bound by the chain", func(t *testing.T) {
		earlier := parentExp.Add(-time.Hour)
		child, _ := mustChild(t, s, tn.ID, parent, &earlier)
		_, _, err := s.CreateChildKey(ctx, op, tn.ID, child.ID, tenants.NewKey{Name: "g", Scopes: []tenants.Scope{"read"}, ExpiresAt: &parentExp})
		wantCode(t, err, apperr.Invalid)
	})
	t.Run("the operator's keys may be open-ended", func(t *testing.T) {
		k, _ := mustKey(t, s, tn.ID, tenants.ScopeWrite)
		if k.ExpiresAt != nil || k.ParentID != nil {
			t.Fatalf("operator key expires %v, parent %v", k.ExpiresAt, k.ParentID)
		}
	})
	t.Run("a revoked parent mints nothing", func(t *testing.T) {
		p, _ := mustKey(t, s, tn.ID, tenants.ScopeWrite)
		if _, err := s.RevokeKey(ctx, op, tn.ID, p.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.CreateChildKey(ctx, op, tn.ID, p.ID, tenants.NewKey{Name: "c", Scopes: []tenants.Scope{"read"}})
		wantCode(t, err, apperr.Unauthorized)
	})
	t.Run("another tenant's key is no parent", func(t *testing.T) {
		other := mustTenant(t, s, "other")
		_, _, err := s.CreateChildKey(ctx, op, other.ID, parent.ID, tenants.NewKey{Name: "c", Scopes: []tenants.Scope{"read"}})
		wantCode(t, err, apperr.NotFound)
	})
}

func TestRevocationCascades(t *testing.T) {
	s, log := newStoreAndLog(t)
	tn := mustTenant(t, s, "uni")
	root, rootToken := mustKey(t, s, tn.ID, tenants.ScopeWrite)
	child, childToken := mustChild(t, s, tn.ID, root, nil)
	grandchild, grandToken := mustChild(t, s, tn.ID, child, nil)
	sibling, siblingToken := mustKey(t, s, tn.ID, tenants.ScopeWrite) // the operator's, unrelated
	nephew, nephewToken := mustChild(t, s, tn.ID, sibling, nil)

	if _, err := s.RevokeKey(ctx, op, tn.ID, root.ID); err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"root": rootToken, "child": childToken, "grandchild": grandToken} {
		_, err := s.Authenticate(ctx, token)
		var f *tenants.AuthFailure
		if !errors.As(err, &f) || f.Reason != "revoked" {
			t.Errorf("%s after its ancestor's revocation: %v, want revoked", name, err)
		}
	}
	for name, token := range map[string]string{"the operator's other key": siblingToken, "its child": nephewToken} {
		if _, err := s.Authenticate(ctx, token); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	entries, _, _ := log.List(ctx, &tn.ID, audit.Filter{Action: "api_key.revoked", Limit: 10})
	var targets []string
	for _, e := range entries {
		targets = append(targets, e.TargetID)
		if e.TargetID != root.ID.String() && e.Details["revoked_with"] != root.ID.String() {
			t.Errorf("entry %s does not name the key revoked with it: %v", e.TargetID, e.Details)
		}
	}
	slices.Reverse(targets) // oldest first
	want := []string{root.ID.String(), child.ID.String(), grandchild.ID.String()}
	if !slices.Equal(targets, want) {
		t.Fatalf("audited revocations %v, want %v", targets, want)
	}

	// Revoking again changes and records nothing.
	if _, err := s.RevokeKey(ctx, op, tn.ID, root.ID); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := log.List(ctx, &tn.ID, audit.Filter{Action: "api_key.revoked", Limit: 10}); len(again) != 3 {
		t.Fatalf("a second revocation added entries: %d", len(again))
	}
	if k, _ := s.GetKey(ctx, tn.ID, nephew.ID); k.RevokedAt != nil {
		t.Fatal("an unrelated key was revoked")
	}
}

// TestRevokingAChildSparesItsParent: revocation runs down the tree, never up.
func TestRevokingAChildSparesItsParent(t *testing.T) {
	s := newStore(t)
	tn := mustTenant(t, s, "uni")
	root, rootToken := mustKey(t, s, tn.ID, tenants.ScopeWrite)
	child, _ := mustChild(t, s, tn.ID, root, nil)
	_, grandToken := mustChild(t, s, tn.ID, child, nil)
	if _, err := s.RevokeKey(ctx, op, tn.ID, child.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, rootToken); err != nil {
		t.Fatalf("the parent: %v", err)
	}
	if _, err := s.Authenticate(ctx, grandToken); err == nil {
		t.Fatal("the revoked child's own child still authenticates")
	}
}
