package agreements

import (
	"fmt"
	"slices"
	"time"

	"github.com/klasterina/hub/internal/apperr"
)

// Bounds of an agreement's terms.
const (
	MaxRetentionDays   = 3650 // ten years
	maxPurposes        = 10
	maxPurposeText     = 500
	maxDestinations    = 50
	maxSignatoryText   = 200
	signatureClockSkew = 5 * time.Minute
)

// Validate checks terms as a tenant admin wrote them: known codes, no
// repeats, bounded texts and retention. Invalid with each field at fault.
func (t Terms) Validate() error {
	var v apperr.Validator
	v.Check(!t.EffectiveFrom.IsZero(), "effective_from", "is required (RFC 3339)")
	v.Check(t.EffectiveUntil == nil || t.EffectiveUntil.After(t.EffectiveFrom), "effective_until", "must be after effective_from")
	t.checkPurposes(&v)
	checkSet(&v, "categories", t.Categories, Categories)
	checkSet(&v, "fields", t.Fields, Fields)
	t.checkDestinations(&v)
	v.Check(slices.Contains([]ConsentRule{ConsentNotRequired, ConsentOptIn, ConsentOptOut}, t.Consent),
		"consent", "must be not_required, opt_in or opt_out")
	v.Check(t.DisclosureRetentionDays >= 1 && t.DisclosureRetentionDays <= MaxRetentionDays,
		"disclosure_retention_days", fmt.Sprintf("must be from 1 to %d", MaxRetentionDays))
	v.Check(t.CopyRetentionDays >= 1 && t.CopyRetentionDays <= MaxRetentionDays,
		"copy_retention_days", fmt.Sprintf("must be from 1 to %d", MaxRetentionDays))
	v.Check(t.OnEnd == OnEndReturn || t.OnEnd == OnEndDelete, "on_end", "must be return or delete")
	return v.Err()
}

func (t Terms) checkPurposes(v *apperr.Validator) {
	v.Check(len(t.Purposes) >= 1 && len(t.Purposes) <= maxPurposes, "purposes", fmt.Sprintf("must name 1 to %d purposes", maxPurposes))
	for i, p := range t.Purposes {
		field := fmt.Sprintf("purposes[%d]", i)
		v.Check(slices.Contains(PurposeCodes, p.Code), field+".code", fmt.Sprintf("must be one of %v", PurposeCodes))
		v.CheckText(field+".description", p.Description, 0, maxPurposeText)
	}
}

func (t Terms) checkDestinations(v *apperr.Validator) {
	v.Check(len(t.Destinations) <= maxDestinations, "destinations", fmt.Sprintf("at most %d", maxDestinations))
	seen := map[string]bool{}
	for i, d := range t.Destinations {
		field := fmt.Sprintf("destinations[%d]", i)
		d.check(v, field)
		key := string(d.Kind)
		if d.ID != nil {
			key += ":" + d.ID.String()
		}
		v.Check(!seen[key], field, "is listed twice")
		seen[key] = true
	}
}

// check checks that d is the LMS (no id) or a named destination (its id).
func (d Destination) check(v *apperr.Validator, field string) {
	switch d.Kind {
	case DestinationLMS:
		v.Check(d.ID == nil, field+".id", "the tenant's LMS gradebooks take no id")
	case DestinationWebhook, DestinationXAPI:
		v.Check(d.ID != nil, field+".id", "a webhook or xapi destination is named by its id")
	default:
		v.Check(false, field+".kind", "must be lms, webhook or xapi")
	}
}

// checkSet checks that values are known and not repeated.
func checkSet[T comparable](v *apperr.Validator, field string, values, known []T) {
	for i, x := range values {
		v.Check(slices.Contains(known, x), fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("must be one of %v", known))
		v.Check(!slices.Contains(values[:i], x), fmt.Sprintf("%s[%d]", field, i), "is listed twice")
	}
}

// validate checks that both sides signed, by name, and not in the future.
func (s Signatures) validate(now time.Time) error {
	var v apperr.Validator
	for _, side := range []struct {
		field string
		sig   *Signatory
	}{{"institution_signatory", s.Institution}, {"provider_signatory", s.Provider}} {
		if side.sig == nil {
			v.Check(false, side.field, "is required to activate an agreement: who signed for this side, and when")
			continue
		}
		v.CheckText(side.field+".name", side.sig.Name, 1, maxSignatoryText)
		v.CheckText(side.field+".title", side.sig.Title, 0, maxSignatoryText)
		v.Check(!side.sig.SignedAt.IsZero() && !side.sig.SignedAt.After(now.Add(signatureClockSkew)),
			side.field+".signed_at", "is required, and not in the future")
	}
	return v.Err()
}
