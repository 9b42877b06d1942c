package ags_test

import (
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klasterina/hub/lti/ags"
)

func TestScoreValidate(t *testing.T) {
	now := time.Now()
	good := func() ags.Score {
		return ags.Score{UserID: "u-1", ScoreGiven: ags.Points(7), ScoreMaximum: ags.Points(10), Timestamp: now,
			ActivityProgress: ags.Completed, GradingProgress: ags.FullyGraded}
	}
	tests := []struct {
		name   string
		change func(s *ags.Score)
		field  string // "" for valid
	}{
		{"valid", func(*ags.Score) {}, ""},
		{"zero score", func(s *ags.Score) { s.ScoreGiven = ags.Points(0) }, ""},
		{"extra credit", func(s *ags.Score) { s.ScoreGiven = ags.Points(12) }, ""},
		{"no score: clears it", func(s *ags.Score) {
			s.ScoreGiven, s.ScoreMaximum, s.ActivityProgress, s.GradingProgress = nil, nil, ags.Initialized, ags.NotReady
		}, ""},
		{"maximum without a score", func(s *ags.Score) { s.ScoreGiven = nil }, ""},
		{"every activity progress", func(s *ags.Score) { s.ActivityProgress = ags.InProgress }, ""},
		{"no user", func(s *ags.Score) { s.UserID = "" }, "userId"},
		{"user too long", func(s *ags.Score) { s.UserID = strings.Repeat("u", 256) }, "userId"},
		{"user with NUL", func(s *ags.Score) { s.UserID = "a\x00" }, "userId"},
		{"no timestamp", func(s *ags.Score) { s.Timestamp = time.Time{} }, "timestamp"},
		{"timestamp past 9999", func(s *ags.Score) { s.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "timestamp"},
		{"no activity progress", func(s *ags.Score) { s.ActivityProgress = "" }, "activityProgress"},
		{"activity progress misspelt", func(s *ags.Score) { s.ActivityProgress = "completed" }, "activityProgress"},
		{"grading progress unknown", func(s *ags.Score) { s.GradingProgress = "Graded" }, "gradingProgress"},
		{"negative score", func(s *ags.Score) { s.ScoreGiven = ags.Points(-1) }, "scoreGiven"},
		{"NaN score", func(s *ags.Score) { s.ScoreGiven = ags.Points(math.NaN()) }, "scoreGiven"},
		{"infinite score", func(s *ags.Score) { s.ScoreGiven = ags.Points(math.Inf(1)) }, "scoreGiven"},
		{"score without maximum", func(s *ags.Score) { s.ScoreMaximum = nil }, "scoreMaximum"},
		{"maximum 0", func(s *ags.Score) { s.ScoreMaximum = ags.Points(0) }, "scoreMaximum"},
		{"maximum negative without a score", func(s *ags.Score) { s.ScoreGiven, s.ScoreMaximum = nil, ags.Points(-2) }, "scoreMaximum"},
		{"comment with invalid UTF-8", func(s *ags.Score) { s.Comment = "good\xff" }, "comment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.change(&s)
			err := s.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.field != "" && (!errors.Is(err, ags.ErrInvalid) || !strings.Contains(err.Error(), tc.field)):
				t.Fatalf("Validate: %v, want ErrInvalid naming %s", err, tc.field)
			}
		})
	}
}

func TestLineItemValidate(t *testing.T) {
	tests := []struct {
		name  string
		li    ags.LineItem
		field string
	}{
		{"valid", ags.LineItem{Label: "Quiz", ScoreMaximum: 10, ResourceID: "q1", Tag: "grade"}, ""},
		{"fractional maximum", ags.LineItem{Label: "Quiz", ScoreMaximum: 0.5}, ""},
		{"no label", ags.LineItem{ScoreMaximum: 10}, "label"},
		{"blank label", ags.LineItem{Label: " \t", ScoreMaximum: 10}, "label"},
		{"no maximum", ags.LineItem{Label: "Quiz"}, "scoreMaximum"},
		{"negative maximum", ags.LineItem{Label: "Quiz", ScoreMaximum: -1}, "scoreMaximum"},
		{"NaN maximum", ags.LineItem{Label: "Quiz", ScoreMaximum: math.NaN()}, "scoreMaximum"},
		{"resource id not text", ags.LineItem{Label: "Quiz", ScoreMaximum: 1, ResourceID: "a\x00"}, "resourceId"},
		{"label not UTF-8", ags.LineItem{Label: "Qu\xffiz", ScoreMaximum: 1}, "label"},
		{"end date past 9999", ags.LineItem{Label: "Quiz", ScoreMaximum: 1, EndDateTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "endDateTime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.li.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.field != "" && (!errors.Is(err, ags.ErrInvalid) || !strings.Contains(err.Error(), tc.field)):
				t.Fatalf("Validate: %v, want ErrInvalid naming %s", err, tc.field)
			}
		})
	}
}

// An invalid line item or score is never sent.
func TestInvalidIsNotSent(t *testing.T) {
	p := serve(t, http.StatusOK, nil, `{}`)
	c := client()
	if _, err := c.CreateLineItem(ctx, p.srv.URL+"/lineitems", "t", ags.LineItem{Label: "x"}); !errors.Is(err, ags.ErrInvalid) {
		t.Errorf("CreateLineItem: %v", err)
	}
	if err := c.PostScore(ctx, p.srv.URL+"/li/1", "t", ags.Score{UserID: "u"}); !errors.Is(err, ags.ErrInvalid) {
		t.Errorf("PostScore: %v", err)
	}
	if n := len(p.got()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}
