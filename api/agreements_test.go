package api_test

import (
	"maps"
	"strings"
	"sync"
	"testing"
)

type agreement struct {
	ID         string   `json:"id"`
	Version    int      `json:"version"`
	Status     string   `json:"status"`
	Categories []string `json:"categories"`
	Fields     []string `json:"fields"`
	Consent    string   `json:"consent"`
	EndedAt    *string  `json:"ended_at"`
	Activated  *string  `json:"activated_at"`
	Signatory  *struct {
		Name string `json:"name"`
	} `json:"institution_signatory"`
}

// terms are valid agreement terms, changed by the overrides given.
func terms(overrides map[string]any) map[string]any {
	t := map[string]any{
		"effective_from":            "2026-01-01T00:00:00Z",
		"purposes":                  []map[string]any{{"code": "training_records", "description": "Completion of mandatory courses"}},
		"categories":                []string{"completion"},
		"fields":                    []string{"external_id"},
		"destinations":              []map[string]any{{"kind": "lms"}},
		"consent":                   "not_required",
		"disclosure_retention_days": 365, "copy_retention_days": 90, "on_end": "delete",
	}
	maps.Copy(t, overrides)
	return t
}

var signatures = map[string]any{
	"institution_signatory": map[string]any{"name": "Ada Byron", "title": "Registrar", "signed_at": "2026-01-02T10:00:00Z"},
	"provider_signatory":    map[string]any{"name": "Charles Babbage", "title": "Director", "signed_at": "2026-01-02T11:00:00Z"},
}

func (h *hub) createAgreement(key string, overrides map[string]any) agreement {
	h.t.Helper()
	var a agreement
	h.expect(h.do("POST", "/api/v1/tenants/uni/agreements", key, terms(overrides)), 201).json(h.t, &a)
	return a
}

func (h *hub) agreement(key, id string) agreement {
	h.t.Helper()
	var a agreement
	h.expect(h.do("GET", "/api/v1/tenants/uni/agreements/"+id, key, nil), 200).json(h.t, &a)
	return a
}

func TestAgreementLifecycle(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "employer")
	_, key := h.createKey("uni", "write")
	base := "/api/v1/tenants/uni/agreements/"

	v1 := h.createAgreement(key, nil)
	if v1.Version != 1 || v1.Status != "draft" || v1.Activated != nil {
		t.Fatalf("created %+v", v1)
	}
	var edited agreement
	h.expect(h.do("PUT", base+v1.ID, key, terms(map[string]any{"categories": []string{"completion", "scores"}})), 200).json(t, &edited)
	if strings.Join(edited.Categories, ",") != "completion,scores" {
		t.Fatalf("edited draft %+v", edited)
	}
	h.problem(h.do("POST", base+v1.ID+"/activate", key, map[string]any{}), 400, "validation")
	h.problem(h.do("POST", base+v1.ID+"/terminate", key, nil), 409, "conflict")
	var active agreement
	h.expect(h.do("POST", base+v1.ID+"/activate", key, signatures), 200).json(t, &active)
	if active.Status != "active" || active.Activated == nil || active.Signatory == nil || active.Signatory.Name != "Ada Byron" {
		t.Fatalf("activated %+v", active)
	}
	h.problem(h.do("PUT", base+v1.ID, key, terms(nil)), 409, "conflict")
	h.problem(h.do("POST", base+v1.ID+"/activate", key, signatures), 409, "conflict")

	v2 := h.createAgreement(key, map[string]any{"consent": "opt_in"})
	h.expect(h.do("POST", base+v2.ID+"/activate", key, signatures), 200)
	if got := h.agreement(key, v1.ID); got.Status != "superseded" || got.EndedAt == nil {
		t.Fatalf("v1 after v2's activation: %+v", got)
	}
	h.problem(h.do("POST", base+v1.ID+"/terminate", key, nil), 409, "conflict")
	h.expect(h.do("POST", base+v2.ID+"/terminate", key, nil), 200)
	if got := h.agreement(key, v2.ID); got.Status != "terminated" || got.EndedAt == nil {
		t.Fatalf("v2 after its termination: %+v", got)
	}

	var list page[agreement]
	h.expect(h.do("GET", "/api/v1/tenants/uni/agreements", key, nil), 200).json(t, &list)
	if len(list.Items) != 2 || list.Items[0].Version != 2 || list.Items[1].Version != 1 {
		t.Fatalf("list %+v", list.Items)
	}
	h.expect(h.do("GET", "/api/v1/tenants/uni/agreements?status=superseded&limit=1", key, nil), 200).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != v1.ID || list.NextCursor != "" {
		t.Fatalf("superseded %+v", list)
	}

	var audited auditPage
	h.expect(h.do("GET", "/api/v1/tenants/uni/audit", key, nil), 200).json(t, &audited)
	var actions []string
	for _, e := range audited.Items {
		if e.TargetType == "agreement" {
			actions = append(actions, e.Action)
		}
	}
	want := "agreement.terminated agreement.activated agreement.created agreement.activated agreement.updated agreement.created"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("audited %q, want %q", got, want)
	}
}

func TestAgreementTermsAreValidated(t *testing.T) {
	parent := t
	h := newHub(t)
	h.createTenant("uni", "employer")
	_, key := h.createKey("uni", "write")
	for _, tc := range []struct {
		name, field string
		overrides   map[string]any
	}{
		{"unknown category", "categories[0]", map[string]any{"categories": []string{"grades"}}},
		{"a category twice", "categories[1]", map[string]any{"categories": []string{"scores", "scores"}}},
		{"unknown field", "fields[0]", map[string]any{"fields": []string{"phone"}}},
		{"unknown destination kind", "destinations[0].kind", map[string]any{"destinations": []map[string]any{{"kind": "ftp"}}}},
		{"an lms destination with an id", "destinations[0].id",
			map[string]any{"destinations": []map[string]any{{"kind": "lms", "id": "0b0e6f2c-8a7b-4d55-9a53-5f0f2b1c3d4e"}}}},
		{"a webhook without its id", "destinations[0].id", map[string]any{"destinations": []map[string]any{{"kind": "webhook"}}}},
		{"a destination twice", "destinations[1]", map[string]any{"destinations": []map[string]any{{"kind": "lms"}, {"kind": "lms"}}}},
		{"unknown consent rule", "consent", map[string]any{"consent": "maybe"}},
		{"no retention", "disclosure_retention_days", map[string]any{"disclosure_retention_days": 0}},
		{"retention past ten years", "copy_retention_days", map[string]any{"copy_retention_days": 4000}},
		{"unknown end", "on_end", map[string]any{"on_end": "archive"}},
		{"no purpose", "purposes", map[string]any{"purposes": []any{}}},
		{"unknown purpose", "purposes[0].code", map[string]any{"purposes": []map[string]any{{"code": "marketing"}}}},
		{"no start", "effective_from", map[string]any{"effective_from": nil}},
		{"an end before the start", "effective_until", map[string]any{"effective_until": "2025-01-01T00:00:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			defer func() { h.t = parent }()
			p := h.problem(h.do("POST", "/api/v1/tenants/uni/agreements", key, terms(tc.overrides)), 400, "validation")
			found := false
			for _, f := range p.Errors {
				found = found || f.Field == tc.field
			}
			if !found {
				t.Fatalf("fields %+v, want %s", p.Errors, tc.field)
			}
		})
	}
	var list page[agreement]
	h.expect(h.do("GET", "/api/v1/tenants/uni/agreements", key, nil), 200).json(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("refused terms were stored: %+v", list.Items)
	}
	v1 := h.createAgreement(key, nil)
	bad := map[string]any{"institution_signatory": map[string]any{"name": "", "signed_at": "2026-01-02T10:00:00Z"},
		"provider_signatory": map[string]any{"name": "C", "signed_at": "2999-01-01T00:00:00Z"}}
	p := h.problem(h.do("POST", "/api/v1/tenants/uni/agreements/"+v1.ID+"/activate", key, bad), 400, "validation")
	if len(p.Errors) != 2 || h.agreement(key, v1.ID).Status != "draft" {
		t.Fatalf("bad signatures: %+v", p.Errors)
	}
}

// Activations at once: each draft's succeeds in turn, one draft's only
// once, and exactly one version is active at the end.
func TestConcurrentActivationsLeaveOneActive(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "employer")
	_, key := h.createKey("uni", "write")
	var drafts []agreement
	for range 4 {
		drafts = append(drafts, h.createAgreement(key, nil))
	}
	statuses := make([]int, 8)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = h.do("POST", "/api/v1/tenants/uni/agreements/"+drafts[i%4].ID+"/activate", key, signatures).status
		}()
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 409:
			conflict++
		}
	}
	if ok != 4 || conflict != 4 {
		t.Fatalf("statuses %v: want each draft activated once and refused once", statuses)
	}
	var active page[agreement]
	h.expect(h.do("GET", "/api/v1/tenants/uni/agreements?status=active", key, nil), 200).json(t, &active)
	var superseded page[agreement]
	h.expect(h.do("GET", "/api/v1/tenants/uni/agreements?status=superseded", key, nil), 200).json(t, &superseded)
	if len(active.Items) != 1 || len(superseded.Items) != 3 {
		t.Fatalf("%d active, %d superseded", len(active.Items), len(superseded.Items))
	}
}

// Another tenant's key finds nothing: each answer is the one for an
// agreement that does not exist, and A's agreement is unchanged.
func TestAgreementsAreTheTenantsOwn(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "employer")
	h.createTenant("other", "employer")
	_, key := h.createKey("uni", "write")
	_, otherKey := h.createKey("other", "write")
	a := h.createAgreement(key, nil)
	for _, path := range []string{"/api/v1/tenants/other/agreements/" + a.ID, "/api/v1/tenants/other/agreements/00000000-0000-4000-8000-000000000000"} {
		h.problem(h.do("GET", path, otherKey, nil), 404, "not-found")
		h.problem(h.do("PUT", path, otherKey, terms(nil)), 404, "not-found")
		h.problem(h.do("POST", path+"/activate", otherKey, signatures), 404, "not-found")
		h.problem(h.do("POST", path+"/terminate", otherKey, nil), 404, "not-found")
	}
	h.problem(h.do("GET", "/api/v1/tenants/uni/agreements/"+a.ID, otherKey, nil), 404, "not-found")
	if got := h.agreement(key, a.ID); got.Status != "draft" {
		t.Fatalf("A's agreement after B's attempts: %+v", got)
	}
	_, reader := h.createKey("uni", "read")
	h.problem(h.do("POST", "/api/v1/tenants/uni/agreements", reader, terms(nil)), 403, "forbidden")
	h.problem(h.do("POST", "/api/v1/tenants/uni/agreements/"+a.ID+"/activate", reader, signatures), 403, "forbidden")
}
