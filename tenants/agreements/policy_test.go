package agreements

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
)

var (
	webhookID = uuid.MustParse("6f1c2a52-0000-4000-8000-000000000001")
	xapiID    = uuid.MustParse("6f1c2a52-0000-4000-8000-000000000002")
	otherID   = uuid.MustParse("6f1c2a52-0000-4000-8000-000000000003")

	from  = time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	until = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	term  = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
)

func id(u uuid.UUID) *uuid.UUID { return &u }

// fixture is an active version 3 agreement in effect from from to until:
// scores and completion, name and external id, to the LMS, one webhook
// and one xAPI store, with opt-in consent.
func fixture() *Agreement {
	u := until
	return &Agreement{
		Version: 3,
		Status:  StatusActive,
		Terms: Terms{
			EffectiveFrom:  from,
			EffectiveUntil: &u,
			Categories:     []Category{CategoryScores, CategoryCompletion},
			Fields:         []Field{FieldName, FieldExternalID},
			Destinations: []Destination{
				{Kind: DestinationLMS},
				{Kind: DestinationWebhook, ID: id(webhookID)},
				{Kind: DestinationXAPI, ID: id(xapiID)},
			},
			Consent: ConsentOptIn,
		},
	}
}

type input struct {
	a   *Agreement
	c   ConsentState
	r   Record
	d   Destination
	now time.Time
}

// baseline shares: a granted learner's score with their name, to the LMS,
// mid-term.
func baseline() input {
	return input{
		a:   fixture(),
		c:   ConsentState{Answer: ConsentGranted, Version: 3},
		r:   Record{Category: CategoryScores, Fields: []Field{FieldName}},
		d:   Destination{Kind: DestinationLMS},
		now: term,
	}
}

func withhold(r Reason) Decision {
	return Decision{Outcome: OutcomeWithhold, Reason: r, Fields: []Field{}}
}

func share(fs ...Field) Decision {
	return Decision{Outcome: OutcomeShare, Fields: append([]Field{}, fs...)}
}

func minimized(fs []Field, removed ...Field) Decision {
	return Decision{Outcome: OutcomeShareMinimized, Fields: append([]Field{}, fs...), Removed: removed}
}

type decideCase struct {
	name string
	edit func(*input)
	want Decision
}

func TestDecide(t *testing.T) {
	var cases []decideCase
	for _, group := range [][]decideCase{orderCases(), agreementCases(), categoryCases(), destinationCases(), consentCases(), fieldCases()} {
		cases = append(cases, group...)
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			in := baseline()
			tc.edit(&in)
			got := Decide(in.a, in.c, in.r, in.d, in.now)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decide:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// orderCases pin the order of the checks: each case breaks two rules and
// expects the earlier one's reason.
func orderCases() []decideCase {
	return []decideCase{
		{"baseline shares", func(*input) {}, share(FieldName)},
		{"erased learner", func(in *input) { in.r.Erased = true }, withhold(ReasonLearnerErased)},
		{"erased beats no agreement", func(in *input) { in.r.Erased, in.a = true, nil }, withhold(ReasonLearnerErased)},
		{"erased beats everything", func(in *input) {
			in.r.Erased, in.a.Status, in.now = true, StatusTerminated, until.Add(time.Hour)
			in.r.Category, in.d, in.c = "grades", Destination{Kind: "ftp"}, ConsentState{Answer: ConsentWithdrawn}
		}, withhold(ReasonLearnerErased)},
		{"inactive beats dates", func(in *input) { in.a.Status, in.now = StatusSuperseded, until }, withhold(ReasonNoAgreement)},
		{"dates beat category", func(in *input) { in.now, in.r.Category = from.Add(-time.Second), CategoryProgress }, withhold(ReasonNotEffective)},
		{"category beats destination", func(in *input) {
			in.r.Category, in.d = CategoryProgress, Destination{Kind: DestinationWebhook, ID: id(otherID)}
		}, withhold(ReasonCategoryNotAllowed)},
		{"destination beats consent", func(in *input) {
			in.d, in.c = Destination{Kind: DestinationXAPI}, ConsentState{Answer: ConsentDeclined, Version: 3}
		}, withhold(ReasonDestinationNotAllowed)},
		{"unknown consent rule beats consent", func(in *input) {
			in.a.Consent, in.c = "ask_parent", ConsentState{Answer: ConsentDeclined, Version: 3}
		}, withhold(ReasonAgreementInvalid)},
		{"consent beats fields", func(in *input) {
			in.c, in.r.Fields = ConsentState{}, []Field{FieldEmail, "phone"}
		}, withhold(ReasonConsentMissing)},
	}
}

func agreementCases() []decideCase {
	status := func(s Status) func(*input) { return func(in *input) { in.a.Status = s } }
	at := func(t time.Time) func(*input) { return func(in *input) { in.now = t } }
	return []decideCase{
		{"no agreement", func(in *input) { in.a = nil }, withhold(ReasonNoAgreement)},
		{"draft agreement", status(StatusDraft), withhold(ReasonNoAgreement)},
		{"superseded agreement", status(StatusSuperseded), withhold(ReasonNoAgreement)},
		{"terminated agreement", status(StatusTerminated), withhold(ReasonNoAgreement)},
		{"unknown status", status("paused"), withhold(ReasonNoAgreement)},
		{"empty status", status(""), withhold(ReasonNoAgreement)},
		{"before effective_from", at(from.Add(-time.Nanosecond)), withhold(ReasonNotEffective)},
		{"exactly at effective_from", at(from), share(FieldName)},
		{"just before effective_until", at(until.Add(-time.Nanosecond)), share(FieldName)},
		{"exactly at effective_until", at(until), withhold(ReasonNotEffective)},
		{"after effective_until", at(until.AddDate(1, 0, 0)), withhold(ReasonNotEffective)},
		{"until in another zone, same instant", func(in *input) {
			u := until.In(time.FixedZone("UTC+2", 2*3600))
			in.a.EffectiveUntil, in.now = &u, until
		}, withhold(ReasonNotEffective)},
		{"no end date", func(in *input) { in.a.EffectiveUntil, in.now = nil, until.AddDate(10, 0, 0) }, share(FieldName)},
		{"until before from", func(in *input) {
			u := from.Add(-time.Hour)
			in.a.EffectiveUntil, in.now = &u, from
		}, withhold(ReasonNotEffective)},
	}
}

func categoryCases() []decideCase {
	cat := func(c Category) func(*input) { return func(in *input) { in.r.Category = c } }
	return []decideCase{
		{"allowed category completion", cat(CategoryCompletion), share(FieldName)},
		{"category not in agreement", cat(CategoryProgress), withhold(ReasonCategoryNotAllowed)},
		{"time spent not in agreement", cat(CategoryTimeSpent), withhold(ReasonCategoryNotAllowed)},
		{"unknown category", cat("grades"), withhold(ReasonCategoryNotAllowed)},
		{"empty category", cat(""), withhold(ReasonCategoryNotAllowed)},
		{"unknown category named by agreement", func(in *input) {
			in.a.Categories = append(in.a.Categories, "grades")
			in.r.Category = "grades"
		}, withhold(ReasonCategoryNotAllowed)},
		{"agreement without categories", func(in *input) { in.a.Categories = nil }, withhold(ReasonCategoryNotAllowed)},
	}
}

func destinationCases() []decideCase {
	to := func(d Destination) func(*input) { return func(in *input) { in.d = d } }
	only := func(ds ...Destination) func(*input) { return func(in *input) { in.a.Destinations = ds } }
	return []decideCase{
		{"lms without id", to(Destination{Kind: DestinationLMS}), share(FieldName)},
		{"lms with an id", to(Destination{Kind: DestinationLMS, ID: id(otherID)}), share(FieldName)},
		{"lms entry with an id allows every gradebook", func(in *input) {
			in.a.Destinations = []Destination{{Kind: DestinationLMS, ID: id(webhookID)}}
			in.d = Destination{Kind: DestinationLMS, ID: id(otherID)}
		}, share(FieldName)},
		{"lms not in agreement", only(Destination{Kind: DestinationWebhook, ID: id(webhookID)}), withhold(ReasonDestinationNotAllowed)},
		{"agreement without destinations", only(), withhold(ReasonDestinationNotAllowed)},
		{"webhook same id", to(Destination{Kind: DestinationWebhook, ID: id(webhookID)}), share(FieldName)},
		{"webhook other id", to(Destination{Kind: DestinationWebhook, ID: id(otherID)}), withhold(ReasonDestinationNotAllowed)},
		{"webhook nil id", to(Destination{Kind: DestinationWebhook}), withhold(ReasonDestinationNotAllowed)},
		{"webhook with the xapi store's id", to(Destination{Kind: DestinationWebhook, ID: id(xapiID)}), withhold(ReasonDestinationNotAllowed)},
		{"webhook entry without id allows no webhook", func(in *input) {
			in.a.Destinations = []Destination{{Kind: DestinationWebhook}}
			in.d = Destination{Kind: DestinationWebhook}
		}, withhold(ReasonDestinationNotAllowed)},
		{"xapi same id", to(Destination{Kind: DestinationXAPI, ID: id(xapiID)}), share(FieldName)},
		{"xapi other id", to(Destination{Kind: DestinationXAPI, ID: id(otherID)}), withhold(ReasonDestinationNotAllowed)},
		{"xapi nil id", to(Destination{Kind: DestinationXAPI}), withhold(ReasonDestinationNotAllowed)},
		{"xapi with the webhook's id", to(Destination{Kind: DestinationXAPI, ID: id(webhookID)}), withhold(ReasonDestinationNotAllowed)},
		{"unknown kind", to(Destination{Kind: "ftp", ID: id(webhookID)}), withhold(ReasonDestinationNotAllowed)},
		{"empty kind", to(Destination{}), withhold(ReasonDestinationNotAllowed)},
		{"unknown kind named by agreement", func(in *input) {
			in.a.Destinations = append(in.a.Destinations, Destination{Kind: "ftp"})
			in.d = Destination{Kind: "ftp"}
		}, withhold(ReasonDestinationNotAllowed)},
	}
}

// consentCases cover every consent rule × every answer × the answer given
// for the agreement's version, an earlier, a later or none.
func consentCases() []decideCase {
	const ok = Reason("")
	rows := []struct {
		rule        ConsentRule
		answer      ConsentAnswer
		same, other Reason
	}{
		{ConsentNotRequired, ConsentUnanswered, ok, ok},
		{ConsentNotRequired, ConsentGranted, ok, ok},
		{ConsentNotRequired, ConsentDeclined, ok, ok},
		{ConsentNotRequired, ConsentWithdrawn, ok, ok},
		{ConsentNotRequired, "maybe", ok, ok},
		{ConsentOptIn, ConsentUnanswered, ReasonConsentMissing, ReasonConsentMissing},
		{ConsentOptIn, ConsentGranted, ok, ReasonConsentMissing},
		{ConsentOptIn, ConsentDeclined, ReasonConsentDeclined, ReasonConsentDeclined},
		{ConsentOptIn, ConsentWithdrawn, ReasonConsentWithdrawn, ReasonConsentWithdrawn},
		{ConsentOptIn, "maybe", ReasonConsentInvalid, ReasonConsentInvalid},
		{ConsentOptOut, ConsentUnanswered, ok, ok},
		{ConsentOptOut, ConsentGranted, ok, ok},
		{ConsentOptOut, ConsentDeclined, ReasonConsentDeclined, ReasonConsentDeclined},
		{ConsentOptOut, ConsentWithdrawn, ReasonConsentWithdrawn, ReasonConsentWithdrawn},
		{ConsentOptOut, "maybe", ReasonConsentInvalid, ReasonConsentInvalid},
		{"ask_parent", ConsentGranted, ReasonAgreementInvalid, ReasonAgreementInvalid},
		{"", ConsentGranted, ReasonAgreementInvalid, ReasonAgreementInvalid},
	}
	versions := []struct {
		name    string
		version int
	}{{"this version", 3}, {"an earlier version", 2}, {"a later version", 4}, {"no version", 0}}
	var cases []decideCase
	for _, row := range rows {
		for _, v := range versions {
			want := row.other
			if v.version == 3 {
				want = row.same
			}
			d := share(FieldName)
			if want != ok {
				d = withhold(want)
			}
			cases = append(cases, decideCase{
				name: fmt.Sprintf("%s rule, %q for %s", row.rule, row.answer, v.name),
				edit: func(in *input) { in.a.Consent, in.c = row.rule, ConsentState{Answer: row.answer, Version: v.version} },
				want: d,
			})
		}
	}
	return append(cases, decideCase{"grant for version 0 of a version 0 agreement", func(in *input) {
		in.a.Version, in.c = 0, ConsentState{Answer: ConsentGranted}
	}, withhold(ReasonConsentMissing)}, decideCase{"grant for a negative version of the same number", func(in *input) {
		in.a.Version, in.c = -1, ConsentState{Answer: ConsentGranted, Version: -1}
	}, withhold(ReasonConsentMissing)})
}

func fieldCases() []decideCase {
	fields := func(fs ...Field) func(*input) { return func(in *input) { in.r.Fields = fs } }
	none := []Field{}
	return []decideCase{
		{"no fields", fields(), share()},
		{"empty fields", fields([]Field{}...), share()},
		{"allowed subset in canonical order", fields(FieldExternalID, FieldName), share(FieldName, FieldExternalID)},
		{"one field not allowed", fields(FieldName, FieldEmail), minimized([]Field{FieldName}, FieldEmail)},
		{"only fields not allowed", fields(FieldEmail), minimized(none, FieldEmail)},
		{"agreement allows no fields", func(in *input) {
			in.a.Fields, in.r.Fields = nil, []Field{FieldExternalID, FieldName}
		}, minimized(none, FieldName, FieldExternalID)},
		{"unknown field", fields(FieldName, "phone"), minimized([]Field{FieldName}, "phone")},
		{"unknown field named by agreement", func(in *input) {
			in.a.Fields, in.r.Fields = append(in.a.Fields, "phone"), []Field{"phone", FieldName}
		}, minimized([]Field{FieldName}, "phone")},
		{"empty field name", fields(""), minimized(none, "")},
		{"field in another case", fields("Name"), minimized(none, "Name")},
		{"duplicates", fields(FieldName, FieldEmail, FieldName, "phone", FieldEmail, "phone"), minimized([]Field{FieldName}, FieldEmail, "phone")},
		{"duplicate allowed fields", fields(FieldExternalID, FieldName, FieldExternalID), share(FieldName, FieldExternalID)},
		{"known removed before unknown, unknown sorted", fields("zip", FieldEmail, "age", FieldExternalID), minimized([]Field{FieldExternalID}, FieldEmail, "age", "zip")},
		{"every field allowed", func(in *input) {
			in.a.Fields, in.r.Fields = []Field{FieldEmail, FieldExternalID, FieldName}, []Field{FieldEmail, FieldName, FieldExternalID}
		}, share(FieldName, FieldEmail, FieldExternalID)},
	}
}

// TestDecideCrossProduct runs every category × destination × consent rule
// × answer × consent version × record fields × agreement fields, behind
// each of the gates before them, against model.
func TestDecideCrossProduct(t *testing.T) {
	categories := append(slices.Clone(Categories), "grades")
	destinations := []Destination{
		{Kind: DestinationLMS}, {Kind: DestinationLMS, ID: id(otherID)},
		{Kind: DestinationWebhook, ID: id(webhookID)}, {Kind: DestinationWebhook, ID: id(otherID)}, {Kind: DestinationWebhook},
		{Kind: DestinationXAPI, ID: id(xapiID)}, {Kind: DestinationXAPI, ID: id(webhookID)}, {Kind: DestinationXAPI},
		{Kind: "ftp"},
	}
	rules := []ConsentRule{ConsentNotRequired, ConsentOptIn, ConsentOptOut, "ask_parent"}
	answers := []ConsentAnswer{ConsentUnanswered, ConsentGranted, ConsentDeclined, ConsentWithdrawn, "maybe"}
	recordFields := subsets([]Field{FieldName, FieldEmail, FieldExternalID, "phone"})
	for _, fs := range recordFields[1:] {
		// The same fields, reversed and repeated.
		twice := append(slices.Clone(fs), fs...)
		slices.Reverse(twice[:len(fs)])
		recordFields = append(recordFields, twice)
	}
	agreementFields := subsets(Fields)
	gates := []func(*input){
		func(*input) {},
		func(in *input) { in.r.Erased = true },
		func(in *input) { in.a.Status = StatusSuperseded },
		func(in *input) { in.now = until },
	}
	if testing.Short() {
		gates = gates[:1]
	}
	n := 0
	for _, gate := range gates {
		for _, cat := range categories {
			for _, d := range destinations {
				for _, rule := range rules {
					for _, ans := range answers {
						for _, version := range []int{3, 2} {
							for _, afs := range agreementFields {
								for _, rfs := range recordFields {
									in := baseline()
									in.a.Consent, in.a.Fields = rule, afs
									in.c = ConsentState{Answer: ans, Version: version}
									in.r = Record{Category: cat, Fields: rfs}
									in.d = d
									gate(&in)
									got := Decide(in.a, in.c, in.r, in.d, in.now)
									if want := model(in); !reflect.DeepEqual(got, want) {
										t.Fatalf("%+v %+v %+v %+v:\n got %#v\nwant %#v", *in.a, in.c, in.r, in.d, got, want)
									}
									n++
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d decisions checked", n)
}

// model is the policy written out plainly, independently of Decide.
func model(in input) Decision {
	a, c, r, d := in.a, in.c, in.r, in.d
	no := func(reason Reason) Decision {
		return Decision{Outcome: OutcomeWithhold, Reason: reason, Fields: []Field{}}
	}
	if r.Erased {
		return no(ReasonLearnerErased)
	}
	if a == nil || a.Status != "active" {
		return no(ReasonNoAgreement)
	}
	if in.now.Before(a.EffectiveFrom) || (a.EffectiveUntil != nil && !in.now.Before(*a.EffectiveUntil)) {
		return no(ReasonNotEffective)
	}
	known := map[Category]bool{"scores": true, "completion": true, "progress": true, "time_spent": true, "certificates": true}
	if !known[r.Category] || !slices.Contains(a.Categories, r.Category) {
		return no(ReasonCategoryNotAllowed)
	}
	destOK := false
	for _, e := range a.Destinations {
		switch {
		case d.Kind == "lms" && e.Kind == "lms":
			destOK = true
		case (d.Kind == "webhook" || d.Kind == "xapi") && e.Kind == d.Kind && d.ID != nil && e.ID != nil && *d.ID == *e.ID:
			destOK = true
		}
	}
	if !destOK {
		return no(ReasonDestinationNotAllowed)
	}
	if a.Consent != "not_required" && a.Consent != "opt_in" && a.Consent != "opt_out" {
		return no(ReasonAgreementInvalid)
	}
	if a.Consent != "not_required" {
		switch c.Answer {
		case "declined":
			return no(ReasonConsentDeclined)
		case "withdrawn":
			return no(ReasonConsentWithdrawn)
		case "granted", "":
		default:
			return no(ReasonConsentInvalid)
		}
		if a.Consent == "opt_in" && (c.Answer != "granted" || c.Version != a.Version || c.Version < 1) {
			return no(ReasonConsentMissing)
		}
	}
	canonical := []Field{"name", "email", "external_id"}
	inRecord := map[Field]bool{}
	for _, f := range r.Fields {
		inRecord[f] = true
	}
	keep, removed := []Field{}, []Field(nil)
	for _, f := range canonical {
		switch {
		case inRecord[f] && slices.Contains(a.Fields, f):
			keep = append(keep, f)
		case inRecord[f]:
			removed = append(removed, f)
		}
	}
	var unknown []string
	for f := range inRecord {
		if !slices.Contains(canonical, f) {
			unknown = append(unknown, string(f))
		}
	}
	sort.Strings(unknown)
	for _, f := range unknown {
		removed = append(removed, Field(f))
	}
	if len(removed) == 0 {
		return Decision{Outcome: OutcomeShare, Fields: keep}
	}
	return Decision{Outcome: OutcomeShareMinimized, Fields: keep, Removed: removed}
}

// subsets returns every subset of fs, each in the order of fs.
func subsets(fs []Field) [][]Field {
	var out [][]Field
	for m := range 1 << len(fs) {
		set := []Field{}
		for i, f := range fs {
			if m&(1<<i) != 0 {
				set = append(set, f)
			}
		}
		out = append(out, set)
	}
	return out
}

// TestDecideSlicesAreSafe shows a caller appending to one decision's
// slices does not change another's, and Decide leaves the record alone.
func TestDecideSlicesAreSafe(t *testing.T) {
	in := baseline()
	in.r.Fields = []Field{FieldExternalID, "phone", FieldEmail}
	first := Decide(in.a, in.c, in.r, in.d, in.now)
	_ = append(first.Fields, "x")
	_ = append(first.Removed, "x")
	_ = append(Decide(in.a, in.c, in.r, in.d, in.now).Fields, FieldEmail)
	again := Decide(in.a, in.c, in.r, in.d, in.now)
	want := minimized([]Field{FieldExternalID}, FieldEmail, "phone")
	if !reflect.DeepEqual(first, want) || !reflect.DeepEqual(again, want) {
		t.Errorf("after appends:\n first %#v\n again %#v\n  want %#v", first, again, want)
	}
	if !slices.Equal(in.r.Fields, []Field{FieldExternalID, "phone", FieldEmail}) {
		t.Errorf("record fields changed to %v", in.r.Fields)
	}
}

func TestDecideAllocations(t *testing.T) {
	for name, fields := range map[string][]Field{
		"share":                   {FieldName, FieldExternalID},
		"minimized, known fields": {FieldName, FieldEmail},
	} {
		in := baseline()
		in.r.Fields = fields
		if n := testing.AllocsPerRun(100, func() { Decide(in.a, in.c, in.r, in.d, in.now) }); n != 0 {
			t.Errorf("%s: %v allocations per decision, want 0", name, n)
		}
	}
}
