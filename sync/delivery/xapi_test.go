package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/tenants/agreements"
)

const home = "https://hub.example"

// lrs is a Learning Record Store on loopback that keeps statements as the
// xAPI 1.0.3 statements resource does: PUT with a statementId stores one
// (204), and a second PUT with the same id changes nothing and answers
// 409 when the statement differs, 204 when it matches. It refuses
// requests without the version header or its Basic credentials.
type lrs struct {
	*httptest.Server
	mu         sync.Mutex
	statements map[string][]byte
	puts       int
	header     http.Header
}

func newLRS(t *testing.T) *lrs {
	l := &lrs{statements: map[string][]byte{}}
	l.Server = httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(l.Close)
	return l
}

func (l *lrs) serve(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.header = r.Header.Clone()
	w.Header().Set("X-Experience-API-Version", "1.0.3")
	user, pass, ok := r.BasicAuth()
	switch {
	case r.Header.Get("X-Experience-API-Version") != "1.0.3":
		http.Error(w, "missing or wrong X-Experience-API-Version", http.StatusBadRequest)
		return
	case !ok || user != "key" || pass != "secret":
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	case r.URL.Path != "/xapi/statements":
		http.NotFound(w, r)
		return
	}
	id := r.URL.Query().Get("statementId")
	if r.Method == http.MethodGet {
		if _, held := l.statements[id]; !held {
			http.NotFound(w, r)
		}
		return
	}
	if r.Method != http.MethodPut || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want PUT of application/json", http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(r.Body)
	l.puts++
	if held, ok := l.statements[id]; ok {
		if !bytes.Equal(held, body) {
			w.WriteHeader(http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	l.statements[id] = body
	w.WriteHeader(http.StatusNoContent)
}

func (l *lrs) target() delivery.LRS {
	return delivery.LRS{Endpoint: l.URL + "/xapi/", Username: "key", Password: "secret"}
}

func ptr[T any](v T) *T { return &v }

func record() delivery.Record {
	return delivery.Record{ID: uuid.New(), Category: agreements.CategoryScores, Learner: uuid.New(),
		ScoreGiven: ptr(17.0), ScoreMax: ptr(20.0), Completed: ptr(true), Success: ptr(true), TimeSpentSeconds: 3725,
		ActivityID: "quiz-1", ActivityTitle: "Safety quiz", CourseID: "course-7", CourseTitle: "Workplace safety",
		OccurredAt: time.Date(2026, 3, 1, 12, 30, 15, 250e6, time.UTC)}
}

var isoDuration = regexp.MustCompile(`^P(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$`)

// checkStatement validates a statement as an LRS would read it: the
// properties xAPI 1.0.3 requires and the ones the hub sets, by their JSON.
func checkStatement(t *testing.T, body []byte, r delivery.Record) map[string]any {
	t.Helper()
	var st map[string]any
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("statement is not JSON: %v", err)
	}
	for k := range st {
		if !slices.Contains([]string{"id", "actor", "verb", "object", "result", "context", "timestamp"}, k) {
			t.Errorf("statement has %q, which the hub does not set (version, stored and authority are the LRS's)", k)
		}
	}
	id, err := uuid.Parse(str(st["id"]))
	if err != nil || id.Variant() != uuid.RFC4122 || strings.ToLower(str(st["id"])) != str(st["id"]) {
		t.Errorf("id %v is not a UUID in standard form", st["id"])
	}
	actor := obj(st["actor"])
	account := obj(actor["account"])
	if str(actor["objectType"]) != "Agent" || str(account["homePage"]) != home || str(account["name"]) != r.Learner.String() {
		t.Errorf("actor %v: want an Agent with the hub's account", actor)
	}
	for _, ifi := range []string{"mbox", "mbox_sha1sum", "openid"} {
		if _, ok := actor[ifi]; ok {
			t.Errorf("actor has %s beside its account: xAPI allows one inverse functional identifier", ifi)
		}
	}
	verb := obj(st["verb"])
	if !strings.HasPrefix(str(verb["id"]), "http://adlnet.gov/expapi/verbs/") || str(obj(verb["display"])["en-US"]) == "" {
		t.Errorf("verb %v", verb)
	}
	object := obj(st["object"])
	if u, err := url.Parse(str(object["id"])); err != nil || u.Scheme == "" || u.Host == "" || str(object["objectType"]) != "Activity" {
		t.Errorf("object %v: want an Activity with an absolute IRI", object)
	}
	if ts, err := time.Parse(time.RFC3339Nano, str(st["timestamp"])); err != nil || !ts.Equal(r.OccurredAt) {
		t.Errorf("timestamp %v, want %s", st["timestamp"], r.OccurredAt)
	}
	if res, ok := st["result"]; ok {
		checkResult(t, obj(res))
	}
	return st
}

func checkResult(t *testing.T, res map[string]any) {
	t.Helper()
	if d, ok := res["duration"]; ok && !isoDuration.MatchString(str(d)) {
		t.Errorf("duration %v is not an ISO 8601 duration", d)
	}
	score, ok := res["score"]
	if !ok {
		return
	}
	s := obj(score)
	if scaled, ok := s["scaled"].(float64); ok && (scaled < -1 || scaled > 1) {
		t.Errorf("score.scaled %v is outside [-1, 1]", scaled)
	}
	raw, hasRaw := s["raw"].(float64)
	lo, hasMin := s["min"].(float64)
	hi, hasMax := s["max"].(float64)
	if hasMin && hasMax && lo >= hi {
		t.Errorf("score.min %v is not below max %v", lo, hi)
	}
	if hasRaw && ((hasMin && raw < lo) || (hasMax && raw > hi)) {
		t.Errorf("score.raw %v lies outside [%v, %v]", raw, lo, hi)
	}
}

func str(v any) string           { s, _ := v.(string); return s }
func obj(v any) map[string]any   { m, _ := v.(map[string]any); return m }
func list(v any) []any           { l, _ := v.([]any); return l }
func num(v any) (float64, bool)  { f, ok := v.(float64); return f, ok }
func boolean(v any) (bool, bool) { b, ok := v.(bool); return b, ok }
func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestStatementIsStoredOnceWhateverTheResends(t *testing.T) {
	l := newLRS(t)
	r := record()
	dest := uuid.New()
	st, err := delivery.NewStatement(r, home+"/", dest)
	if err != nil {
		t.Fatal(err)
	}
	for try := 1; try <= 3; try++ {
		again, err := delivery.NewStatement(r, home, dest)
		if err != nil || again.ID != st.ID {
			t.Fatalf("try %d: statement id %s, want %s (%v)", try, again.ID, st.ID, err)
		}
		res, err := sender().SendStatement(context.Background(), l.target(), again)
		if err != nil || res.Outcome != delivery.Delivered || res.Status != http.StatusNoContent {
			t.Fatalf("try %d: %+v, %v", try, res, err)
		}
	}
	if len(l.statements) != 1 || l.puts != 3 {
		t.Fatalf("the LRS holds %d statements after %d PUTs, want 1 after 3", len(l.statements), l.puts)
	}
	if h := l.header; h.Get("X-Experience-API-Version") != "1.0.3" || !strings.HasPrefix(h.Get("Authorization"), "Basic ") {
		t.Fatalf("headers %v", h)
	}
	body := l.statements[st.ID.String()]
	parsed := checkStatement(t, body, r)
	if parsed["id"] != st.ID.String() {
		t.Fatalf("the statement's id %v differs from its statementId %s", parsed["id"], st.ID)
	}

	// A changed record sent again under the same id: the LRS keeps the first
	// and answers 409, which is delivered: that id is this record's.
	r.ScoreGiven = ptr(19.0)
	changed, _ := delivery.NewStatement(r, home, dest)
	res, err := sender().SendStatement(context.Background(), l.target(), changed)
	if err != nil || res.Status != http.StatusConflict || res.Outcome != delivery.Delivered {
		t.Fatalf("resend of a changed record: %+v, %v", res, err)
	}
	if !bytes.Equal(l.statements[st.ID.String()], body) {
		t.Fatal("the LRS's statement changed")
	}
}

func TestStatementFields(t *testing.T) {
	r := record()
	l := newLRS(t)
	st, err := delivery.NewStatement(r, home, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender().SendStatement(context.Background(), l.target(), st); err != nil {
		t.Fatal(err)
	}
	s := checkStatement(t, l.statements[st.ID.String()], r)
	if got := str(obj(s["verb"])["id"]); got != "http://adlnet.gov/expapi/verbs/passed" {
		t.Errorf("verb %s, want passed", got)
	}
	object := obj(s["object"])
	if str(object["id"]) != home+"/xapi/activities/quiz-1" || str(obj(obj(object["definition"])["name"])["en-US"]) != "Safety quiz" {
		t.Errorf("object %v", object)
	}
	res := obj(s["result"])
	score := obj(res["score"])
	scaled, _ := num(score["scaled"])
	raw, _ := num(score["raw"])
	lo, hasMin := num(score["min"])
	hi, _ := num(score["max"])
	if scaled != 0.85 || raw != 17 || !hasMin || lo != 0 || hi != 20 {
		t.Errorf("score %v, want scaled 0.85, raw 17 of 0–20", score)
	}
	success, _ := boolean(res["success"])
	completion, _ := boolean(res["completion"])
	if !success || !completion || str(res["duration"]) != "PT1H2M5S" {
		t.Errorf("result %v", res)
	}
	parent := list(obj(obj(s["context"])["contextActivities"])["parent"])
	if len(parent) != 1 {
		t.Fatalf("context %v: want the course as the parent", s["context"])
	}
	course := obj(parent[0])
	def := obj(course["definition"])
	if str(course["id"]) != home+"/xapi/courses/course-7" || str(def["type"]) != "http://adlnet.gov/expapi/activities/course" ||
		str(obj(def["name"])["en-US"]) != "Workplace safety" {
		t.Errorf("course %v", course)
	}
	if _, ok := obj(s["actor"])["name"]; ok {
		t.Error("the actor has a name the record's fields did not allow")
	}
}

func TestStatementVerbs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		success   *bool
		completed *bool
		verb      string
	}{
		{"passed", ptr(true), ptr(true), "passed"},
		{"failed", ptr(false), ptr(true), "failed"},
		{"completed, not graded", nil, ptr(true), "completed"},
		{"under way", nil, ptr(false), "progressed"},
		{"nothing said", nil, nil, "progressed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := record()
			r.Success, r.Completed = tc.success, tc.completed
			st, err := delivery.NewStatement(r, home, uuid.New())
			if err != nil || st.Verb.ID != "http://adlnet.gov/expapi/verbs/"+tc.verb || st.Verb.Display["en-US"] != tc.verb {
				t.Fatalf("verb %+v, want %s (%v)", st.Verb, tc.verb, err)
			}
		})
	}
}

func TestStatementScores(t *testing.T) {
	for _, tc := range []struct {
		name          string
		given, max    *float64
		scaled        *float64
		raw, min, top *float64
	}{
		{"in range", ptr(3.0), ptr(4.0), ptr(0.75), ptr(3.0), ptr(0.0), ptr(4.0)},
		{"full marks", ptr(4.0), ptr(4.0), ptr(1.0), ptr(4.0), ptr(0.0), ptr(4.0)},
		{"extra credit is held to 1, raw left out", ptr(12.0), ptr(10.0), ptr(1.0), nil, nil, nil},
		{"a penalty below zero is held to -1, raw left out", ptr(-30.0), ptr(10.0), ptr(-1.0), nil, nil, nil},
		{"no maximum: raw alone", ptr(7.0), nil, nil, ptr(7.0), nil, nil},
		{"a zero maximum: raw alone", ptr(7.0), ptr(0.0), nil, ptr(7.0), nil, nil},
		{"no score", nil, nil, nil, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := record()
			r.ScoreGiven, r.ScoreMax = tc.given, tc.max
			st, err := delivery.NewStatement(r, home, uuid.New())
			if err != nil {
				t.Fatal(err)
			}
			var s delivery.Score
			if st.Result.Score != nil {
				s = *st.Result.Score
			}
			for _, f := range []struct {
				name      string
				got, want *float64
			}{{"scaled", s.Scaled, tc.scaled}, {"raw", s.Raw, tc.raw}, {"min", s.Min, tc.min}, {"max", s.Max, tc.top}} {
				if (f.got == nil) != (f.want == nil) || (f.got != nil && *f.got != *f.want) {
					t.Errorf("%s = %v, want %v", f.name, deref(f.got), deref(f.want))
				}
			}
			body, _ := json.Marshal(st)
			checkStatement(t, body, r)
		})
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func TestDuration(t *testing.T) {
	for secs, want := range map[int64]string{0: "PT0S", 45: "PT45S", 60: "PT1M", 3600: "PT1H", 3725: "PT1H2M5S", 90061: "PT25H1M1S"} {
		if got := delivery.Duration(secs); got != want || !isoDuration.MatchString(got) {
			t.Errorf("Duration(%d) = %q, want %q", secs, got, want)
		}
	}
}

func TestStatementIDs(t *testing.T) {
	rec, dest := uuid.New(), uuid.New()
	id := delivery.StatementID(rec, dest)
	if id != delivery.StatementID(rec, dest) || id == delivery.StatementID(rec, uuid.New()) || id == delivery.StatementID(uuid.New(), dest) {
		t.Fatal("a statement id is not a function of its record and destination alone")
	}
	if id.Version() != 5 || id.Variant() != uuid.RFC4122 {
		t.Fatalf("statement id %s: version %d, variant %s", id, id.Version(), id.Variant())
	}
}

// TestStatementIdentityFields: a name goes on the actor, an email and an
// external id in the context's extensions, each only when allowed.
func TestStatementIdentityFields(t *testing.T) {
	r := record()
	r.Name, r.Email, r.ExternalID = "Ada Lovelace", "ada@example.com", "E-1"
	for _, tc := range []struct {
		name   string
		fields []agreements.Field
	}{
		{"none allowed", nil},
		{"name", []agreements.Field{agreements.FieldName}},
		{"email and external id", []agreements.Field{agreements.FieldEmail, agreements.FieldExternalID}},
		{"all", agreements.Fields},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.Fields = tc.fields
			st, err := delivery.NewStatement(r, home, uuid.New())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(st)
			s := checkStatement(t, body, r)
			allowed := func(f agreements.Field) bool { return slices.Contains(tc.fields, f) }
			if got := str(obj(s["actor"])["name"]); (got == r.Name) != allowed(agreements.FieldName) {
				t.Errorf("actor name %q with fields %v", got, tc.fields)
			}
			ext := obj(obj(s["context"])["extensions"])
			if (str(ext[home+"/xapi/extensions/email"]) == r.Email) != allowed(agreements.FieldEmail) ||
				(str(ext[home+"/xapi/extensions/external-id"]) == r.ExternalID) != allowed(agreements.FieldExternalID) {
				t.Errorf("extensions %v with fields %v", keys(ext), tc.fields)
			}
			for f, v := range map[agreements.Field]string{agreements.FieldName: r.Name, agreements.FieldEmail: r.Email,
				agreements.FieldExternalID: r.ExternalID} {
				if !allowed(f) && strings.Contains(string(body), v) {
					t.Errorf("the statement carries the %s it was not allowed", f)
				}
			}
		})
	}
}

func TestStatementRefusesWhatItCannotSay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		home   string
		change func(*delivery.Record)
	}{
		{"no time", home, func(r *delivery.Record) { r.OccurredAt = time.Time{} }},
		{"no activity", home, func(r *delivery.Record) { r.ActivityID = "" }},
		{"a score that is not a number", home, func(r *delivery.Record) { r.ScoreGiven = ptr(nan()) }},
		{"negative time spent", home, func(r *delivery.Record) { r.TimeSpentSeconds = -1 }},
		{"a relative home", "hub.example", func(*delivery.Record) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := record()
			tc.change(&r)
			if _, err := delivery.NewStatement(r, tc.home, uuid.New()); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func nan() float64 { zero := 0.0; return zero / zero }

func TestStatementDryRunRedactsCredentials(t *testing.T) {
	l := newLRS(t)
	target := l.target()
	target.DryRun = true
	st, _ := delivery.NewStatement(record(), home, uuid.New())
	res, err := sender().SendStatement(context.Background(), target, st)
	if err != nil || res.Outcome != delivery.DryRun || res.Request == nil {
		t.Fatalf("%+v, %v", res, err)
	}
	if l.puts != 0 || l.header != nil {
		t.Fatal("a dry run reached the LRS")
	}
	req := res.Request
	if req.Method != "PUT" || !strings.HasSuffix(req.URL, "/xapi/statements?statementId="+st.ID.String()) ||
		req.Header.Get("Authorization") != "[redacted]" || req.Header.Get("X-Experience-API-Version") != "1.0.3" {
		t.Fatalf("recorded %s %s %v", req.Method, req.URL, req.Header)
	}
	if strings.Contains(string(req.Body), "secret") {
		t.Fatal("the recorded request carries the password")
	}
}

func TestCheckLRS(t *testing.T) {
	l := newLRS(t)
	res, err := sender().CheckLRS(context.Background(), l.target())
	if err != nil || res.Outcome != delivery.Delivered || res.Status != http.StatusNotFound {
		t.Fatalf("with good credentials: %+v, %v", res, err)
	}
	bad := l.target()
	bad.Password = "wrong"
	res, err = sender().CheckLRS(context.Background(), bad)
	if err != nil || res.Outcome != delivery.Failed || res.Status != http.StatusUnauthorized {
		t.Fatalf("with a wrong password: %+v, %v", res, err)
	}
	if len(l.statements) != 0 {
		t.Fatal("a check wrote a statement")
	}
}
