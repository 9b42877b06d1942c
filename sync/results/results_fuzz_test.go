package results

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzReport feeds report bodies as the app may send them through the
// decoding and validation a request takes: nothing panics, and a report
// that passes holds what the results table's checks require.
func FuzzReport(f *testing.F) {
	for _, seed := range []string{
		`{"user":"0b8e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4","resource_link":"link-1","score_given":7.5,"score_maximum":10,"activity_progress":"Completed","grading_progress":"FullyGraded","occurred_at":"2026-03-01T09:00:00Z"}`,
		`{"user":"0b8e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4","activity":"algebra-1","activity_progress":"InProgress","grading_progress":"NotReady","time_spent_seconds":60,"occurred_at":"2026-03-01T09:00:00.123+02:00"}`,
		`{"user":"x","score_given":-0,"score_maximum":1e-320,"occurred_at":"0001-01-01T00:00:00Z"}`,
		`{"user":"0b8e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4","resource_link":"l","score_given":1e308,"score_maximum":1e308,"activity_progress":"Completed","grading_progress":"Failed","comment":"a\tb\nc\u0007","occurred_at":"2026-03-01T09:00:00Z"}`,
		`{}`, `[]`, `null`, `{"score_given":"7"}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var r Report
		if json.Unmarshal(body, &r) != nil || r.Validate(now) != nil {
			return
		}
		if _, err := uuid.Parse(r.User); err != nil {
			t.Fatalf("a report with user %q passed", r.User)
		}
		if r.Activity == "" && r.ResourceLink == "" {
			t.Fatal("a report naming no activity passed")
		}
		if !slices.Contains(ActivityProgress, r.ActivityProgress) || !slices.Contains(GradingProgress, r.GradingProgress) {
			t.Fatalf("progress %q/%q passed", r.ActivityProgress, r.GradingProgress)
		}
		if r.ScoreGiven != nil && (r.ScoreMaximum == nil || *r.ScoreGiven < 0 || math.IsNaN(*r.ScoreGiven) || *r.ScoreGiven > MaxScore) {
			t.Fatalf("score %v of %v passed", *r.ScoreGiven, r.ScoreMaximum)
		}
		if r.ScoreMaximum != nil && !(*r.ScoreMaximum > 0) {
			t.Fatalf("maximum %v passed", *r.ScoreMaximum)
		}
		if r.OccurredAt.After(now.Add(futureClockSkew)) || r.OccurredAt.Year() < earliestOccurred {
			t.Fatalf("occurred_at %v passed", r.OccurredAt)
		}
		if len(r.hash()) != 32 {
			t.Fatal("no hash")
		}
	})
}
