package ltitest

import (
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/klasterina/hub/lti"
)

// The demo LMS: a page with links that launch into a tool as a student or
// an instructor, or start deep linking, the way an LMS course page does.

var homePage = template.Must(template.New("home").Funcs(template.FuncMap{"roleName": roleName}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo LMS</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}li{margin:.5rem 0}
table{border-collapse:collapse;font-size:.9rem}th,td{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #ddd}</style></head>
<body><h1>Demo LMS — Mathematics 101</h1>
<p>A stand-in LMS (issuer <code>{{.Issuer}}</code>, client <code>{{.ClientID}}</code>) registered with the hub.</p>
<ul>
<li><a href="/start?as=student">Launch "Week 1 quiz" as a student</a></li>
<li><a href="/start?as=instructor">Launch "Week 1 quiz" as an instructor</a></li>
<li><a href="/start?as=instructor&amp;message=deep-linking">Add an activity from the hub (deep linking, as an instructor)</a></li>
</ul>
<details><summary>Launches the hub must refuse (certification's bad payloads)</summary><ul>
{{range $i, $b := .Bad}}<li><a href="/start?as=student&amp;bad={{$i}}">{{$b.Name}}</a></li>{{end}}
</ul></details>
{{if .Links}}<h2>Activities added by deep linking</h2><ul>{{range .Links}}{{range .Items}}<li>{{index . "title"}}</li>{{end}}{{end}}</ul>{{end}}
{{range .Rosters}}<h2>Roster of {{.ID}}: {{.Members}} members</h2>
<table><tr><th>Name</th><th>Email</th><th>Roles</th><th>Status</th></tr>
{{range .First}}<tr><td>{{.Name}}</td><td>{{.Email}}</td><td>{{range $i, $r := .Roles}}{{if $i}}, {{end}}{{roleName $r}}{{end}}</td><td>{{.Status}}</td></tr>
{{end}}</table>{{if gt .Members (len .First)}}<p>… and {{.Members}} in all, served to the hub by the roster service.</p>{{end}}
{{with .Tool}}<h3>The tool's copy</h3>{{if .Known}}<p>{{.Active}} active members{{if .Removed}}, {{.Removed}} removed{{end}}{{with .SyncedAt}}, synced {{.}}{{else}}, not synced yet{{end}}.</p>
{{if .First}}<table><tr><th>Name</th><th>Email</th><th>Roles</th><th>Status</th></tr>
{{range .First}}<tr><td>{{.Name}}</td><td>{{.Email}}</td><td>{{range $i, $r := .Roles}}{{if $i}}, {{end}}{{roleName $r}}{{end}}</td><td>{{.Status}}</td></tr>
{{end}}</table>{{end}}{{else}}<p>The tool has not seen this course yet: launch into it.</p>{{end}}{{end}}
{{end}}
{{range .Gradebooks}}<h2>Gradebook of {{.ID}}</h2>
<table><tr><th>Column</th><th>Out of</th><th>Scores the tool posted</th></tr>
{{range .Columns}}<tr><td>{{.Label}}</td><td>{{.Max}}</td><td>{{range $i, $s := .Scores}}{{if $i}}; {{end}}{{$s}}{{else}}none yet{{end}}{{if .More}} … and {{.More}} more{{end}}</td></tr>
{{end}}</table>{{end}}</body></html>`))

// ToolCopy is what the tool holds of a course's roster, for the demo
// page to show beside the platform's own.
type ToolCopy struct {
	Known           bool   // the tool knows the course
	Active, Removed int    // its members by status
	SyncedAt        string // when it last synced the roster, "" if never
	First           []RosterMember
}

// roleName is the last part of a role URI: "TeachingAssistant".
func roleName(role string) string { return role[strings.LastIndexAny(role, "#/")+1:] }

func (p *Platform) home(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	links := append([]DeepLinkResponse(nil), p.DeepLinks...)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = homePage.Execute(w, map[string]any{"Issuer": p.Issuer(), "ClientID": p.ClientID, "Links": links,
		"Bad": p.BadLaunches(p.ToolLaunchURL + "/elsewhere"), "Rosters": p.rosterSummaries(r.Context(), 5),
		"Gradebooks": p.gradebookSummaries(5)})
}

// start begins a launch from the demo page: it sends the browser to the
// tool's login initiation URL.
func (p *Platform) start(w http.ResponseWriter, r *http.Request) {
	if p.ToolLoginURL == "" {
		http.Error(w, "no tool configured", http.StatusNotFound)
		return
	}
	l := Launch{Subject: "demo-" + r.URL.Query().Get("as"), Roles: []string{lti.RoleLearner}}
	if r.URL.Query().Get("as") == "instructor" {
		l.Roles = []string{lti.RoleInstructor}
		l.Claims = map[string]any{"name": "Grace Hopper", "given_name": "Grace", "family_name": "Hopper", "email": "grace@example.edu"}
	}
	if m, ok := p.demoMember(l.Roles[0]); ok { // the course's roster names who launches
		l.Subject, l.Roles = m.UserID, m.Roles
		l.Claims = map[string]any{"name": m.Name, "given_name": m.GivenName, "family_name": m.FamilyName, "email": m.Email}
	}
	if r.URL.Query().Get("message") == "deep-linking" {
		l.Message = lti.MessageDeepLinkingRequest
		l.Claims = map[string]any{lti.ClaimDeepLinking: map[string]any{
			"deep_link_return_url": p.Server.URL + "/deep-link-return", "accept_types": []string{"ltiResourceLink"},
			"accept_presentation_document_targets": []string{"iframe", "window"}, "accept_multiple": true, "data": "demo",
		}}
	}
	if i, err := strconv.Atoi(r.URL.Query().Get("bad")); err == nil {
		bad := p.BadLaunches(p.ToolLaunchURL + "/elsewhere")
		if i >= 0 && i < len(bad) {
			l = bad[i].Launch
		}
	}
	http.Redirect(w, r, p.LoginURL(p.ToolLoginURL, p.ToolLaunchURL, l), http.StatusFound)
}

// demoMember is the first active member of the demo course's roster with
// role, when the course has a roster: a launch from the demo page is then
// someone the roster lists, as in a real course.
func (p *Platform) demoMember(role string) (RosterMember, bool) {
	h := p.Roster("course-1")
	if h == nil {
		return RosterMember{}, false
	}
	for i := range h.Len() {
		if m := h.Member(i); m.Status == "Active" && roleMatches(role, m.Roles) {
			return m, true
		}
	}
	return RosterMember{}, false
}

// gradebookSummary is a course's gradebook for the demo page.
type gradebookSummary struct {
	ID      string
	Columns []columnSummary
}

type columnSummary struct {
	Label  string
	Max    string
	Scores []string // "user: given/maximum (grading progress)", by user
	More   int      // scores past the first few
}

// gradebookSummaries describes each course's gradebook with the first
// few learners' latest scores in each column.
func (p *Platform) gradebookSummaries(first int) []gradebookSummary {
	p.ags.mu.Lock()
	ids := slices.Sorted(maps.Keys(p.ags.books))
	p.ags.mu.Unlock()
	var out []gradebookSummary
	for _, id := range ids {
		g := gradebookSummary{ID: id}
		for _, c := range p.Gradebook(id) {
			cs := columnSummary{Label: c.Label, Max: strconv.FormatFloat(c.ScoreMaximum, 'f', -1, 64)}
			for _, user := range slices.Sorted(maps.Keys(c.Scores)) {
				if len(cs.Scores) == first {
					cs.More++
					continue
				}
				cs.Scores = append(cs.Scores, scoreLine(user, c.Scores[user]))
			}
			g.Columns = append(g.Columns, cs)
		}
		out = append(out, g)
	}
	return out
}

func scoreLine(user string, s Score) string {
	given := "no score"
	if s.ScoreGiven != nil && s.ScoreMaximum != nil {
		given = strconv.FormatFloat(*s.ScoreGiven, 'f', -1, 64) + "/" + strconv.FormatFloat(*s.ScoreMaximum, 'f', -1, 64)
	}
	return user + ": " + given + " (" + s.GradingProgress + ")"
}
