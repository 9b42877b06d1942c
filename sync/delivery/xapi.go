package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/klasterina/hub/tenants/agreements"
)

// XAPIVersion is the version of xAPI the hub speaks, sent in
// X-Experience-API-Version with every request to an LRS.
const XAPIVersion = "1.0.3"

// LRS is an xAPI destination as a sender needs it.
type LRS struct {
	// Endpoint is the LRS's xAPI base URL; statements go to
	// Endpoint/statements.
	Endpoint string
	// Username and Password are its HTTP Basic credentials.
	Username, Password string
	DryRun             bool
}

// The ADL verbs a statement uses.
var (
	VerbCompleted  = Verb{ID: "http://adlnet.gov/expapi/verbs/completed", Display: map[string]string{"en-US": "completed"}}
	VerbPassed     = Verb{ID: "http://adlnet.gov/expapi/verbs/passed", Display: map[string]string{"en-US": "passed"}}
	VerbFailed     = Verb{ID: "http://adlnet.gov/expapi/verbs/failed", Display: map[string]string{"en-US": "failed"}}
	VerbProgressed = Verb{ID: "http://adlnet.gov/expapi/verbs/progressed", Display: map[string]string{"en-US": "progressed"}}
)

// activityTypeCourse is ADL's activity type of a course.
const activityTypeCourse = "http://adlnet.gov/expapi/activities/course"

// statementNamespace makes statement ids: a name-based (SHA-1) UUID of
// the record and destination ids under it.
var statementNamespace = uuid.MustParse("6f1c1a8e-3c7e-4d0a-9a55-2f7b8a1d4e90")

// Statement is an xAPI 1.0.3 statement, as the hub sends it.
type Statement struct {
	ID        uuid.UUID        `json:"id"`
	Actor     Agent            `json:"actor"`
	Verb      Verb             `json:"verb"`
	Object    Activity         `json:"object"`
	Result    *StatementResult `json:"result,omitempty"`
	Context   *Context         `json:"context,omitempty"`
	Timestamp string           `json:"timestamp"`
}

// Agent is the learner. xAPI allows one inverse functional identifier per
// agent: the hub's account (homePage, and the hub's pseudonymous user id),
// the same in every statement about the learner. A name goes beside it
// when the agreement allows; an email or external id, which would be a
// second identifier, goes in the context's extensions.
type Agent struct {
	ObjectType string  `json:"objectType"`
	Name       string  `json:"name,omitempty"`
	Account    Account `json:"account"`
}

// Account is an agent's account on a system.
type Account struct {
	HomePage string `json:"homePage"`
	Name     string `json:"name"`
}

// Verb is an xAPI verb: an IRI and its display.
type Verb struct {
	ID      string            `json:"id"`
	Display map[string]string `json:"display"`
}

// Activity is a statement's object or a context activity.
type Activity struct {
	ObjectType string              `json:"objectType"`
	ID         string              `json:"id"`
	Definition *ActivityDefinition `json:"definition,omitempty"`
}

// ActivityDefinition names an activity.
type ActivityDefinition struct {
	Name map[string]string `json:"name,omitempty"`
	Type string            `json:"type,omitempty"`
}

// StatementResult is a statement's result.
type StatementResult struct {
	Score      *Score `json:"score,omitempty"`
	Success    *bool  `json:"success,omitempty"`
	Completion *bool  `json:"completion,omitempty"`
	Duration   string `json:"duration,omitempty"`
}

// Score is an xAPI score: Scaled in [-1, 1]; Raw between Min and Max.
type Score struct {
	Scaled *float64 `json:"scaled,omitempty"`
	Raw    *float64 `json:"raw,omitempty"`
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
}

// Context is a statement's context: the course the activity is part of,
// and the identity fields the agreement allows besides the account.
type Context struct {
	ContextActivities *ContextActivities `json:"contextActivities,omitempty"`
	Extensions        map[string]string  `json:"extensions,omitempty"`
}

// ContextActivities relate the object to other activities.
type ContextActivities struct {
	Parent []Activity `json:"parent,omitempty"`
}

// StatementID is the id of the statement about record sent to destination:
// the same every time, so an LRS keeps a resent statement once.
func StatementID(record, destination uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(statementNamespace, append(record[:], destination[:]...))
}

// NewStatement is the statement of r for the destination, with the hub's
// public URL home as the learner's account homePage and the base of the
// IRIs the hub mints (activities, courses, extensions). The verb is passed
// or failed for a graded record, completed for a completed one, and
// progressed otherwise. ErrInvalid for a record with no time, activity or
// a score that is not a number.
func NewStatement(r Record, home string, destination uuid.UUID) (Statement, error) {
	home = strings.TrimSuffix(home, "/")
	if err := checkStatementRecord(r, home); err != nil {
		return Statement{}, err
	}
	st := Statement{ID: StatementID(r.ID, destination), Verb: verbOf(r),
		Actor:     Agent{ObjectType: "Agent", Account: Account{HomePage: home, Name: r.Learner.String()}},
		Object:    Activity{ObjectType: "Activity", ID: iri(home, "activities", r.ActivityID)},
		Result:    resultOf(r),
		Context:   contextOf(r, home),
		Timestamp: r.OccurredAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")}
	if r.allows(agreements.FieldName, r.Name) {
		st.Actor.Name = r.Name
	}
	if r.ActivityTitle != "" {
		st.Object.Definition = &ActivityDefinition{Name: map[string]string{"en-US": r.ActivityTitle}}
	}
	return st, nil
}

func checkStatementRecord(r Record, home string) error {
	u, err := url.Parse(home)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("%w: record %s: the hub's public URL %q is not an absolute URL", ErrInvalid, r.ID, home)
	case r.OccurredAt.IsZero():
		return fmt.Errorf("%w: record %s: no time", ErrInvalid, r.ID)
	case r.ActivityID == "":
		return fmt.Errorf("%w: record %s: no activity", ErrInvalid, r.ID)
	case r.ScoreGiven != nil && !finite(*r.ScoreGiven), r.ScoreMax != nil && !finite(*r.ScoreMax):
		return fmt.Errorf("%w: record %s: a score that is not a finite number", ErrInvalid, r.ID)
	case r.TimeSpentSeconds < 0:
		return fmt.Errorf("%w: record %s: negative time spent", ErrInvalid, r.ID)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func verbOf(r Record) Verb {
	switch {
	case r.Success != nil && *r.Success:
		return VerbPassed
	case r.Success != nil:
		return VerbFailed
	case r.Completed != nil && *r.Completed:
		return VerbCompleted
	}
	return VerbProgressed
}

// resultOf is r's result, nil when it says nothing.
func resultOf(r Record) *StatementResult {
	res := &StatementResult{Score: scoreOf(r), Success: r.Success, Completion: r.Completed}
	if r.TimeSpentSeconds > 0 {
		res.Duration = Duration(r.TimeSpentSeconds)
	}
	if *res == (StatementResult{}) {
		return nil
	}
	return res
}

// scoreOf is r's score in xAPI's terms. Scaled is given/max, held to
// [-1, 1]; raw, min (0) and max go with it when raw lies between them
// (an LMS may give more than the maximum, as extra credit, and xAPI
// allows no raw above max). With no maximum, raw goes alone.
func scoreOf(r Record) *Score {
	if r.ScoreGiven == nil {
		return nil
	}
	given := *r.ScoreGiven
	if r.ScoreMax == nil || *r.ScoreMax <= 0 {
		return &Score{Raw: &given}
	}
	maximum, minimum := *r.ScoreMax, 0.0
	scaled := max(-1, min(1, given/maximum))
	s := &Score{Scaled: &scaled}
	if given >= minimum && given <= maximum {
		s.Raw, s.Min, s.Max = &given, &minimum, &maximum
	}
	return s
}

// Duration is seconds as an ISO 8601 duration, as xAPI's result.duration
// takes it: PT1H2M5S, PT45S, PT0S.
func Duration(seconds int64) string {
	if seconds <= 0 {
		return "PT0S"
	}
	h, m, s := seconds/3600, seconds/60%60, seconds%60
	var b strings.Builder
	b.WriteString("PT")
	if h > 0 {
		fmt.Fprintf(&b, "%dH", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dM", m)
	}
	if s > 0 {
		fmt.Fprintf(&b, "%dS", s)
	}
	return b.String()
}

// Extension IRIs, under the hub's public URL, for the identity fields an
// agreement may allow besides the account.
const (
	extensionEmail      = "/xapi/extensions/email"
	extensionExternalID = "/xapi/extensions/external-id"
)

func contextOf(r Record, home string) *Context {
	c := &Context{}
	if r.CourseID != "" {
		course := Activity{ObjectType: "Activity", ID: iri(home, "courses", r.CourseID),
			Definition: &ActivityDefinition{Type: activityTypeCourse}}
		if r.CourseTitle != "" {
			course.Definition.Name = map[string]string{"en-US": r.CourseTitle}
		}
		c.ContextActivities = &ContextActivities{Parent: []Activity{course}}
	}
	ext := map[string]string{}
	if r.allows(agreements.FieldEmail, r.Email) {
		ext[home+extensionEmail] = r.Email
	}
	if r.allows(agreements.FieldExternalID, r.ExternalID) {
		ext[home+extensionExternalID] = r.ExternalID
	}
	if len(ext) > 0 {
		c.Extensions = ext
	}
	if c.ContextActivities == nil && c.Extensions == nil {
		return nil
	}
	return c
}

// iri is id when it is already an absolute http(s) IRI, and otherwise an
// IRI the hub mints for it under home.
func iri(home, kind, id string) string {
	if u, err := url.Parse(id); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return id
	}
	return home + "/xapi/" + kind + "/" + url.PathEscape(id)
}

// SendStatement stores st in the LRS: PUT Endpoint/statements?statementId=
// with Basic auth and X-Experience-API-Version. A resend of the same
// statement is harmless: an LRS that holds the id already answers 204 or
// 409, and both count as delivered. In a dry run it sends nothing and
// returns the request, its Authorization redacted.
func (s *Sender) SendStatement(ctx context.Context, lrs LRS, st Statement) (Result, error) {
	if st.ID == uuid.Nil {
		return Result{}, fmt.Errorf("%w: a statement without an id", ErrInvalid)
	}
	body, err := json.Marshal(st)
	if err != nil {
		return Result{}, fmt.Errorf("%w: statement %s: %v", ErrInvalid, st.ID, err)
	}
	target, err := statementsURL(lrs.Endpoint, st.ID)
	if err != nil {
		return Result{}, err
	}
	req, err := newRequest(http.MethodPut, target, body)
	if err != nil {
		return Result{}, err
	}
	authorize(req, lrs)
	return s.send(ctx, req, body, lrs.DryRun, classifyStatement, "Authorization"), nil
}

// classifyStatement is classify, with 409 delivered: the LRS holds a
// statement with this id, which only this record to this destination
// makes.
func classifyStatement(status int, retryAfter string) Outcome {
	if status == http.StatusConflict {
		return Delivered
	}
	return classify(status, retryAfter)
}

// CheckLRS asks the LRS for a statement that does not exist (a random id),
// with the destination's credentials: a 404 (or 200) says the LRS answers
// at Endpoint and takes them, a 401 or 403 that it does not. It writes
// nothing, so an admin's test leaves no statement behind.
func (s *Sender) CheckLRS(ctx context.Context, lrs LRS) (Result, error) {
	target, err := statementsURL(lrs.Endpoint, uuid.New())
	if err != nil {
		return Result{}, err
	}
	req, err := newRequest(http.MethodGet, target, nil)
	if err != nil {
		return Result{}, err
	}
	authorize(req, lrs)
	return s.send(ctx, req, nil, lrs.DryRun, func(status int, retryAfter string) Outcome {
		if status == http.StatusNotFound {
			return Delivered
		}
		return classify(status, retryAfter)
	}, "Authorization"), nil
}

func authorize(req *http.Request, lrs LRS) {
	req.SetBasicAuth(lrs.Username, lrs.Password)
	req.Header.Set("X-Experience-API-Version", XAPIVersion)
}

// statementsURL is endpoint's statements resource for one statement id.
func statementsURL(endpoint string, id uuid.UUID) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: LRS endpoint %q is not an absolute URL", ErrInvalid, endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/statements"
	u.RawPath = ""
	q := u.Query()
	q.Set("statementId", id.String())
	u.RawQuery = q.Encode()
	return u.String(), nil
}
