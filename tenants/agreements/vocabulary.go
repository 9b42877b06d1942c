package agreements

import (
	"time"

	"github.com/google/uuid"
)

// Category is a kind of record about a learner that may leave the hub.
type Category string

// The data categories an agreement may allow.
const (
	CategoryScores       Category = "scores"
	CategoryCompletion   Category = "completion"
	CategoryProgress     Category = "progress"
	CategoryTimeSpent    Category = "time_spent"
	CategoryCertificates Category = "certificates"
)

// Categories lists every category, in a fixed order.
var Categories = []Category{CategoryScores, CategoryCompletion, CategoryProgress, CategoryTimeSpent, CategoryCertificates}

// Field is a personal field that may accompany a record: an identity
// field, or the free-text comment on a result (AGS comment), which may
// say anything about the learner. The hub's pseudonymous user id always
// may, and is not a Field.
type Field string

// The identity fields an agreement may allow.
const (
	FieldName       Field = "name"
	FieldEmail      Field = "email"
	FieldExternalID Field = "external_id"
	FieldComment    Field = "comment"
)

// Fields lists every identity field, in a fixed order.
var Fields = []Field{FieldName, FieldEmail, FieldExternalID, FieldComment}

// ConsentRule says what the learner's consent has to do with sharing.
type ConsentRule string

// Consent rules.
const (
	ConsentNotRequired ConsentRule = "not_required" // the organisation's authority suffices
	ConsentOptIn       ConsentRule = "opt_in"       // nothing leaves until the learner allows it
	ConsentOptOut      ConsentRule = "opt_out"      // shared unless the learner objects
)

// DestinationKind is where records go.
type DestinationKind string

// Destination kinds.
const (
	DestinationLMS     DestinationKind = "lms"     // the tenant's LMS gradebooks (LTI AGS)
	DestinationWebhook DestinationKind = "webhook" // a named webhook destination
	DestinationXAPI    DestinationKind = "xapi"    // a named xAPI LRS
)

// Destination is one place records may go: the tenant's LMS gradebooks
// (no ID), or a named webhook or xAPI destination (its ID).
type Destination struct {
	Kind DestinationKind `json:"kind"`
	ID   *uuid.UUID      `json:"id,omitempty"`
}

// Status is where an agreement version is in its life.
type Status string

// Agreement statuses: draft → active → superseded (a newer version was
// activated) or terminated (ended by the tenant).
const (
	StatusDraft      Status = "draft"
	StatusActive     Status = "active"
	StatusSuperseded Status = "superseded"
	StatusTerminated Status = "terminated"
)

// PurposeCode is why data is shared, from a fixed list.
type PurposeCode string

// Purposes an agreement may name.
const (
	PurposeGradebook       PurposeCode = "gradebook"        // grades into the institution's LMS
	PurposeTrainingRecords PurposeCode = "training_records" // an employer's record of training
	PurposeCertification   PurposeCode = "certification"    // evidence of a certification or licence
	PurposeCompliance      PurposeCode = "compliance"       // mandatory or regulatory training
	PurposeProgress        PurposeCode = "progress_support" // helping learners who fall behind
)

// PurposeCodes lists every purpose code.
var PurposeCodes = []PurposeCode{PurposeGradebook, PurposeTrainingRecords, PurposeCertification, PurposeCompliance, PurposeProgress}

// Purpose is a code and the agreement's own words for it.
type Purpose struct {
	Code        PurposeCode `json:"code"`
	Description string      `json:"description"`
}

// OnEnd is what becomes of shared data when the agreement ends.
type OnEnd string

// What happens to shared data at the end.
const (
	OnEndReturn OnEnd = "return"
	OnEndDelete OnEnd = "delete"
)

// Signatory is who signed for one side, and when.
type Signatory struct {
	Name     string    `json:"name"`
	Title    string    `json:"title"`
	SignedAt time.Time `json:"signed_at"`
}

// Terms are what an agreement allows: everything Decide reads.
type Terms struct {
	EffectiveFrom  time.Time     `json:"effective_from"`
	EffectiveUntil *time.Time    `json:"effective_until"`
	Purposes       []Purpose     `json:"purposes"`
	Categories     []Category    `json:"categories"`
	Fields         []Field       `json:"fields"`
	Destinations   []Destination `json:"destinations"`
	Consent        ConsentRule   `json:"consent"`
	// Retention in days of the record of disclosures and of the copies
	// the hub keeps of shared records.
	DisclosureRetentionDays int   `json:"disclosure_retention_days"`
	CopyRetentionDays       int   `json:"copy_retention_days"`
	OnEnd                   OnEnd `json:"on_end"`
}

// Agreement is one version of a tenant's data-sharing agreement.
type Agreement struct {
	ID       uuid.UUID `json:"id"`
	TenantID uuid.UUID `json:"-"`
	Version  int       `json:"version"`
	Status   Status    `json:"status"`
	Terms
	// Who signed for each side on activation.
	InstitutionSignatory *Signatory `json:"institution_signatory"`
	ProviderSignatory    *Signatory `json:"provider_signatory"`
	ActivatedAt          *time.Time `json:"activated_at"`
	EndedAt              *time.Time `json:"ended_at"` // superseded or terminated
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}
