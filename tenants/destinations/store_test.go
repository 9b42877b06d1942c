package destinations_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
	"github.com/klasterina/hub/tenants/destinations"
)

var admin = audit.Operator("test")

// rig is two tenants in a fresh database, connected as the application
// role, and a store whose clock the test moves.
type rig struct {
	t      *testing.T
	db     *sqlx.DB
	store  *destinations.Store
	chain  *audit.Keyring
	t1, t2 uuid.UUID
	now    time.Time
}

func newRig(t *testing.T) *rig {
	key := bytes.Repeat([]byte{7}, 32)
	sealer, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := audit.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, db: pgtest.Open(t), chain: chain, t1: uuid.New(), t2: uuid.New(),
		now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	r.store = destinations.NewStore(r.db, chain, sealer, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.store.Now = func() time.Time { return r.now }
	for i, id := range []uuid.UUID{r.t1, r.t2} {
		r.inTenant(id, func(tx *sqlx.Tx) error {
			_, err := tx.Exec(`INSERT INTO tenants (id, slug, display_name, kind) VALUES ($1, $2, 'Employer', 'employer')`,
				id, []string{"one", "two"}[i])
			return err
		})
	}
	return r
}

func (r *rig) inTenant(tenant uuid.UUID, fn func(*sqlx.Tx) error) {
	r.t.Helper()
	if err := pg.InTenant(context.Background(), r.db, tenant, fn); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) webhook(tenant uuid.UUID, name string) destinations.Created {
	r.t.Helper()
	c, err := r.store.Create(context.Background(), admin, tenant, destinations.New{Kind: destinations.KindWebhook, Name: name,
		URL: "https://hr.example/hooks?token=abc", EventTypes: []destinations.EventType{destinations.EventCompletion}})
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func (r *rig) lrs(tenant uuid.UUID, name string) destinations.Created {
	r.t.Helper()
	c, err := r.store.Create(context.Background(), admin, tenant, destinations.New{Kind: destinations.KindXAPI, Name: name,
		URL: "https://lrs.example/xapi/", EventTypes: []destinations.EventType{destinations.EventScores},
		Username: "lrs-key-0001", Password: "lrs-password-0001"})
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// column reads one sealed column of a destination as stored.
func (r *rig) column(tenant, id uuid.UUID, col string) []byte {
	r.t.Helper()
	var b []byte
	r.inTenant(tenant, func(tx *sqlx.Tx) error {
		return tx.Get(&b, `SELECT `+col+` FROM destinations WHERE id = $1`, id)
	})
	return b
}

func TestEventTypesAreTheAgreementCategories(t *testing.T) {
	var got []string
	for _, e := range destinations.EventTypes {
		got = append(got, string(e))
	}
	var want []string
	for _, c := range agreements.Categories {
		want = append(want, string(c))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("event types %v, agreement categories %v", got, want)
	}
}

func TestSecretsAreSealedAtRest(t *testing.T) {
	r := newRig(t)
	hook := r.webhook(r.t1, "HR")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(hook.Secret, "whsec_"))
	if !strings.HasPrefix(hook.Secret, "whsec_") || err != nil || len(raw) != destinations.SecretBytes {
		t.Fatalf("secret %q: want whsec_ and the base64 of %d bytes (%v)", hook.Secret, destinations.SecretBytes, err)
	}
	stored := r.column(r.t1, hook.ID, "secret")
	if bytes.Contains(stored, []byte(hook.Secret)) || bytes.Contains(stored, raw) || bytes.Contains(stored, []byte(hook.Secret[6:])) {
		t.Fatal("the secret column holds the secret in the clear")
	}
	if _, err := secrets.KeyIDOf(stored); err != nil {
		t.Fatalf("the secret column is not a sealed value: %v", err)
	}
	_, creds, err := r.store.Credentials(context.Background(), r.t1, hook.ID)
	if err != nil || !slices.Equal(creds.Secrets, []string{hook.Secret}) {
		t.Fatalf("credentials %v, %v; want the secret shown at creation", creds.Secrets, err)
	}

	lrs := r.lrs(r.t1, "LRS")
	if lrs.Secret != "" {
		t.Fatal("an xapi destination was given a webhook secret")
	}
	for col, plain := range map[string]string{"lrs_username": "lrs-key-0001", "lrs_password": "lrs-password-0001"} {
		if b := r.column(r.t1, lrs.ID, col); len(b) == 0 || bytes.Contains(b, []byte(plain)) {
			t.Fatalf("%s is not sealed: %q", col, b)
		}
	}
	_, creds, err = r.store.Credentials(context.Background(), r.t1, lrs.ID)
	if err != nil || creds.Username != "lrs-key-0001" || creds.Password != "lrs-password-0001" || creds.Secrets != nil {
		t.Fatalf("LRS credentials: %v", err)
	}
}

func TestCredentialsPrintRedacted(t *testing.T) {
	c := destinations.Credentials{Secrets: []string{"whsec_c2VjcmV0"}, Username: "u", Password: "hunter2"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "credentials", c)
	for _, s := range []string{c.String(), c.GoString(), logged.String()} {
		if strings.Contains(s, "c2VjcmV0") || strings.Contains(s, "hunter2") {
			t.Fatalf("credentials printed: %s", s)
		}
	}
}

// TestASealedSecretOpensOnlyInItsRow: a sealed value copied into another
// destination's row does not open there.
func TestASealedSecretOpensOnlyInItsRow(t *testing.T) {
	r := newRig(t)
	a, b := r.webhook(r.t1, "A"), r.webhook(r.t1, "B")
	r.inTenant(r.t1, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE destinations SET secret = (SELECT secret FROM destinations WHERE id = $1) WHERE id = $2`, a.ID, b.ID)
		return err
	})
	if _, _, err := r.store.Credentials(context.Background(), r.t1, b.ID); err == nil {
		t.Fatal("a secret sealed for one destination opened in another's row")
	}
}

func TestRotationSignsWithBothUntilFinishedOrExpired(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	hook := r.webhook(r.t1, "HR")
	rotated, err := r.store.RotateSecret(ctx, admin, r.t1, hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Secret == "" || rotated.Secret == hook.Secret || rotated.PreviousSecretExpiresAt == nil ||
		!rotated.PreviousSecretExpiresAt.Equal(r.now.Add(destinations.RotationWindow)) {
		t.Fatalf("rotated %+v", rotated)
	}
	secretsNow := func() []string {
		t.Helper()
		_, c, err := r.store.Credentials(ctx, r.t1, hook.ID)
		if err != nil {
			t.Fatal(err)
		}
		return c.Secrets
	}
	if got := secretsNow(); !slices.Equal(got, []string{rotated.Secret, hook.Secret}) {
		t.Fatalf("during the rotation the secrets are %d, want the new one and then the previous one", len(got))
	}
	if _, err := r.store.RotateSecret(ctx, admin, r.t1, hook.ID); !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("a second rotation during the first: %v, want Conflict", err)
	}

	r.now = r.now.Add(destinations.RotationWindow + time.Second)
	if got := secretsNow(); !slices.Equal(got, []string{rotated.Secret}) {
		t.Fatal("the previous secret still signs after the rotation window")
	}
	if d, err := r.store.Get(ctx, r.t1, hook.ID); err != nil || d.PreviousSecretExpiresAt != nil {
		t.Fatalf("after the window: %+v, %v", d, err)
	}
	if _, err := r.store.FinishRotation(ctx, admin, r.t1, hook.ID); !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("finishing an expired rotation: %v, want Conflict", err)
	}

	third, err := r.store.RotateSecret(ctx, admin, r.t1, hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	finished, err := r.store.FinishRotation(ctx, admin, r.t1, hook.ID)
	if err != nil || finished.PreviousSecretExpiresAt != nil {
		t.Fatalf("finished %+v, %v", finished, err)
	}
	if got := secretsNow(); !slices.Equal(got, []string{third.Secret}) {
		t.Fatal("the previous secret still signs after the rotation was finished")
	}
	if b := r.column(r.t1, hook.ID, "previous_secret"); b != nil {
		t.Fatal("a finished rotation kept the previous secret")
	}

	lrs := r.lrs(r.t1, "LRS")
	if _, err := r.store.RotateSecret(ctx, admin, r.t1, lrs.ID); !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("rotating an xapi destination: %v, want Conflict", err)
	}
}

// TestTheOtherTenantSeesNothing: every method of the store answers
// NotFound for another tenant's destination, lists none of them, and
// row-level security hides them even from a query that names no tenant.
func TestTheOtherTenantSeesNothing(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	hook := r.webhook(r.t1, "HR")
	name := "mine now"
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := r.store.Get(ctx, r.t2, hook.ID); return err }},
		{"credentials", func() error { _, _, err := r.store.Credentials(ctx, r.t2, hook.ID); return err }},
		{"update", func() error {
			_, err := r.store.Update(ctx, admin, r.t2, hook.ID, destinations.Patch{Name: &name})
			return err
		}},
		{"rotate", func() error { _, err := r.store.RotateSecret(ctx, admin, r.t2, hook.ID); return err }},
		{"finish rotation", func() error { _, err := r.store.FinishRotation(ctx, admin, r.t2, hook.ID); return err }},
		{"delete", func() error { return r.store.Delete(ctx, admin, r.t2, hook.ID) }},
	} {
		if err := tc.call(); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("%s of another tenant's destination: %v, want NotFound", tc.name, err)
		}
	}
	list, _, err := r.store.List(ctx, r.t2, "", pg.Page{Limit: 10})
	if err != nil || len(list) != 0 {
		t.Fatalf("the other tenant lists %d destinations (%v)", len(list), err)
	}
	var n int
	r.inTenant(r.t2, func(tx *sqlx.Tx) error { return tx.Get(&n, `SELECT count(*) FROM destinations`) })
	if n != 0 {
		t.Fatalf("row-level security let the other tenant see %d rows", n)
	}
	if d, err := r.store.Get(ctx, r.t1, hook.ID); err != nil || d.Name != "HR" {
		t.Fatalf("the owner's destination after the other's attempts: %+v, %v", d, err)
	}
}

func TestListPagesNewestFirst(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	var ids []uuid.UUID
	for _, name := range []string{"a", "b", "c"} {
		ids = append(ids, r.webhook(r.t1, name).ID)
		r.now = r.now.Add(time.Minute)
	}
	ids = append(ids, r.lrs(r.t1, "d").ID)
	var got []uuid.UUID
	page := pg.Page{Limit: 3}
	for {
		list, next, err := r.store.List(ctx, r.t1, "", page)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			got = append(got, d.ID)
		}
		if next == nil {
			break
		}
		page.After = next
	}
	slices.Reverse(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("paged %v, want %v", got, ids)
	}
	hooks, _, err := r.store.List(ctx, r.t1, destinations.KindXAPI, pg.Page{Limit: 10})
	if err != nil || len(hooks) != 1 || hooks[0].ID != ids[0] {
		t.Fatalf("xapi only: %+v, %v", hooks, err)
	}
}

func TestNamesAreUniqueInATenant(t *testing.T) {
	r := newRig(t)
	r.webhook(r.t1, "HR")
	_, err := r.store.Create(context.Background(), admin, r.t1, destinations.New{Kind: destinations.KindWebhook, Name: "HR",
		URL: "https://other.example/", EventTypes: []destinations.EventType{destinations.EventScores}})
	if !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("a second destination named HR: %v, want Conflict", err)
	}
	r.webhook(r.t2, "HR") // another tenant's may share it
}

// TestDeleteWhileTheActiveAgreementNamesIt: the active agreement must not
// allow a destination that no longer exists.
func TestDeleteWhileTheActiveAgreementNamesIt(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	hook := r.webhook(r.t1, "HR")
	store := agreements.NewStore(r.db, r.chain, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a, err := store.Create(ctx, admin, r.t1, agreements.Terms{EffectiveFrom: r.now.Add(-time.Hour),
		Purposes:   []agreements.Purpose{{Code: agreements.PurposeTrainingRecords}},
		Categories: []agreements.Category{agreements.CategoryCompletion}, Consent: agreements.ConsentNotRequired,
		Destinations:            []agreements.Destination{{Kind: agreements.DestinationWebhook, ID: &hook.ID}},
		DisclosureRetentionDays: 30, CopyRetentionDays: 30, OnEnd: agreements.OnEndDelete})
	if err != nil {
		t.Fatal(err)
	}
	sig := &agreements.Signatory{Name: "A", SignedAt: time.Now().Add(-time.Hour)}
	if _, err := store.Activate(ctx, admin, r.t1, a.ID, agreements.Signatures{Institution: sig, Provider: sig}); err != nil {
		t.Fatal(err)
	}
	if err := r.store.Delete(ctx, admin, r.t1, hook.ID); !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("deleting a destination the active agreement names: %v, want Conflict", err)
	}
	if _, err := store.Terminate(ctx, admin, r.t1, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.store.Delete(ctx, admin, r.t1, hook.ID); err != nil {
		t.Fatalf("deleting after the agreement ended: %v", err)
	}
	if _, err := r.store.Get(ctx, r.t1, hook.ID); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("after deletion: %v, want NotFound", err)
	}
}
