package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/klasterina/hub/internal/token"
)

// The learning-app stand-in of the demo: where the hub hands a launched
// learner off (HUB_APP_URL), it checks the handoff token against the
// hub's published keys, greets the learner, and offers a form that
// reports a score for them through the hub's REST API (POST
// /api/v1/results) with its app key, over HTTP, as a real app would.

// demoApp is the stand-in learning app.
type demoApp struct {
	url    string // its entry point, HUB_APP_URL: the handoff's audience
	hub    string // the hub's public URL: the handoff's issuer, the API's base
	appKey string // its app key's token; never shown
	client *http.Client

	mu       sync.Mutex
	sessions map[string]*appSession
	order    []string             // session ids, oldest first
	spent    map[string]time.Time // handoff token ids used, until they expire
}

// appSession is one handed-off learner, as the form names them.
type appSession struct {
	User         string // the handoff's sub
	Name         string
	Course       string
	Activity     string // its title, for the page
	ResourceLink string // the handoff's activity id: the LMS resource link
	// CatalogActivity is what a result names when the handoff names no
	// resource link (an employee's sign-in): a catalog activity's id.
	CatalogActivity string
}

// signInActivity is the catalog activity an employee who signed in
// reports against: a sign-in, unlike a launch, names no activity.
var signInActivity = demoActivities()[0]

// maxAppSessions bounds what the stand-in remembers: the oldest learner
// handed off goes first.
const maxAppSessions = 200

func newDemoApp(url, hub, appKey string) *demoApp {
	return &demoApp{url: url, hub: strings.TrimSuffix(hub, "/"), appKey: appKey, client: &http.Client{Timeout: 15 * time.Second},
		sessions: map[string]*appSession{}, spent: map[string]time.Time{}}
}

// handoffClaims are the handoff token's claims the stand-in reads.
type handoffClaims struct {
	Sub      string      `json:"sub"`
	Name     string      `json:"name"`
	Context  *handoffRef `json:"context"`
	Activity *handoffRef `json:"activity"`
}

type handoffRef struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// enter is the handoff: the hub posts hub_token here after a launch.
func (a *demoApp) enter(w http.ResponseWriter, r *http.Request) {
	claims, err := a.verify(r.Context(), r.PostFormValue("hub_token"))
	if err != nil {
		appPage(w, http.StatusUnauthorized, map[string]any{"Refused": err.Error()})
		return
	}
	s := &appSession{User: claims.Sub, Name: claims.Name}
	if c := claims.Context; c != nil {
		s.Course = firstOf(c.Title, c.ID)
	}
	if act := claims.Activity; act != nil {
		s.ResourceLink, s.Activity = act.ID, firstOf(act.Title, act.ID)
	} else {
		s.CatalogActivity, s.Activity = signInActivity.ID, signInActivity.Title
	}
	appPage(w, http.StatusOK, map[string]any{"Session": s, "SID": a.keep(s), "Key": token.Random(16)})
}

// verify checks the handoff token's signature against the hub's JWKS,
// its issuer, audience and lifetime, and that its id was not used before.
func (a *demoApp) verify(ctx context.Context, raw string) (handoffClaims, error) {
	var c handoffClaims
	if raw == "" {
		return c, fmt.Errorf("no handoff token: launch from the demo LMS")
	}
	set, err := jwk.Fetch(ctx, a.hub+"/.well-known/jwks.json", jwk.WithHTTPClient(a.client))
	if err != nil {
		return c, fmt.Errorf("the hub's keys could not be read: %w", err)
	}
	tok, err := jwt.Parse([]byte(raw), jwt.WithKeySet(set, jws.WithRequireKid(true)), jwt.WithValidate(true),
		jwt.WithIssuer(a.hub), jwt.WithAudience(a.url), jwt.WithAcceptableSkew(5*time.Second))
	if err != nil {
		return c, fmt.Errorf("the handoff token is not valid: %w", err)
	}
	if !a.spend(tok.JwtID(), tok.Expiration()) {
		return c, fmt.Errorf("the handoff token was used already: launch again")
	}
	b, err := json.Marshal(tok) // the verified claims, private ones included
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	return c, err
}

// spend records the token id jti until exp, and reports whether it was new.
func (a *demoApp) spend(jti string, exp time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for id, until := range a.spent {
		if until.Before(now) {
			delete(a.spent, id)
		}
	}
	if _, used := a.spent[jti]; used || jti == "" {
		return false
	}
	a.spent[jti] = exp
	return true
}

// keep remembers s under a new session id.
func (a *demoApp) keep(s *appSession) string {
	id := token.Random(16)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sessions[id] = s
	a.order = append(a.order, id)
	if len(a.order) > maxAppSessions {
		delete(a.sessions, a.order[0])
		a.order = a.order[1:]
	}
	return id
}

func (a *demoApp) session(id string) *appSession {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[id]
}

// report posts the form's result for the session's learner to the hub.
func (a *demoApp) report(w http.ResponseWriter, r *http.Request) {
	s := a.session(r.PostFormValue("sid"))
	if s == nil {
		appPage(w, http.StatusBadRequest, map[string]any{"Refused": "This page is too old: launch again from the demo LMS."})
		return
	}
	body, err := reportOf(s, r)
	if err != nil {
		appPage(w, http.StatusBadRequest, map[string]any{"Session": s, "SID": r.PostFormValue("sid"), "Key": token.Random(16),
			"Answer": err.Error()})
		return
	}
	status, answer := a.postResult(r.Context(), body, r.PostFormValue("key"))
	appPage(w, http.StatusOK, map[string]any{"Session": s, "SID": r.PostFormValue("sid"), "Key": token.Random(16),
		"Posted": string(body), "Status": status, "Answer": answer})
}

// reportOf is the JSON body of the result the form describes: a score
// when one is given, and whether the activity was completed.
func reportOf(s *appSession, r *http.Request) ([]byte, error) {
	completed := r.PostFormValue("completed") != ""
	in := map[string]any{"user": s.User, "completed": completed,
		"activity_progress": "InProgress", "grading_progress": "NotReady", "occurred_at": time.Now().UTC().Format(time.RFC3339Nano)}
	if s.ResourceLink != "" {
		in["resource_link"] = s.ResourceLink
	} else {
		in["activity"] = s.CatalogActivity
	}
	if completed {
		in["activity_progress"] = "Completed"
	}
	if given := strings.TrimSpace(r.PostFormValue("score_given")); given != "" {
		g, err1 := strconv.ParseFloat(given, 64)
		m, err2 := strconv.ParseFloat(strings.TrimSpace(r.PostFormValue("score_maximum")), 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("the score and its maximum must be numbers")
		}
		in["score_given"], in["score_maximum"], in["grading_progress"] = g, m, "FullyGraded"
	}
	return json.Marshal(in)
}

// postResult sends body to POST /api/v1/results with the app key and
// answers the hub's status and its answer, indented.
func (a *demoApp) postResult(ctx context.Context, body []byte, key string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.hub+"/api/v1/results", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.appKey)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := a.client.Do(req)
	if err != nil {
		return 0, "the hub did not answer: " + err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, indentJSON(b)
}

func indentJSON(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func appPage(w http.ResponseWriter, status int, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = appTemplate.Execute(w, data)
}

var appTemplate = template.Must(template.New("app").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo learning app</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.4rem 0}pre{background:#f3f3f3;padding:.5rem;overflow:auto}</style></head>
<body><h1>Demo learning app</h1>
<p>A stand-in for the learning app: the hub handed you off to it, signed; it reports results back through the hub's REST API with its app key.</p>
{{with .Refused}}<p><strong>{{.}}</strong></p>{{end}}
{{with .Session}}
<p>Hello{{with .Name}}, {{.}}{{end}}.{{with .Activity}} Activity: <strong>{{.}}</strong>{{end}}{{with .Course}} in {{.}}{{end}}{{if or .Activity .Course}}.{{end}}</p>
<p>Hub user <code>{{.User}}</code>, {{if .ResourceLink}}resource link <code>{{.ResourceLink}}</code>{{else}}catalog activity <code>{{.CatalogActivity}}</code>{{end}}.</p>
<h2>Report a score</h2>
<form method="post" action="/app/report">
<input type="hidden" name="sid" value="{{$.SID}}">
<input type="hidden" name="key" value="{{$.Key}}">
<label>Score <input name="score_given" value="85" inputmode="decimal" size="6"> out of <input name="score_maximum" value="100" inputmode="decimal" size="6"></label>
<label><input type="checkbox" name="completed" value="true" checked> Completed</label>
<p><small>Leave the score empty to report a completion alone.</small></p>
<button>Report to the hub</button>
</form>
{{end}}
{{with .Posted}}<h2>Posted to the hub</h2><p><code>POST /api/v1/results</code></p><pre>{{.}}</pre>{{end}}
{{with .Status}}<h2>The hub answered {{.}}</h2>{{end}}
{{with .Answer}}<pre>{{.}}</pre>{{end}}
</body></html>`))
