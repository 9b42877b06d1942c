package ags

import (
	"math"
	"time"

	"github.com/klasterina/hub/internal/apperr"
)

// ActivityProgress is the learner's progress through the activity (AGS 2.0
// score service).
type ActivityProgress string

// The activity progress values of the specification.
const (
	// Initialized: the learner has not started; with NotReady and no
	// score, it clears the platform's score for the learner.
	Initialized ActivityProgress = "Initialized"
	Started     ActivityProgress = "Started"
	InProgress  ActivityProgress = "InProgress"
	// Submitted: the learner has submitted and may submit again.
	Submitted ActivityProgress = "Submitted"
	Completed ActivityProgress = "Completed"
)

// Valid reports whether a is one of the specification's values.
func (a ActivityProgress) Valid() bool {
	switch a {
	case Initialized, Started, InProgress, Submitted, Completed:
		return true
	}
	return false
}

// GradingProgress is the state of the grading of the learner's work.
// Platforms take a score as final only with FullyGraded; Canvas ignores
// scoreGiven with Pending, Failed and NotReady, Moodle with anything else.
type GradingProgress string

// The grading progress values of the specification.
const (
	FullyGraded   GradingProgress = "FullyGraded"
	Pending       GradingProgress = "Pending"
	PendingManual GradingProgress = "PendingManual" // a person must grade it
	Failed        GradingProgress = "Failed"
	NotReady      GradingProgress = "NotReady"
)

// Valid reports whether g is one of the specification's values.
func (g GradingProgress) Valid() bool {
	switch g {
	case FullyGraded, Pending, PendingManual, Failed, NotReady:
		return true
	}
	return false
}

// MaxUserIDBytes is the longest userId a score may carry: the LTI core
// specification limits a subject to 255 ASCII characters.
const MaxUserIDBytes = 255

// Score is one learner's score on one line item, as of Timestamp.
type Score struct {
	// UserID is the learner's LTI subject (the launch's sub, NRPS's
	// user_id).
	UserID string
	// ScoreGiven is the score, 0 or more (past ScoreMaximum for extra
	// credit); nil sends none, which clears the platform's score.
	ScoreGiven *float64
	// ScoreMaximum is what ScoreGiven is out of, greater than 0; required
	// with ScoreGiven.
	ScoreMaximum *float64
	// Comment is shown to the learner and the instructor; "" sends none.
	Comment string
	// Timestamp is when the score was recorded: the platform keeps a
	// score only if it is newer than the last it accepted.
	Timestamp        time.Time
	ActivityProgress ActivityProgress
	GradingProgress  GradingProgress
}

// Points returns a pointer to v, for ScoreGiven and ScoreMaximum.
func Points(v float64) *float64 { return &v }

// Validate checks a score against the specification: a userId (text, at
// most MaxUserIDBytes), a timestamp, known activity and grading progress,
// scoreGiven finite and not negative and sent with scoreMaximum, which is
// finite and greater than 0, and a comment that is text. Its error wraps
// ErrInvalid and names the field.
func (s Score) Validate() error {
	switch {
	case s.UserID == "":
		return invalid("score", "userId", "is missing")
	case len(s.UserID) > MaxUserIDBytes:
		return invalid("score", "userId", "is longer than 255 bytes")
	case !apperr.IsText(s.UserID):
		return invalid("score", "userId", "holds a NUL character or bytes that are not UTF-8")
	case s.Timestamp.IsZero():
		return invalid("score", "timestamp", "is missing")
	case s.Timestamp.Year() < 1 || s.Timestamp.Year() > 9999:
		return invalid("score", "timestamp", "is outside the years 1 to 9999")
	case !s.ActivityProgress.Valid():
		return invalid("score", "activityProgress", "is not one of Initialized, Started, InProgress, Submitted, Completed")
	case !s.GradingProgress.Valid():
		return invalid("score", "gradingProgress", "is not one of FullyGraded, Pending, PendingManual, Failed, NotReady")
	case s.ScoreGiven != nil && !(finite(*s.ScoreGiven) && *s.ScoreGiven >= 0):
		return invalid("score", "scoreGiven", "must be a number, 0 or more")
	case s.ScoreGiven != nil && s.ScoreMaximum == nil:
		return invalid("score", "scoreMaximum", "must be sent with scoreGiven")
	case s.ScoreMaximum != nil && !(finite(*s.ScoreMaximum) && *s.ScoreMaximum > 0):
		return invalid("score", "scoreMaximum", "must be a number greater than 0")
	case !apperr.IsText(s.Comment):
		return invalid("score", "comment", "holds a NUL character or bytes that are not UTF-8")
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// wireScore is a score as the hub sends it.
type wireScore struct {
	UserID           string           `json:"userId"`
	ScoreGiven       *float64         `json:"scoreGiven,omitempty"`
	ScoreMaximum     *float64         `json:"scoreMaximum,omitempty"`
	Comment          string           `json:"comment,omitempty"`
	Timestamp        string           `json:"timestamp"`
	ActivityProgress ActivityProgress `json:"activityProgress"`
	GradingProgress  GradingProgress  `json:"gradingProgress"`
}

func (s Score) wire() wireScore {
	return wireScore{UserID: s.UserID, ScoreGiven: s.ScoreGiven, ScoreMaximum: s.ScoreMaximum, Comment: s.Comment,
		Timestamp: dateTime(s.Timestamp), ActivityProgress: s.ActivityProgress, GradingProgress: s.GradingProgress}
}
