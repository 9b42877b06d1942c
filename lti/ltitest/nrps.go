package ltitest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klasterina/hub/lti"
)

// The platform's Names and Role Provisioning Services 2.0: a roster per
// context, served as membership containers at /nrps/{context} with
// paging (limit, Link rel="next"), a role filter, resource link messages
// (rlid) and differences (Link rel="differences", since=), and faults a
// test injects to see how a tool copes with a platform under load.
//
// Rosters are generated, not stored: a member is its index plus what the
// test changed, so a course of 100,000 costs a few megabytes, and two
// platforms given the same calls serve the same members.

// Roster paging defaults, as Canvas's: 10 members a page unless the tool
// asks, 50 at most.
const (
	defaultNRPSLimit   = 10
	defaultNRPSPageCap = 50
)

// LIS role vocabularies, for the generated members and the role filter.
const (
	roleMembership  = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
	roleSubRole     = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
	roleInstitution = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
)

// nrpsState is the roster service's state, behind its own lock.
type nrpsState struct {
	mu       sync.Mutex
	rosters  map[string]*roster
	faults   faultQueue
	pages    int
	requests int
}

// roster is one context's members in a stable order: a member's index
// never changes, and members added later come after.
type roster struct {
	id, label, title string
	members          []rosterEntry
	version          int // bumped by every change
	validSince       int // since tokens below it are expired
}

// rosterEntry is what a test changed of a generated member.
type rosterEntry struct {
	roles    []string // shared with other members; replaced, never changed in place
	inactive bool
	removed  bool
	renamed  int // how many times Change renamed the member
	version  int // the roster version of the last change
}

// RosterMember is a member as the platform serves it.
type RosterMember struct {
	UserID, Name, GivenName, FamilyName, Email string
	Status                                     string // Active, Inactive or Deleted (removed)
	Roles                                      []string
}

// Roster is a handle on one context's roster, to change it as people
// enrol, change their names, or leave.
type Roster struct {
	p  *Platform
	id string
}

// SetRoster gives contextID a fresh roster of n generated members, all
// Active: mostly learners, some instructors, teaching assistants and
// mentors, their roles sent sometimes in short form, as some platforms
// do, and some with institution roles. Replacing a roster expires the
// context's earlier differences links.
func (p *Platform) SetRoster(contextID string, n int) *Roster {
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	if p.nrps.rosters == nil {
		p.nrps.rosters = map[string]*roster{}
	}
	r := &roster{id: contextID, label: strings.ToUpper(contextID), title: "Course " + contextID, version: 1}
	if contextID == "course-1" { // the context of the platform's launches
		r.label, r.title = "MATH101", "Mathematics 101"
	}
	if old := p.nrps.rosters[contextID]; old != nil {
		r.version = old.version + 1
		r.validSince = r.version
	}
	r.add(n)
	p.nrps.rosters[contextID] = r
	return &Roster{p: p, id: contextID}
}

// Roster returns the handle of contextID's roster, nil when SetRoster
// never made one.
func (p *Platform) Roster(contextID string) *Roster {
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	if p.nrps.rosters[contextID] == nil {
		return nil
	}
	return &Roster{p: p, id: contextID}
}

// ExpireDifferences makes every differences link served so far invalid,
// as a platform that keeps changes only for a while does: a request with
// an expired since answers 410 Gone, and the tool must list the whole
// roster again.
func (p *Platform) ExpireDifferences() {
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	for _, r := range p.nrps.rosters {
		r.version++
		r.validSince = r.version
	}
}

// NRPSPages counts the roster pages served successfully.
func (p *Platform) NRPSPages() int {
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	return p.nrps.pages
}

// NRPSRequests counts the requests the roster service received, refused
// and failed ones included.
func (p *Platform) NRPSRequests() int {
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	return p.nrps.requests
}

// change runs f on the roster under the lock with a new version.
func (h *Roster) change(f func(r *roster, version int)) {
	h.p.nrps.mu.Lock()
	defer h.p.nrps.mu.Unlock()
	r := h.p.nrps.rosters[h.id]
	r.version++
	f(r, r.version)
}

// Add enrols n more generated members, after the others.
func (h *Roster) Add(n int) { h.change(func(r *roster, _ int) { r.add(n) }) }

// Change renames member i: new family name and email.
func (h *Roster) Change(i int) {
	h.change(func(r *roster, v int) { r.members[i].renamed++; r.members[i].version = v })
}

// SetRoles gives member i these roles, sent as given.
func (h *Roster) SetRoles(i int, roles ...string) {
	h.change(func(r *roster, v int) {
		r.members[i].roles = append([]string(nil), roles...)
		r.members[i].version = v
	})
}

// Deactivate makes member i Inactive: still listed, no longer taking part.
func (h *Roster) Deactivate(i int) {
	h.change(func(r *roster, v int) { r.members[i].inactive = true; r.members[i].version = v })
}

// Remove takes member i off the roster: gone from full listings, listed
// with status Deleted in differences.
func (h *Roster) Remove(i int) {
	h.change(func(r *roster, v int) { r.members[i].removed = true; r.members[i].version = v })
}

// Member returns member i as the platform serves it.
func (h *Roster) Member(i int) RosterMember {
	h.p.nrps.mu.Lock()
	defer h.p.nrps.mu.Unlock()
	return h.p.nrps.rosters[h.id].member(i)
}

// Len is how many members the roster has had: indices run from 0 to
// Len()-1, removed members included.
func (h *Roster) Len() int {
	h.p.nrps.mu.Lock()
	defer h.p.nrps.mu.Unlock()
	return len(h.p.nrps.rosters[h.id].members)
}

// add appends n generated members at the current version.
func (r *roster) add(n int) {
	for range n {
		i := len(r.members)
		r.members = append(r.members, rosterEntry{roles: generatedRoles(i), version: r.version})
	}
}

// Role sets of generated members, shared by all who have them.
var (
	rolesInstructor = []string{lti.RoleInstructor, roleInstitution + "Faculty"}
	rolesTA         = []string{lti.RoleTeachingAssistant}
	rolesTAShort    = []string{"Instructor#TeachingAssistant"}
	rolesMentor     = []string{roleMembership + "Mentor"}
	rolesLearner    = []string{lti.RoleLearner}
	rolesLearnerSIS = []string{lti.RoleLearner, roleInstitution + "Student"}
	rolesShort      = []string{"Learner"}
)

// generatedRoles is the mix of a course: one instructor in 25, a teaching
// assistant and a mentor in 50 each, the rest learners, a third of them in
// short form and one in ten with an institution role.
func generatedRoles(i int) []string {
	switch {
	case i%25 == 0:
		return rolesInstructor
	case i%50 == 1:
		return rolesTA
	case i%50 == 26:
		return rolesTAShort
	case i%25 == 2:
		return rolesMentor
	case i%10 == 5:
		return rolesLearnerSIS
	case i%3 == 0:
		return rolesShort
	}
	return rolesLearner
}

var (
	givenNames  = []string{"Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Dennis", "Radia", "Ken", "Karen", "Tim", "Hedy", "Niklaus"}
	familyNames = []string{"Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton", "Ritchie", "Perlman", "Thompson", "Spärck Jones", "Berners-Lee", "Lamarr", "Wirth"}
)

// member is entry i as served: its names and email follow from its index
// and how often it was renamed.
func (r *roster) member(i int) RosterMember {
	e := r.members[i]
	given := givenNames[i%len(givenNames)]
	family := familyNames[(i/len(givenNames)+e.renamed*5)%len(familyNames)]
	email := strings.ToLower(given) + "." + strconv.Itoa(i)
	if e.renamed > 0 {
		email += ".r" + strconv.Itoa(e.renamed)
	}
	status := "Active"
	switch {
	case e.removed:
		status = "Deleted"
	case e.inactive:
		status = "Inactive"
	}
	return RosterMember{UserID: "nrps-" + r.id + "-" + strconv.Itoa(i), Name: given + " " + family,
		GivenName: given, FamilyName: family, Email: email + "@example.edu", Status: status, Roles: e.roles}
}

// rosterSummary is a roster for the demo page.
type rosterSummary struct {
	ID      string
	Members int // listed: not removed
	First   []RosterMember
	Tool    *ToolCopy // the tool's copy, when ToolRoster tells it
}

// rosterSummaries describes each roster with its first few members.
func (p *Platform) rosterSummaries(ctx context.Context, first int) []rosterSummary {
	out := p.platformRosters(first)
	if p.ToolRoster != nil {
		for i := range out {
			if c, err := p.ToolRoster(ctx, out[i].ID); err == nil {
				out[i].Tool = &c
			}
		}
	}
	return out
}

func (p *Platform) platformRosters(first int) []rosterSummary {
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	var out []rosterSummary
	for _, r := range p.nrps.rosters {
		s := rosterSummary{ID: r.id}
		for i, e := range r.members {
			if e.removed {
				continue
			}
			if s.Members++; len(s.First) < first {
				s.First = append(s.First, r.member(i))
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// listing is what one roster request asks: a page size, a role filter, a
// resource link for messages, the changes since a version (differences),
// and where the page starts (cursor: a member index) in a listing begun
// at version start.
type listing struct {
	limit     int
	role      string
	rlid      string
	since     int
	hasSince  bool
	cursor    int
	start     int
	continued bool // a next link: start was set by the first page
}

// parseListing reads a roster request's query; an unreadable number is an
// error.
func (p *Platform) parseListing(q url.Values) (listing, error) {
	l := listing{limit: defaultNRPSLimit, role: q.Get("role"), rlid: q.Get("rlid")}
	var err error
	number := func(name string, into *int) bool {
		v := q.Get(name)
		if v == "" || err != nil {
			return false
		}
		*into, err = strconv.Atoi(v)
		if err == nil && *into < 0 {
			err = strconv.ErrRange
		}
		return err == nil
	}
	number("limit", &l.limit)
	l.hasSince = number("since", &l.since)
	number("cursor", &l.cursor)
	l.continued = number("v", &l.start)
	if l.limit <= 0 || l.limit > p.nrpsPageCap() {
		l.limit = p.nrpsPageCap()
	}
	return l, err
}

func (p *Platform) nrpsPageCap() int {
	if p.NRPSPageCap > 0 {
		return p.NRPSPageCap
	}
	return defaultNRPSPageCap
}

// container is a membership container as the platform sends it.
type container struct {
	ID      string       `json:"id"`
	Context nrpsContext  `json:"context"`
	Members []nrpsMember `json:"members"`
}

type nrpsContext struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Title string `json:"title"`
}

type nrpsMember struct {
	Status             string           `json:"status"`
	UserID             string           `json:"user_id"`
	Roles              []string         `json:"roles"`
	Name               string           `json:"name"`
	GivenName          string           `json:"given_name"`
	FamilyName         string           `json:"family_name"`
	Email              string           `json:"email"`
	LISPersonSourcedID string           `json:"lis_person_sourcedid"`
	Message            []map[string]any `json:"message,omitempty"`
}

// nrpsPage is one page to send, with its links (query strings of the
// same URL; "" for none).
type nrpsPage struct {
	body              container
	next, differences string
}

// page builds the page l asks of contextID, or the status to answer
// instead: 404 for an unknown context, 410 for an expired since, 400 for
// a since the platform never gave.
func (p *Platform) page(contextID string, l listing) (nrpsPage, int) {
	p.nrps.mu.Lock()
	defer p.nrps.mu.Unlock()
	r := p.nrps.rosters[contextID]
	switch {
	case r == nil:
		return nrpsPage{}, http.StatusNotFound
	case l.hasSince && l.since > r.version:
		return nrpsPage{}, http.StatusBadRequest
	case l.hasSince && l.since < r.validSince:
		return nrpsPage{}, http.StatusGone
	}
	if !l.continued {
		l.start = r.version
	}
	out := nrpsPage{body: container{Context: nrpsContext{ID: r.id, Label: r.label, Title: r.title},
		Members: make([]nrpsMember, 0, l.limit)}}
	i := l.cursor
	for ; i < len(r.members) && len(out.body.Members) < l.limit; i++ {
		if r.listed(i, l) {
			out.body.Members = append(out.body.Members, r.served(i, l.rlid))
		}
	}
	for ; i < len(r.members) && !r.listed(i, l); i++ {
	}
	if i < len(r.members) {
		out.next = l.query(i, false)
	} else if p.OfferDifferences {
		out.differences = l.query(0, true)
	}
	return out, http.StatusOK
}

// listed reports whether member i belongs in listing l: a full listing
// leaves removed members out; differences list what changed since.
func (r *roster) listed(i int, l listing) bool {
	e := &r.members[i]
	if (l.hasSince && e.version <= l.since) || (!l.hasSince && e.removed) {
		return false
	}
	return roleMatches(l.role, e.roles)
}

// served is member i in a container, with its message claims when the
// request named a resource link.
func (r *roster) served(i int, rlid string) nrpsMember {
	m := r.member(i)
	out := nrpsMember{Status: m.Status, UserID: m.UserID, Roles: m.Roles, Name: m.Name, GivenName: m.GivenName,
		FamilyName: m.FamilyName, Email: m.Email, LISPersonSourcedID: "sis-" + strconv.Itoa(i)}
	if rlid != "" {
		out.Message = []map[string]any{{
			lti.ClaimMessageType: lti.MessageResourceLink,
			lti.ClaimVersion:     lti.Version,
			lti.ClaimCustom:      map[string]any{"resource_link_id": rlid, "student_number": strconv.Itoa(100000 + i)},
		}}
	}
	return out
}

// query is the query string of the page at cursor in this listing, or of
// the differences since the listing began.
func (l listing) query(cursor int, differences bool) string {
	q := url.Values{}
	if l.role != "" {
		q.Set("role", l.role)
	}
	if l.rlid != "" {
		q.Set("rlid", l.rlid)
	}
	if differences {
		q.Set("since", strconv.Itoa(l.start))
		return q.Encode()
	}
	q.Set("limit", strconv.Itoa(l.limit))
	q.Set("cursor", strconv.Itoa(cursor))
	q.Set("v", strconv.Itoa(l.start))
	if l.hasSince {
		q.Set("since", strconv.Itoa(l.since))
	}
	return q.Encode()
}

// roleMatches reports whether roles hold filter (a full URI or a short
// context role name): the role itself or, for a principal role, any of
// its sub-roles.
func roleMatches(filter string, roles []string) bool {
	if filter == "" {
		return true
	}
	filter = expandRole(filter)
	principal, isPrincipal := strings.CutPrefix(filter, roleMembership)
	for _, r := range roles {
		r = expandRole(r)
		if r == filter || isPrincipal && strings.HasPrefix(r, roleSubRole+principal+"#") {
			return true
		}
	}
	return false
}

// expandRole gives a short context role ("Learner") or sub-role
// ("Instructor#TeachingAssistant") its full URI.
func expandRole(r string) string {
	switch {
	case strings.Contains(r, ":"):
		return r
	case strings.Contains(r, "#"):
		return roleSubRole + r
	}
	return roleMembership + r
}

// memberships serves GET /nrps/{context}: the bearer first, then any
// injected fault, then the page.
func (p *Platform) memberships(w http.ResponseWriter, r *http.Request) {
	p.nrps.mu.Lock()
	p.nrps.requests++
	p.nrps.mu.Unlock()
	if !p.authorizeService(w, r, lti.ScopeNRPS) {
		return
	}
	if f, ok := p.nrps.faults.next(); ok && p.fail(w, r, f, faultAnswer{mediaType: nrpsMediaType, slow: p.NRPSSlowDelay,
		malformed: `{"id":"` + p.Server.URL + r.URL.RequestURI() + `","members":[{"status":"Active","user_id":"nrps-`}) {
		return
	}
	if !sleep(r, p.NRPSDelay) {
		return
	}
	l, err := p.parseListing(r.URL.Query())
	if err != nil {
		http.Error(w, "invalid limit, since or cursor", http.StatusBadRequest)
		return
	}
	page, status := p.page(r.PathValue("context"), l)
	if status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	p.writePage(w, r, page)
}

func (p *Platform) writePage(w http.ResponseWriter, r *http.Request, page nrpsPage) {
	self := p.Server.URL + r.URL.Path
	page.body.ID = p.Server.URL + r.URL.RequestURI()
	if page.next != "" {
		w.Header().Add("Link", "<"+self+"?"+page.next+`>; rel="next"`)
	}
	if page.differences != "" {
		w.Header().Add("Link", "<"+self+"?"+page.differences+`>; rel="differences"`)
	}
	w.Header().Set("Content-Type", nrpsMediaType)
	if err := json.NewEncoder(w).Encode(page.body); err != nil {
		return
	}
	p.nrps.mu.Lock()
	p.nrps.pages++
	p.nrps.mu.Unlock()
}

const nrpsMediaType = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"

// sleep waits d unless the request is cancelled first; false when it was.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
