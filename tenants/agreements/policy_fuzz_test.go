package agreements

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzDecide builds an agreement, a consent, a record and a destination
// from fuzzed values and checks that nothing outside the agreement ever
// leaves. Lists are comma-separated; a destination is "kind" or "kind:name",
// the name standing for its ID; times are seconds from EffectiveFrom
// (until 0: no end).
func FuzzDecide(f *testing.F) {
	f.Add("active", 3, "scores,completion", "name,external_id", "lms,webhook:a,xapi:b", "opt_in",
		"granted", 3, "scores", "name", false, "lms", int64(3600), int64(86400))
	f.Add("active", 1, "scores", "name", "webhook:a", "opt_out",
		"", 0, "scores", "email,phone,name,name", false, "webhook:a", int64(0), int64(0))
	f.Fuzz(func(t *testing.T, status string, version int, categories, fields, destinations, rule string,
		answer string, consentVersion int, category, recordFields string, erased bool, destination string,
		nowSec, untilSec int64) {
		a := &Agreement{Version: version, Status: Status(status), Terms: Terms{
			EffectiveFrom: from,
			Categories:    split[Category](categories),
			Fields:        split[Field](fields),
			Consent:       ConsentRule(rule),
		}}
		if untilSec != 0 {
			u := from.Add(time.Duration(untilSec) * time.Second)
			a.EffectiveUntil = &u
		}
		for _, d := range strings.Split(destinations, ",") {
			a.Destinations = append(a.Destinations, parseDestination(d))
		}
		c := ConsentState{Answer: ConsentAnswer(answer), Version: consentVersion}
		r := Record{Category: Category(category), Fields: split[Field](recordFields), Erased: erased}
		in := input{a: a, c: c, r: r, d: parseDestination(destination), now: from.Add(time.Duration(nowSec) * time.Second)}
		before := slices.Clone(r.Fields)

		got := Decide(in.a, in.c, in.r, in.d, in.now)
		checkDecision(t, in, got)
		if !slices.Equal(r.Fields, before) {
			t.Errorf("record fields changed from %q to %q", before, r.Fields)
		}
		if want := model(in); !reflect.DeepEqual(got, want) {
			t.Errorf("Decide = %#v, model = %#v", got, want)
		}
	})
}

// checkDecision holds Decide to what the policy promises whatever its
// input.
func checkDecision(t *testing.T, in input, got Decision) {
	t.Helper()
	if got.Fields == nil {
		t.Errorf("nil Fields")
	}
	switch got.Outcome {
	case OutcomeWithhold:
		if got.Reason == "" || len(got.Fields) != 0 || len(got.Removed) != 0 {
			t.Errorf("withhold %#v: want a reason and no fields", got)
		}
		if in.r.Erased && got.Reason != ReasonLearnerErased {
			t.Errorf("erased learner withheld for %q", got.Reason)
		}
		return
	case OutcomeShare:
		if len(got.Removed) != 0 {
			t.Errorf("share with Removed %q", got.Removed)
		}
	case OutcomeShareMinimized:
		if len(got.Removed) == 0 {
			t.Errorf("share_minimized without Removed")
		}
	default:
		t.Fatalf("unknown outcome %q", got.Outcome)
	}
	checkShared(t, in, got)
}

// checkShared checks a decision that shares: only an active agreement in
// effect, an allowed category and destination, allowed fields the record
// has, and every record field either kept or removed.
func checkShared(t *testing.T, in input, got Decision) {
	t.Helper()
	a, r := in.a, in.r
	if got.Reason != "" || r.Erased || a == nil || a.Status != StatusActive {
		t.Fatalf("shared %#v with reason, for an erased learner or without an active agreement", got)
	}
	if in.now.Before(a.EffectiveFrom) || a.EffectiveUntil != nil && !in.now.Before(*a.EffectiveUntil) {
		t.Errorf("shared at %v outside [%v, %v)", in.now, a.EffectiveFrom, a.EffectiveUntil)
	}
	if !slices.Contains(a.Categories, r.Category) || !slices.Contains(Categories, r.Category) {
		t.Errorf("shared category %q, agreement allows %q", r.Category, a.Categories)
	}
	if a.Consent == ConsentOptIn && (in.c.Answer != ConsentGranted || in.c.Version != a.Version || in.c.Version < 1) {
		t.Errorf("opt-in shared on %+v for version %d", in.c, a.Version)
	}
	for _, f := range got.Fields {
		if !slices.Contains(a.Fields, f) || !slices.Contains(Fields, f) || !slices.Contains(r.Fields, f) {
			t.Errorf("shared field %q: agreement %q, record %q", f, a.Fields, r.Fields)
		}
	}
	if !isSortedSubsequence(got.Fields, Fields) {
		t.Errorf("fields %q not in canonical order", got.Fields)
	}
	out := append(slices.Clone(got.Fields), got.Removed...)
	distinct := slices.Clone(r.Fields)
	slices.Sort(out)
	slices.Sort(distinct)
	if !slices.Equal(out, slices.Compact(distinct)) {
		t.Errorf("fields %q + removed %q, record has %q", got.Fields, got.Removed, r.Fields)
	}
}

// isSortedSubsequence reports whether fs is order's members in order, once
// each.
func isSortedSubsequence(fs, order []Field) bool {
	i := 0
	for _, f := range fs {
		for i < len(order) && order[i] != f {
			i++
		}
		if i == len(order) {
			return false
		}
		i++
	}
	return true
}

func split[T ~string](s string) []T {
	if s == "" {
		return nil
	}
	var out []T
	for _, part := range strings.Split(s, ",") {
		out = append(out, T(part))
	}
	return out
}

// parseDestination reads "kind" or "kind:name"; equal names give equal IDs.
func parseDestination(s string) Destination {
	kind, name, ok := strings.Cut(s, ":")
	d := Destination{Kind: DestinationKind(kind)}
	if ok {
		u := uuid.NewSHA1(uuid.NameSpaceURL, []byte(name))
		d.ID = &u
	}
	return d
}
