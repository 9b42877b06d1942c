package delivery

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/tenants/agreements"
)

// Record is one record about a learner, as it may leave the hub. The
// delivery worker fills it after agreements.Disclose decided: Fields are
// the identity fields the decision let go (Decision.Fields), and only
// those of Name, Email and ExternalID are filled. The senders check again
// and leave out an identity field that Fields does not list, whatever it
// holds.
type Record struct {
	// ID is the record's own id (the result or completion the learning
	// app reported). With the destination it names the webhook event and
	// the xAPI statement, so a resend is the same event.
	ID       uuid.UUID
	Category agreements.Category
	// Learner is the hub's pseudonymous user id, which always may go.
	Learner uuid.UUID
	// Fields are the identity fields allowed to go with the record.
	Fields     []agreements.Field
	Name       string
	Email      string
	ExternalID string
	// ScoreGiven and ScoreMax are the learner's score and the most the
	// activity gives; nil when the record carries no score.
	ScoreGiven *float64
	ScoreMax   *float64
	Completed  *bool // nil: not said
	Success    *bool // passed (true) or failed (false); nil: not graded
	// TimeSpentSeconds is the time the learner spent; 0 when not said.
	TimeSpentSeconds int64
	// ActivityID and ActivityTitle name what the learner did (a catalog
	// activity id or an absolute IRI); CourseID and CourseTitle the course
	// it was part of, when there was one.
	ActivityID    string
	ActivityTitle string
	CourseID      string
	CourseTitle   string
	OccurredAt    time.Time
}

// allows reports whether field may go and has a value.
func (r Record) allows(field agreements.Field, value string) bool {
	return value != "" && slices.Contains(r.Fields, field)
}
