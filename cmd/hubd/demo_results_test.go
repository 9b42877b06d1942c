package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klasterina/hub/internal/pg/pgtest"
)

// TestDemoResultsTravel is the demo's walkthrough for results, on two
// runs of the demo (the second finds what the first seeded): launch from
// the demo LMS as a student, land in the stand-in learning app, report a
// score there; the score reaches the demo LMS's gradebook and the record
// the webhook receiver, its signature verified. Then a completion alone
// reaches the receiver too.
func TestDemoResultsTravel(t *testing.T) {
	d := pgtest.NewEmpty(t)
	for i, score := range []string{"7.5", "9"} {
		e := baseEnv(d)
		e["HUB_AUTO_MIGRATE"] = "true"
		ctx, stop := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"demo"}, e.get, out, &syncBuffer{}) }()
		waitFor(t, "http://"+e["HUB_ADDR"]+"/readyz", 200)
		t.Logf("run %d", i+1)
		reportThroughTheDemo(t, out, score)
		signInThroughTheDemo(t, out)
		stop()
		if code := <-done; code != 0 {
			t.Fatalf("run %d: exit %d", i+1, code)
		}
	}
}

// reportThroughTheDemo launches, reports score out of 10 and completed,
// then a completion alone, and waits for each to arrive.
func reportThroughTheDemo(t *testing.T, out *syncBuffer, score string) {
	t.Helper()
	lms, app, hooks := printedURL(t, out, "demo LMS"), printedURL(t, out, "learning app"), printedURL(t, out, "webhooks")
	if !strings.HasSuffix(app, "/app") || !strings.HasSuffix(hooks, "/webhooks") {
		t.Fatalf("demo printed:\n%s", out.String())
	}
	b := newBrowser(t)
	page := b.get(lms + "/start?as=student") // the LMS's form post of the id token
	page = b.submit(page, nil)               // the hub's handoff form
	page = b.submit(page, nil)               // the learning app
	if !strings.Contains(page.body, "Report a score") || page.url.String() != app {
		t.Fatalf("the launch did not land in the learning app (%s):\n%s", page.url, page.body)
	}
	answer := b.submit(page, url.Values{"score_given": {score}, "score_maximum": {"10"}, "completed": {"true"}})
	if !strings.Contains(answer.body, "The hub answered 201") {
		t.Fatalf("reporting the score:\n%s", answer.body)
	}
	inGradebook := regexp.MustCompile(`: ` + regexp.QuoteMeta(score) + `/10 \(FullyGraded\)`)
	eventually(t, "the score in the demo LMS's gradebook", func() bool { return inGradebook.MatchString(b.get(lms + "/").body) })
	eventually(t, "the verified scores.recorded event at the receiver", func() bool {
		return sawEvent(b.get(hooks).body, "scores.recorded", `"given": `+score)
	})

	answer = b.submit(answer, url.Values{"score_given": {""}, "completed": {"true"}})
	if !strings.Contains(answer.body, "The hub answered 201") {
		t.Fatalf("reporting the completion:\n%s", answer.body)
	}
	eventually(t, "the verified completion.recorded event at the receiver", func() bool {
		return sawEvent(b.get(hooks).body, "completion.recorded", `"completed": true`)
	})
}

// sawEvent reports whether the receiver's page lists a verified
// event of type whose payload holds want.
func sawEvent(page, typ, want string) bool {
	for _, row := range strings.Split(page, `<tr class="event">`)[1:] {
		row = html.UnescapeString(row)
		if strings.Contains(row, `<td class="type">`+typ+`</td>`) && strings.Contains(row, `<td class="verified">yes</td>`) &&
			strings.Contains(row, want) {
			return true
		}
	}
	return false
}

func printedURL(t *testing.T, out *syncBuffer, label string) string {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(label) + `:\s+(http://\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no %s printed:\n%s", label, out.String())
	}
	return m[1]
}

// eventually polls cond until it holds, or fails the test at the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// browser follows redirects, keeps cookies and submits a page's first
// form, as a browser running the pages' auto-submitting scripts does.
type browser struct {
	t      *testing.T
	client *http.Client
}

type page struct {
	url  *url.URL
	body string
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 15 * time.Second}}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	res, err := b.client.Get(u)
	return b.read(res, err)
}

func (b *browser) read(res *http.Response, err error) page {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{res.Request.URL, string(body)}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenText = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// submit posts p's first form with its hidden fields and fields.
func (b *browser) submit(p page, fields url.Values) page {
	b.t.Helper()
	m := formAction.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no form on %s:\n%s", p.url, p.body)
	}
	action, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.t.Fatal(err)
	}
	form := url.Values{}
	for _, h := range hiddenText.FindAllStringSubmatch(p.body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	res, err := b.client.PostForm(action.String(), form)
	return b.read(res, err)
}
