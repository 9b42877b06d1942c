package agreements

import (
	"testing"

	"github.com/google/uuid"
)

func TestWidens(t *testing.T) {
	hook := uuid.New()
	base := Terms{Categories: []Category{CategoryCompletion, CategoryScores}, Fields: []Field{FieldExternalID},
		Destinations: []Destination{{Kind: DestinationLMS}, {Kind: DestinationWebhook, ID: &hook}}, Consent: ConsentOptIn}
	other := uuid.New()
	sameHook := hook
	for _, tc := range []struct {
		name  string
		next  func(t Terms) Terms
		wider bool
	}{
		{"the same terms", func(t Terms) Terms { return t }, false},
		{"fewer categories", func(t Terms) Terms { t.Categories = []Category{CategoryCompletion}; return t }, false},
		{"no fields", func(t Terms) Terms { t.Fields = nil; return t }, false},
		{"the same webhook by another pointer", func(t Terms) Terms {
			t.Destinations = []Destination{{Kind: DestinationWebhook, ID: &sameHook}}
			return t
		}, false},
		{"another category", func(t Terms) Terms { t.Categories = append(t.Categories, CategoryProgress); return t }, true},
		{"another field", func(t Terms) Terms { t.Fields = []Field{FieldExternalID, FieldEmail}; return t }, true},
		{"another webhook", func(t Terms) Terms {
			t.Destinations = []Destination{{Kind: DestinationWebhook, ID: &other}}
			return t
		}, true},
		{"an xapi destination", func(t Terms) Terms {
			t.Destinations = append(t.Destinations, Destination{Kind: DestinationXAPI, ID: &hook})
			return t
		}, true},
		{"opt-in to opt-out", func(t Terms) Terms { t.Consent = ConsentOptOut; return t }, true},
		{"opt-in to not required", func(t Terms) Terms { t.Consent = ConsentNotRequired; return t }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := tc.next(cloneTerms(base))
			if got := Widens(base, next); got != tc.wider {
				t.Fatalf("Widens = %v, want %v", got, tc.wider)
			}
		})
	}
}

func cloneTerms(t Terms) Terms {
	t.Categories = append([]Category(nil), t.Categories...)
	t.Fields = append([]Field(nil), t.Fields...)
	t.Destinations = append([]Destination(nil), t.Destinations...)
	return t
}
