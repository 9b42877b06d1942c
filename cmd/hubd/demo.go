package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/sync/roster"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

const (
	demoSlug = "demo-university"
	// demoLMSAddr keeps the demo LMS's issuer the same across restarts,
	// so its registration is reused.
	demoLMSAddr = "127.0.0.1:8090"
	// demoCourse is the context of the demo LMS's launches; its roster
	// has demoRosterSize members.
	demoCourse     = "course-1"
	demoRosterSize = 40
)

// demo seeds a demo tenant with a fresh API key, the activity catalog and
// a demo LMS registered with the tenant; runs the demo site (a stand-in
// for the learning app, where launches are handed off, and a webhook
// receiver) with what results need to travel (an app key, the webhook
// destination, an active agreement); prints how to try it all, and
// serves. Seeding is idempotent: a rerun keeps the tenant, registration,
// destination and agreement, and issues new keys.
func demo(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	ln, err := net.Listen("tcp", demoSiteAddr)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil { // taken: a port of its own
			return fmt.Errorf("demo site: %w", err)
		}
	}
	defer ln.Close()
	// The hub calls the receiver at site; a browser opens the pages at
	// browse, as it does the hub's.
	site := "http://" + ln.Addr().String()
	browse := strings.Replace(site, "127.0.0.1", "localhost", 1)
	h, err := openHub(ctx, demoEnv(getenv, browse+"/app"), stderr)
	if err != nil {
		return err
	}
	defer h.db.Close()
	t, token, err := h.seedDemo(ctx)
	if err != nil {
		return fmt.Errorf("seed demo tenant: %w", err)
	}
	sharing, err := h.seedSharing(ctx, t, site+"/webhooks")
	if err != nil {
		return fmt.Errorf("seed demo sharing: %w", err)
	}
	employer, err := h.seedEmployer(ctx)
	if err != nil {
		return fmt.Errorf("seed demo employer: %w", err)
	}
	defer employer.IdP.Close()
	srv := h.startDemoSite(ln, sharing)
	defer srv.Close()
	lms, err := h.startDemoLMS(ctx, t)
	if err != nil {
		return fmt.Errorf("demo LMS: %w", err)
	}
	defer lms.Close()
	return h.serve(ctx, func(h *hub, addr net.Addr) {
		printWelcome(stdout, h, t, token, addr, lms, browse)
		printEmployer(stdout, h, employer, addr)
	})
}

// demoSiteAddr is where the demo site listens when it can: the stand-in
// learning app and the webhook receiver.
const demoSiteAddr = "127.0.0.1:8091"

// startDemoSite serves the learning-app stand-in (at /app, the hub's
// HUB_APP_URL unless set otherwise) and the webhook receiver (at
// /webhooks) on ln.
func (h *hub) startDemoSite(ln net.Listener, s demoSharing) *http.Server {
	app := newDemoApp(h.cfg.AppURL.String(), h.cfg.PublicURL.String(), s.AppKey)
	receiver := newDemoReceiver(s.WebhookSecrets)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /app", app.enter)
	mux.HandleFunc("POST /app/report", app.report)
	mux.HandleFunc("GET /app", func(w http.ResponseWriter, _ *http.Request) {
		appPage(w, http.StatusOK, map[string]any{"Refused": "Launch from the demo LMS: the hub hands you off here."})
	})
	mux.HandleFunc("POST /webhooks", receiver.receive)
	mux.HandleFunc("GET /webhooks", receiver.list)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv
}

// demoEnv turns HUB_OUTBOUND_ALLOW_PRIVATE on unless it is set: the demo
// LMS and site run on loopback over plain http, which the hub refuses to
// register or call otherwise; and it sets HUB_APP_URL, unless it is set,
// to appURL, the demo's learning-app stand-in.
func demoEnv(getenv func(string) string, appURL string) func(string) string {
	return func(name string) string {
		v := getenv(name)
		switch {
		case v != "":
			return v
		case name == "HUB_OUTBOUND_ALLOW_PRIVATE":
			return "true"
		case name == "HUB_APP_URL":
			return appURL
		}
		return v
	}
}

func (h *hub) seedDemo(ctx context.Context) (tenants.Tenant, string, error) {
	by := audit.System("demo seed")
	t, err := h.deps.Tenants.BySlug(ctx, demoSlug)
	if apperr.Is(err, apperr.NotFound) {
		t, err = h.deps.Tenants.Create(ctx, by, tenants.NewTenant{Slug: demoSlug, DisplayName: "Demo University", Kind: tenants.Institution})
	}
	if err != nil {
		return t, "", err
	}
	for _, a := range demoActivities() {
		if err := h.deps.Catalog.Upsert(ctx, by, a); err != nil {
			return t, "", err
		}
	}
	if err := h.revokeDemoKeys(ctx, by, t); err != nil {
		return t, "", err
	}
	_, token, err := h.deps.Tenants.CreateKey(ctx, by, t.ID, tenants.NewKey{
		Name: demoKeyName, Scopes: []tenants.Scope{tenants.ScopeRead, tenants.ScopeWrite}})
	return t, token, err
}

const demoKeyName = "demo key"

// revokeDemoKeys revokes the keys earlier runs printed: only the newest
// demo key works, so old terminals' keys do not pile up.
func (h *hub) revokeDemoKeys(ctx context.Context, by audit.Actor, t tenants.Tenant) error {
	page := pg.Page{Limit: 200}
	for {
		keys, next, err := h.deps.Tenants.ListKeys(ctx, t.ID, page)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Name == demoKeyName && k.RevokedAt == nil {
				if _, err := h.deps.Tenants.RevokeKey(ctx, by, t.ID, k.ID); err != nil && !apperr.Is(err, apperr.NotFound) {
					return err
				}
			}
		}
		if next == nil {
			return nil
		}
		page.After = next
	}
}

func demoActivities() []lti.Activity {
	ten, hundred := 10.0, 100.0
	return []lti.Activity{
		{ID: "fractions-quiz", Title: "Fractions quiz", Description: "Ten questions on adding fractions.", Gradable: true, MaxScore: &ten},
		{ID: "algebra-project", Title: "Algebra project", Description: "A week-long modelling project.", Gradable: true, MaxScore: &hundred},
		{ID: "number-line-video", Title: "The number line", Description: "A six-minute video lesson."},
	}
}

// startDemoLMS runs the fake LMS and registers it with the demo tenant.
func (h *hub) startDemoLMS(ctx context.Context, t tenants.Tenant) (*ltitest.Platform, error) {
	if !h.cfg.OutboundAllowPrivate {
		return nil, errors.New("the demo LMS runs on loopback over http: it needs HUB_OUTBOUND_ALLOW_PRIVATE=true")
	}
	ln, err := net.Listen("tcp", demoLMSAddr)
	if err != nil {
		ln = nil // taken: a port of its own, and a new registration
	}
	p := ltitest.NewOn(ln)
	p.ClientID, p.DeploymentID = "demo-client", "demo-deployment"
	base := h.cfg.PublicURL.String()
	p.ToolLoginURL, p.ToolLaunchURL = base+"/lti/login", base+"/lti/launch"
	// The platform verifies what the hub signs against its keyset: deep
	// linking responses, and the client assertions of the hub's service
	// token requests (roster syncs).
	p.ToolJWKSURL, p.ToolClient = base+"/.well-known/jwks.json", http.DefaultClient
	// The course the demo page launches into has a roster, which the hub
	// syncs after the course's first launch.
	p.SetRoster(demoCourse, demoRosterSize)
	p.ToolRoster = func(ctx context.Context, contextID string) (ltitest.ToolCopy, error) {
		return h.rosterCopy(ctx, t.ID, contextID)
	}
	_, err = h.deps.LTIRegs.Create(ctx, audit.System("demo seed"), t.ID, lti.NewRegistration{
		Issuer: p.Issuer(), ClientID: p.ClientID, AuthLoginURL: p.AuthURL(), AuthTokenURL: p.TokenURL(),
		JWKSURL: p.JWKSURL(), DeploymentIDs: []string{p.DeploymentID}})
	if err != nil && !apperr.Is(err, apperr.Conflict) { // registered by an earlier run
		p.Close()
		return nil, err
	}
	return p, nil
}

func printWelcome(w io.Writer, h *hub, t tenants.Tenant, token string, addr net.Addr, lms *ltitest.Platform, site string) {
	base := "http://localhost:" + portOf(addr)
	app := site + "/app   (the stand-in learning app: launches land here)"
	if h.cfg.AppURL.String() != site+"/app" {
		app = site + "/app   (not in use: HUB_APP_URL hands launches off to " + h.cfg.AppURL.String() + ")"
	}
	fmt.Fprintf(w, `
The hub is running at %[1]s

  operator token:  %[2]s
  demo tenant:     %[3]s (%[4]s)
  demo API key:    %[5]s   (shown once; read and write)
  demo LMS:        %[6]s   (open it in a browser and launch into the hub)
  learning app:    %[7]s
  webhooks:        %[8]s/webhooks   (the demo tenant's webhook destination posts here)

Try:

  curl -s %[1]s/readyz

  curl -s -H 'Authorization: Bearer %[5]s' %[1]s/api/v1/tenants/%[3]s/lti/registrations

  After a first launch the hub syncs the course's roster from the demo LMS
  (COURSE: the id the first command answers):

  curl -s -H 'Authorization: Bearer %[5]s' %[1]s/api/v1/tenants/%[3]s/lti/contexts
  curl -s -H 'Authorization: Bearer %[5]s' "%[1]s/api/v1/tenants/%[3]s/lti/contexts/$COURSE/members?role=Learner"

  Launch as a student, report a score in the learning app: the hub sends it
  to the demo LMS's gradebook (reload its page) and the record to the webhook
  receiver, as the demo tenant's active agreement allows; each decision is on
  the record of disclosures:

  curl -s -H 'Authorization: Bearer %[5]s' "%[1]s/api/v1/tenants/%[3]s/agreements?status=active"
  curl -s -H 'Authorization: Bearer %[5]s' %[1]s/api/v1/tenants/%[3]s/disclosures

  curl -s -X POST -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
       -d '{"slug":"acme","display_name":"Acme Corp","kind":"employer"}' %[1]s/api/v1/tenants

The API is described at %[1]s/api/v1/openapi.json.
`, base, h.cfg.AdminToken, t.Slug, t.DisplayName, token, strings.Replace(lms.Server.URL, "127.0.0.1", "localhost", 1), app, site)
}

// printEmployer says how to sign in as the demo employer's staff and see
// its directory.
func printEmployer(w io.Writer, h *hub, e demoEmployer, addr net.Addr) {
	base := "http://localhost:" + portOf(addr)
	fmt.Fprintf(w, `
Employer sign-in and directory:

  employer tenant: %[2]s (%[3]s), email domain %[4]s
  identity provider: %[5]s   (an OpenID provider of the demo's own)
  SCIM token:      %[6]s   (shown once; the directory's bearer token)

  Sign in as an employee: open %[1]s/sso/start in a browser and type
  ann@%[4]s (or ben@…, cy@…). The provider's page lets you pick who you are.
  Ann is not in the directory: her first sign-in creates her. Ben was
  provisioned by SCIM before he signed in: his sign-in is the same user.
  Cy was provisioned, then deactivated: his sign-in is refused. Either way
  a signed-in employee lands in the learning app, as a launch does.

  The directory as the employer's provisioning client sees it:

  curl -s -H 'Authorization: Bearer %[6]s' '%[1]s/scim/v2/%[2]s/Users?filter=userName%%20eq%%20%%22ben@%[4]s%%22'
  curl -s -H 'Authorization: Bearer %[6]s' %[1]s/scim/v2/%[2]s/Users

  The employees' sessions, which a tenant admin can end:

  curl -s -H 'Authorization: Bearer %[7]s' %[1]s/api/v1/tenants/%[2]s/sso/sessions

Press Ctrl-C to stop.

`, base, e.Tenant.Slug, e.Tenant.DisplayName, employerDomain, e.IdP.Issuer(), e.SCIMToken, h.cfg.AdminToken)
}

func portOf(addr net.Addr) string {
	s := addr.String()
	return s[strings.LastIndex(s, ":")+1:]
}

// rosterCopy is the hub's copy of a course's roster, for the demo LMS's
// page: how many members are active and removed, when it was synced, and
// the first few active members.
func (h *hub) rosterCopy(ctx context.Context, tenant uuid.UUID, contextID string) (ltitest.ToolCopy, error) {
	var c ltitest.ToolCopy
	id, err := h.deps.Roster.FindCourse(ctx, tenant, contextID)
	if apperr.Is(err, apperr.NotFound) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	course, err := h.deps.Roster.Course(ctx, tenant, id)
	if err != nil {
		return c, err
	}
	c.Known, c.Active = true, course.Members
	if course.SyncedAt != nil {
		c.SyncedAt = course.SyncedAt.Format(time.RFC1123)
	}
	removed, _, err := h.deps.Roster.Members(ctx, tenant, id, roster.MemberFilter{Status: "removed", Page: pg.Page{Limit: 1000}})
	if err != nil {
		return c, err
	}
	c.Removed = len(removed)
	first, _, err := h.deps.Roster.Members(ctx, tenant, id, roster.MemberFilter{Status: "active", Page: pg.Page{Limit: 5}})
	for _, m := range first {
		c.First = append(c.First, ltitest.RosterMember{Name: deref(m.Name), Email: deref(m.Email), Roles: m.Roles, Status: m.Status})
	}
	return c, err
}
