package ags

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/klasterina/hub/internal/apperr"
)

// LineItem is a gradebook column (AGS 2.0 line item service).
type LineItem struct {
	// ID is the line item's URL, given by the platform: where it is read
	// and, with /scores, where its scores go. Empty in a line item the
	// hub is about to create.
	ID string
	// Label is the column's title in the gradebook. A tool must send a
	// non-blank one; a platform's is kept as sent (cleaned for display).
	Label string
	// ScoreMaximum is the column's maximum, greater than 0.
	ScoreMaximum float64
	// ResourceID is the tool's own name for what is graded: how the hub
	// finds the line items it created. Platforms may send it as a number
	// (Canvas); it is read as that number's text.
	ResourceID string
	// ResourceLinkID binds the column to a resource link of the course.
	ResourceLinkID string
	// Tag qualifies a line item beyond its resource (e.g. "grade",
	// "originality").
	Tag string
	// StartDateTime and EndDateTime bound the activity; zero when not
	// given.
	StartDateTime, EndDateTime time.Time
}

// Validate checks what a tool must send to create a line item: a
// non-blank label, a finite scoreMaximum greater than 0, text (valid
// UTF-8 without NUL) in every field, and dates a timestamp can carry.
// Its error wraps ErrInvalid and names the field.
func (li LineItem) Validate() error {
	switch {
	case strings.TrimSpace(li.Label) == "":
		return invalid("line item", "label", "must not be blank")
	case math.IsNaN(li.ScoreMaximum) || math.IsInf(li.ScoreMaximum, 0) || li.ScoreMaximum <= 0:
		return invalid("line item", "scoreMaximum", "must be a number greater than 0")
	}
	for _, f := range []struct{ field, v string }{{"label", li.Label}, {"resourceId", li.ResourceID},
		{"resourceLinkId", li.ResourceLinkID}, {"tag", li.Tag}} {
		if !apperr.IsText(f.v) {
			return invalid("line item", f.field, "holds a NUL character or bytes that are not UTF-8")
		}
	}
	for _, f := range []struct {
		field string
		t     time.Time
	}{{"startDateTime", li.StartDateTime}, {"endDateTime", li.EndDateTime}} {
		if !f.t.IsZero() && (f.t.Year() < 1 || f.t.Year() > 9999) {
			return invalid("line item", f.field, "is outside the years 1 to 9999")
		}
	}
	return nil
}

// wireLineItem is a line item as the hub sends it.
type wireLineItem struct {
	ID             string  `json:"id,omitempty"`
	ScoreMaximum   float64 `json:"scoreMaximum"`
	Label          string  `json:"label"`
	ResourceID     string  `json:"resourceId,omitempty"`
	ResourceLinkID string  `json:"resourceLinkId,omitempty"`
	Tag            string  `json:"tag,omitempty"`
	StartDateTime  string  `json:"startDateTime,omitempty"`
	EndDateTime    string  `json:"endDateTime,omitempty"`
}

func (li LineItem) wire() wireLineItem {
	return wireLineItem{ID: li.ID, ScoreMaximum: li.ScoreMaximum, Label: li.Label, ResourceID: li.ResourceID,
		ResourceLinkID: li.ResourceLinkID, Tag: li.Tag, StartDateTime: dateTime(li.StartDateTime), EndDateTime: dateTime(li.EndDateTime)}
}

// timeFormat is RFC 3339 with microseconds, always written out: the
// specification asks for sub-second precision, and two scores a
// microsecond apart must not look the same to a platform.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

// dateTime is t in UTC as RFC 3339 with microseconds, "" for the zero
// time.
func dateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

func invalid(what, field, problem string) error {
	return fmt.Errorf("%w: %s: %s %s", ErrInvalid, what, field, problem)
}
