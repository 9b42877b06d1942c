package ltitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klasterina/hub/lti"
)

// The platform's Assignment and Grade Services 2.0: a gradebook per
// course, whose columns are line items.
//
//   - /ags/{context}/lineitems is the course's line item container: GET
//     lists it (filtered by resource_link_id, resource_id and tag, paged
//     with limit and Link rel="next"), POST creates a line item;
//   - /ags/{context}/lineitems/{n} is a line item: GET, PUT, DELETE;
//   - /ags/{context}/lineitems/{n}/scores takes a learner's score (POST).
//
// Every request bears a token the token endpoint issued with the scope
// the call needs (lineitem or lineitem.readonly to read line items,
// lineitem to change them, score to post scores), carries the
// specification's media types, and, when AGSQuery is set, that query, as
// Moodle's type_id. A score is checked as the specification asks: userId a
// member of the course (on its roster, not removed), progress values it
// knows, scoreGiven 0 or more with a scoreMaximum greater than 0, an RFC
// 3339 timestamp (fractional seconds allowed) later than that of the last
// score the platform accepted for the same line item and learner.
// Accepted scores are kept, for a test to read the gradebook.
//
// Where platforms differ, the fake answers as one of them does and says
// which: a create answers 201 with the line item (Moodle; Canvas says
// 200); a score answers 204; scoreGiven without scoreMaximum, and a
// userId not in the course, answer 422 (Canvas); a score no newer than the
// last answers StaleScoreStatus, 409 Conflict unless set (Moodle, which
// compares whole seconds where the fake compares the full precision;
// Canvas answers 400, and only to an older one).

const (
	agsLineItemType  = "application/vnd.ims.lis.v2.lineitem+json"
	agsContainerType = "application/vnd.ims.lis.v2.lineitemcontainer+json"
	agsScoreType     = "application/vnd.ims.lis.v1.score+json"

	// Line item paging: 10 a page unless the tool asks, 50 at most.
	defaultAGSLimit = 10
	agsPageCap      = 50
	// maxAGSBody bounds what a tool may post.
	maxAGSBody = 64 << 10
	// demoCourse and demoLink are the context and resource link of the
	// platform's launches; the link has a line item from the start.
	demoCourse = "course-1"
	demoLink   = "link-1"
)

// LineItem is a gradebook column as the platform holds it.
type LineItem struct {
	ID             string // its URL
	Label          string
	ScoreMaximum   float64
	ResourceID     string
	ResourceLinkID string
	Tag            string
	StartDateTime  string // as the tool sent it, "" for none
	EndDateTime    string
}

// Score is a score the platform accepted.
type Score struct {
	UserID                            string
	ScoreGiven, ScoreMaximum          *float64 // nil when not sent
	Comment                           string
	Timestamp                         time.Time
	ActivityProgress, GradingProgress string
}

// Column is a line item of a gradebook with the last score accepted for
// each learner, by user id.
type Column struct {
	LineItem
	Scores map[string]Score
}

// agsState is the grade services' state, behind its own lock.
type agsState struct {
	mu       sync.Mutex
	books    map[string]*gradebook      // by context
	links    map[string]map[string]bool // the resource links of each context
	last     int                        // the number of the last line item made
	requests int
	faults   faultQueue
}

// gradebook is a course's line items in the order they were made.
type gradebook struct {
	columns []*column
}

type column struct {
	n       int
	context string
	item    LineItem // without its ID, which follows from n and AGSQuery
	scores  map[string][]Score
}

// initAGS gives the launches' course its gradebook, with a line item for
// the launches' resource link, as a platform does for a graded link.
func (p *Platform) initAGS() {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	p.ags.links = map[string]map[string]bool{demoCourse: {demoLink: true}}
	p.addColumn(demoCourse, LineItem{Label: "Week 1 quiz", ScoreMaximum: 100, ResourceLinkID: demoLink})
}

// LineItemsURL is the line item container of contextID, as the launches'
// AGS claim names it.
func (p *Platform) LineItemsURL(contextID string) string {
	return p.agsURL("/ags/" + url.PathEscape(contextID) + "/lineitems")
}

func (p *Platform) lineItemURL(contextID string, n int) string {
	return p.agsURL("/ags/" + url.PathEscape(contextID) + "/lineitems/" + strconv.Itoa(n))
}

// agsURL is path on the platform, with AGSQuery.
func (p *Platform) agsURL(path string) string {
	if p.AGSQuery != "" {
		path += "?" + p.AGSQuery
	}
	return p.Server.URL + path
}

// AddResourceLink makes linkID a resource link of contextID, to which a
// tool may bind line items (the launches' link-1 of course-1 is one).
func (p *Platform) AddResourceLink(contextID, linkID string) {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	if p.ags.links[contextID] == nil {
		p.ags.links[contextID] = map[string]bool{}
	}
	p.ags.links[contextID][linkID] = true
}

// AddLineItem adds a column to contextID's gradebook, as an instructor
// does in the LMS, and returns it with its ID. It is not checked.
func (p *Platform) AddLineItem(contextID string, li LineItem) LineItem {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	c := p.addColumn(contextID, li)
	return p.served(c)
}

func (p *Platform) addColumn(contextID string, li LineItem) *column {
	if p.ags.books == nil {
		p.ags.books = map[string]*gradebook{}
	}
	b := p.ags.books[contextID]
	if b == nil {
		b = &gradebook{}
		p.ags.books[contextID] = b
	}
	p.ags.last++
	li.ID = ""
	c := &column{n: p.ags.last, context: contextID, item: li, scores: map[string][]Score{}}
	b.columns = append(b.columns, c)
	return c
}

// DeleteLineItem removes the line item whose ID is id, with its scores,
// as an instructor deleting a column does: the tool's later requests for
// it answer 404. False if there is no such line item.
func (p *Platform) DeleteLineItem(id string) bool {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	c := p.columnByID(id)
	if c == nil {
		return false
	}
	p.removeColumn(c)
	return true
}

func (p *Platform) removeColumn(c *column) {
	b := p.ags.books[c.context]
	b.columns = slices.DeleteFunc(b.columns, func(o *column) bool { return o == c })
}

// GetLineItem returns the line item whose ID is id.
func (p *Platform) GetLineItem(id string) (LineItem, bool) {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	if c := p.columnByID(id); c != nil {
		return p.served(c), true
	}
	return LineItem{}, false
}

// Gradebook returns contextID's columns in the order they were made, each
// with the last score accepted for each learner.
func (p *Platform) Gradebook(contextID string) []Column {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	b := p.ags.books[contextID]
	if b == nil {
		return nil
	}
	out := make([]Column, 0, len(b.columns))
	for _, c := range b.columns {
		col := Column{LineItem: p.served(c), Scores: map[string]Score{}}
		for user, scores := range c.scores {
			col.Scores[user] = scores[len(scores)-1]
		}
		out = append(out, col)
	}
	return out
}

// Scores returns every score the platform accepted for userID on the line
// item whose ID is lineItemID, oldest first.
func (p *Platform) Scores(lineItemID, userID string) []Score {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	if c := p.columnByID(lineItemID); c != nil {
		return slices.Clone(c.scores[userID])
	}
	return nil
}

// InjectAGSFaults queues faults: each of the next grade service requests
// that passes the bearer check takes the first one left.
func (p *Platform) InjectAGSFaults(f ...Fault) { p.ags.faults.push(f...) }

// AGSRequests counts the requests the grade services received, refused
// and failed ones included.
func (p *Platform) AGSRequests() int {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	return p.ags.requests
}

// columnByID finds a column by its URL (with or without AGSQuery), under
// p.ags.mu.
func (p *Platform) columnByID(id string) *column {
	u, err := url.Parse(id)
	if err != nil || u.Scheme+"://"+u.Host != p.Server.URL {
		return nil
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/ags/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || parts[1] != "lineitems" {
		return nil
	}
	ctx, err := url.PathUnescape(parts[0])
	if err != nil {
		return nil
	}
	return p.column(ctx, parts[2])
}

// column finds line item n (its path segment) of contextID, under
// p.ags.mu.
func (p *Platform) column(contextID, n string) *column {
	b := p.ags.books[contextID]
	if b == nil {
		return nil
	}
	for _, c := range b.columns {
		if strconv.Itoa(c.n) == n {
			return c
		}
	}
	return nil
}

func (p *Platform) served(c *column) LineItem {
	li := c.item
	li.ID = p.lineItemURL(c.context, c.n)
	return li
}

// agsLineItem is a line item as the platform sends it.
type agsLineItem struct {
	ID             string  `json:"id"`
	ScoreMaximum   float64 `json:"scoreMaximum"`
	Label          string  `json:"label"`
	ResourceID     string  `json:"resourceId,omitempty"`
	ResourceLinkID string  `json:"resourceLinkId,omitempty"`
	Tag            string  `json:"tag,omitempty"`
	StartDateTime  string  `json:"startDateTime,omitempty"`
	EndDateTime    string  `json:"endDateTime,omitempty"`
}

func wireLineItem(li LineItem) agsLineItem {
	return agsLineItem{ID: li.ID, ScoreMaximum: li.ScoreMaximum, Label: li.Label, ResourceID: li.ResourceID,
		ResourceLinkID: li.ResourceLinkID, Tag: li.Tag, StartDateTime: li.StartDateTime, EndDateTime: li.EndDateTime}
}

// agsRequest runs the checks every grade service request passes, in a
// platform's order: its query (AGSQuery), its bearer token for one of
// scopes, an injected fault. False when it has answered.
func (p *Platform) agsRequest(w http.ResponseWriter, r *http.Request, malformed faultAnswer, scopes ...string) bool {
	p.ags.mu.Lock()
	p.ags.requests++
	p.ags.mu.Unlock()
	if q, _ := url.ParseQuery(p.AGSQuery); !hasQuery(r.URL.Query(), q) {
		http.Error(w, "the service URL's query is missing: "+p.AGSQuery, http.StatusBadRequest)
		return false
	}
	if !p.authorizeService(w, r, scopes...) {
		return false
	}
	// The body is read first: the server watches for a tool that leaves
	// only once it has, and FaultSlow ends when the tool gives up.
	b, _ := io.ReadAll(io.LimitReader(r.Body, maxAGSBody+1))
	r.Body = io.NopCloser(bytes.NewReader(b))
	malformed.slow = p.AGSSlowDelay
	if f, ok := p.ags.faults.next(); ok && p.fail(w, r, f, malformed) {
		return false
	}
	return true
}

func hasQuery(got, want url.Values) bool {
	for k := range want {
		if got.Get(k) != want.Get(k) {
			return false
		}
	}
	return true
}

// listLineItems serves GET /ags/{context}/lineitems.
func (p *Platform) listLineItems(w http.ResponseWriter, r *http.Request) {
	ctx := r.PathValue("context")
	malformed := faultAnswer{mediaType: agsContainerType, malformed: `[{"id":"` + p.lineItemURL(ctx, 1)}
	if !p.agsRequest(w, r, malformed, lti.ScopeAGSLineItem, lti.ScopeAGSLineItemRead) || !accepts(w, r, agsContainerType) {
		return
	}
	q := r.URL.Query()
	limit, errL := queryNumber(q, "limit", defaultAGSLimit)
	after, errA := queryNumber(q, "after", 0)
	if errL != nil || errA != nil {
		http.Error(w, "limit and after must be whole numbers", http.StatusBadRequest)
		return
	}
	if limit == 0 || limit > agsPageCap {
		limit = agsPageCap
	}
	items, more, ok := p.listing(ctx, q, after, limit)
	if !ok {
		http.Error(w, "no such course", http.StatusNotFound)
		return
	}
	if more != 0 {
		next, _ := url.ParseQuery(p.AGSQuery)
		for _, k := range []string{"resource_link_id", "resource_id", "tag"} {
			if v := q.Get(k); v != "" {
				next.Set(k, v)
			}
		}
		next.Set("limit", strconv.Itoa(limit))
		next.Set("after", strconv.Itoa(more))
		w.Header().Add("Link", "<"+p.Server.URL+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	w.Header().Add("Link", "<"+p.LineItemsURL(ctx)+`>; rel="first"`)
	writeJSON(w, http.StatusOK, agsContainerType, items)
}

// listing is a page of contextID's line items matching q's filters, from
// after the line item numbered after; more is the number of the last
// line item on the page when others follow, 0 on the last page; ok is
// false for a course the platform does not know.
func (p *Platform) listing(contextID string, q url.Values, after, limit int) (items []agsLineItem, more int, ok bool) {
	if !p.courseExists(contextID) {
		return nil, 0, false
	}
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	items = []agsLineItem{}
	var columns []*column
	if b := p.ags.books[contextID]; b != nil {
		columns = b.columns
	}
	for _, c := range columns {
		if c.n <= after || !c.matches(q) {
			continue
		}
		if len(items) == limit {
			return items, after, true
		}
		items, after = append(items, wireLineItem(p.served(c))), c.n
	}
	return items, 0, true
}

func (c *column) matches(q url.Values) bool {
	for k, v := range map[string]string{"resource_link_id": c.item.ResourceLinkID, "resource_id": c.item.ResourceID, "tag": c.item.Tag} {
		if q.Has(k) && q.Get(k) != v {
			return false
		}
	}
	return true
}

// courseExists reports whether the platform knows contextID: the
// launches' course, or a course with a roster or a gradebook.
func (p *Platform) courseExists(contextID string) bool {
	if contextID == demoCourse || p.Roster(contextID) != nil {
		return true
	}
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	return p.ags.books[contextID] != nil
}

// createLineItem serves POST /ags/{context}/lineitems.
func (p *Platform) createLineItem(w http.ResponseWriter, r *http.Request) {
	ctx := r.PathValue("context")
	malformed := faultAnswer{mediaType: agsLineItemType, malformed: `{"id":"` + p.lineItemURL(ctx, 1)}
	if !p.agsRequest(w, r, malformed, lti.ScopeAGSLineItem) {
		return
	}
	li, status, problem := p.readLineItem(w, r, ctx)
	if status != 0 {
		http.Error(w, problem, status)
		return
	}
	if !p.courseExists(ctx) {
		http.Error(w, "no such course", http.StatusNotFound)
		return
	}
	p.ags.mu.Lock()
	created := p.served(p.addColumn(ctx, li))
	p.ags.mu.Unlock()
	w.Header().Set("Location", created.ID)
	writeJSON(w, http.StatusCreated, agsLineItemType, wireLineItem(created))
}

// getLineItem serves GET /ags/{context}/lineitems/{n}.
func (p *Platform) getLineItem(w http.ResponseWriter, r *http.Request) {
	if !p.agsRequest(w, r, p.itemFault(r), lti.ScopeAGSLineItem, lti.ScopeAGSLineItemRead) || !accepts(w, r, agsLineItemType) {
		return
	}
	li, ok := p.lineItem(r)
	if !ok {
		http.Error(w, "no such line item", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, agsLineItemType, wireLineItem(li))
}

// updateLineItem serves PUT /ags/{context}/lineitems/{n}: the line item
// sent replaces the one held; an id, if sent, must be its own.
func (p *Platform) updateLineItem(w http.ResponseWriter, r *http.Request) {
	if !p.agsRequest(w, r, p.itemFault(r), lti.ScopeAGSLineItem) {
		return
	}
	ctx := r.PathValue("context")
	li, status, problem := p.readLineItem(w, r, ctx)
	if status != 0 {
		http.Error(w, problem, status)
		return
	}
	p.ags.mu.Lock()
	c := p.column(ctx, r.PathValue("item"))
	switch {
	case c == nil:
		status, problem = http.StatusNotFound, "no such line item"
	case li.ID != "" && li.ID != p.served(c).ID:
		status, problem = http.StatusBadRequest, "id is not this line item's"
	default:
		li.ID = ""
		c.item = li
		li = p.served(c)
	}
	p.ags.mu.Unlock()
	if status != 0 {
		http.Error(w, problem, status)
		return
	}
	writeJSON(w, http.StatusOK, agsLineItemType, wireLineItem(li))
}

// deleteLineItem serves DELETE /ags/{context}/lineitems/{n}.
func (p *Platform) deleteLineItem(w http.ResponseWriter, r *http.Request) {
	if !p.agsRequest(w, r, p.itemFault(r), lti.ScopeAGSLineItem) {
		return
	}
	p.ags.mu.Lock()
	c := p.column(r.PathValue("context"), r.PathValue("item"))
	if c != nil {
		p.removeColumn(c)
	}
	p.ags.mu.Unlock()
	if c == nil {
		http.Error(w, "no such line item", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (p *Platform) itemFault(r *http.Request) faultAnswer {
	return faultAnswer{mediaType: agsLineItemType, malformed: `{"id":"` + p.Server.URL + r.URL.Path + `","scoreMaximum":`}
}

func (p *Platform) lineItem(r *http.Request) (LineItem, bool) {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	if c := p.column(r.PathValue("context"), r.PathValue("item")); c != nil {
		return p.served(c), true
	}
	return LineItem{}, false
}

// readLineItem reads and checks the line item a tool sends: its media
// type (415), its size (413), a label that is not blank and a
// scoreMaximum greater than 0, optional strings, RFC 3339 dates (400),
// and a resourceLinkId naming a resource link of the course (404, as the
// specification asks). A status of 0 means it is good.
func (p *Platform) readLineItem(w http.ResponseWriter, r *http.Request, contextID string) (LineItem, int, string) {
	body, status, problem := readJSON(w, r, agsLineItemType)
	if status != 0 {
		return LineItem{}, status, problem
	}
	var li LineItem
	var err error
	for _, f := range []struct {
		key  string
		into *string
	}{{"id", &li.ID}, {"label", &li.Label}, {"resourceId", &li.ResourceID}, {"resourceLinkId", &li.ResourceLinkID},
		{"tag", &li.Tag}, {"startDateTime", &li.StartDateTime}, {"endDateTime", &li.EndDateTime}} {
		if *f.into, err = body.str(f.key); err != nil {
			return LineItem{}, http.StatusBadRequest, err.Error()
		}
	}
	maximum, ok, err := body.number("scoreMaximum")
	switch {
	case err != nil:
		return LineItem{}, http.StatusBadRequest, err.Error()
	case strings.TrimSpace(li.Label) == "":
		return LineItem{}, http.StatusBadRequest, "label is required and must not be blank"
	case !ok || maximum <= 0:
		return LineItem{}, http.StatusBadRequest, "scoreMaximum is required and must be greater than 0"
	case !rfc3339(li.StartDateTime) || !rfc3339(li.EndDateTime):
		return LineItem{}, http.StatusBadRequest, "startDateTime and endDateTime must be RFC 3339 dates and times"
	}
	li.ScoreMaximum = maximum
	if li.ResourceLinkID != "" && !p.hasLink(contextID, li.ResourceLinkID) {
		return LineItem{}, http.StatusNotFound, "no such resource link in the course"
	}
	return li, 0, ""
}

func (p *Platform) hasLink(contextID, linkID string) bool {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	return p.ags.links[contextID][linkID]
}

func rfc3339(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return s == "" || err == nil
}

// Activity and grading progress values (AGS 2.0 score service).
var (
	activityProgress = []string{"Initialized", "Started", "InProgress", "Submitted", "Completed"}
	gradingProgress  = []string{"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}
)

// postScore serves POST /ags/{context}/lineitems/{n}/scores.
func (p *Platform) postScore(w http.ResponseWriter, r *http.Request) {
	malformed := faultAnswer{mediaType: agsScoreType, malformed: `{"resultUrl":"` + p.Server.URL}
	if !p.agsRequest(w, r, malformed, lti.ScopeAGSScore) {
		return
	}
	if _, ok := p.lineItem(r); !ok {
		http.Error(w, "no such line item", http.StatusNotFound)
		return
	}
	s, status, problem := p.readScore(w, r)
	if status == 0 {
		status, problem = p.record(r.PathValue("context"), r.PathValue("item"), s)
	}
	if status != 0 {
		http.Error(w, problem, status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readScore reads and checks a score: its media type (415), its size
// (413), its fields as the specification types them (400), scoreGiven
// with scoreMaximum (422), a userId of the course's (422).
func (p *Platform) readScore(w http.ResponseWriter, r *http.Request) (Score, int, string) {
	body, status, problem := readJSON(w, r, agsScoreType)
	if status != 0 {
		return Score{}, status, problem
	}
	var s Score
	var ts string
	var err error
	for _, f := range []struct {
		key  string
		into *string
	}{{"userId", &s.UserID}, {"timestamp", &ts}, {"activityProgress", &s.ActivityProgress},
		{"gradingProgress", &s.GradingProgress}, {"comment", &s.Comment}} {
		if *f.into, err = body.str(f.key); err != nil {
			return Score{}, http.StatusBadRequest, err.Error()
		}
	}
	given, hasGiven, errG := body.number("scoreGiven")
	maximum, hasMax, errM := body.number("scoreMaximum")
	s.Timestamp, err = time.Parse(time.RFC3339Nano, ts)
	switch {
	case s.UserID == "":
		return Score{}, http.StatusBadRequest, "userId is required"
	case err != nil:
		return Score{}, http.StatusBadRequest, "timestamp is required, an RFC 3339 date and time"
	case !slices.Contains(activityProgress, s.ActivityProgress):
		return Score{}, http.StatusBadRequest, "activityProgress must be one of " + strings.Join(activityProgress, ", ")
	case !slices.Contains(gradingProgress, s.GradingProgress):
		return Score{}, http.StatusBadRequest, "gradingProgress must be one of " + strings.Join(gradingProgress, ", ")
	case errors.Join(errG, errM) != nil:
		return Score{}, http.StatusBadRequest, errors.Join(errG, errM).Error()
	case hasGiven && given < 0:
		return Score{}, http.StatusBadRequest, "scoreGiven must be 0 or more"
	case hasMax && maximum <= 0:
		return Score{}, http.StatusBadRequest, "scoreMaximum must be greater than 0"
	case hasGiven && !hasMax:
		return Score{}, http.StatusUnprocessableEntity, "scoreMaximum not supplied when scoreGiven present"
	case !p.isMember(r.PathValue("context"), s.UserID):
		return Score{}, http.StatusUnprocessableEntity, "userId is not a member of the course"
	}
	if hasGiven {
		s.ScoreGiven = &given
	}
	if hasMax {
		s.ScoreMaximum = &maximum
	}
	return s, 0, ""
}

// record keeps s as the learner's latest score on line item n, unless the
// platform holds one as new or newer (StaleScoreStatus) or the line item
// went meanwhile (404).
func (p *Platform) record(contextID, n string, s Score) (int, string) {
	p.ags.mu.Lock()
	defer p.ags.mu.Unlock()
	c := p.column(contextID, n)
	if c == nil {
		return http.StatusNotFound, "no such line item"
	}
	if held := c.scores[s.UserID]; len(held) > 0 && !s.Timestamp.After(held[len(held)-1].Timestamp) {
		status := p.StaleScoreStatus
		if status == 0 {
			status = http.StatusConflict
		}
		return status, fmt.Sprintf("refusing a score with a timestamp no later than the last one, %s",
			held[len(held)-1].Timestamp.Format(time.RFC3339Nano))
	}
	c.scores[s.UserID] = append(c.scores[s.UserID], s)
	return 0, ""
}

// isMember reports whether userID is on contextID's roster and not
// removed from it. The roster's user ids are its generated members':
// nrps-<context>-<index>.
func (p *Platform) isMember(contextID, userID string) bool {
	index, ok := strings.CutPrefix(userID, "nrps-"+contextID+"-")
	i, err := strconv.Atoi(index)
	if !ok || err != nil || i < 0 || strconv.Itoa(i) != index {
		return false
	}
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	r := p.nrps.rosters[contextID]
	return r != nil && i < len(r.members) && !r.members[i].removed
}

// jsonBody is a JSON object a tool sent, member by member.
type jsonBody map[string]json.RawMessage

// readJSON reads a JSON object of mediaType of at most maxAGSBody bytes;
// a status of 0 means it did.
func readJSON(w http.ResponseWriter, r *http.Request, mediaType string) (jsonBody, int, string) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaType {
		return nil, http.StatusUnsupportedMediaType, "Content-Type must be " + mediaType
	}
	var body jsonBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAGSBody))
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, "body too large"
		}
		return nil, http.StatusBadRequest, "body is not a JSON object"
	}
	if body == nil || dec.More() {
		return nil, http.StatusBadRequest, "body is not one JSON object"
	}
	return body, 0, ""
}

// str reads a string member; absent and null are "".
func (b jsonBody) str(key string) (string, error) {
	raw, ok := b[key]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s must be a string", key)
	}
	return s, nil
}

// number reads a number member; ok is false when absent or null.
func (b jsonBody) number(key string) (v float64, ok bool, err error) {
	raw, ok := b[key]
	if !ok || string(raw) == "null" {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil || math.IsInf(v, 0) {
		return 0, false, fmt.Errorf("%s must be a number", key)
	}
	return v, true, nil
}

// accepts answers 406 unless the request's Accept takes mediaType (or
// any type); no Accept takes anything.
func accepts(w http.ResponseWriter, r *http.Request, mediaType string) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return true
	}
	for _, h := range accept {
		for _, v := range strings.Split(h, ",") {
			mt, _, _ := strings.Cut(v, ";")
			if mt = strings.ToLower(strings.TrimSpace(mt)); mt == mediaType || mt == "*/*" || mt == "application/*" {
				return true
			}
		}
	}
	http.Error(w, "this resource is served as "+mediaType, http.StatusNotAcceptable)
	return false
}

func writeJSON(w http.ResponseWriter, status int, mediaType string, v any) {
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// queryNumber reads a whole number of 0 or more from q, def when absent.
func queryNumber(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err == nil && n < 0 {
		err = strconv.ErrRange
	}
	return n, err
}
