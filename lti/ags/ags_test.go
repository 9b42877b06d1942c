package ags_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klasterina/hub/lti/ags"
)

// recorded returns the data of a recorded example (testdata/<name>.json).
func recorded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Data
}

// request is what a test server received.
type request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// platform answers every request with status, header and body, and
// records the requests it got.
type platform struct {
	srv      *httptest.Server
	mu       sync.Mutex
	requests []request
}

func serve(t *testing.T, status int, header http.Header, body string) *platform {
	t.Helper()
	return serveFunc(t, func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func serveFunc(t *testing.T, h http.HandlerFunc) *platform {
	t.Helper()
	p := &platform{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.requests = append(p.requests, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		p.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *platform) got() []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]request(nil), p.requests...)
}

func client() *ags.Client { return &ags.Client{HTTP: &http.Client{Timeout: 5 * time.Second}} }

var ctx = context.Background()

func TestLineItemsRecordedBlackboard(t *testing.T) {
	p := serve(t, 200, http.Header{"Content-Type": {"application/json;charset=UTF-8"}}, string(recorded(t, "blackboard/ags-lineitem-container")))
	items, err := client().LineItems(ctx, p.srv.URL+"/learn/api/v1/lti/courses/_220_1/lineItems", "tok", ags.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("%d line items, want 3", len(items))
	}
	first, created := items[0], items[2]
	wantEnd := time.Date(2024, 10, 11, 4, 59, 59, 999_000_000, time.UTC)
	if first.ID != "https://partner-test3.blackboard.com/learn/api/v1/lti/courses/_220_1/lineItems/_1397_1" ||
		first.ScoreMaximum != 100 || first.Label != "Blackboard Tool - Course Content Tool" || first.ResourceLinkID != "_3712_1" ||
		!first.EndDateTime.Equal(wantEnd) || !first.StartDateTime.IsZero() || first.Tag != "" || first.ResourceID != "" {
		t.Errorf("first = %+v", first)
	}
	if created.ScoreMaximum != 90 || created.Tag != "AGS Created tag" || created.ResourceID != "baaf7da8-f99a-42ca-a72f-292cfd0eb27d" ||
		created.ResourceLinkID != "" || !created.EndDateTime.IsZero() {
		t.Errorf("created by a tool = %+v", created)
	}
}

func TestLineItemsRecordedSakai(t *testing.T) {
	p := serve(t, 200, nil, string(recorded(t, "sakai/ags-lineitem-container")))
	items, err := client().LineItems(ctx, p.srv.URL+"/imsblis/lti13/lineitems/abc123", "tok", ags.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Label != "My tool quiz" || items[0].ScoreMaximum != 10 ||
		items[1].ID != "https://lms.example.edu/imsblis/lti13/lineitems/abc123/200" {
		t.Errorf("items = %+v", items)
	}
}

// Canvas documents its line items with a numeric resourceId and its
// submission_type extension.
func TestGetLineItemRecordedCanvas(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(recorded(t, "canvas/ags-lineitem-create-request"), &doc); err != nil {
		t.Fatal(err)
	}
	doc["id"] = "https://canvas.example.edu/api/lti/courses/3/line_items/7"
	body, _ := json.Marshal(doc)
	p := serve(t, 200, http.Header{"Content-Type": {ags.MediaTypeLineItem}}, string(body))
	li, err := client().GetLineItem(ctx, p.srv.URL+"/api/lti/courses/3/line_items/7", "tok")
	if err != nil {
		t.Fatal(err)
	}
	want := ags.LineItem{ID: "https://canvas.example.edu/api/lti/courses/3/line_items/7", Label: "LineItemLabel1",
		ScoreMaximum: 100, ResourceID: "1", ResourceLinkID: "1", Tag: "MyTag"}
	if li != want {
		t.Errorf("line item = %+v, want %+v", li, want)
	}
}

func TestRequests(t *testing.T) {
	created := `{"id":"https://lms.example.edu/li/9","label":"Quiz","scoreMaximum":10,"resourceId":"quiz-1"}`
	p := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/scores"):
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, created)
		case strings.HasSuffix(r.URL.Path, "/lineitems"):
			_, _ = io.WriteString(w, "["+created+"]")
		default:
			_, _ = io.WriteString(w, created)
		}
	})
	c := client()
	lineitems := p.srv.URL + "/mod/lti/services.php/5/lineitems?type_id=1"
	if _, err := c.LineItems(ctx, lineitems, "secret", ags.Query{ResourceID: "quiz 1", Limit: 20}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 3, 1, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	li, err := c.CreateLineItem(ctx, lineitems, "secret", ags.LineItem{ID: "ignored", Label: "Quiz", ScoreMaximum: 10,
		ResourceID: "quiz-1", StartDateTime: start})
	if err != nil || li.ID != "https://lms.example.edu/li/9" {
		t.Fatalf("CreateLineItem = %+v, %v", li, err)
	}
	lineitem := p.srv.URL + "/mod/lti/services.php/5/lineitems/7/lineitem?type_id=1"
	if _, err := c.GetLineItem(ctx, lineitem, "secret"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 12, 30, 15, 123456789, time.FixedZone("EST", -5*3600))
	err = c.PostScore(ctx, lineitem, "secret", ags.Score{UserID: "4", ScoreGiven: ags.Points(8.5), ScoreMaximum: ags.Points(10),
		Timestamp: at, ActivityProgress: ags.Completed, GradingProgress: ags.FullyGraded})
	if err != nil {
		t.Fatal(err)
	}

	got := p.got()
	if len(got) != 4 {
		t.Fatalf("%d requests", len(got))
	}
	for i, r := range got {
		if r.Header.Get("Authorization") != "Bearer secret" {
			t.Errorf("request %d: Authorization %q", i, r.Header.Get("Authorization"))
		}
	}
	list, create, get, score := got[0], got[1], got[2], got[3]
	if list.Method != "GET" || list.RawQuery != "type_id=1&limit=20&resource_id=quiz+1" ||
		list.Header.Get("Accept") != ags.MediaTypeLineItemContainer {
		t.Errorf("list: %s ?%s Accept %q", list.Method, list.RawQuery, list.Header.Get("Accept"))
	}
	if create.Method != "POST" || create.RawQuery != "type_id=1" || create.Header.Get("Content-Type") != ags.MediaTypeLineItem ||
		create.Header.Get("Accept") != ags.MediaTypeLineItem {
		t.Errorf("create: %s ?%s headers %v", create.Method, create.RawQuery, create.Header)
	}
	if want := `{"scoreMaximum":10,"label":"Quiz","resourceId":"quiz-1","startDateTime":"2025-03-01T08:00:00.000000Z"}`; string(create.Body) != want {
		t.Errorf("create body %s, want %s", create.Body, want)
	}
	if get.Method != "GET" || get.Path != "/mod/lti/services.php/5/lineitems/7/lineitem" || get.RawQuery != "type_id=1" ||
		get.Header.Get("Accept") != ags.MediaTypeLineItem {
		t.Errorf("get: %s %s?%s Accept %q", get.Method, get.Path, get.RawQuery, get.Header.Get("Accept"))
	}
	if score.Method != "POST" || score.Path != "/mod/lti/services.php/5/lineitems/7/lineitem/scores" || score.RawQuery != "type_id=1" ||
		score.Header.Get("Content-Type") != ags.MediaTypeScore {
		t.Errorf("score: %s %s?%s Content-Type %q", score.Method, score.Path, score.RawQuery, score.Header.Get("Content-Type"))
	}
	want := `{"userId":"4","scoreGiven":8.5,"scoreMaximum":10,"timestamp":"2025-03-01T17:30:15.123456Z","activityProgress":"Completed","gradingProgress":"FullyGraded"}`
	if string(score.Body) != want {
		t.Errorf("score body %s, want %s", score.Body, want)
	}
}

// A score without scoreGiven clears the learner's score: nothing of it is
// sent but what the specification requires.
func TestClearingScoreBody(t *testing.T) {
	p := serve(t, 200, http.Header{"Content-Type": {"application/json"}}, `{"resultUrl":"https://lms.example.edu/r/1"}`)
	err := client().PostScore(ctx, p.srv.URL+"/li/1", "t", ags.Score{UserID: "u", Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		ActivityProgress: ags.Initialized, GradingProgress: ags.NotReady})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"userId":"u","timestamp":"2025-01-02T03:04:05.000000Z","activityProgress":"Initialized","gradingProgress":"NotReady"}`
	if got := string(p.got()[0].Body); got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

func TestLineItemsPaging(t *testing.T) {
	var base string
	p := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		item := func(n string) string {
			return `{"id":"` + base + `/li/` + n + `","label":"L` + n + `","scoreMaximum":1}`
		}
		switch r.URL.Query().Get("page") {
		case "":
			w.Header().Add("Link", `<`+base+`/lineitems?page=1>; rel="first", </lineitems?page=2>; rel="next"`)
			_, _ = io.WriteString(w, "["+item("1")+","+item("2")+"]")
		case "2":
			w.Header().Add("Link", `<?page=3>; rel=next`)
			_, _ = io.WriteString(w, "["+item("3")+"]")
		case "3":
			w.Header().Add("Link", `<`+base+`/lineitems?page=1>; rel="first"`)
			_, _ = io.WriteString(w, "[]")
		}
	})
	base = p.srv.URL
	items, err := client().LineItems(ctx, base+"/lineitems", "t", ags.Query{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[2].Label != "L3" {
		t.Fatalf("items = %+v", items)
	}
	if got := p.got(); len(got) != 3 || got[1].RawQuery != "page=2" || got[2].RawQuery != "page=3" {
		t.Errorf("requests = %+v", got)
	}
}

// Moodle pages its line items with limit and from, its Link relations in
// typographic quotes.
func TestLineItemsPagingMoodle(t *testing.T) {
	var base string
	p := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		from := r.URL.Query().Get("from")
		page := func(n int) string {
			return fmt.Sprintf("%s/mod/lti/services.php/5/lineitems?type_id=1&limit=1&from=%d", base, n)
		}
		links := "<" + page(0) + ">; rel=“first”"
		if from == "" || from == "0" {
			links += ", <" + page(1) + ">; rel=“next”"
		}
		w.Header().Set("Link", links+", <"+page(1)+">; rel=“last”")
		_, _ = io.WriteString(w, `[{"id":"`+base+`/mod/lti/services.php/5/lineitems/`+from+`/lineitem?type_id=1","label":"Quiz","scoreMaximum":10}]`)
	})
	base = p.srv.URL
	items, err := client().LineItems(ctx, base+"/mod/lti/services.php/5/lineitems?type_id=1", "t", ags.Query{Limit: 1})
	if err != nil || len(items) != 2 {
		t.Fatalf("items %+v, %v", items, err)
	}
	if got := p.got(); len(got) != 2 || got[1].RawQuery != "type_id=1&limit=1&from=1" {
		t.Errorf("requests %+v", got)
	}
}

func TestLineItemsPagingRefused(t *testing.T) {
	tests := []struct {
		name, next, want string
		maxPages         int
	}{
		{"next to another host", "https://elsewhere.example/lineitems?page=2", "another origin", 0},
		{"next repeats a page", "/lineitems", "return to", 0},
		{"past MaxPages", "/lineitems?page=n", "past 3 pages", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			p := serveFunc(t, func(w http.ResponseWriter, _ *http.Request) {
				n++
				next := tc.next
				if strings.HasSuffix(next, "=n") {
					next += strings.Repeat("n", n)
				}
				w.Header().Set("Link", "<"+next+`>; rel="next"`)
				_, _ = io.WriteString(w, "[]")
			})
			first := p.srv.URL + "/lineitems"
			c := client()
			c.MaxPages = tc.maxPages
			_, err := c.LineItems(ctx, first, "t", ags.Query{})
			if !errors.Is(err, ags.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if tc.maxPages > 0 && n != tc.maxPages {
				t.Errorf("%d pages fetched, want %d", n, tc.maxPages)
			}
		})
	}
}

// An https container's next link may not go down to http, even on its own
// host: the token would travel in the clear.
func TestLineItemsPagingRefusesHTTP(t *testing.T) {
	var tls *httptest.Server
	tls = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "<http://"+strings.TrimPrefix(tls.URL, "https://")+`/lineitems?page=2>; rel="next"`)
		_, _ = io.WriteString(w, "[]")
	}))
	defer tls.Close()
	_, err := (&ags.Client{HTTP: tls.Client()}).LineItems(ctx, tls.URL+"/lineitems", "t", ags.Query{})
	if !errors.Is(err, ags.ErrMalformed) || !strings.Contains(err.Error(), "another origin") {
		t.Fatalf("error = %v, want the http link refused", err)
	}
}

// A container on http may page on to https on the same host (Canvas
// names its services on both).
func TestLineItemsPagingUpgradesToHTTPS(t *testing.T) {
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `[{"id":"https://lms.example.edu/li/2","label":"B","scoreMaximum":5}]`)
	}))
	defer tls.Close()
	host := strings.TrimPrefix(tls.URL, "https://")
	plain := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "<"+tls.URL+`/lineitems?page=2>; rel="next"`)
		_, _ = io.WriteString(w, `[{"id":"https://lms.example.edu/li/1","label":"A","scoreMaximum":5}]`)
	}))
	plain.Start()
	defer plain.Close()
	// The same host: route the http request to the plain server, the
	// https one to the TLS server.
	transport := tls.Client().Transport
	c := &ags.Client{HTTP: &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.URL.Scheme == "http" {
			r = r.Clone(r.Context())
			r.URL.Host = strings.TrimPrefix(plain.URL, "http://")
			return http.DefaultTransport.RoundTrip(r)
		}
		return transport.RoundTrip(r)
	})}}
	items, err := c.LineItems(ctx, "http://"+host+"/lineitems", "t", ags.Query{})
	if err != nil || len(items) != 2 {
		t.Fatalf("items %+v, %v", items, err)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestStatusErrors(t *testing.T) {
	soon := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		throttled bool
		temporary bool
		retry     time.Duration // at least
	}{
		{"429 with seconds", 429, http.Header{"Retry-After": {"7"}}, "slow down", true, true, 7 * time.Second},
		{"429 with a date", 429, http.Header{"Retry-After": {soon}}, "", true, true, 25 * time.Second},
		{"503 with Retry-After", 503, http.Header{"Retry-After": {"2"}}, "maintenance", true, true, 2 * time.Second},
		{"503 without Retry-After", 503, nil, "", false, true, 0},
		{"Canvas throttling 403", 403, nil, "403 Forbidden (Rate Limit Exceeded)", true, true, 0},
		{"plain 403 refusal", 403, nil, `{"errors":[{"message":"insufficient scope"}]}`, false, false, 0},
		{"401 token refused", 401, nil, "invalid token", false, false, 0},
		{"404 line item gone", 404, nil, "", false, false, 0},
		{"409 newer score held (Moodle)", 409, nil, "Refusing score with an earlier timestamp", false, false, 0},
		{"422 not a learner (Canvas)", 422, nil, `{"errors":{"type":"unprocessable_entity"}}`, false, false, 0},
		{"400", 400, nil, "Provided timestamp before last updated timestamp", false, false, 0},
		{"500", 500, nil, "boom", false, true, 0},
	}
	calls := map[string]func(c *ags.Client, url string) error{
		"list": func(c *ags.Client, url string) error { _, err := c.LineItems(ctx, url, "t", ags.Query{}); return err },
		"get":  func(c *ags.Client, url string) error { _, err := c.GetLineItem(ctx, url, "t"); return err },
		"create": func(c *ags.Client, url string) error {
			_, err := c.CreateLineItem(ctx, url, "t", ags.LineItem{Label: "L", ScoreMaximum: 1})
			return err
		},
		"score": func(c *ags.Client, url string) error {
			return c.PostScore(ctx, url, "t", ags.Score{UserID: "u", Timestamp: time.Now(), ActivityProgress: ags.Completed, GradingProgress: ags.Pending})
		},
	}
	for _, tc := range tests {
		for call, f := range calls {
			t.Run(tc.name+"/"+call, func(t *testing.T) {
				p := serve(t, tc.status, tc.header, tc.body)
				err := f(client(), p.srv.URL+"/x")
				var se *ags.StatusError
				if !errors.As(err, &se) {
					t.Fatalf("error = %v, want a *StatusError", err)
				}
				if se.Status != tc.status || se.Throttled != tc.throttled || se.Temporary() != tc.temporary {
					t.Errorf("got status %d throttled %v temporary %v", se.Status, se.Throttled, se.Temporary())
				}
				if se.RetryAfter < tc.retry || (tc.retry == 0 && se.RetryAfter != 0) {
					t.Errorf("retry after = %s, want %s", se.RetryAfter, tc.retry)
				}
				if se.Body != tc.body {
					t.Errorf("body = %q", se.Body)
				}
				if tc.body != "" && strings.Contains(err.Error(), tc.body) {
					t.Errorf("error text %q carries the platform's body", err)
				}
			})
		}
	}
}

func TestStatusErrorBodyTruncated(t *testing.T) {
	p := serve(t, 500, nil, strings.Repeat("x", 2000))
	_, err := client().GetLineItem(ctx, p.srv.URL+"/li", "t")
	var se *ags.StatusError
	if !errors.As(err, &se) || len(se.Body) != 512 {
		t.Fatalf("error = %v, want a body of the first 512 bytes", err)
	}
}

func TestMalformedContainer(t *testing.T) {
	ok := `{"id":"https://lms.example.edu/li/1","label":"A","scoreMaximum":10}`
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", `<html>Service unavailable</html>`, "not a JSON array"},
		{"an object", `{"lineItems":[` + ok + `]}`, "not a JSON array"},
		{"empty body", ``, "not a JSON array"},
		{"null", `null`, "not a JSON array"},
		{"truncated", `[` + ok + `,{"id":"https://lms.example.edu/li/2"`, "line item 1"},
		{"an item not an object", `[` + ok + `,"x"]`, "line item 1 is not a JSON object"},
		{"an item null", `[null]`, "line item 0 is not a JSON object"},
		{"trailing content", `[] []`, "content after the container"},
		{"no id", `[{"label":"A","scoreMaximum":10}]`, "line item 0: id is missing"},
		{"id not a URL", `[{"id":"42","label":"A","scoreMaximum":10}]`, "not an absolute http(s) URL"},
		{"id javascript", `[{"id":"javascript:alert(1)","label":"A","scoreMaximum":10}]`, "not an absolute http(s) URL"},
		{"id a number", `[{"id":42,"label":"A","scoreMaximum":10}]`, "id is not a string"},
		{"id with NUL", `[{"id":"https://lms.example.edu/li/1\u0000","label":"A","scoreMaximum":10}]`, "not an absolute http(s) URL"},
		{"id too long", `[{"id":"https://lms.example.edu/` + strings.Repeat("a", 4100) + `","label":"A","scoreMaximum":10}]`, "longer than 4096"},
		{"no scoreMaximum", `[{"id":"https://lms.example.edu/li/1","label":"A"}]`, "scoreMaximum is missing"},
		{"scoreMaximum 0", `[{"id":"https://lms.example.edu/li/1","label":"A","scoreMaximum":0}]`, "greater than 0"},
		{"scoreMaximum negative", `[{"id":"https://lms.example.edu/li/1","label":"A","scoreMaximum":-5}]`, "greater than 0"},
		{"scoreMaximum a string", `[{"id":"https://lms.example.edu/li/1","label":"A","scoreMaximum":"100"}]`, "scoreMaximum \"100\" is not a number"},
		{"scoreMaximum overflows", `[{"id":"https://lms.example.edu/li/1","label":"A","scoreMaximum":1e400}]`, "not a number greater than 0"},
		{"label a number", `[{"id":"https://lms.example.edu/li/1","label":3,"scoreMaximum":1}]`, "label is not a string"},
		{"resourceId an object", `[{"id":"https://lms.example.edu/li/1","scoreMaximum":1,"resourceId":{}}]`, "resourceId is not a string"},
		{"tag with invalid UTF-8", "[{\"id\":\"https://lms.example.edu/li/1\",\"scoreMaximum\":1,\"tag\":\"a\xffb\"}]", "tag holds"},
		{"resourceLinkId with NUL", `[{"id":"https://lms.example.edu/li/1","scoreMaximum":1,"resourceLinkId":"a\u0000"}]`, "resourceLinkId holds"},
		{"date not RFC 3339", `[{"id":"https://lms.example.edu/li/1","scoreMaximum":1,"endDateTime":"11/10/2024"}]`, "endDateTime"},
		{"date without a zone", `[{"id":"https://lms.example.edu/li/1","scoreMaximum":1,"startDateTime":"2024-10-11T04:59:59"}]`, "startDateTime"},
		{"date a number", `[{"id":"https://lms.example.edu/li/1","scoreMaximum":1,"endDateTime":1728622799}]`, "endDateTime is not a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := serve(t, 200, http.Header{"Content-Type": {ags.MediaTypeLineItemContainer}}, tc.body)
			_, err := client().LineItems(ctx, p.srv.URL+"/lineitems", "t", ags.Query{})
			if !errors.Is(err, ags.ErrMalformed) {
				t.Fatalf("error = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestMalformedLineItem(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", `Internal error`, "not a JSON object"},
		{"an array", `[{"id":"https://lms.example.edu/li/1","scoreMaximum":1}]`, "not a JSON object"},
		{"empty (a 201 without the line item)", ``, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"two objects", `{"id":"https://lms.example.edu/li/1","scoreMaximum":1}{}`, "content after the line item"},
		{"no id", `{"label":"A","scoreMaximum":1}`, "id is missing"},
		{"id in another case", `{"ID":"https://lms.example.edu/li/1","scoreMaximum":1}`, "id is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := serve(t, 201, nil, tc.body)
			_, err := client().CreateLineItem(ctx, p.srv.URL+"/lineitems", "t", ags.LineItem{Label: "A", ScoreMaximum: 1})
			if !errors.Is(err, ags.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want ErrMalformed saying %q", err, tc.want)
			}
		})
	}
}

// A line item without a label, with nulls and unknown members, is read:
// only what the hub needs is required.
func TestLenientLineItem(t *testing.T) {
	p := serve(t, 200, nil, `{"id":"https://lms.example.edu/li/1","scoreMaximum":12.5,"label":null,"tag":null,"resourceId":"",
		"startDateTime":"","endDateTime":"2024-10-11T04:59:59+02:00","gradesReleased":false,"https://www.sakailms.org/spec/lti-ags/v2p0/readOnly":true}`)
	li, err := client().GetLineItem(ctx, p.srv.URL+"/li/1", "t")
	if err != nil {
		t.Fatal(err)
	}
	if li.Label != "" || li.ScoreMaximum != 12.5 || !li.StartDateTime.IsZero() ||
		!li.EndDateTime.Equal(time.Date(2024, 10, 11, 2, 59, 59, 0, time.UTC)) {
		t.Errorf("line item = %+v", li)
	}
}

func TestOversizeRefused(t *testing.T) {
	body := "[" + strings.Repeat(`{"id":"https://lms.example.edu/li/1","scoreMaximum":1},`, 50) + `{"id":"https://lms.example.edu/li/2","scoreMaximum":1}]`
	p := serve(t, 200, nil, body)
	c := client()
	c.MaxBodyBytes = int64(len(body) - 1)
	if _, err := c.LineItems(ctx, p.srv.URL+"/lineitems", "t", ags.Query{}); !errors.Is(err, ags.ErrMalformed) || !strings.Contains(err.Error(), "over") {
		t.Fatalf("error = %v, want an oversize refusal", err)
	}
	c.MaxBodyBytes = int64(len(body))
	if items, err := c.LineItems(ctx, p.srv.URL+"/lineitems", "t", ags.Query{}); err != nil || len(items) != 51 {
		t.Fatalf("a body of exactly MaxBodyBytes: %d items, %v", len(items), err)
	}
}

// A platform that redirects a score POST with 302 would have the client
// GET the new location: its 200 is no answer to the score.
func TestRedirectedPostRefused(t *testing.T) {
	p := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "<html>a login page</html>")
	})
	err := client().PostScore(ctx, p.srv.URL+"/li/1", "t", ags.Score{UserID: "u", Timestamp: time.Now(),
		ActivityProgress: ags.Completed, GradingProgress: ags.FullyGraded, ScoreGiven: ags.Points(1), ScoreMaximum: ags.Points(1)})
	if !errors.Is(err, ags.ErrMalformed) || !strings.Contains(err.Error(), "redirected") {
		t.Fatalf("error = %v, want the redirect refused", err)
	}
}

func TestContainerURL(t *testing.T) {
	tests := []struct {
		name, in string
		q        ags.Query
		want     string
	}{
		{"plain", "https://lms.example.edu/api/lti/courses/3/line_items", ags.Query{Limit: 50},
			"https://lms.example.edu/api/lti/courses/3/line_items?limit=50"},
		{"keeps Moodle's type_id", "https://lms.example.edu/mod/lti/services.php/5/lineitems?type_id=1",
			ags.Query{ResourceLinkID: "link 1", ResourceID: "quiz/1", Tag: "grade"},
			"https://lms.example.edu/mod/lti/services.php/5/lineitems?type_id=1&resource_id=quiz%2F1&resource_link_id=link+1&tag=grade"},
		{"replaces a filter already there", "https://lms.example.edu/l?tag=old&x=%7e", ags.Query{Tag: "new"},
			"https://lms.example.edu/l?x=%7e&tag=new"},
		{"nothing asked", "https://lms.example.edu/l?x=1", ags.Query{}, "https://lms.example.edu/l?x=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := ags.ContainerURL(tc.in, tc.q); err != nil || got != tc.want {
				t.Errorf("ContainerURL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"/relative/lineitems", "ftp://lms.example.edu/l", "https://", "http://[::1"} {
		if _, err := ags.ContainerURL(bad, ags.Query{}); err == nil {
			t.Errorf("ContainerURL(%q) accepted", bad)
		}
	}
	if _, err := ags.ContainerURL("https://lms.example.edu/l", ags.Query{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
}

func TestScoresURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"Canvas", "https://canvas.example.edu/api/lti/courses/3/line_items/1", "https://canvas.example.edu/api/lti/courses/3/line_items/1/scores"},
		{"Moodle keeps type_id", "https://sandbox.moodledemo.net/mod/lti/services.php/5/lineitems/5/lineitem?type_id=1",
			"https://sandbox.moodledemo.net/mod/lti/services.php/5/lineitems/5/lineitem/scores?type_id=1"},
		{"query kept byte for byte", "https://lms/x/lineitems/7?type_id=1&b=%7E&a", "https://lms/x/lineitems/7/scores?type_id=1&b=%7E&a"},
		{"trailing slash", "https://lms.example.edu/lineitems/7/", "https://lms.example.edu/lineitems/7/scores"},
		{"Blackboard", "https://lms.example.edu/learn/api/v1/lti/courses/_220_1/lineItems/_1397_1",
			"https://lms.example.edu/learn/api/v1/lti/courses/_220_1/lineItems/_1397_1/scores"},
		{"escaped path kept", "https://lms.example.edu/items/a%2Fb", "https://lms.example.edu/items/a%2Fb/scores"},
		{"fragment dropped", "https://lms.example.edu/items/7?x=1#top", "https://lms.example.edu/items/7/scores?x=1"},
		{"bare host", "https://lms.example.edu", "https://lms.example.edu/scores"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := ags.ScoresURL(tc.in); err != nil || got != tc.want {
				t.Errorf("ScoresURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "/lineitems/7", "mailto:x@y", "https:///x"} {
		if _, err := ags.ScoresURL(bad); err == nil {
			t.Errorf("ScoresURL(%q) accepted", bad)
		}
	}
}

func TestTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/li"
	srv.Close()
	_, err := client().GetLineItem(ctx, url, "t")
	var se *ags.StatusError
	if err == nil || errors.As(err, &se) || errors.Is(err, ags.ErrMalformed) {
		t.Fatalf("error = %v, want a transport error", err)
	}
}

func TestDefaultClientRefusesLoopback(t *testing.T) {
	p := serve(t, 200, nil, `[]`)
	if _, err := (&ags.Client{}).LineItems(ctx, p.srv.URL+"/lineitems", "t", ags.Query{}); err == nil {
		t.Fatal("the default client called a loopback address")
	}
}
