package api_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
)

type learnerConsent struct {
	Agreement *struct {
		Version int    `json:"version"`
		Consent string `json:"consent"`
	} `json:"agreement"`
	Current *struct {
		Answer           string `json:"answer"`
		AgreementVersion int    `json:"agreement_version"`
		Via              string `json:"via"`
	} `json:"current"`
	MustAsk    bool `json:"must_ask"`
	MustNotify bool `json:"must_notify"`
	History    []struct {
		Answer string `json:"answer"`
	} `json:"history"`
}

// newLearner makes a hub user of the tenant slug, as a launch would.
func (h *hub) newLearner(slug string) string {
	h.t.Helper()
	var tenant uuid.UUID
	if err := h.db.Get(&tenant, `SELECT id FROM hub_tenant_by_slug($1)`, slug); err != nil {
		h.t.Fatal(err)
	}
	id := uuid.New()
	err := pg.InTenant(context.Background(), h.db, tenant, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO users (id, tenant_id, name, created_at, updated_at) VALUES ($1, $2, 'Ada', now(), now())`, id, tenant)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return id.String()
}

func (h *hub) consent(key, user string) learnerConsent {
	h.t.Helper()
	var lc learnerConsent
	h.expect(h.do("GET", "/api/v1/tenants/uni/learners/"+user+"/consent", key, nil), 200).json(h.t, &lc)
	return lc
}

func (h *hub) activate(key string, overrides map[string]any) agreement {
	h.t.Helper()
	a := h.createAgreement(key, overrides)
	h.expect(h.do("POST", "/api/v1/tenants/uni/agreements/"+a.ID+"/activate", key, signatures), 200)
	return a
}

func TestConsentFollowsTheActiveAgreement(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "employer")
	_, key := h.createKey("uni", "write")
	user := h.newLearner("uni")
	path := "/api/v1/tenants/uni/learners/" + user + "/consent"

	if lc := h.consent(key, user); lc.Agreement != nil || lc.MustAsk || lc.Current != nil {
		t.Fatalf("with no agreement: %+v", lc)
	}
	h.problem(h.do("PUT", path, key, map[string]any{"answer": "granted"}), 409, "conflict")

	h.activate(key, map[string]any{"consent": "opt_in"})
	if lc := h.consent(key, user); lc.Agreement == nil || lc.Agreement.Version != 1 || !lc.MustAsk {
		t.Fatalf("opt-in, unanswered: %+v", lc)
	}
	var lc learnerConsent
	h.expect(h.do("PUT", path, key, map[string]any{"answer": "granted"}), 200).json(t, &lc)
	if lc.MustAsk || lc.Current == nil || lc.Current.Answer != "granted" || lc.Current.AgreementVersion != 1 || lc.Current.Via != "api" {
		t.Fatalf("after granting: %+v", lc)
	}

	// A new version that shares no more: the grant carries over.
	h.activate(key, map[string]any{"consent": "opt_in"})
	if lc := h.consent(key, user); lc.MustAsk || lc.Agreement.Version != 2 {
		t.Fatalf("a version that does not widen: %+v", lc)
	}
	// One that shares scores too: asked again.
	h.activate(key, map[string]any{"consent": "opt_in", "categories": []string{"completion", "scores"}})
	if lc := h.consent(key, user); !lc.MustAsk || lc.Agreement.Version != 3 {
		t.Fatalf("a version that widens: %+v", lc)
	}
	h.expect(h.do("PUT", path, key, map[string]any{"answer": "withdrawn"}), 200).json(t, &lc)
	if lc.MustAsk || lc.Current.Answer != "withdrawn" || len(lc.History) != 2 || lc.History[1].Answer != "granted" {
		t.Fatalf("after withdrawing: %+v", lc)
	}

	var audited auditPage
	h.expect(h.do("GET", "/api/v1/tenants/uni/audit?action=consent.changed", key, nil), 200).json(t, &audited)
	if len(audited.Items) != 2 || audited.Items[0].TargetID != user || audited.Items[0].Details["answer"] != "withdrawn" ||
		audited.Items[0].Details["agreement_version"] != "3" {
		t.Fatalf("audited %+v", audited.Items)
	}
}

func TestConsentRefusals(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "employer")
	h.createTenant("other", "employer")
	_, key := h.createKey("uni", "write")
	_, reader := h.createKey("uni", "read")
	_, otherKey := h.createKey("other", "write")
	h.activate(key, map[string]any{"consent": "opt_in"})
	user := h.newLearner("uni")
	path := "/api/v1/tenants/uni/learners/" + user + "/consent"
	for _, answer := range []any{"maybe", "", 1, nil} {
		h.problem(h.do("PUT", path, key, map[string]any{"answer": answer}), 400, "validation")
	}
	h.problem(h.do("PUT", path, reader, map[string]any{"answer": "granted"}), 403, "forbidden")
	for _, p := range []string{"/api/v1/tenants/uni/learners/" + uuid.NewString() + "/consent", "/api/v1/tenants/uni/learners/nobody/consent"} {
		h.problem(h.do("GET", p, key, nil), 404, "not-found")
		h.problem(h.do("PUT", p, key, map[string]any{"answer": "granted"}), 404, "not-found")
	}
	otherPath := "/api/v1/tenants/other/learners/" + user + "/consent"
	h.problem(h.do("GET", otherPath, otherKey, nil), 404, "not-found")
	h.problem(h.do("PUT", otherPath, otherKey, map[string]any{"answer": "granted"}), 404, "not-found")
	if lc := h.consent(key, user); lc.Current != nil || !lc.MustAsk {
		t.Fatalf("refused answers were recorded: %+v", lc)
	}
}
