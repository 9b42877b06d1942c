package agreements

import (
	"slices"
	"time"
)

// ConsentAnswer is what a learner last answered when asked to consent.
type ConsentAnswer string

// Consent answers. The zero value means the learner was never asked, or
// never answered.
const (
	ConsentUnanswered ConsentAnswer = ""
	ConsentGranted    ConsentAnswer = "granted"
	ConsentDeclined   ConsentAnswer = "declined"
	ConsentWithdrawn  ConsentAnswer = "withdrawn"
)

// ConsentState is a learner's consent as read from the database when a
// record is sent (not when it was produced: a withdrawal in between must
// stop it, GDPR Art. 7(3)).
//
// A grant counts only for the agreement version it names. When a new
// version is activated the caller decides whether it widens the terms
// (more categories, fields or destinations, or a weaker consent rule): if
// it does, the learner is asked again and the old grant no longer shares;
// if it does not, the caller carries the grant over by passing the new
// version in Version. A refusal (declined or withdrawn) stands whatever
// version it was given for, until the learner changes it.
type ConsentState struct {
	Answer  ConsentAnswer
	Version int // the agreement version Answer was given for; 0: none
}

// Record is an outbound record about a learner, as the sender is about to
// send it.
type Record struct {
	Category Category
	// Fields are the identity fields the record would carry besides the
	// pseudonymous user id, which always may go.
	Fields []Field
	Erased bool // the learner was erased (GDPR Art. 17)
}

// Outcome is what becomes of a record.
type Outcome string

// Outcomes.
const (
	OutcomeShare          Outcome = "share"           // sent as it is
	OutcomeShareMinimized Outcome = "share_minimized" // sent without the Removed fields
	OutcomeWithhold       Outcome = "withhold"        // not sent; Reason says why
)

// Reason is why a record is withheld: a stable code for disclosure records,
// logs and the tenant's reports.
type Reason string

// Reasons to withhold, in the order Decide checks them.
const (
	ReasonLearnerErased         Reason = "learner_erased"
	ReasonNoAgreement           Reason = "no_agreement"
	ReasonNotEffective          Reason = "agreement_not_effective"
	ReasonCategoryNotAllowed    Reason = "category_not_allowed"
	ReasonDestinationNotAllowed Reason = "destination_not_allowed"
	ReasonAgreementInvalid      Reason = "agreement_invalid" // a consent rule Decide does not know
	ReasonConsentInvalid        Reason = "consent_invalid"   // a consent answer Decide does not know
	ReasonConsentMissing        Reason = "consent_missing"
	ReasonConsentDeclined       Reason = "consent_declined"
	ReasonConsentWithdrawn      Reason = "consent_withdrawn"
)

// Decision is the policy's answer for one record.
//
// Fields and Removed may be shared between decisions (the share path does
// not allocate): read them, append to them, but do not write into them.
type Decision struct {
	Outcome Outcome
	Reason  Reason // set only when Outcome is OutcomeWithhold
	// Fields are the identity fields that may go, in the order of the
	// package's Fields, without duplicates; empty, never nil, when none may
	// (and always empty when withheld).
	Fields []Field
	// Removed are the record's fields taken out (OutcomeShareMinimized
	// only): known fields in the order of Fields, then fields Decide does
	// not know, sorted.
	Removed []Field
}

// Decide is the policy every outbound record passes at the moment it is
// sent. It is pure: the caller reads the active agreement and the
// learner's consent, and records the decision as a disclosure (FERPA
// §99.32 asks for a record of each disclosure; §99.31 lists the
// conditions under which one may be made without consent).
//
// Checks run in a fixed order and the first that fails names the Reason:
// erasure, the agreement (active and in effect), the category, the
// destination, consent, and last the identity fields, which are reduced
// to those the agreement allows (data minimisation, GDPR Art. 5(1)(c)).
func Decide(a *Agreement, c ConsentState, r Record, d Destination, now time.Time) Decision {
	if reason := check(a, c, r, d, now); reason != "" {
		return Decision{Outcome: OutcomeWithhold, Reason: reason, Fields: fieldSets[0]}
	}
	return minimize(a.Fields, r.Fields)
}

// check returns why the record may not go at all, or "".
func check(a *Agreement, c ConsentState, r Record, d Destination, now time.Time) Reason {
	switch {
	case r.Erased:
		// Nothing about an erased learner leaves, whatever the agreement says.
		return ReasonLearnerErased
	case a == nil || a.Status != StatusActive:
		// A draft has not been agreed; a superseded or terminated version
		// no longer is. Only the active version authorises disclosure.
		return ReasonNoAgreement
	case !effective(&a.Terms, now):
		return ReasonNotEffective
	case !allowsCategory(a.Categories, r.Category):
		return ReasonCategoryNotAllowed
	case !allowsDestination(a.Destinations, d):
		return ReasonDestinationNotAllowed
	}
	return checkConsent(a.Consent, a.Version, c)
}

// effective reports whether now falls in [EffectiveFrom, EffectiveUntil).
func effective(t *Terms, now time.Time) bool {
	if now.Before(t.EffectiveFrom) {
		return false
	}
	return t.EffectiveUntil == nil || now.Before(*t.EffectiveUntil)
}

// allowsCategory reports whether c is a known category the agreement
// names. An unknown category is never allowed, even if the agreement
// names it too.
func allowsCategory(allowed []Category, c Category) bool {
	return slices.Contains(Categories, c) && slices.Contains(allowed, c)
}

// allowsDestination reports whether the agreement names d. An lms entry
// covers every LMS gradebook of the tenant, so no ID is compared; a
// webhook or xAPI destination must be named by its ID. Unknown kinds are
// never allowed.
func allowsDestination(allowed []Destination, d Destination) bool {
	switch d.Kind {
	case DestinationLMS:
		return slices.ContainsFunc(allowed, func(e Destination) bool { return e.Kind == DestinationLMS })
	case DestinationWebhook, DestinationXAPI:
		if d.ID == nil {
			return false
		}
		return slices.ContainsFunc(allowed, func(e Destination) bool {
			return e.Kind == d.Kind && e.ID != nil && *e.ID == *d.ID
		})
	}
	return false
}

// checkConsent applies the agreement's consent rule (GDPR Art. 6(1)(a) and
// 7 for opt-in; Art. 21's right to object for opt-out). An answer Decide
// does not know withholds under either rule rather than guess.
func checkConsent(rule ConsentRule, version int, c ConsentState) Reason {
	switch rule {
	case ConsentNotRequired:
		return ""
	case ConsentOptIn, ConsentOptOut:
	default:
		return ReasonAgreementInvalid
	}
	switch c.Answer {
	case ConsentDeclined:
		return ReasonConsentDeclined
	case ConsentWithdrawn:
		return ReasonConsentWithdrawn
	case ConsentGranted, ConsentUnanswered:
	default:
		return ReasonConsentInvalid
	}
	if rule == ConsentOptOut {
		return ""
	}
	if c.Answer == ConsentGranted && c.Version > 0 && c.Version == version {
		return ""
	}
	return ReasonConsentMissing
}

// minimize keeps the record's fields the agreement allows and removes the
// rest. Unknown fields are always removed.
func minimize(allowed, fields []Field) Decision {
	allow := fieldMask(allowed)
	has, unknown := fieldMask(fields), false
	for _, f := range fields {
		if fieldBit(f) == 0 {
			unknown = true
			break
		}
	}
	keep, drop := has&allow, has&^allow
	if drop == 0 && !unknown {
		return Decision{Outcome: OutcomeShare, Fields: fieldSets[keep]}
	}
	removed := fieldSets[drop]
	if unknown {
		removed = withUnknown(removed, fields)
	}
	return Decision{Outcome: OutcomeShareMinimized, Fields: fieldSets[keep], Removed: removed}
}

// withUnknown returns known followed by the distinct fields of fs that
// are not in Fields, sorted, in one new slice.
func withUnknown(known, fs []Field) []Field {
	out := append(make([]Field, 0, len(known)+len(fs)), known...)
	for _, f := range fs {
		if fieldBit(f) == 0 {
			out = append(out, f)
		}
	}
	unknown := out[len(known):]
	slices.Sort(unknown)
	return out[:len(known)+len(slices.Compact(unknown))]
}

// fieldBit is f's bit in a set of known fields, 0 for an unknown field.
func fieldBit(f Field) uint8 {
	switch f {
	case FieldName:
		return 1
	case FieldEmail:
		return 2
	case FieldExternalID:
		return 4
	case FieldComment:
		return 8
	}
	return 0
}

func fieldMask(fs []Field) uint8 {
	var m uint8
	for _, f := range fs {
		m |= fieldBit(f)
	}
	return m
}

// fieldSets holds, for every set of known fields, its members in the order
// of Fields, so that a decision does not allocate its slices. Each has its
// capacity clipped: an append copies instead of writing into the table.
var fieldSets = func() [16][]Field {
	var sets [16][]Field
	for m := range sets {
		set := []Field{}
		for _, f := range Fields {
			if uint8(m)&fieldBit(f) != 0 {
				set = append(set, f)
			}
		}
		sets[m] = slices.Clip(set)
	}
	return sets
}()
