package ltitest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ags"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/lti/nrps"
	"github.com/klasterina/hub/lti/servicetoken"
)

// Tokens the grade tests' platforms grant (GrantToken), one per scope set.
const (
	tokAll      = "token-all"       // lineitem and score
	tokScore    = "token-score"     // score only
	tokReadOnly = "token-read-only" // lineitem.readonly only
)

// gradesPlatform is a platform with a course c of 10 members and the
// grade tokens granted.
func gradesPlatform(t *testing.T) *ltitest.Platform {
	t.Helper()
	p := ltitest.New()
	t.Cleanup(p.Close)
	p.GrantToken(tokAll, lti.ScopeAGSLineItem, lti.ScopeAGSScore)
	p.GrantToken(tokScore, lti.ScopeAGSScore)
	p.GrantToken(tokReadOnly, lti.ScopeAGSLineItemRead)
	p.SetRoster("c", 10)
	return p
}

// gradesClient calls the platform over loopback with a fresh connection
// for each request, so a dropped connection is not retried by the
// transport.
func gradesClient() *ags.Client {
	return &ags.Client{HTTP: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
}

func member(i int) string { return fmt.Sprintf("nrps-c-%d", i) }

func mustCreate(t *testing.T, p *ltitest.Platform, contextID string, li ags.LineItem) ags.LineItem {
	t.Helper()
	created, err := gradesClient().CreateLineItem(context.Background(), p.LineItemsURL(contextID), tokAll, li)
	if err != nil {
		t.Fatalf("CreateLineItem(%+v): %v", li, err)
	}
	return created
}

// graded is a final score of given out of 10 for user at.
func graded(user string, given float64, at time.Time) ags.Score {
	return ags.Score{UserID: user, ScoreGiven: ags.Points(given), ScoreMaximum: ags.Points(10), Timestamp: at,
		ActivityProgress: ags.Completed, GradingProgress: ags.FullyGraded}
}

func statusOf(err error) int {
	var se *ags.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

func TestAGSLaunchClaim(t *testing.T) {
	p := gradesPlatform(t)
	claim, _ := p.Claims("nonce", ltitest.Launch{})[lti.ClaimAGS].(map[string]any)
	lineitems, _ := claim["lineitems"].(string)
	lineitem, _ := claim["lineitem"].(string)
	scopes, _ := claim["scope"].([]string)
	if lineitems != p.LineItemsURL("course-1") || lineitem == "" {
		t.Fatalf("claim = %v", claim)
	}
	for _, s := range []string{lti.ScopeAGSLineItem, lti.ScopeAGSLineItemRead, lti.ScopeAGSResultRead, lti.ScopeAGSScore} {
		if !slices.Contains(scopes, s) {
			t.Errorf("claim scopes %q lack %s", scopes, s)
		}
	}
	c := gradesClient()
	li, err := c.GetLineItem(context.Background(), lineitem, tokReadOnly)
	if err != nil || li.ID != lineitem || li.Label != "Week 1 quiz" || li.ResourceLinkID != "link-1" || li.ScoreMaximum != 100 {
		t.Fatalf("the claim's line item: %+v, %v", li, err)
	}
	items, err := c.LineItems(context.Background(), lineitems, tokReadOnly, ags.Query{ResourceLinkID: "link-1"})
	if err != nil || len(items) != 1 || items[0] != li {
		t.Fatalf("the link's line items: %+v, %v", items, err)
	}
}

// signer is a tool's LTI key, published as a keyset the platform reads,
// as the hub's keys.Store is.
type signer struct {
	kid  string
	priv *rsa.PrivateKey
}

func (s *signer) Sign(_ context.Context, _ keys.Purpose, payload []byte) ([]byte, error) {
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, s.kid)
	return jws.Sign(payload, jws.WithKey(jwa.RS256, s.priv, jws.WithProtectedHeaders(hdr)))
}

func publishSigner(t *testing.T, p *ltitest.Platform) *signer {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &signer{kid: "tool-key", priv: priv}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		pub, _ := jwk.FromRaw(priv.Public())
		_ = pub.Set(jwk.KeyIDKey, s.kid)
		_ = pub.Set(jwk.AlgorithmKey, jwa.RS256)
		set := jwk.NewSet()
		_ = set.AddKey(pub)
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	p.ToolJWKSURL, p.ToolClient = srv.URL, srv.Client()
	return s
}

// The whole flow with real tokens: the tool signs a client assertion, the
// token endpoint verifies it and grants the scopes asked, and the grade
// services take the tokens for their scopes only.
func TestAGSWithServiceTokens(t *testing.T) {
	p := ltitest.New()
	t.Cleanup(p.Close)
	p.SetRoster("course-1", 5)
	src := servicetoken.NewSource(publishSigner(t, p), p.Server.Client())
	pl := servicetoken.Platform{RegistrationID: uuid.New(), ClientID: p.ClientID, TokenURL: p.TokenURL()}
	ctx := context.Background()
	token := func(scopes ...string) string {
		tok, err := src.Token(ctx, pl, scopes)
		if err != nil {
			t.Fatalf("Token(%v): %v", scopes, err)
		}
		return tok
	}
	claim := p.Claims("n", ltitest.Launch{})[lti.ClaimAGS].(map[string]any)
	lineitems, lineitem := claim["lineitems"].(string), claim["lineitem"].(string)
	c := gradesClient()

	scoreOnly := token(lti.ScopeAGSScore)
	if _, err := c.CreateLineItem(ctx, lineitems, scoreOnly, ags.LineItem{Label: "Essay", ScoreMaximum: 20}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("creating with a score token: %v, want 403", err)
	}
	if _, err := c.LineItems(ctx, lineitems, scoreOnly, ags.Query{}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("listing with a score token: %v, want 403", err)
	}
	readOnly := token(lti.ScopeAGSLineItemRead)
	if _, err := c.LineItems(ctx, lineitems, readOnly, ags.Query{}); err != nil {
		t.Fatalf("listing with a read-only token: %v", err)
	}
	if _, err := c.CreateLineItem(ctx, lineitems, readOnly, ags.LineItem{Label: "Essay", ScoreMaximum: 20}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("creating with a read-only token: %v, want 403", err)
	}

	grades := token(lti.ScopeAGSLineItem, lti.ScopeAGSScore)
	essay, err := c.CreateLineItem(ctx, lineitems, grades, ags.LineItem{Label: "Essay", ScoreMaximum: 20, ResourceID: "essay-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PostScore(ctx, essay.ID, grades, graded("nrps-course-1-3", 7, time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := c.PostScore(ctx, lineitem, scoreOnly, graded("nrps-course-1-3", 9, time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := c.PostScore(ctx, lineitem, readOnly, graded("nrps-course-1-3", 9, time.Now())); statusOf(err) != http.StatusForbidden {
		t.Fatalf("a score with a read-only token: %v, want 403", err)
	}
	book := p.Gradebook("course-1")
	if len(book) != 2 || *book[0].Scores["nrps-course-1-3"].ScoreGiven != 9 || *book[1].Scores["nrps-course-1-3"].ScoreGiven != 7 {
		t.Fatalf("gradebook = %+v", book)
	}

	// A platform that drops a token early: the tool asks for a new one.
	p.InjectAGSFaults(ltitest.FaultUnauthorized)
	err = c.PostScore(ctx, lineitem, grades, graded("nrps-course-1-4", 5, time.Now()))
	if statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("refused token: %v, want 401", err)
	}
	src.Invalidate(pl, []string{lti.ScopeAGSLineItem, lti.ScopeAGSScore}, grades)
	if fresh := token(lti.ScopeAGSLineItem, lti.ScopeAGSScore); fresh == grades {
		t.Fatal("no new token after Invalidate")
	} else if err := c.PostScore(ctx, lineitem, fresh, graded("nrps-course-1-4", 5, time.Now())); err != nil {
		t.Fatalf("with a new token: %v", err)
	}
	p.RevokeTokens()
	if err := c.PostScore(ctx, lineitem, grades, graded("nrps-course-1-4", 6, time.Now())); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("a revoked token: %v, want 401", err)
	}
}

func TestAGSLineItemsPagingAndFilters(t *testing.T) {
	p := gradesPlatform(t)
	p.AddResourceLink("c", "week-1")
	p.AddResourceLink("c", "week-2")
	var made []ags.LineItem
	for i := range 7 {
		li := ags.LineItem{Label: fmt.Sprintf("Item %d", i), ScoreMaximum: float64(10 * (i + 1)), ResourceID: fmt.Sprintf("quiz-%d", i%3),
			Tag: []string{"grade", "originality"}[i%2], ResourceLinkID: []string{"", "week-1", "week-2"}[i%3]}
		made = append(made, mustCreate(t, p, "c", li))
	}
	ctx := context.Background()
	c := gradesClient()
	before := p.AGSRequests()
	all, err := c.LineItems(ctx, p.LineItemsURL("c"), tokReadOnly, ags.Query{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(all, made) {
		t.Fatalf("listed %+v\nmade   %+v", all, made)
	}
	if n := p.AGSRequests() - before; n != 4 {
		t.Errorf("%d pages requested, want 4 of 2", n)
	}
	ids := func(items []ags.LineItem) []string {
		out := []string{}
		for _, li := range items {
			out = append(out, li.Label)
		}
		return out
	}
	tests := []struct {
		name string
		q    ags.Query
		want []string
	}{
		{"resource id", ags.Query{ResourceID: "quiz-1"}, []string{"Item 1", "Item 4"}},
		{"tag", ags.Query{Tag: "originality", Limit: 1}, []string{"Item 1", "Item 3", "Item 5"}},
		{"resource link", ags.Query{ResourceLinkID: "week-2"}, []string{"Item 2", "Item 5"}},
		{"all three", ags.Query{ResourceLinkID: "week-1", ResourceID: "quiz-1", Tag: "grade"}, []string{"Item 4"}},
		{"nothing matches", ags.Query{Tag: "none"}, []string{}},
		{"past the cap", ags.Query{Limit: 1000}, []string{"Item 0", "Item 1", "Item 2", "Item 3", "Item 4", "Item 5", "Item 6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, err := c.LineItems(ctx, p.LineItemsURL("c"), tokAll, tc.q)
			if err != nil || !slices.Equal(ids(items), tc.want) {
				t.Errorf("LineItems(%+v) = %q, %v; want %q", tc.q, ids(items), err, tc.want)
			}
		})
	}
	// Paging stays right while the gradebook changes between pages.
	first, err := c.LineItems(ctx, p.LineItemsURL("c"), tokAll, ags.Query{Limit: 50})
	if err != nil || len(first) != 7 {
		t.Fatal(err)
	}
	p.DeleteLineItem(made[0].ID)
	if items, _ := c.LineItems(ctx, p.LineItemsURL("c"), tokAll, ags.Query{Limit: 3}); len(items) != 6 || items[0] != made[1] {
		t.Errorf("after a deletion: %q", ids(items))
	}
}

func TestAGSCreateLineItem(t *testing.T) {
	p := gradesPlatform(t)
	p.AddResourceLink("c", "week-1")
	start := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 12.5, ResourceID: "q1", Tag: "grade",
		ResourceLinkID: "week-1", StartDateTime: start, EndDateTime: start.Add(7 * 24 * time.Hour)})
	if !strings.HasPrefix(li.ID, p.LineItemsURL("c")+"/") || li.Label != "Quiz" || li.ScoreMaximum != 12.5 ||
		li.ResourceID != "q1" || li.Tag != "grade" || li.ResourceLinkID != "week-1" || !li.StartDateTime.Equal(start) {
		t.Fatalf("created %+v", li)
	}
	held, ok := p.GetLineItem(li.ID)
	if !ok || held.Label != "Quiz" || held.EndDateTime != "2025-03-08T09:00:00.000000Z" {
		t.Fatalf("held %+v", held)
	}
	got, err := gradesClient().GetLineItem(context.Background(), li.ID, tokAll)
	if err != nil || got != li {
		t.Fatalf("GetLineItem = %+v, %v", got, err)
	}
	if _, err := gradesClient().CreateLineItem(context.Background(), p.LineItemsURL("nowhere"), tokAll,
		ags.LineItem{Label: "Quiz", ScoreMaximum: 1}); statusOf(err) != http.StatusNotFound {
		t.Errorf("a course the platform does not know: %v, want 404", err)
	}
	if _, err := gradesClient().CreateLineItem(context.Background(), p.LineItemsURL("c"), tokAll,
		ags.LineItem{Label: "Quiz", ScoreMaximum: 1, ResourceLinkID: "not-a-link"}); statusOf(err) != http.StatusNotFound {
		t.Errorf("a resource link the course does not have: %v, want 404", err)
	}
}

// call makes a raw request of the platform with the all-scopes token.
func call(t *testing.T, method, url, contentType, body string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tokAll)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The platform refuses line items the specification does not allow, as a
// real one does.
func TestAGSCreateLineItemRefused(t *testing.T) {
	p := gradesPlatform(t)
	tests := []struct {
		name, contentType, body string
		status                  int
	}{
		{"valid", ags.MediaTypeLineItem, `{"label":"Quiz","scoreMaximum":10}`, 201},
		{"with a charset", ags.MediaTypeLineItem + "; charset=utf-8", `{"label":"Quiz","scoreMaximum":10}`, 201},
		{"id ignored", ags.MediaTypeLineItem, `{"id":"https://elsewhere.example/1","label":"Quiz","scoreMaximum":10}`, 201},
		{"plain JSON", "application/json", `{"label":"Quiz","scoreMaximum":10}`, 415},
		{"no content type", "", `{"label":"Quiz","scoreMaximum":10}`, 415},
		{"no label", ags.MediaTypeLineItem, `{"scoreMaximum":10}`, 400},
		{"blank label", ags.MediaTypeLineItem, `{"label":"  ","scoreMaximum":10}`, 400},
		{"label a number", ags.MediaTypeLineItem, `{"label":5,"scoreMaximum":10}`, 400},
		{"no maximum", ags.MediaTypeLineItem, `{"label":"Quiz"}`, 400},
		{"maximum 0", ags.MediaTypeLineItem, `{"label":"Quiz","scoreMaximum":0}`, 400},
		{"maximum negative", ags.MediaTypeLineItem, `{"label":"Quiz","scoreMaximum":-1}`, 400},
		{"maximum a string", ags.MediaTypeLineItem, `{"label":"Quiz","scoreMaximum":"10"}`, 400},
		{"date not RFC 3339", ags.MediaTypeLineItem, `{"label":"Quiz","scoreMaximum":10,"endDateTime":"2025-03-01"}`, 400},
		{"not JSON", ags.MediaTypeLineItem, `label=Quiz`, 400},
		{"an array", ags.MediaTypeLineItem, `[{"label":"Quiz","scoreMaximum":10}]`, 400},
		{"two objects", ags.MediaTypeLineItem, `{"label":"Quiz","scoreMaximum":10}{}`, 400},
		{"too large", ags.MediaTypeLineItem, `{"label":"` + strings.Repeat("q", 70<<10) + `","scoreMaximum":10}`, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(p.Gradebook("c"))
			status, body := call(t, http.MethodPost, p.LineItemsURL("c"), tc.contentType, tc.body)
			if status != tc.status {
				t.Fatalf("answered %d %s, want %d", status, body, tc.status)
			}
			if grew := len(p.Gradebook("c")) - before; (status == 201) != (grew == 1) {
				t.Errorf("answered %d and the gradebook grew by %d", status, grew)
			}
		})
	}
}

func TestAGSUpdateAndDeleteLineItem(t *testing.T) {
	p := gradesPlatform(t)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	if status, body := call(t, http.MethodPut, li.ID, ags.MediaTypeLineItem, `{"id":"`+li.ID+`","label":"Quiz (revised)","scoreMaximum":20}`); status != 200 {
		t.Fatalf("PUT answered %d %s", status, body)
	}
	if status, _ := call(t, http.MethodPut, li.ID, ags.MediaTypeLineItem, `{"id":"`+li.ID+`0","label":"x","scoreMaximum":20}`); status != 400 {
		t.Errorf("PUT with another id answered %d, want 400", status)
	}
	got, err := gradesClient().GetLineItem(context.Background(), li.ID, tokAll)
	if err != nil || got.Label != "Quiz (revised)" || got.ScoreMaximum != 20 {
		t.Fatalf("after PUT: %+v, %v", got, err)
	}
	if err := gradesClient().PostScore(context.Background(), li.ID, tokAll, graded(member(1), 5, time.Now())); err != nil {
		t.Fatal(err)
	}
	if status, _ := call(t, http.MethodDelete, li.ID, "", ""); status != http.StatusNoContent {
		t.Fatalf("DELETE answered %d", status)
	}
	c := gradesClient()
	var se *ags.StatusError
	if _, err := c.GetLineItem(context.Background(), li.ID, tokAll); !errors.As(err, &se) || se.Status != 404 || se.Temporary() {
		t.Errorf("reading a deleted line item: %v, want a permanent 404", err)
	}
	if err := c.PostScore(context.Background(), li.ID, tokAll, graded(member(1), 6, time.Now())); statusOf(err) != http.StatusNotFound {
		t.Errorf("a score for a deleted line item: %v, want 404", err)
	}
	if status, _ := call(t, http.MethodDelete, li.ID, "", ""); status != http.StatusNotFound {
		t.Errorf("a second DELETE answered %d, want 404", status)
	}
	if p.Scores(li.ID, member(1)) != nil {
		t.Error("a deleted line item keeps its scores")
	}
}

func TestAGSScores(t *testing.T) {
	p := gradesPlatform(t)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	c := gradesClient()
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	posts := []ags.Score{
		{UserID: member(1), Timestamp: t0, ActivityProgress: ags.Started, GradingProgress: ags.NotReady},
		{UserID: member(1), ScoreGiven: ags.Points(6.5), ScoreMaximum: ags.Points(10), Comment: "Good work.", Timestamp: t0.Add(time.Minute),
			ActivityProgress: ags.Submitted, GradingProgress: ags.PendingManual},
		graded(member(1), 8, t0.Add(2*time.Minute)),
		graded(member(2), 12, t0), // extra credit
	}
	for i, s := range posts {
		if err := c.PostScore(ctx, li.ID, tokScore, s); err != nil {
			t.Fatalf("score %d: %v", i, err)
		}
	}
	history := p.Scores(li.ID, member(1))
	if len(history) != 3 || history[0].ScoreGiven != nil || history[1].Comment != "Good work." || *history[1].ScoreGiven != 6.5 ||
		history[1].GradingProgress != "PendingManual" || !history[2].Timestamp.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("history = %+v", history)
	}
	book := p.Gradebook("c")
	if len(book) != 1 || book[0].ID != li.ID || len(book[0].Scores) != 2 {
		t.Fatalf("gradebook = %+v", book)
	}
	if s := book[0].Scores[member(1)]; *s.ScoreGiven != 8 || *s.ScoreMaximum != 10 || s.ActivityProgress != "Completed" {
		t.Errorf("member 1's score = %+v", s)
	}
	if s := book[0].Scores[member(2)]; *s.ScoreGiven != 12 {
		t.Errorf("member 2's score = %+v", s)
	}
	// Clearing: no scoreGiven, as the specification says.
	if err := c.PostScore(ctx, li.ID, tokScore, ags.Score{UserID: member(2), Timestamp: t0.Add(time.Hour),
		ActivityProgress: ags.Initialized, GradingProgress: ags.NotReady}); err != nil {
		t.Fatal(err)
	}
	if s := p.Gradebook("c")[0].Scores[member(2)]; s.ScoreGiven != nil || s.GradingProgress != "NotReady" {
		t.Errorf("cleared score = %+v", s)
	}
}

// A score no newer than the last one accepted for the same line item and
// learner is refused; others are independent.
func TestAGSScoreTimestamps(t *testing.T) {
	p := gradesPlatform(t)
	quiz := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	essay := mustCreate(t, p, "c", ags.LineItem{Label: "Essay", ScoreMaximum: 10})
	c := gradesClient()
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	post := func(li ags.LineItem, user string, given float64, at time.Time) error {
		return c.PostScore(ctx, li.ID, tokScore, graded(user, given, at))
	}
	if err := post(quiz, member(1), 5, t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		at   time.Time
	}{{"the same timestamp", t0}, {"an older one", t0.Add(-time.Second)}, {"older by a microsecond", t0.Add(-time.Microsecond)}} {
		var se *ags.StatusError
		if err := post(quiz, member(1), 9, tc.at); !errors.As(err, &se) || se.Status != http.StatusConflict || se.Temporary() {
			t.Errorf("%s: %v, want a permanent 409", tc.name, err)
		}
	}
	if err := post(quiz, member(1), 6, t0.Add(time.Microsecond)); err != nil {
		t.Errorf("a microsecond later: %v", err)
	}
	if err := post(quiz, member(2), 7, t0.Add(-time.Hour)); err != nil {
		t.Errorf("another learner, earlier: %v", err)
	}
	if err := post(essay, member(1), 7, t0.Add(-time.Hour)); err != nil {
		t.Errorf("another line item, earlier: %v", err)
	}
	if got := p.Scores(quiz.ID, member(1)); len(got) != 2 || *got[1].ScoreGiven != 6 {
		t.Errorf("quiz scores of member 1 = %+v", got)
	}
	// As Canvas answers.
	p.StaleScoreStatus = http.StatusBadRequest
	if err := post(quiz, member(1), 9, t0); statusOf(err) != http.StatusBadRequest {
		t.Errorf("with StaleScoreStatus 400: %v", err)
	}
}

// The platform checks scores as the specification asks.
func TestAGSScoreRefused(t *testing.T) {
	p := gradesPlatform(t)
	p.Roster("c").Remove(9)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	scores := li.ID + "/scores"
	score := func(fields string) string {
		return `{"userId":"nrps-c-1","timestamp":"2025-03-01T12:00:00.123Z","activityProgress":"Completed","gradingProgress":"FullyGraded"` + fields + `}`
	}
	tests := []struct {
		name, contentType, body string
		status                  int
	}{
		{"valid", ags.MediaTypeScore, score(`,"scoreGiven":5,"scoreMaximum":10,"comment":"ok"`), 204},
		{"line item's media type (Blackboard's documentation)", ags.MediaTypeLineItem, score(`,"scoreGiven":5,"scoreMaximum":10`), 415},
		{"plain JSON", "application/json", score(""), 415},
		{"no userId", ags.MediaTypeScore, `{"timestamp":"2025-03-01T12:00:00Z","activityProgress":"Completed","gradingProgress":"FullyGraded"}`, 400},
		{"userId a number", ags.MediaTypeScore, `{"userId":4,"timestamp":"2025-03-01T12:00:00Z","activityProgress":"Completed","gradingProgress":"FullyGraded"}`, 400},
		{"not a member", ags.MediaTypeScore, strings.Replace(score(""), "nrps-c-1", "nrps-c-99", 1), 422},
		{"removed from the course", ags.MediaTypeScore, strings.Replace(score(""), "nrps-c-1", "nrps-c-9", 1), 422},
		{"another course's member", ags.MediaTypeScore, strings.Replace(score(""), "nrps-c-1", "nrps-d-1", 1), 422},
		{"no timestamp", ags.MediaTypeScore, `{"userId":"nrps-c-1","activityProgress":"Completed","gradingProgress":"FullyGraded"}`, 400},
		{"timestamp without a zone", ags.MediaTypeScore, strings.Replace(score(""), "12:00:00.123Z", "12:00:00.123", 1), 400},
		{"timestamp a date only", ags.MediaTypeScore, strings.Replace(score(""), "2025-03-01T12:00:00.123Z", "2025-03-01", 1), 400},
		{"unknown activity progress", ags.MediaTypeScore, strings.Replace(score(""), `"Completed"`, `"Done"`, 1), 400},
		{"no grading progress", ags.MediaTypeScore, strings.Replace(score(""), `,"gradingProgress":"FullyGraded"`, "", 1), 400},
		{"grading progress in lower case", ags.MediaTypeScore, strings.Replace(score(""), `"FullyGraded"`, `"fullygraded"`, 1), 400},
		{"negative score", ags.MediaTypeScore, score(`,"scoreGiven":-1,"scoreMaximum":10`), 400},
		{"score a string", ags.MediaTypeScore, score(`,"scoreGiven":"5","scoreMaximum":10`), 400},
		{"maximum 0", ags.MediaTypeScore, score(`,"scoreGiven":0,"scoreMaximum":0`), 400},
		{"score without maximum", ags.MediaTypeScore, score(`,"scoreGiven":5`), 422},
		{"comment a number", ags.MediaTypeScore, score(`,"comment":5`), 400},
		{"not JSON", ags.MediaTypeScore, `userId=nrps-c-1`, 400},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each case on a learner of its own, so the timestamp rule
			// does not decide.
			body := strings.Replace(tc.body, `"nrps-c-1"`, fmt.Sprintf(`"nrps-c-%d"`, i%9), 1)
			if status, text := call(t, http.MethodPost, scores, tc.contentType, body); status != tc.status {
				t.Fatalf("answered %d %s, want %d", status, text, tc.status)
			}
		})
	}
	if n := len(p.Gradebook("c")[0].Scores); n != 1 {
		t.Errorf("%d scores kept, want only the valid one", n)
	}
}

// The score bodies Canvas, Moodle and Blackboard document are taken, but
// for Blackboard's scoreGiven without a scoreMaximum, which the
// specification does not allow and Canvas refuses as the fake does.
func TestAGSRecordedScores(t *testing.T) {
	p := gradesPlatform(t)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 100})
	read := func(name string) json.RawMessage {
		b, err := os.ReadFile("testdata/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Data json.RawMessage }
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Data
	}
	var blackboard map[string]json.RawMessage
	_ = json.Unmarshal(read("blackboard/ags-score-requests"), &blackboard)
	for i, tc := range []struct {
		body   json.RawMessage
		status int
	}{
		{read("canvas/ags-score-request"), 204},
		{read("moodle/ags-score-request"), 204},
		{blackboard["create_or_update"], 422},
		{blackboard["delete"], 204},
	} {
		var body map[string]any
		_ = json.Unmarshal(tc.body, &body)
		body["userId"] = member(i)
		b, _ := json.Marshal(body)
		if status, text := call(t, http.MethodPost, li.ID+"/scores", ags.MediaTypeScore, string(b)); status != tc.status {
			t.Errorf("recorded score %d answered %d %s, want %d", i, status, text, tc.status)
		}
	}
	book := p.Gradebook("c")[0].Scores
	if s := book[member(0)]; *s.ScoreGiven != 83 || s.Comment != "This is exceptional work." ||
		!s.Timestamp.Equal(time.Date(2017, 4, 16, 18, 54, 36, 736_000_000, time.UTC)) {
		t.Errorf("Canvas's score = %+v", s)
	}
	if s := book[member(3)]; s.ScoreGiven != nil || s.ActivityProgress != "Initialized" {
		t.Errorf("Blackboard's clearing score = %+v", s)
	}
}

// A platform whose service URLs carry a query (Moodle's type_id) needs
// it on every request: the client keeps it, scores included.
func TestAGSQueryKept(t *testing.T) {
	p := gradesPlatform(t)
	p.AGSQuery = "type_id=1"
	claim := p.Claims("n", ltitest.Launch{})[lti.ClaimAGS].(map[string]any)
	lineitems, lineitem := claim["lineitems"].(string), claim["lineitem"].(string)
	if !strings.HasSuffix(lineitems, "/lineitems?type_id=1") || !strings.HasSuffix(lineitem, "?type_id=1") {
		t.Fatalf("claim = %v", claim)
	}
	c := gradesClient()
	ctx := context.Background()
	for i := range 3 {
		mustCreate(t, p, "c", ags.LineItem{Label: fmt.Sprint("Quiz ", i), ScoreMaximum: 10})
	}
	items, err := c.LineItems(ctx, p.LineItemsURL("c"), tokAll, ags.Query{Limit: 1})
	if err != nil || len(items) != 3 || !strings.HasSuffix(items[0].ID, "?type_id=1") {
		t.Fatalf("LineItems = %+v, %v", items, err)
	}
	if err := c.PostScore(ctx, items[2].ID, tokAll, graded(member(3), 4, time.Now())); err != nil {
		t.Fatal(err)
	}
	if got := p.Scores(items[2].ID, member(3)); len(got) != 1 {
		t.Errorf("scores %+v", got)
	}
	bare := strings.TrimSuffix(items[2].ID, "?type_id=1")
	if _, err := c.GetLineItem(ctx, bare, tokAll); statusOf(err) != http.StatusBadRequest {
		t.Errorf("without type_id: %v, want 400", err)
	}
}

func TestAGSAccept(t *testing.T) {
	p := gradesPlatform(t)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	for _, tc := range []struct {
		url, accept string
		status      int
	}{
		{li.ID, ags.MediaTypeLineItem, 200},
		{li.ID, "text/html, */*;q=0.1", 200},
		{li.ID, "application/json", 406},
		{li.ID, ags.MediaTypeLineItemContainer, 406},
		{p.LineItemsURL("c"), ags.MediaTypeLineItemContainer, 200},
		{p.LineItemsURL("c"), ags.MediaTypeLineItem, 406},
	} {
		if status, _ := call(t, http.MethodGet, tc.url, "", "", "Accept", tc.accept); status != tc.status {
			t.Errorf("GET %s Accept %q answered %d, want %d", tc.url, tc.accept, status, tc.status)
		}
	}
	if status, _ := call(t, http.MethodGet, p.LineItemsURL("c")+"?limit=-1", "", ""); status != 400 {
		t.Errorf("a negative limit answered %d", status)
	}
}

func TestAGSFaults(t *testing.T) {
	var se *ags.StatusError
	tests := []struct {
		name  string
		fault ltitest.Fault
		check func(t *testing.T, err error)
	}{
		{"too many", ltitest.FaultTooMany, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 429 || se.RetryAfter != time.Second || !se.Throttled || !se.Temporary() {
				t.Errorf("error = %v", err)
			}
		}},
		{"Canvas throttling", ltitest.FaultCanvasThrottle, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 403 || !se.Throttled || !se.Temporary() {
				t.Errorf("error = %v", err)
			}
		}},
		{"unavailable", ltitest.FaultUnavailable, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 503 || se.RetryAfter != time.Second || !se.Throttled {
				t.Errorf("error = %v", err)
			}
		}},
		{"server error", ltitest.FaultServerError, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 500 || se.Throttled || !se.Temporary() {
				t.Errorf("error = %v", err)
			}
		}},
		{"token refused", ltitest.FaultUnauthorized, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 401 || se.Temporary() {
				t.Errorf("error = %v", err)
			}
		}},
		{"dropped connection", ltitest.FaultDropConnection, func(t *testing.T, err error) {
			if err == nil || errors.As(err, &se) || errors.Is(err, ags.ErrMalformed) {
				t.Errorf("error = %v, want a transport error", err)
			}
		}},
	}
	p := gradesPlatform(t)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	c := gradesClient()
	ctx := context.Background()
	at := time.Now()
	calls := map[string]func() error{
		"list": func() error { _, err := c.LineItems(ctx, p.LineItemsURL("c"), tokAll, ags.Query{}); return err },
		"get":  func() error { _, err := c.GetLineItem(ctx, li.ID, tokAll); return err },
		"score": func() error {
			at = at.Add(time.Second)
			return c.PostScore(ctx, li.ID, tokAll, graded(member(1), 5, at))
		},
		"create": func() error {
			_, err := c.CreateLineItem(ctx, p.LineItemsURL("c"), tokAll, ags.LineItem{Label: "More", ScoreMaximum: 1})
			return err
		},
	}
	for _, tc := range tests {
		for name, f := range calls {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				p.InjectAGSFaults(tc.fault)
				tc.check(t, f())
				if err := f(); err != nil {
					t.Errorf("the request after the fault: %v", err)
				}
			})
		}
	}
	if n := len(p.Scores(li.ID, member(1))); n != len(tests) {
		t.Errorf("%d scores kept, want one for each fault (the request after it)", n)
	}
}

// A platform's truncated answer is refused, not half read.
func TestAGSMalformedAnswers(t *testing.T) {
	p := gradesPlatform(t)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	c := gradesClient()
	ctx := context.Background()
	for name, f := range map[string]func() error{
		"list":   func() error { _, err := c.LineItems(ctx, p.LineItemsURL("c"), tokAll, ags.Query{}); return err },
		"get":    func() error { _, err := c.GetLineItem(ctx, li.ID, tokAll); return err },
		"create": func() error { _, err := c.CreateLineItem(ctx, p.LineItemsURL("c"), tokAll, li); return err },
	} {
		p.InjectAGSFaults(ltitest.FaultMalformed)
		if err := f(); !errors.Is(err, ags.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	if n := len(p.Gradebook("c")); n != 1 {
		t.Errorf("%d line items: the malformed create made one", n)
	}
}

func TestAGSSlow(t *testing.T) {
	p := gradesPlatform(t)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	c := gradesClient()

	p.AGSSlowDelay = 5 * time.Second
	p.InjectAGSFaults(ltitest.FaultSlow)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.PostScore(ctx, li.ID, tokAll, graded(member(1), 5, time.Now())); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("a tool giving up on a slow platform: %v after %s", err, time.Since(start))
	}
	if len(p.Scores(li.ID, member(1))) != 0 {
		t.Error("a score the tool gave up on was kept")
	}

	// Another platform: the first may still be holding the abandoned
	// request, reading its delay.
	p = gradesPlatform(t)
	li = mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	p.AGSSlowDelay = 200 * time.Millisecond
	p.InjectAGSFaults(ltitest.FaultSlow)
	start = time.Now()
	if err := c.PostScore(context.Background(), li.ID, tokAll, graded(member(2), 5, time.Now())); err != nil || time.Since(start) < 200*time.Millisecond {
		t.Errorf("a slow score: %v after %s", err, time.Since(start))
	}
	if len(p.Scores(li.ID, member(2))) != 1 {
		t.Error("the slow score was not kept")
	}
}

// Faults of one service do not touch the other.
func TestAGSFaultsApart(t *testing.T) {
	p := gradesPlatform(t)
	p.GrantToken("token", lti.ScopeNRPS)
	p.InjectNRPSFaults(ltitest.FaultServerError)
	if _, err := gradesClient().LineItems(context.Background(), p.LineItemsURL("c"), tokAll, ags.Query{}); err != nil {
		t.Fatalf("a roster fault failed a grades request: %v", err)
	}
	p.InjectAGSFaults(ltitest.FaultServerError)
	if _, err := rosterClient().Fetch(context.Background(), pageURL(t, p, "c", nrps.Query{}), "token"); err == nil {
		t.Fatal("the roster fault is still queued: want it to fail the roster request")
	}
	if _, err := rosterClient().Fetch(context.Background(), pageURL(t, p, "c", nrps.Query{}), "token"); err != nil {
		t.Fatalf("a grades fault failed a roster request: %v", err)
	}
}

func TestAGSBearerRequired(t *testing.T) {
	p := gradesPlatform(t)
	li := mustCreate(t, p, "c", ags.LineItem{Label: "Quiz", ScoreMaximum: 10})
	before := p.AGSRequests()
	for _, r := range []struct{ method, url string }{{"GET", p.LineItemsURL("c")}, {"POST", p.LineItemsURL("c")},
		{"GET", li.ID}, {"PUT", li.ID}, {"DELETE", li.ID}, {"POST", li.ID + "/scores"}} {
		req, _ := http.NewRequest(r.method, r.url, bytes.NewReader(nil))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s without a token: %d", r.method, r.url, res.StatusCode)
		}
	}
	if n := p.AGSRequests() - before; n != 6 {
		t.Errorf("%d requests counted, want 6", n)
	}
	if _, ok := p.GetLineItem(li.ID); !ok {
		t.Error("an unauthorised DELETE deleted")
	}
}

func TestDemoPageShowsGradebook(t *testing.T) {
	p := gradesPlatform(t)
	p.SetRoster("course-1", 5)
	claim := p.Claims("n", ltitest.Launch{})[lti.ClaimAGS].(map[string]any)
	if err := gradesClient().PostScore(context.Background(), claim["lineitem"].(string), tokScore,
		graded("nrps-course-1-3", 7.5, time.Now())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(p.Server.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"Gradebook of course-1", "Week 1 quiz", "nrps-course-1-3: 7.5/10 (FullyGraded)"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("demo page lacks %q", want)
		}
	}
}
