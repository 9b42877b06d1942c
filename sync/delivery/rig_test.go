package delivery_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/httpx"
	hubkeys "github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/keys/keystest"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/lti/servicetoken"
	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/sync/results"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
	"github.com/klasterina/hub/tenants/destinations"
)

// rig is a hub that routes results and delivers them, against a fake LMS
// (its grade services and token endpoint verifying the hub's keys) and
// webhook receivers on loopback: real PostgreSQL as the application role,
// real HTTP, real signatures.
type rig struct {
	t          testing.TB
	db         *sqlx.DB // the application role, on the hub's pool
	jobsDB     *sqlx.DB
	svc        *delivery.Service
	results    *results.Store
	agreements *agreements.Store
	learners   *agreements.Learners
	dests      *destinations.Store
	p          *ltitest.Platform
	app        results.AppKey
	tenant     uuid.UUID
	regID      uuid.UUID
	course     uuid.UUID
	link       uuid.UUID // the resource_links row of "link-1"
	learner    uuid.UUID
	subject    string // the learner's subject at the platform
	admin      audit.Actor
}

const (
	contextID = "course-1"
	linkID    = "link-1"
)

func newRig(t testing.TB) *rig {
	t.Helper()
	ctx := context.Background()
	d := pgtest.New(t)
	r := &rig{t: t, db: pgtest.Connect(t, d.URL), p: ltitest.New(), admin: audit.System("test")}
	t.Cleanup(r.p.Close)
	var err error
	if r.jobsDB, err = jobs.Open(ctx, d.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.jobsDB.Close() })
	sealer, _ := secrets.New(bytes.Repeat([]byte{3}, 32))
	ks := hubkeys.NewStore(r.db, sealer, quiet())
	if err := ks.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	jwks := keystest.Serve(t, ks)
	r.p.ToolJWKSURL, r.p.ToolClient = jwks.URL, jwks.Client()
	client := httpx.New(true)
	chain, _ := audit.NewKeyring(bytes.Repeat([]byte{4}, 32))
	r.dests = destinations.NewStore(r.db, chain, sealer, quiet())
	r.dests.AllowHTTP = true
	sendDB, err := jobs.OpenWorkers(ctx, d.URL, jobs.DeliveryWorkers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sendDB.Close() })
	r.svc = delivery.New(r.jobsDB, sendDB, client, servicetoken.NewSource(ks, client), r.dests, chain, "https://hub.example", nil, quiet())
	r.svc.Policy = delivery.Policy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, PerDestination: 4, Batch: 50}
	if r.svc.Jobs, err = jobs.New(r.jobsDB, jobs.Config{Log: quiet()}); err != nil {
		t.Fatal(err)
	}
	r.results = results.NewStore(r.jobsDB, chain, quiet())
	r.results.Route = r.svc.Route
	if r.app, _, err = r.results.CreateAppKey(ctx, r.admin, "learning app"); err != nil {
		t.Fatal(err)
	}
	r.agreements = agreements.NewStore(r.db, chain, quiet())
	r.learners = agreements.NewLearners(r.db, chain)
	r.seed()
	return r
}

// seed makes a tenant that registered the platform, its course-1 with the
// grade services (scores and line items granted) and resource link
// link-1 (no line item of its own), and a learner who launched it: the
// platform's first roster member.
func (r *rig) seed() {
	r.tenant, r.regID, r.course, r.link, r.learner = uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	r.p.SetRoster(contextID, 3)
	r.p.AddResourceLink(contextID, linkID)
	r.subject = "nrps-" + contextID + "-0"
	r.inTenant(func(tx *sqlx.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO tenants (id, slug, display_name, kind) VALUES ($1, $2, 'University', 'institution')`,
				[]any{r.tenant, "uni-" + r.tenant.String()[:8]}},
			{`INSERT INTO lti_registrations (id, tenant_id, issuer, client_id, auth_login_url, auth_token_url, jwks_url,
				created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now())`,
				[]any{r.regID, r.tenant, r.p.Issuer(), r.p.ClientID, r.p.AuthURL(), r.p.TokenURL(), r.p.JWKSURL()}},
			{`INSERT INTO lti_deployments (tenant_id, registration_id, deployment_id, created_at) VALUES ($1, $2, $3, now())`,
				[]any{r.tenant, r.regID, r.p.DeploymentID}},
			{`INSERT INTO contexts (id, tenant_id, registration_id, deployment_id, context_id, title, ags_lineitems, ags_scopes,
				updated_at) VALUES ($1, $2, $3, $4, $5, 'Mathematics', $6, $7, now())`,
				[]any{r.course, r.tenant, r.regID, r.p.DeploymentID, contextID, r.p.LineItemsURL(contextID),
					"{" + lti.ScopeAGSScore + "," + lti.ScopeAGSLineItem + "}"}},
			{`INSERT INTO resource_links (id, tenant_id, registration_id, deployment_id, resource_link_id, context_ref, title, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, 'Quiz 1', now())`,
				[]any{r.link, r.tenant, r.regID, r.p.DeploymentID, linkID, r.course}},
			{`INSERT INTO users (id, tenant_id, name, email, created_at, updated_at) VALUES ($1, $2, 'Ada Lovelace', 'ada@uni.example', now(), now())`,
				[]any{r.learner, r.tenant}},
			{`INSERT INTO lti_identities (tenant_id, issuer, subject, user_id, last_launch_at, lis_person_sourcedid)
				VALUES ($1, $2, $3, $4, now(), 'S-1815')`, []any{r.tenant, r.p.Issuer(), r.subject, r.learner}},
			{`INSERT INTO memberships (tenant_id, context_ref, user_id, source, status, launched_at, updated_at)
				VALUES ($1, $2, $3, 'launch', 'active', now(), now())`, []any{r.tenant, r.course, r.learner}},
		} {
			if _, err := tx.Exec(q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
}

func (r *rig) inTenant(fn func(*sqlx.Tx) error) {
	r.t.Helper()
	if err := pg.InTenant(context.Background(), r.db, r.tenant, fn); err != nil {
		r.t.Fatal(err)
	}
}

// agree makes the tenant's active agreement: scores and completion, to
// the LMS and the given destinations, no identity field and no consent
// needed, unless change says otherwise.
func (r *rig) agree(change func(*agreements.Terms), dests ...uuid.UUID) {
	r.t.Helper()
	terms := agreements.Terms{EffectiveFrom: time.Now().Add(-time.Hour),
		Purposes:     []agreements.Purpose{{Code: agreements.PurposeGradebook}},
		Categories:   []agreements.Category{agreements.CategoryScores, agreements.CategoryCompletion},
		Destinations: []agreements.Destination{{Kind: agreements.DestinationLMS}}, Consent: agreements.ConsentNotRequired,
		DisclosureRetentionDays: 365, CopyRetentionDays: 30, OnEnd: agreements.OnEndDelete}
	for _, id := range dests {
		d, err := r.dests.Get(context.Background(), r.tenant, id)
		if err != nil {
			r.t.Fatal(err)
		}
		terms.Destinations = append(terms.Destinations, agreements.Destination{Kind: agreements.DestinationKind(d.Kind), ID: &id})
	}
	if change != nil {
		change(&terms)
	}
	ctx := context.Background()
	a, err := r.agreements.Create(ctx, r.admin, r.tenant, terms)
	if err != nil {
		r.t.Fatal(err)
	}
	signed := time.Now().Add(-time.Minute)
	if _, err := r.agreements.Activate(ctx, r.admin, r.tenant, a.ID, agreements.Signatures{
		Institution: &agreements.Signatory{Name: "Registrar", SignedAt: signed},
		Provider:    &agreements.Signatory{Name: "Counsel", SignedAt: signed}}); err != nil {
		r.t.Fatal(err)
	}
}

// webhook adds a webhook destination at url taking types of records, and
// answers it with its secret.
func (r *rig) webhook(url string, types ...destinations.EventType) destinations.Created {
	r.t.Helper()
	c, err := r.dests.Create(context.Background(), r.admin, r.tenant, destinations.New{Kind: destinations.KindWebhook,
		Name: "HR " + uuid.NewString()[:6], URL: url, EventTypes: types})
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// report records a result of the learner's on link-1, scored given of
// 10 unless change says otherwise.
func (r *rig) report(given float64, change func(*results.Report)) results.Result {
	r.t.Helper()
	max := 10.0
	rep := results.Report{User: r.learner.String(), ResourceLink: linkID, ScoreGiven: &given, ScoreMaximum: &max,
		ActivityProgress: "Completed", GradingProgress: "FullyGraded", OccurredAt: time.Now().Add(-time.Minute)}
	if change != nil {
		change(&rep)
	}
	res, _, err := r.results.Record(context.Background(), r.app, rep, "")
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// deliveryRow is a delivery as a test reads it.
type deliveryRow struct {
	ID       uuid.UUID  `db:"id"`
	Kind     string     `db:"destination_kind"`
	Status   string     `db:"status"`
	Reason   *string    `db:"reason"`
	Attempts int        `db:"attempts"`
	Throttle int        `db:"throttled"`
	UserID   *uuid.UUID `db:"user_id"`
}

func (r *rig) deliveries() []deliveryRow {
	r.t.Helper()
	var out []deliveryRow
	r.inTenant(func(tx *sqlx.Tx) error {
		return tx.Select(&out, `SELECT id, destination_kind, status, reason, attempts, throttled, user_id FROM deliveries
			ORDER BY created_at, destination_kind, id`)
	})
	return out
}

// noGradeServices makes course-1 one whose launches offered no grade
// services: results go to the tenant's other destinations only.
func (r *rig) noGradeServices() {
	r.t.Helper()
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET ags_lineitems = NULL, ags_scopes = '{}' WHERE id = $1`, r.course)
		return err
	})
}

// run works each pending delivery once, as its job would, in the order
// they were queued, and answers how many were tried. The waits the
// deliveries were given (backoff, Retry-After) are taken to have passed.
func (r *rig) run() int {
	r.t.Helper()
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE deliveries SET not_before = NULL WHERE status = 'pending'`)
		return err
	})
	n := 0
	for _, d := range r.deliveries() {
		if d.Status != delivery.StatusPending {
			continue
		}
		if _, err := r.svc.Deliver(context.Background(), r.tenant, d.ID); err != nil {
			r.t.Fatal(err)
		}
		n++
	}
	return n
}

// drain runs the pending deliveries until none is left, at most tries
// rounds.
func (r *rig) drain(tries int) {
	r.t.Helper()
	for range tries + 1 {
		if r.run() == 0 {
			return
		}
	}
	r.t.Fatalf("deliveries still pending after %d rounds: %+v", tries, r.deliveries())
}

// disclosure is a row of the record of disclosures as a test reads it.
type disclosure struct {
	Decision string     `db:"decision"`
	Reason   *string    `db:"reason"`
	Kind     string     `db:"destination_kind"`
	Fields   string     `db:"fields"`
	Removed  string     `db:"removed_fields"`
	UserID   *uuid.UUID `db:"user_id"`
}

// disclosures reads the record of disclosures, oldest first.
func (r *rig) disclosures() []disclosure {
	r.t.Helper()
	var out []disclosure
	r.inTenant(func(tx *sqlx.Tx) error {
		return tx.Select(&out, `SELECT decision, nullif(reason, '') AS reason, destination_kind, array_to_string(fields, ',') AS fields,
			array_to_string(removed_fields, ',') AS removed_fields, user_id FROM disclosures ORDER BY decided_at, id`)
	})
	return out
}

// scoresWebhookOnly makes a receiver answering with answer the tenant's
// one destination of scores, allowed by the agreement, course-1 offering
// no grade services: results go to it alone.
func (r *rig) scoresWebhookOnly(answer http.HandlerFunc) *receiver {
	rcv := newReceiver(r.t, answer)
	r.onlyTo(rcv)
	return rcv
}

// onlyTo makes rcv the tenant's one destination of scores, as
// scoresWebhookOnly does.
func (r *rig) onlyTo(rcv *receiver) {
	hook := r.webhook(rcv.URL, destinations.EventScores)
	r.agree(nil, hook.ID)
	r.noGradeServices()
}
