package api_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/agreements"
)

type disclosure struct {
	ID          string  `json:"id"`
	Learner     *string `json:"learner"`
	Destination struct {
		Kind string  `json:"kind"`
		ID   *string `json:"id"`
	} `json:"destination"`
	Category         string    `json:"category"`
	Fields           []string  `json:"fields"`
	RemovedFields    []string  `json:"removed_fields"`
	AgreementVersion *int      `json:"agreement_version"`
	Decision         string    `json:"decision"`
	Reason           string    `json:"reason"`
	RecordType       string    `json:"record_type"`
	DecidedAt        time.Time `json:"decided_at"`
}

// tenantID is the id of the tenant with this slug.
func (h *hub) tenantID(slug string) uuid.UUID {
	h.t.Helper()
	return uuid.MustParse(h.expect(h.do("GET", "/api/v1/tenants/"+slug, adminToken, nil), 200).field(h.t, "id"))
}

// recordDecisions makes the learners users of the tenant and records ds,
// in one transaction as the delivery of records would.
func (h *hub) recordDecisions(tenant uuid.UUID, learners []uuid.UUID, ds []agreements.Disclosure) []agreements.Disclosure {
	h.t.Helper()
	out := make([]agreements.Disclosure, len(ds))
	ctx := context.Background()
	err := pg.InTenant(ctx, h.deps.DB, tenant, func(tx *sqlx.Tx) error {
		for _, l := range learners {
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, tenant_id, created_at, updated_at) VALUES ($1, $2, now(), now())`,
				l, tenant); err != nil {
				return err
			}
		}
		for i, d := range ds {
			var err error
			if out[i], err = agreements.RecordDecision(ctx, tx, tenant, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func decision(learner uuid.UUID, dest agreements.Destination, verdict agreements.Outcome, at time.Time) agreements.Disclosure {
	d := agreements.Disclosure{Learner: &learner, Destination: dest, Category: agreements.CategoryCompletion,
		Fields: []agreements.Field{agreements.FieldName, agreements.FieldExternalID}, Decision: verdict, RecordType: "result", DecidedAt: at}
	switch verdict {
	case "share_minimized":
		d.Fields, d.RemovedFields, d.Reason = []agreements.Field{agreements.FieldExternalID}, []agreements.Field{agreements.FieldName}, "field_not_allowed"
	case "withhold":
		d.Fields, d.RemovedFields, d.Reason = nil, []agreements.Field{agreements.FieldName, agreements.FieldExternalID}, "consent_declined"
	}
	return d
}

// newestFirst orders disclosures as the record lists them.
func newestFirst(ds []agreements.Disclosure) []agreements.Disclosure {
	ds = slices.Clone(ds)
	slices.SortFunc(ds, func(a, b agreements.Disclosure) int {
		if c := b.DecidedAt.Compare(a.DecidedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID.String(), a.ID.String())
	})
	return ds
}

func disclosureIDs(ds []agreements.Disclosure) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID.String()
	}
	return out
}

// listAll follows the cursors from query and returns every id, in order.
func (h *hub) listAll(key, query string) []string {
	h.t.Helper()
	var got []string
	cursor := ""
	for range 100 {
		var p page[disclosure]
		h.expect(h.do("GET", "/api/v1/tenants/uni/disclosures?"+query+"&cursor="+url.QueryEscape(cursor), key, nil), 200).json(h.t, &p)
		for _, d := range p.Items {
			got = append(got, d.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			return got
		}
	}
	h.t.Fatal("the cursors never ended")
	return nil
}

func TestDisclosuresFilterAndPage(t *testing.T) {
	parent := t
	h := newHub(t)
	h.createTenant("uni", "institution")
	_, key := h.createKey("uni", "read")
	ada, bob := uuid.New(), uuid.New()
	hookA, hookB, lrs := uuid.New(), uuid.New(), uuid.New()
	lms := agreements.Destination{Kind: agreements.DestinationLMS}
	webhookA := agreements.Destination{Kind: agreements.DestinationWebhook, ID: &hookA}
	webhookB := agreements.Destination{Kind: agreements.DestinationWebhook, ID: &hookB}
	xapi := agreements.Destination{Kind: agreements.DestinationXAPI, ID: &lrs}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	at := func(hours int) time.Time { return t0.Add(time.Duration(hours) * time.Hour) }
	all := h.recordDecisions(h.tenantID("uni"), []uuid.UUID{ada, bob}, []agreements.Disclosure{
		decision(ada, lms, "share", at(1)),
		decision(ada, webhookA, "share_minimized", at(2)),
		decision(bob, webhookA, "withhold", at(3)),
		decision(bob, xapi, "share", at(4)),
		decision(ada, webhookB, "withhold", at(5)),
		decision(bob, lms, "share_minimized", at(6)),
		decision(ada, xapi, "share", at(7)),
		decision(bob, lms, "share", at(8)),
		decision(ada, lms, "share", at(8)), // the same time: the id orders them
		decision(bob, webhookB, "share", at(9)),
	})
	where := func(keep func(agreements.Disclosure) bool) []string {
		var out []agreements.Disclosure
		for _, d := range all {
			if keep(d) {
				out = append(out, d)
			}
		}
		return disclosureIDs(newestFirst(out))
	}

	for _, tc := range []struct {
		name, query string
		keep        func(agreements.Disclosure) bool
	}{
		{"everything", "", func(agreements.Disclosure) bool { return true }},
		{"one learner", "learner=" + ada.String(), func(d agreements.Disclosure) bool { return *d.Learner == ada }},
		{"the lms", "destination=lms", func(d agreements.Disclosure) bool { return d.Destination.Kind == "lms" }},
		{"one webhook", "destination=webhook:" + hookA.String(), func(d agreements.Disclosure) bool {
			return d.Destination.ID != nil && *d.Destination.ID == hookA
		}},
		{"every webhook", "destination=webhook", func(d agreements.Disclosure) bool { return d.Destination.Kind == "webhook" }},
		{"one xapi destination", "destination=xapi:" + lrs.String(), func(d agreements.Disclosure) bool { return d.Destination.Kind == "xapi" }},
		{"withheld", "decision=withhold", func(d agreements.Disclosure) bool { return d.Decision == "withhold" }},
		{"minimised", "decision=share_minimized", func(d agreements.Disclosure) bool { return d.Decision == "share_minimized" }},
		{"since and until", "since=" + at(3).Format(time.RFC3339) + "&until=" + at(7).Format(time.RFC3339),
			func(d agreements.Disclosure) bool { return !d.DecidedAt.Before(at(3)) && d.DecidedAt.Before(at(7)) }},
		{"learner, destination and decision", "learner=" + bob.String() + "&destination=lms&decision=share",
			func(d agreements.Disclosure) bool {
				return *d.Learner == bob && d.Destination.Kind == "lms" && d.Decision == "share"
			}},
		{"learner and time", "learner=" + ada.String() + "&since=" + at(5).Format(time.RFC3339),
			func(d agreements.Disclosure) bool { return *d.Learner == ada && !d.DecidedAt.Before(at(5)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			defer func() { h.t = parent }()
			want := where(tc.keep)
			if len(want) == 0 || (tc.query != "" && len(want) == len(all)) {
				t.Fatalf("the case selects %d of %d: it tests nothing", len(want), len(all))
			}
			var p page[disclosure]
			h.expect(h.do("GET", "/api/v1/tenants/uni/disclosures?limit=200&"+tc.query, key, nil), 200).json(t, &p)
			var got []string
			for _, d := range p.Items {
				got = append(got, d.ID)
			}
			if !slices.Equal(got, want) || p.NextCursor != "" {
				t.Fatalf("got %v (next %q), want %v", got, p.NextCursor, want)
			}
			if paged := h.listAll(key, "limit=2&"+tc.query); !slices.Equal(paged, want) {
				t.Fatalf("paged by 2: %v, want %v", paged, want)
			}
		})
	}

	var p page[disclosure]
	h.expect(h.do("GET", "/api/v1/tenants/uni/disclosures?decision=withhold&learner="+bob.String(), key, nil), 200).json(t, &p)
	if len(p.Items) != 1 {
		t.Fatalf("bob's withheld records: %+v", p.Items)
	}
	got := p.Items[0]
	if *got.Learner != bob.String() || got.Destination.Kind != "webhook" || *got.Destination.ID != hookA.String() ||
		got.Category != "completion" || len(got.Fields) != 0 || strings.Join(got.RemovedFields, ",") != "name,external_id" ||
		got.Reason != "consent_declined" || got.RecordType != "result" || got.AgreementVersion != nil || !got.DecidedAt.Equal(at(3)) {
		t.Fatalf("bob's withheld record: %+v", got)
	}
}

func TestDisclosuresRefuseBadParameters(t *testing.T) {
	parent := t
	h := newHub(t)
	h.createTenant("uni", "institution")
	_, key := h.createKey("uni", "read")
	for _, tc := range []struct{ name, query, field string }{
		{"a learner that is not an id", "learner=ada", "learner"},
		{"an unknown destination kind", "destination=ftp", "destination"},
		{"the lms with an id", "destination=lms:" + uuid.NewString(), "destination"},
		{"a webhook id that is not one", "destination=webhook:42", "destination"},
		{"an unknown decision", "decision=maybe", "decision"},
		{"a since that is not a time", "since=yesterday", "since"},
		{"an until before since", "since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until"},
		{"an unknown format", "format=xml", "format"},
		{"a cursor not returned", "cursor=nope", "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			defer func() { h.t = parent }()
			p := h.problem(h.do("GET", "/api/v1/tenants/uni/disclosures?"+tc.query, key, nil), 400, "validation")
			if !slices.ContainsFunc(p.Errors, func(f apperr.FieldError) bool { return f.Field == tc.field }) {
				t.Fatalf("errors %+v do not name %s", p.Errors, tc.field)
			}
		})
	}
}

// csvGet asks for the record as CSV, with ?format=csv or, when accept is
// set, by the Accept header alone.
func (h *hub) csvGet(slug, key, query string, accept bool) (response, [][]string) {
	h.t.Helper()
	path := "/api/v1/tenants/" + slug + "/disclosures?" + query
	if !accept {
		path += "&format=csv"
	}
	req, err := http.NewRequest("GET", h.url+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if accept {
		req.Header.Set("Accept", "text/csv")
	}
	r := h.expect(h.send(req), 200)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		h.t.Fatalf("Content-Type = %q", ct)
	}
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="disclosures.csv"` {
		h.t.Fatalf("Content-Disposition = %q", cd)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil {
		h.t.Fatalf("CSV: %v\n%s", err, r.body)
	}
	return r, rows
}

var csvHeader = "id,decided_at,learner,destination_kind,destination_id,category,fields,removed_fields,agreement_id," +
	"agreement_version,decision,reason,record_type,record_id"

// TestDisclosuresExportEveryRowAsCSV: an export past one batch of 1,000
// rows has every row once, newest first, even where rows of one time
// straddle a batch.
func TestDisclosuresExportEveryRowAsCSV(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	_, key := h.createKey("uni", "read")
	ada, bob := uuid.New(), uuid.New()
	hook := uuid.New()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var ds []agreements.Disclosure
	for i := range 1205 {
		learner, verdict, dest := ada, agreements.OutcomeShare, agreements.Destination{Kind: agreements.DestinationLMS}
		if i%3 == 0 {
			learner, verdict, dest = bob, agreements.OutcomeWithhold, agreements.Destination{Kind: agreements.DestinationWebhook, ID: &hook}
		}
		ds = append(ds, decision(learner, dest, verdict, t0.Add(time.Duration(i/7)*time.Minute))) // seven of each time
	}
	all := newestFirst(h.recordDecisions(h.tenantID("uni"), []uuid.UUID{ada, bob}, ds))

	for _, accept := range []bool{false, true} {
		_, rows := h.csvGet("uni", key, "", accept)
		if len(rows) != len(all)+1 || strings.Join(rows[0], ",") != csvHeader {
			t.Fatalf("Accept: %v: %d rows, header %v", accept, len(rows), rows[0])
		}
		var got []string
		for _, r := range rows[1:] {
			got = append(got, r[0])
		}
		if !slices.Equal(got, disclosureIDs(all)) {
			t.Fatalf("Accept: %v: the export's ids are not every row once, newest first", accept)
		}
	}

	_, rows := h.csvGet("uni", key, "decision=withhold&learner="+bob.String(), false)
	if len(rows) != 1+(1205+2)/3 {
		t.Fatalf("bob's withheld records: %d rows", len(rows))
	}
	first := all[0]
	for first.Decision != "withhold" {
		all = all[1:]
		first = all[0]
	}
	want := []string{first.ID.String(), first.DecidedAt.UTC().Format(time.RFC3339), bob.String(), "webhook", hook.String(),
		"completion", "", "name;external_id", "", "", "withhold", "consent_declined", "result", ""}
	if !slices.Equal(rows[1], want) {
		t.Fatalf("first withheld row %q, want %q", rows[1], want)
	}
	_, rows = h.csvGet("uni", key, "decision=share&destination=lms", false)
	if len(rows) < 2 || rows[1][6] != "name;external_id" || rows[1][7] != "" {
		t.Fatalf("a shared row: %q", rows[1])
	}
}

// TestDisclosuresAreTheTenantsOwn: another tenant's key sees none of the
// record, not even by naming one of the tenant's learners.
func TestDisclosuresAreTheTenantsOwn(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	h.createTenant("corp", "employer")
	_, uniKey := h.createKey("uni", "read")
	_, corpKey := h.createKey("corp", "read")
	ada := uuid.New()
	h.recordDecisions(h.tenantID("uni"), []uuid.UUID{ada}, []agreements.Disclosure{
		decision(ada, agreements.Destination{Kind: agreements.DestinationLMS}, "share", time.Now()),
	})
	var p page[disclosure]
	h.expect(h.do("GET", "/api/v1/tenants/uni/disclosures", uniKey, nil), 200).json(t, &p)
	if len(p.Items) != 1 {
		t.Fatalf("uni's own record: %+v", p.Items)
	}
	for _, query := range []string{"", "learner=" + ada.String()} {
		p = page[disclosure]{}
		h.expect(h.do("GET", "/api/v1/tenants/corp/disclosures?"+query, corpKey, nil), 200).json(t, &p)
		if p.Items == nil || len(p.Items) != 0 {
			t.Fatalf("corp's key, ?%s: %+v", query, p.Items)
		}
		if _, rows := h.csvGet("corp", corpKey, query, false); len(rows) != 1 {
			t.Fatalf("corp's export, ?%s: %q", query, rows)
		}
	}
	h.problem(h.do("GET", "/api/v1/tenants/uni/disclosures", corpKey, nil), 404, "not-found")
}

// TestLearnerDisclosuresReadIsAudited: reading one learner's record is
// admin access to their data, audited with who read it; reading the whole
// record is not.
func TestLearnerDisclosuresReadIsAudited(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	h.createTenant("corp", "employer")
	keyID, key := h.createKey("uni", "read")
	_, corpKey := h.createKey("corp", "read")
	ada := uuid.New()
	h.recordDecisions(h.tenantID("uni"), []uuid.UUID{ada}, nil)

	reads := func(slug string) []string {
		t.Helper()
		var audited auditPage
		h.expect(h.do("GET", "/api/v1/tenants/"+slug+"/audit?action=learner.disclosures_read", adminToken, nil), 200).json(t, &audited)
		var out []string
		for _, e := range audited.Items {
			if e.TargetType != "user" || e.TargetID != ada.String() {
				t.Fatalf("audited %+v", e)
			}
			out = append(out, string(e.ActorType)+":"+e.ActorID+":"+e.Details["format"])
		}
		return out
	}
	h.expect(h.do("GET", "/api/v1/tenants/uni/disclosures", key, nil), 200)
	h.csvGet("uni", key, "", false)
	if got := reads("uni"); len(got) != 0 {
		t.Fatalf("reads of the whole record audited as a learner's: %v", got)
	}
	h.expect(h.do("GET", "/api/v1/tenants/uni/disclosures?learner="+ada.String(), key, nil), 200)
	h.csvGet("uni", key, "learner="+ada.String(), true)
	h.expect(h.do("GET", "/api/v1/tenants/uni/disclosures?learner="+ada.String(), adminToken, nil), 200)
	want := []string{"operator:operator:json", "api_key:" + keyID + ":csv", "api_key:" + keyID + ":json"}
	if got := reads("uni"); !slices.Equal(got, want) {
		t.Fatalf("audited %v, want %v", got, want)
	}
	h.expect(h.do("GET", "/api/v1/tenants/corp/disclosures?learner="+ada.String(), corpKey, nil), 200)
	if got := reads("uni"); len(got) != 3 {
		t.Fatalf("corp's read audited in uni's chain: %v", got)
	}
	if got := reads("corp"); len(got) != 1 {
		t.Fatalf("corp's read of a learner's record, in corp's chain: %v", got)
	}
}
