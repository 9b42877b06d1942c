package delivery_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/sync/results"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/destinations"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func statuses(ds []deliveryRow) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Kind + ":" + d.Status
		if d.Reason != nil {
			out[i] += ":" + *d.Reason
		}
	}
	return out
}

func expectStatuses(t *testing.T, r *rig, want ...string) {
	t.Helper()
	if got := statuses(r.deliveries()); !slices.Equal(got, want) {
		t.Fatalf("deliveries = %v, want %v", got, want)
	}
}

// column is the platform's one gradebook column of course-1.
func column(t *testing.T, r *rig) ltitest.Column {
	t.Helper()
	book := r.p.Gradebook(contextID)
	if len(book) != 1 {
		t.Fatalf("the gradebook has %d columns, want 1: %+v", len(book), book)
	}
	return book[0]
}

func TestScoreReachesTheGradebookThroughALineItemTheHubCreates(t *testing.T) {
	r := newRig(t)
	r.p.DeleteLineItem(column(t, r).ID) // the link's own: the hub finds none and makes one
	r.agree(nil)
	res := r.report(7, nil)
	r.drain(3)
	expectStatuses(t, r, "lms:delivered")
	col := column(t, r)
	if col.Label != "Quiz 1" || col.ScoreMaximum != 10 || col.ResourceLinkID != linkID || col.Tag != "grade" {
		t.Fatalf("line item = %+v, want Quiz 1 of 10 bound to %s tagged grade", col.LineItem, linkID)
	}
	got := col.Scores[r.subject]
	if got.ScoreGiven == nil || *got.ScoreGiven != 7 || *got.ScoreMaximum != 10 || got.ActivityProgress != "Completed" ||
		got.GradingProgress != "FullyGraded" || !got.Timestamp.Equal(res.OccurredAt.Truncate(time.Millisecond)) {
		t.Fatalf("score = %+v, want 7 of 10 at %s", got, res.OccurredAt)
	}
	// A second score goes to the same line item, later.
	r.report(9, func(rep *results.Report) { rep.OccurredAt = time.Now() })
	r.drain(3)
	if got := column(t, r).Scores[r.subject]; *got.ScoreGiven != 9 {
		t.Fatalf("score = %v, want 9", *got.ScoreGiven)
	}
	if ds := r.disclosures(); len(ds) != 2 || ds[0].Decision != "share" || ds[0].Kind != "lms" {
		t.Fatalf("disclosures = %+v, want two shares to the LMS", ds)
	}
}

func TestScoreGoesToTheLaunchesOwnLineItem(t *testing.T) {
	r := newRig(t)
	li := r.p.AddLineItem(contextID, ltitest.LineItem{Label: "Final", ScoreMaximum: 100, ResourceLinkID: linkID})
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE resource_links SET ags_lineitem = $2 WHERE id = $1`, r.link, li.ID)
		return err
	})
	r.agree(nil)
	r.report(4, nil)
	r.drain(3)
	if scores := r.p.Scores(li.ID, r.subject); len(scores) != 1 || *scores[0].ScoreGiven != 4 {
		t.Fatalf("scores on the launch's line item = %+v", scores)
	}
	if n := len(r.p.Gradebook(contextID)); n != 2 {
		t.Fatalf("%d columns, want the platform's 2: the hub made one of its own", n)
	}
}

func TestScoreGoesToTheLineItemFoundForTheResourceLink(t *testing.T) {
	r := newRig(t)
	found := column(t, r) // the platform made one for link-1
	r.agree(nil)
	r.report(6, nil)
	r.report(7, func(rep *results.Report) { rep.OccurredAt = time.Now() })
	r.drain(3)
	if scores := r.p.Scores(found.ID, r.subject); len(scores) != 1 || *scores[0].ScoreGiven != 7 {
		t.Fatalf("scores on the link's line item = %+v", scores)
	}
	if n := len(r.p.Gradebook(contextID)); n != 1 {
		t.Fatalf("%d columns: the hub made one though the link had one", n)
	}
}

func TestCommentGoesOnlyWhereTheAgreementAllowsIt(t *testing.T) {
	r := newRig(t)
	r.agree(nil)
	comment := func(rep *results.Report) { rep.Comment = "Ada struggled with question 3" }
	r.report(7, comment)
	r.drain(3)
	if got := column(t, r).Scores[r.subject]; got.Comment != "" {
		t.Fatalf("the comment reached the LMS though the agreement does not allow it: %q", got.Comment)
	}
	ds := r.disclosures()
	if len(ds) != 1 || ds[0].Decision != "share_minimized" || ds[0].Removed != "comment" {
		t.Fatalf("disclosures = %+v, want share_minimized without the comment", ds)
	}
	r.agree(func(t *agreements.Terms) { t.Fields = []agreements.Field{agreements.FieldComment} })
	r.report(8, func(rep *results.Report) { comment(rep); rep.OccurredAt = time.Now() })
	r.drain(3)
	if got := column(t, r).Scores[r.subject]; got.Comment != "Ada struggled with question 3" {
		t.Fatalf("comment = %q, want it sent once allowed", got.Comment)
	}
}

func TestCompletionReachesAWebhookSignedAndMinimised(t *testing.T) {
	r := newRig(t)
	rcv := newReceiver(t, ok)
	hook := r.webhook(rcv.URL, destinations.EventCompletion)
	r.agree(func(t *agreements.Terms) { t.Fields = []agreements.Field{agreements.FieldExternalID} }, hook.ID)
	done := true
	r.report(0, func(rep *results.Report) { rep.ScoreGiven, rep.ScoreMaximum, rep.Completed = nil, nil, &done })
	r.drain(3)
	ds := r.deliveries()
	if got := statuses(ds); !slices.Equal(got, []string{"webhook:delivered"}) {
		t.Fatalf("deliveries = %v: a completion without a score goes to the webhook only", got)
	}
	got := rcv.last(t)
	verifier, err := standardwebhooks.NewWebhook(hook.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.Verify(got.body, got.header); err != nil {
		t.Fatalf("the signature does not verify with the Standard Webhooks library: %v", err)
	}
	if id := got.header.Get("webhook-id"); id != delivery.EventID(ds[0].ID) {
		t.Fatalf("webhook-id = %q, want the delivery's stable id", id)
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			Learner   map[string]string `json:"learner"`
			Completed *bool             `json:"completed"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got.body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "completion.recorded" || ev.Data.Completed == nil || !*ev.Data.Completed {
		t.Fatalf("event = %s", got.body)
	}
	if l := ev.Data.Learner; l["external_id"] != "S-1815" || l["name"] != "" || l["email"] != "" || l["id"] != r.learner.String() {
		t.Fatalf("learner = %v, want the id and external id only", l)
	}
	dis := r.disclosures()
	if len(dis) != 1 || dis[0].Decision != "share_minimized" || dis[0].Fields != "external_id" || dis[0].Removed != "name,email" {
		t.Fatalf("disclosures = %+v", dis)
	}
}

func TestWithdrawingConsentStopsWhatIsQueued(t *testing.T) {
	r := newRig(t)
	rcv := newReceiver(t, ok)
	hook := r.webhook(rcv.URL, destinations.EventScores)
	r.agree(func(t *agreements.Terms) { t.Consent = agreements.ConsentOptOut }, hook.ID)
	r.report(7, nil)
	r.report(8, nil)
	if _, err := r.agreements.SetConsent(context.Background(), r.admin, r.tenant, r.learner, agreements.ConsentWithdrawn,
		agreements.ViaAPI); err != nil {
		t.Fatal(err)
	}
	r.drain(3)
	expectStatuses(t, r, "lms:superseded:newer_score", "webhook:withheld:consent_withdrawn", "lms:withheld:consent_withdrawn",
		"webhook:withheld:consent_withdrawn")
	if n := r.p.AGSRequests(); n != 0 || rcv.hits.Load() != 0 {
		t.Fatalf("%d grade service requests and %d webhooks after the withdrawal", n, rcv.hits.Load())
	}
	for _, d := range r.disclosures() {
		if d.Decision != "withhold" || d.Reason == nil || *d.Reason != "consent_withdrawn" {
			t.Fatalf("disclosure = %+v, want each withheld as consent_withdrawn", d)
		}
	}
}

func TestAnErasedLearnersQueuedDeliveriesEndWithheld(t *testing.T) {
	r := newRig(t)
	rcv := newReceiver(t, ok)
	hook := r.webhook(rcv.URL, destinations.EventScores)
	r.agree(nil, hook.ID)
	r.report(7, nil)
	if err := r.learners.Erase(context.Background(), r.admin, r.tenant, r.learner); err != nil {
		t.Fatal(err)
	}
	r.drain(3)
	expectStatuses(t, r, "lms:withheld:learner_erased", "webhook:withheld:learner_erased")
	for _, d := range r.deliveries() {
		if d.UserID != nil {
			t.Fatalf("a delivery still names the erased learner")
		}
	}
	for _, d := range r.disclosures() {
		if d.UserID != nil || d.Decision != "withhold" {
			t.Fatalf("disclosure = %+v, want withheld naming no one", d)
		}
	}
	if r.p.AGSRequests() != 0 || rcv.hits.Load() != 0 {
		t.Fatal("something was sent about the erased learner")
	}
}

func TestNoAgreementSendsNothing(t *testing.T) {
	r := newRig(t)
	r.report(7, nil)
	r.drain(3)
	expectStatuses(t, r, "lms:withheld:no_agreement")
	if r.p.AGSRequests() != 0 {
		t.Fatal("a score went out without an agreement")
	}
}

func TestAFailingAndThrottlingPlatformGetsTheScoreWhenItRecovers(t *testing.T) {
	r := newRig(t)
	r.agree(nil)
	r.report(7, nil)
	r.drain(1) // creates the line item and posts
	r.p.InjectAGSFaults(ltitest.FaultServerError, ltitest.FaultTooMany, ltitest.FaultUnavailable, ltitest.FaultCanvasThrottle,
		ltitest.FaultDropConnection)
	r.report(8, func(rep *results.Report) { rep.OccurredAt = time.Now() })
	r.drain(10)
	ds := r.deliveries()
	if ds[1].Status != "delivered" || ds[1].Attempts != 2 || ds[1].Throttle != 3 {
		t.Fatalf("delivery = %+v, want delivered after 2 failed (500, dropped) and 3 throttled attempts", ds[1])
	}
	var attempts []string
	r.inTenant(func(tx *sqlx.Tx) error {
		return tx.Select(&attempts, `SELECT outcome || ':' || coalesce(status::text, '-') FROM delivery_attempts
			WHERE delivery_id = $1 ORDER BY n`, ds[1].ID)
	})
	want := []string{"retry:500", "throttled:429", "throttled:503", "throttled:403", "retry:-", "delivered:-"}
	if !slices.Equal(attempts, want) {
		t.Fatalf("attempts = %v, want %v", attempts, want)
	}
	if got := column(t, r).Scores[r.subject]; *got.ScoreGiven != 8 {
		t.Fatalf("score = %v, want 8", *got.ScoreGiven)
	}
}

func TestANewerScoreSupersedesAnOlderOneNotYetSent(t *testing.T) {
	r := newRig(t)
	r.agree(nil)
	now := time.Now()
	r.report(5, func(rep *results.Report) { rep.OccurredAt = now.Add(-2 * time.Minute) })
	r.report(8, func(rep *results.Report) { rep.OccurredAt = now.Add(-time.Minute) })
	r.drain(3)
	expectStatuses(t, r, "lms:superseded:newer_score", "lms:delivered")
	// A score that happened before the one sent never goes.
	r.report(3, func(rep *results.Report) { rep.OccurredAt = now.Add(-90 * time.Second) })
	r.drain(3)
	expectStatuses(t, r, "lms:superseded:newer_score", "lms:delivered", "lms:superseded:newer_score")
	if scores := r.p.Scores(column(t, r).ID, r.subject); len(scores) != 1 || *scores[0].ScoreGiven != 8 {
		t.Fatalf("the platform got %+v, want only the 8", scores)
	}
}

func TestScoresOfTheSameMomentGetStrictlyIncreasingTimestamps(t *testing.T) {
	r := newRig(t)
	r.agree(nil)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for _, given := range []float64{5, 6, 7} {
		r.report(given, func(rep *results.Report) { rep.OccurredAt = at })
		r.drain(3) // each sent before the next is reported
	}
	scores := r.p.Scores(column(t, r).ID, r.subject)
	if len(scores) != 3 {
		t.Fatalf("the platform accepted %d scores, want 3 (it refuses a timestamp not after the last)", len(scores))
	}
	for i := 1; i < len(scores); i++ {
		if !scores[i].Timestamp.After(scores[i-1].Timestamp) {
			t.Fatalf("timestamps %v then %v", scores[i-1].Timestamp, scores[i].Timestamp)
		}
	}
}

func TestALineItemThePlatformDeletedIsRecreatedOnce(t *testing.T) {
	r := newRig(t)
	r.agree(nil)
	r.report(5, nil)
	r.drain(3)
	first := column(t, r).ID
	r.p.DeleteLineItem(first)
	r.report(6, func(rep *results.Report) { rep.OccurredAt = time.Now() })
	r.drain(3)
	second := column(t, r)
	if second.ID == first || *second.Scores[r.subject].ScoreGiven != 6 {
		t.Fatalf("after the deletion: %+v", second)
	}
	r.p.DeleteLineItem(second.ID)
	r.report(7, func(rep *results.Report) { rep.OccurredAt = time.Now() })
	r.drain(3)
	expectStatuses(t, r, "lms:delivered", "lms:delivered", "lms:failed:line_item_deleted")
	if n := len(r.p.Gradebook(contextID)); n != 0 {
		t.Fatalf("the hub made the line item again: %d columns", n)
	}
}

func TestACourseThatDidNotGrantScoresIsReportedNotRetried(t *testing.T) {
	r := newRig(t)
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET ags_scopes = $2 WHERE id = $1`, r.course, "{"+lti.ScopeAGSLineItemRead+"}")
		return err
	})
	r.agree(nil)
	r.report(5, nil)
	r.drain(3)
	expectStatuses(t, r, "lms:failed:score_scope_not_granted")
	if r.p.AGSRequests() != 0 {
		t.Fatal("the hub asked the platform anyway")
	}
}

func TestAReceiverThatKeepsFailingMakesTheDeliveryDead(t *testing.T) {
	r := newRig(t)
	rcv := r.scoresWebhookOnly(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down for maintenance", 500) })
	r.report(5, nil)
	r.drain(10)
	expectStatuses(t, r, "webhook:dead:attempts_exhausted")
	if n := rcv.hits.Load(); n != 4 {
		t.Fatalf("%d attempts, want MaxAttempts (4)", n)
	}
	var last struct {
		Response string `db:"response"`
		Status   int    `db:"status"`
	}
	r.inTenant(func(tx *sqlx.Tx) error {
		return tx.Get(&last, `SELECT response, status FROM delivery_attempts ORDER BY n DESC LIMIT 1`)
	})
	if last.Status != 500 || !strings.Contains(last.Response, "down for maintenance") {
		t.Fatalf("last attempt = %+v, want the receiver's answer", last)
	}
}

func TestARefusalEndsTheDeliveryFailed(t *testing.T) {
	r := newRig(t)
	rcv := r.scoresWebhookOnly(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "unknown event type", 422) })
	r.report(5, nil)
	r.drain(3)
	expectStatuses(t, r, "webhook:failed:refused")
	if n := rcv.hits.Load(); n != 1 {
		t.Fatalf("%d attempts: a refusal is not retried", n)
	}
}

func TestADryRunRecordsTheRequestAndSendsNothing(t *testing.T) {
	r := newRig(t)
	rcv := newReceiver(t, ok)
	hook := r.webhook(rcv.URL, destinations.EventScores)
	dry := true
	if _, err := r.dests.Update(context.Background(), r.admin, r.tenant, hook.ID, destinations.Patch{DryRun: &dry}); err != nil {
		t.Fatal(err)
	}
	r.agree(nil, hook.ID)
	r.noGradeServices()
	r.report(5, nil)
	r.drain(3)
	expectStatuses(t, r, "webhook:dry_run")
	if rcv.hits.Load() != 0 {
		t.Fatal("a dry run sent the webhook")
	}
	var request string
	r.inTenant(func(tx *sqlx.Tx) error { return tx.Get(&request, `SELECT request::text FROM delivery_attempts`) })
	if !strings.Contains(request, rcv.URL) || !strings.Contains(strings.ToLower(request), "webhook-signature") || !strings.Contains(request, "scores.recorded") {
		t.Fatalf("recorded request = %s", request)
	}
	if ds := r.disclosures(); len(ds) != 0 {
		t.Fatalf("a dry run is on the record of disclosures as sent: %+v", ds)
	}
}

// TestDeliveriesRunConcurrentlyInOrderPerPair: several workers at once on
// scores of one learner: each score the platform accepted is newer than
// the one before, and the last is the latest reported.
func TestDeliveriesRunConcurrentlyInOrderPerPair(t *testing.T) {
	r := newRig(t)
	r.agree(nil)
	base := time.Now().Add(-time.Hour)
	for i := range 12 {
		r.report(float64(i), func(rep *results.Report) { rep.OccurredAt = base.Add(time.Duration(i) * time.Second) })
	}
	for range 5 {
		var wg sync.WaitGroup
		for _, d := range r.deliveries() {
			wg.Go(func() {
				if _, err := r.svc.Deliver(context.Background(), r.tenant, d.ID); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	scores := r.p.Scores(column(t, r).ID, r.subject)
	if len(scores) == 0 || *scores[len(scores)-1].ScoreGiven != 11 {
		t.Fatalf("scores = %+v, want the last to be 11", scores)
	}
	for i := 1; i < len(scores); i++ {
		if *scores[i].ScoreGiven <= *scores[i-1].ScoreGiven {
			t.Fatalf("scores out of order: %v after %v", *scores[i].ScoreGiven, *scores[i-1].ScoreGiven)
		}
	}
}

func TestOneJobSendsItsDestinationsDueDeliveriesTogether(t *testing.T) {
	r := newRig(t)
	rcv := r.scoresWebhookOnly(ok)
	for i := range 5 {
		r.report(float64(i), nil)
	}
	ds := r.deliveries()
	if _, err := r.svc.Deliver(context.Background(), r.tenant, ds[0].ID); err != nil {
		t.Fatal(err)
	}
	expectStatuses(t, r, "webhook:delivered", "webhook:delivered", "webhook:delivered", "webhook:delivered", "webhook:delivered")
	ids := map[string]bool{}
	for _, got := range rcv.got {
		ids[got.header.Get("webhook-id")] = true
	}
	if len(ids) != 5 || rcv.hits.Load() != 5 {
		t.Fatalf("%d requests with %d ids, want 5 with 5", rcv.hits.Load(), len(ids))
	}
	if n := len(r.disclosures()); n != 5 {
		t.Fatalf("%d disclosures, want one per record", n)
	}
	// The other jobs find their deliveries sent and send nothing.
	r.run()
	if rcv.hits.Load() != 5 {
		t.Fatal("a delivery sent with the batch was sent again by its own job")
	}
}

func TestAThrottlingReceiverPausesTheRestOfTheBatch(t *testing.T) {
	r := newRig(t)
	r.svc.Policy.PerDestination = 1 // one send at a time: the order is known
	var calls atomic.Int32
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 3 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	r.onlyTo(rcv)
	for i := range 5 {
		r.report(float64(i), nil)
	}
	ds := r.deliveries()
	wait, err := r.svc.Deliver(context.Background(), r.tenant, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	// Its own first, then the newest: the others' jobs come in order of age.
	expectStatuses(t, r, "webhook:delivered", "webhook:pending", "webhook:pending", "webhook:pending", "webhook:delivered")
	if rcv.hits.Load() != 3 || wait != 0 {
		t.Fatalf("%d requests (want 3: the batch stops at the throttle), wait %s", rcv.hits.Load(), wait)
	}
	var waits []time.Duration
	for _, d := range ds[1:4] {
		w, err := r.svc.Deliver(context.Background(), r.tenant, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	for _, w := range waits {
		if w < 25*time.Second || w > 30*time.Second {
			t.Fatalf("waits %v: each should wait out the receiver's 30 s", waits)
		}
	}
	if rcv.hits.Load() != 3 {
		t.Fatal("a delivery went during the receiver's pause")
	}
	if n := len(r.disclosures()); n != 3 {
		t.Fatalf("%d disclosures, want 3: the records not sent are not on record as sent", n)
	}
}

// TestADeliveryAnotherWorkerHoldsIsLeftToIt: while another transaction
// holds the delivery (a batch sending it, a rescued job's first run),
// its job waits a moment, then gives way without sending or failing.
func TestADeliveryAnotherWorkerHoldsIsLeftToIt(t *testing.T) {
	r := newRig(t)
	rcv := r.scoresWebhookOnly(ok)
	r.report(5, nil)
	id := r.deliveries()[0].ID
	holder, err := r.db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.Exec(`SELECT set_config('hub.tenant_id', $1, true)`, r.tenant.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(`SELECT 1 FROM deliveries WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	wait, err := r.svc.Deliver(context.Background(), r.tenant, id)
	if err != nil || wait <= 0 {
		t.Fatalf("Deliver = %s, %v; want a wait and no error", wait, err)
	}
	if rcv.hits.Load() != 0 {
		t.Fatal("a delivery another worker holds was sent")
	}
	_ = holder.Rollback()
	r.drain(2)
	expectStatuses(t, r, "webhook:delivered")
}

func TestACompletionReachesAnLRSAsOneStatementWhateverTheResends(t *testing.T) {
	r := newRig(t)
	store := newLRS(t)
	c, err := r.dests.Create(context.Background(), r.admin, r.tenant, destinations.New{Kind: destinations.KindXAPI,
		Name: "LRS", URL: store.URL + "/xapi/", EventTypes: []destinations.EventType{destinations.EventCompletion},
		Username: "key", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	r.agree(nil, c.ID)
	done := true
	res := r.report(0, func(rep *results.Report) { rep.ScoreGiven, rep.ScoreMaximum, rep.Completed = nil, nil, &done })
	r.drain(3)
	expectStatuses(t, r, "xapi:delivered")
	id := delivery.StatementID(res.ID, c.ID).String()
	store.mu.Lock()
	body, ok := store.statements[id]
	store.mu.Unlock()
	if !ok {
		t.Fatalf("the LRS holds no statement %s", id)
	}
	checkStatement(t, body, delivery.Record{ID: res.ID, Learner: r.learner, Completed: &done, Category: "completion",
		ActivityID: linkID, ActivityTitle: "Quiz 1", CourseID: contextID, CourseTitle: "Mathematics", OccurredAt: res.OccurredAt.Truncate(time.Millisecond)})
	// Redriven, it is the same statement: the LRS keeps one.
	ds := r.deliveries()
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE deliveries SET status = 'dead' WHERE id = $1`, ds[0].ID)
		return err
	})
	if _, err := r.svc.Redrive(context.Background(), r.admin, r.tenant, ds[0].ID); err != nil {
		t.Fatal(err)
	}
	r.drain(3)
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.statements) != 1 || store.puts != 2 {
		t.Fatalf("%d statements from %d PUTs, want 1 from 2", len(store.statements), store.puts)
	}
}

// TestAScoreThatNeverWentIsNotOnRecordAsShared: a course that granted
// scores but no line item scope, and whose launch named no line item,
// gets nothing: the delivery fails, and the record of disclosures says
// nothing went.
func TestAScoreThatNeverWentIsNotOnRecordAsShared(t *testing.T) {
	r := newRig(t)
	r.inTenant(func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE contexts SET ags_scopes = $2 WHERE id = $1`, r.course, "{"+lti.ScopeAGSScore+"}")
		return err
	})
	r.agree(nil)
	r.report(5, nil)
	r.drain(3)
	expectStatuses(t, r, "lms:failed:lineitem_scope_not_granted")
	if ds := r.disclosures(); len(ds) != 0 {
		t.Fatalf("disclosures %+v for a score that was never sent", ds)
	}
}
