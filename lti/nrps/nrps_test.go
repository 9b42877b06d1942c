package nrps_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/nrps"
)

// recorded returns the membership container of a recorded example
// (testdata/<lms>/nrps-membership-container.json).
func recorded(t *testing.T, lms string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + lms + "/nrps-membership-container.json")
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

// serve answers every request with status, header and body, and records
// the request it got.
func serve(t *testing.T, status int, header http.Header, body string) (string, *http.Request) {
	t.Helper()
	got := &http.Request{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got = *r.Clone(context.Background())
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/nrps/ctx?type_id=3", got
}

func fetch(t *testing.T, status int, header http.Header, body string) (*nrps.Page, error) {
	t.Helper()
	url, _ := serve(t, status, header, body)
	c := &nrps.Client{HTTP: &http.Client{Timeout: 5 * time.Second}}
	return c.Fetch(context.Background(), url, "tok")
}

func TestFetchRecordedMoodle(t *testing.T) {
	page, err := fetch(t, 200, http.Header{"Content-Type": {nrps.MediaType}}, string(recorded(t, "moodle")))
	if err != nil {
		t.Fatal(err)
	}
	if page.ContextID != "10" || page.ContextLabel != "test7" || page.ContextTitle != "test" {
		t.Errorf("context = %q %q %q", page.ContextID, page.ContextLabel, page.ContextTitle)
	}
	if len(page.Members) != 1 {
		t.Fatalf("%d members, want 1", len(page.Members))
	}
	m := page.Members[0]
	if m.UserID != "4" || m.Status != nrps.StatusActive || m.Name != "Sam Student" || m.GivenName != "Sam" ||
		m.FamilyName != "Student" || m.Email != "student@example.edu" || m.LISPersonSourcedID != "" {
		t.Errorf("member = %+v", m)
	}
	if !slices.Equal(m.Roles, []string{lti.RoleLearner}) {
		t.Errorf("roles = %q, want the short Learner expanded", m.Roles)
	}
	if page.Next != "" || page.Differences != "" {
		t.Errorf("links = %q, %q; the example sends none", page.Next, page.Differences)
	}
}

func TestFetchRecordedBlackboard(t *testing.T) {
	// Blackboard documents its own content type spelling; any is accepted.
	page, err := fetch(t, 200, http.Header{"Content-Type": {"application/json;charset=UTF-8"}}, string(recorded(t, "blackboard")))
	if err != nil {
		t.Fatal(err)
	}
	if page.ContextID != "c2d7fe850a8e4af2b7f6d483edea773b" || page.ContextTitle != "Advanced Math - Fall 2024" {
		t.Errorf("context = %q %q", page.ContextID, page.ContextTitle)
	}
	if len(page.Members) != 2 {
		t.Fatalf("%d members, want 2", len(page.Members))
	}
	student, preview := page.Members[0], page.Members[1]
	if student.UserID != "00000000000000000000000000000011" || student.Email != "student1@example.edu" ||
		student.LISPersonSourcedID != "student-acc" || student.MiddleName != "" || student.Status != nrps.StatusActive {
		t.Errorf("student = %+v", student)
	}
	wantRoles := []string{lti.RoleLearner, "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"}
	if !slices.Equal(student.Roles, wantRoles) {
		t.Errorf("student roles = %q, want %q", student.Roles, wantRoles)
	}
	if preview.UserID != "00000000000000000000000000000013" || preview.Email != "" ||
		!slices.Equal(preview.Roles, []string{"http://purl.imsglobal.org/vocab/lti/system/person#TestUser"}) {
		t.Errorf("preview user = %+v", preview)
	}
}

func TestFetchRequest(t *testing.T) {
	url, got := serve(t, 200, http.Header{"Link": {`</nrps/ctx?page=2>; rel="next", <https://lms.example.edu/nrps/ctx?since=7>; rel=differences`}},
		`{"members":[]}`)
	c := &nrps.Client{HTTP: http.DefaultClient}
	page, err := c.Fetch(context.Background(), url, "secret-token")
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("Accept") != nrps.MediaType || got.Header.Get("Authorization") != "Bearer secret-token" {
		t.Errorf("request headers = %v", got.Header)
	}
	if want := strings.TrimSuffix(url, "/nrps/ctx?type_id=3") + "/nrps/ctx?page=2"; page.Next != want {
		t.Errorf("next = %q, want %q", page.Next, want)
	}
	if page.Differences != "https://lms.example.edu/nrps/ctx?since=7" {
		t.Errorf("differences = %q", page.Differences)
	}
	if page.Members == nil || len(page.Members) != 0 {
		t.Errorf("members = %#v, want empty", page.Members)
	}
}

func TestMemberFields(t *testing.T) {
	body := `{"id":"x","context":{"id":"c1"},"members":[
	 {"user_id":"u1","roles":["Instructor#TeachingAssistant","Mentor","http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator","http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"],
	  "status":"Inactive","picture":"https://lms.example.edu/p.png","lti11_legacy_user_id":"legacy-1","name":"A\u0000B",
	  "message":[{"https://purl.imsglobal.org/spec/lti/claim/message_type":"LtiResourceLinkRequest"}]},
	 {"user_id":"u2","status":"Deleted"},
	 {"user_id":"u3","status":""}]}`
	page, err := fetch(t, 200, nil, body)
	if err != nil {
		t.Fatal(err)
	}
	m := page.Members[0]
	wantRoles := []string{lti.RoleTeachingAssistant, "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor",
		"http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty", "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"}
	if !slices.Equal(m.Roles, wantRoles) {
		t.Errorf("roles = %q, want %q (context roles expanded, then institution, then system)", m.Roles, wantRoles)
	}
	if m.Status != nrps.StatusInactive || m.Picture != "https://lms.example.edu/p.png" || m.LTI11LegacyUserID != "legacy-1" || m.Name != "AB" {
		t.Errorf("member = %+v", m)
	}
	if len(m.Message) != 1 || !strings.Contains(string(m.Message[0]), "LtiResourceLinkRequest") {
		t.Errorf("message = %s", m.Message)
	}
	if page.Members[1].Status != nrps.StatusDeleted || page.Members[2].Status != nrps.StatusActive {
		t.Errorf("statuses = %q, %q", page.Members[1].Status, page.Members[2].Status)
	}
	if page.Members[1].Roles == nil {
		t.Error("missing roles decode as nil, want empty")
	}
}

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
		{"429 without Retry-After", 429, nil, "", true, true, 0},
		{"503 with Retry-After", 503, http.Header{"Retry-After": {"2"}}, "maintenance", true, true, 2 * time.Second},
		{"503 without Retry-After", 503, nil, "", false, true, 0},
		{"Canvas throttling 403", 403, nil, "403 Forbidden (Rate Limit Exceeded)", true, true, 0},
		{"Canvas throttling 403, other case", 403, nil, "403 forbidden (rate limit exceeded)\n", true, true, 0},
		{"plain 403 refusal", 403, nil, `{"errors":[{"message":"access denied"}]}`, false, false, 0},
		{"401", 401, nil, "invalid token", false, false, 0},
		{"404", 404, nil, "", false, false, 0},
		{"410", 410, nil, "", false, false, 0},
		{"500", 500, nil, "boom", false, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fetch(t, tc.status, tc.header, tc.body)
			var se *nrps.StatusError
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
			if strings.Contains(err.Error(), tc.body) && tc.body != "" {
				t.Errorf("error text %q carries the platform's body", err)
			}
		})
	}
}

func TestStatusErrorBodyTruncated(t *testing.T) {
	_, err := fetch(t, 500, nil, strings.Repeat("x", 2000))
	var se *nrps.StatusError
	if !errors.As(err, &se) || len(se.Body) != 512 {
		t.Fatalf("error = %v, body %d bytes; want the first 512", err, len(se.Body))
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", `<html>Service unavailable</html>`, "not a JSON object"},
		{"truncated", `{"members":[{"user_id":"a"}`, "member"},
		{"an array", `[{"user_id":"a"}]`, "not a JSON object"},
		{"empty body", ``, "not a JSON object"},
		{"members missing", `{"id":"x","context":{"id":"c"}}`, "members is missing"},
		{"members null", `{"members":null}`, "members is not an array"},
		{"members an object", `{"members":{"user_id":"a"}}`, "members is not an array"},
		{"members twice", `{"members":[],"members":[]}`, "members appears twice"},
		{"member without user_id", `{"members":[{"user_id":"a"},{"name":"No Id"}]}`, "member 1: user_id is missing"},
		{"empty user_id", `{"members":[{"user_id":""}]}`, "member 0: user_id is empty"},
		{"numeric user_id", `{"members":[{"user_id":42}]}`, "member 0"},
		{"user_id with NUL", `{"members":[{"user_id":"a\u0000b"}]}`, "member 0: user_id holds a NUL"},
		{"user_id too long", `{"members":[{"user_id":"` + strings.Repeat("u", 256) + `"}]}`, "member 0: user_id is longer than 255 bytes"},
		{"unknown status", `{"members":[{"user_id":"a"},{"user_id":"b","status":"Suspended"}]}`, `member 1: unknown status "Suspended"`},
		{"roles a string", `{"members":[{"user_id":"a","roles":"Learner"}]}`, "member 0: roles is not an array of strings"},
		{"roles with a number", `{"members":[{"user_id":"a","roles":["Learner",3]}]}`, "member 0: roles is not an array of strings"},
		{"name a number", `{"members":[{"user_id":"a","name":3}]}`, "member 0"},
		{"message not an array", `{"members":[{"user_id":"a","message":{}}]}`, "member 0"},
		{"context a string", `{"context":"c","members":[]}`, "context"},
		{"trailing content", `{"members":[]} {"members":[]}`, "content after the container"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fetch(t, 200, http.Header{"Content-Type": {nrps.MediaType}}, tc.body)
			if !errors.Is(err, nrps.ErrMalformed) {
				t.Fatalf("error = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestOversizeRefused(t *testing.T) {
	body := `{"members":[` + strings.Repeat(`{"user_id":"abcdefgh"},`, 100) + `{"user_id":"z"}]}`
	url, _ := serve(t, 200, nil, body)
	c := &nrps.Client{HTTP: http.DefaultClient, MaxPageBytes: int64(len(body) - 1)}
	if _, err := c.Fetch(context.Background(), url, "t"); !errors.Is(err, nrps.ErrMalformed) || !strings.Contains(err.Error(), "over") {
		t.Fatalf("error = %v, want an oversize refusal", err)
	}
	c.MaxPageBytes = int64(len(body))
	if _, err := c.Fetch(context.Background(), url, "t"); err != nil {
		t.Fatalf("a body of exactly MaxPageBytes: %v", err)
	}
}

func TestPageURL(t *testing.T) {
	tests := []struct {
		name, in string
		q        nrps.Query
		want     string
	}{
		{"plain", "https://lms.example.edu/nrps/1", nrps.Query{Limit: 50}, "https://lms.example.edu/nrps/1?limit=50"},
		{"keeps the platform's parameters", "https://lms.example.edu/mod/lti/services.php/CourseSection/10/bindings/7/memberships?type_id=3",
			nrps.Query{Limit: 100, Role: lti.RoleLearner, RLID: "link 1"},
			"https://lms.example.edu/mod/lti/services.php/CourseSection/10/bindings/7/memberships?type_id=3&limit=100&rlid=link+1&role=http%3A%2F%2Fpurl.imsglobal.org%2Fvocab%2Flis%2Fv2%2Fmembership%23Learner"},
		{"replaces a limit already there", "https://lms.example.edu/n?limit=10&groups=true", nrps.Query{Limit: 50}, "https://lms.example.edu/n?groups=true&limit=50"},
		{"no query asked", "https://lms.example.edu/n?groups=true", nrps.Query{}, "https://lms.example.edu/n?groups=true"},
		{"short role", "http://127.0.0.1:8080/nrps/course-1", nrps.Query{Role: "Instructor"}, "http://127.0.0.1:8080/nrps/course-1?role=Instructor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nrps.PageURL(tc.in, tc.q)
			if err != nil || got != tc.want {
				t.Errorf("PageURL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"/relative/nrps", "ftp://lms.example.edu/n", "https://", "http://[::1"} {
		if _, err := nrps.PageURL(bad, nrps.Query{}); err == nil {
			t.Errorf("PageURL(%q) accepted", bad)
		}
	}
	if _, err := nrps.PageURL("https://lms.example.edu/n", nrps.Query{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
}

func TestTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/nrps/x"
	srv.Close()
	_, err := (&nrps.Client{HTTP: http.DefaultClient}).Fetch(context.Background(), url, "t")
	var se *nrps.StatusError
	if err == nil || errors.As(err, &se) || errors.Is(err, nrps.ErrMalformed) {
		t.Fatalf("error = %v, want a transport error", err)
	}
}

func TestDefaultClientRefusesLoopback(t *testing.T) {
	url, _ := serve(t, 200, nil, `{"members":[]}`)
	if _, err := (&nrps.Client{}).Fetch(context.Background(), url, "t"); err == nil {
		t.Fatal("the default client called a loopback address")
	}
}
