package ltitest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
	"github.com/klasterina/hub/lti/nrps"
)

func newPlatform(t *testing.T) *ltitest.Platform {
	t.Helper()
	p := ltitest.New()
	t.Cleanup(p.Close)
	p.GrantToken("token", lti.ScopeNRPS)
	return p
}

// rosterClient calls the platform over loopback with a fresh connection
// for each request, so a dropped connection is not retried by the
// transport.
func rosterClient() *nrps.Client {
	return &nrps.Client{HTTP: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
}

func pageURL(t *testing.T, p *ltitest.Platform, contextID string, q nrps.Query) string {
	t.Helper()
	u, err := nrps.PageURL(p.Server.URL+"/nrps/"+contextID, q)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// pull follows the next links from url and returns every member and
// every page.
func pull(t *testing.T, url string) ([]nrps.Member, []*nrps.Page) {
	t.Helper()
	var members []nrps.Member
	var pages []*nrps.Page
	c := rosterClient()
	for url != "" {
		page, err := c.Fetch(context.Background(), url, "token")
		if err != nil {
			t.Fatalf("page %d: %v", len(pages)+1, err)
		}
		members = append(members, page.Members...)
		pages = append(pages, page)
		url = page.Next
	}
	return members, pages
}

func userIDs(members []nrps.Member) []string {
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.UserID
	}
	return ids
}

func subjects(contextID string, indices ...int) []string {
	ids := make([]string, len(indices))
	for i, n := range indices {
		ids[i] = fmt.Sprintf("nrps-%s-%d", contextID, n)
	}
	return ids
}

func TestMembershipsPaging(t *testing.T) {
	p := newPlatform(t)
	p.SetRoster("course-1", 1234)
	members, pages := pull(t, pageURL(t, p, "course-1", nrps.Query{Limit: 50}))
	want := make([]int, 1234)
	for i := range want {
		want[i] = i
	}
	if got := userIDs(members); !slices.Equal(got, subjects("course-1", want...)) {
		t.Fatalf("received %d members, not each of the 1234 once in order", len(got))
	}
	if len(pages) != 25 || p.NRPSPages() != 25 {
		t.Fatalf("%d pages received, %d served; want 25", len(pages), p.NRPSPages())
	}
	for i, page := range pages {
		last := i == len(pages)-1
		if size := len(page.Members); (!last && size != 50) || (last && size != 34) {
			t.Errorf("page %d holds %d members", i+1, size)
		}
		if (page.Next == "") != last || (page.Differences != "") != last {
			t.Errorf("page %d: next %q, differences %q", i+1, page.Next, page.Differences)
		}
		if page.ContextID != "course-1" || page.ContextLabel != "MATH101" || page.ContextTitle != "Mathematics 101" {
			t.Errorf("page %d context = %q %q %q", i+1, page.ContextID, page.ContextLabel, page.ContextTitle)
		}
	}
	// Member 3 is sent as the short "Learner", 26 as a short sub-role.
	if !slices.Equal(members[3].Roles, []string{lti.RoleLearner}) || !slices.Equal(members[26].Roles, []string{lti.RoleTeachingAssistant}) {
		t.Errorf("roles = %q, %q; want short forms expanded", members[3].Roles, members[26].Roles)
	}
	if m := members[0]; m.Status != nrps.StatusActive || m.Name == "" || !strings.HasSuffix(m.Email, "@example.edu") {
		t.Errorf("member 0 = %+v", m)
	}
}

func TestMembershipsPageSize(t *testing.T) {
	p := newPlatform(t)
	p.SetRoster("big", 120)
	tests := []struct {
		name  string
		cap   int
		limit int
		want  int
	}{
		{"default limit", 0, 0, 10},
		{"cap enforced", 0, 1000, 50},
		{"below the cap", 0, 7, 7},
		{"a lower cap", 20, 1000, 20},
	}
	c := rosterClient()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.NRPSPageCap = tc.cap
			page, err := c.Fetch(context.Background(), pageURL(t, p, "big", nrps.Query{Limit: tc.limit}), "token")
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Members) != tc.want {
				t.Errorf("%d members, want %d", len(page.Members), tc.want)
			}
			next, err := c.Fetch(context.Background(), page.Next, "token")
			if err != nil || len(next.Members) != tc.want || next.Members[0].UserID != fmt.Sprintf("nrps-big-%d", tc.want) {
				t.Errorf("next page: %v, %d members", err, len(next.Members))
			}
		})
	}
}

func TestMembershipsRoleFilter(t *testing.T) {
	p := newPlatform(t)
	p.SetRoster("c", 100)
	tests := []struct {
		role string
		want []int
	}{
		{"Instructor", []int{0, 1, 25, 26, 50, 51, 75, 76}}, // with the teaching assistants, a sub-role
		{lti.RoleInstructor, []int{0, 1, 25, 26, 50, 51, 75, 76}},
		{"Instructor#TeachingAssistant", []int{1, 26, 51, 76}},
		{lti.RoleTeachingAssistant, []int{1, 26, 51, 76}},
		{"http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor", []int{2, 27, 52, 77}},
		{"http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty", []int{0, 25, 50, 75}},
		{"ContentDeveloper", []int{}},
	}
	for _, tc := range tests {
		t.Run(tc.role, func(t *testing.T) {
			members, _ := pull(t, pageURL(t, p, "c", nrps.Query{Limit: 3, Role: tc.role}))
			if got := userIDs(members); !slices.Equal(got, subjects("c", tc.want...)) {
				t.Errorf("members = %q, want %v", got, tc.want)
			}
		})
	}
	learners, _ := pull(t, pageURL(t, p, "c", nrps.Query{Limit: 50, Role: "Learner"}))
	if len(learners) != 100-12 {
		t.Errorf("%d learners, want 88", len(learners))
	}
}

func TestMembershipsResourceLinkMessages(t *testing.T) {
	p := newPlatform(t)
	p.SetRoster("c", 12)
	members, _ := pull(t, pageURL(t, p, "c", nrps.Query{Limit: 5, RLID: "link-1"}))
	if len(members) != 12 {
		t.Fatalf("%d members", len(members))
	}
	for _, m := range members {
		if len(m.Message) != 1 {
			t.Fatalf("%s: %d messages", m.UserID, len(m.Message))
		}
		var msg map[string]json.RawMessage
		if err := json.Unmarshal(m.Message[0], &msg); err != nil {
			t.Fatal(err)
		}
		var custom map[string]any
		if string(msg[lti.ClaimMessageType]) != `"LtiResourceLinkRequest"` || json.Unmarshal(msg[lti.ClaimCustom], &custom) != nil ||
			custom["resource_link_id"] != "link-1" {
			t.Errorf("%s: message = %s", m.UserID, m.Message[0])
		}
	}
	plain, _ := pull(t, pageURL(t, p, "c", nrps.Query{Limit: 50}))
	if plain[0].Message != nil {
		t.Errorf("messages without rlid: %s", plain[0].Message)
	}
}

func TestMembershipsDifferences(t *testing.T) {
	p := newPlatform(t)
	r := p.SetRoster("c", 30)
	_, pages := pull(t, pageURL(t, p, "c", nrps.Query{Limit: 50}))
	since := pages[len(pages)-1].Differences
	if since == "" {
		t.Fatal("no differences link on the last page")
	}
	r.Add(2)
	r.Change(3)
	r.Deactivate(4)
	r.Remove(5)
	r.SetRoles(6, "Instructor")

	changed, pages := pull(t, since)
	if got := userIDs(changed); !slices.Equal(got, subjects("c", 3, 4, 5, 6, 30, 31)) {
		t.Fatalf("differences = %q", got)
	}
	byID := map[string]nrps.Member{}
	for _, m := range changed {
		byID[m.UserID] = m
	}
	renamed := r.Member(3)
	if m := byID["nrps-c-3"]; m.FamilyName != renamed.FamilyName || m.Email != renamed.Email || m.Status != nrps.StatusActive {
		t.Errorf("renamed member = %+v, platform has %+v", m, renamed)
	}
	if m := byID["nrps-c-4"]; m.Status != nrps.StatusInactive {
		t.Errorf("deactivated member status %q", m.Status)
	}
	if m := byID["nrps-c-5"]; m.Status != nrps.StatusDeleted {
		t.Errorf("removed member status %q", m.Status)
	}
	if m := byID["nrps-c-6"]; !slices.Equal(m.Roles, []string{lti.RoleInstructor}) {
		t.Errorf("member 6 roles = %q", m.Roles)
	}
	next := pages[len(pages)-1].Differences
	if next == "" {
		t.Fatal("the differences listing offers no differences link")
	}
	if again, _ := pull(t, next); len(again) != 0 {
		t.Errorf("no change since, yet differences list %q", userIDs(again))
	}

	full, _ := pull(t, pageURL(t, p, "c", nrps.Query{Limit: 50}))
	if len(full) != 31 || slices.Contains(userIDs(full), "nrps-c-5") || full[4].Status != nrps.StatusInactive {
		t.Errorf("full listing after the changes: %d members, %q", len(full), userIDs(full))
	}
	if r.Len() != 32 || r.Member(5).Status != "Deleted" {
		t.Errorf("Len %d, member 5 %+v", r.Len(), r.Member(5))
	}
}

func TestMembershipsDifferencesPaged(t *testing.T) {
	p := newPlatform(t)
	r := p.SetRoster("c", 40)
	_, pages := pull(t, pageURL(t, p, "c", nrps.Query{Limit: 50}))
	for _, i := range []int{1, 9, 17, 25, 33} {
		r.Change(i)
	}
	since, err := nrps.PageURL(pages[0].Differences, nrps.Query{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	changed, pages := pull(t, since)
	if got := userIDs(changed); !slices.Equal(got, subjects("c", 1, 9, 17, 25, 33)) || len(pages) != 3 {
		t.Errorf("differences = %q in %d pages, want 5 in 3", got, len(pages))
	}
}

func TestMembershipsDifferencesUnanswerable(t *testing.T) {
	p := newPlatform(t)
	p.SetRoster("c", 5)
	_, pages := pull(t, pageURL(t, p, "c", nrps.Query{}))
	since := pages[0].Differences
	p.ExpireDifferences()
	c := rosterClient()
	_, err := c.Fetch(context.Background(), since, "token")
	var se *nrps.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusGone || se.Temporary() {
		t.Fatalf("expired differences: %v, want a permanent 410", err)
	}
	_, pages = pull(t, pageURL(t, p, "c", nrps.Query{}))
	if _, err := c.Fetch(context.Background(), pages[0].Differences, "token"); err != nil {
		t.Errorf("a differences link given after the expiry: %v", err)
	}
	_, err = c.Fetch(context.Background(), p.Server.URL+"/nrps/c?since=999", "token")
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Errorf("a since never given: %v, want 400", err)
	}
	p.OfferDifferences = false
	if _, pages = pull(t, pageURL(t, p, "c", nrps.Query{})); pages[0].Differences != "" {
		t.Errorf("differences offered when turned off: %q", pages[0].Differences)
	}
}

func TestMembershipsFaults(t *testing.T) {
	var se *nrps.StatusError
	tests := []struct {
		name  string
		fault ltitest.Fault
		check func(t *testing.T, err error)
	}{
		{"too many", ltitest.FaultTooMany, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 429 || se.RetryAfter != time.Second || !se.Throttled || !se.Temporary() {
				t.Errorf("error = %v", err)
			}
		}},
		{"too many, with a date", ltitest.FaultTooManyDate, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 429 || se.RetryAfter <= 0 || se.RetryAfter > 2*time.Second || !se.Throttled {
				t.Errorf("error = %v", err)
			}
		}},
		{"Canvas throttling", ltitest.FaultCanvasThrottle, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 403 || !se.Throttled || !se.Temporary() {
				t.Errorf("error = %v", err)
			}
		}},
		{"unavailable", ltitest.FaultUnavailable, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 503 || se.RetryAfter != time.Second || !se.Throttled {
				t.Errorf("error = %v", err)
			}
		}},
		{"server error", ltitest.FaultServerError, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 500 || se.Throttled || !se.Temporary() {
				t.Errorf("error = %v", err)
			}
		}},
		{"malformed", ltitest.FaultMalformed, func(t *testing.T, err error) {
			if !errors.Is(err, nrps.ErrMalformed) {
				t.Errorf("error = %v, want ErrMalformed", err)
			}
		}},
		{"token refused", ltitest.FaultUnauthorized, func(t *testing.T, err error) {
			if !errors.As(err, &se) || se.Status != 401 || se.Temporary() {
				t.Errorf("error = %v", err)
			}
		}},
		{"dropped connection", ltitest.FaultDropConnection, func(t *testing.T, err error) {
			if err == nil || errors.As(err, &se) || errors.Is(err, nrps.ErrMalformed) {
				t.Errorf("error = %v, want a transport error", err)
			}
		}},
	}
	p := newPlatform(t)
	p.SetRoster("c", 20)
	url := pageURL(t, p, "c", nrps.Query{Limit: 5})
	c := rosterClient()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.InjectNRPSFaults(tc.fault)
			_, err := c.Fetch(context.Background(), url, "token")
			tc.check(t, err)
			if page, err := c.Fetch(context.Background(), url, "token"); err != nil || len(page.Members) != 5 {
				t.Errorf("the request after the fault: %v", err)
			}
		})
	}
	if p.NRPSRequests() != 2*len(tests) || p.NRPSPages() != len(tests) {
		t.Errorf("%d requests, %d pages", p.NRPSRequests(), p.NRPSPages())
	}
}

func TestMembershipsFaultsInOrder(t *testing.T) {
	p := newPlatform(t)
	p.SetRoster("c", 3)
	p.InjectNRPSFaults(ltitest.FaultServerError, ltitest.FaultTooMany)
	c := rosterClient()
	var statuses []int
	for range 3 {
		_, err := c.Fetch(context.Background(), pageURL(t, p, "c", nrps.Query{}), "token")
		var se *nrps.StatusError
		if errors.As(err, &se) {
			statuses = append(statuses, se.Status)
		} else if err == nil {
			statuses = append(statuses, 200)
		}
	}
	if !slices.Equal(statuses, []int{500, 429, 200}) {
		t.Errorf("statuses = %v", statuses)
	}
}

func TestMembershipsSlow(t *testing.T) {
	p := newPlatform(t)
	p.SetRoster("c", 3)
	url := pageURL(t, p, "c", nrps.Query{})
	c := rosterClient()

	p.NRPSSlowDelay = 5 * time.Second
	p.InjectNRPSFaults(ltitest.FaultSlow)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Fetch(ctx, url, "token"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("a tool giving up on a slow page: %v after %s", err, time.Since(start))
	}

	// Another platform: the first may still be holding the abandoned
	// request, reading its delay.
	p = newPlatform(t)
	p.SetRoster("c", 3)
	p.NRPSSlowDelay = 200 * time.Millisecond
	p.InjectNRPSFaults(ltitest.FaultSlow)
	start = time.Now()
	if page, err := c.Fetch(context.Background(), pageURL(t, p, "c", nrps.Query{}), "token"); err != nil || len(page.Members) != 3 || time.Since(start) < 200*time.Millisecond {
		t.Errorf("a slow page: %v after %s", err, time.Since(start))
	}
}

func TestMembershipsUnknownContext(t *testing.T) {
	p := newPlatform(t)
	_, err := rosterClient().Fetch(context.Background(), pageURL(t, p, "nowhere", nrps.Query{}), "token")
	var se *nrps.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound || se.Temporary() {
		t.Fatalf("unknown context: %v, want 404", err)
	}
}

func TestMembershipsBearerRequired(t *testing.T) {
	p := newPlatform(t)
	p.SetRoster("c", 3)
	resp, err := http.Get(p.Server.URL + "/nrps/c")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no bearer: %d, want 401", resp.StatusCode)
	}
	if p.NRPSRequests() != 1 || p.NRPSPages() != 0 {
		t.Errorf("%d requests, %d pages", p.NRPSRequests(), p.NRPSPages())
	}
}

func TestRosterDeterministic(t *testing.T) {
	a, b := newPlatform(t), newPlatform(t)
	for _, p := range []*ltitest.Platform{a, b} {
		r := p.SetRoster("c", 60)
		r.Add(3)
		r.Change(7)
		r.SetRoles(8, "Mentor")
	}
	ra, rb := a.Roster("c"), b.Roster("c")
	for i := range ra.Len() {
		if !reflect.DeepEqual(ra.Member(i), rb.Member(i)) {
			t.Fatalf("member %d: %+v and %+v", i, ra.Member(i), rb.Member(i))
		}
	}
	if ra.Member(7).Email == newPlatform(t).SetRoster("c", 60).Member(7).Email {
		t.Error("Change kept the email")
	}
	if a.Roster("other") != nil {
		t.Error("a roster nobody set")
	}
}

func TestDemoPageShowsRosters(t *testing.T) {
	p := newPlatform(t)
	p.SetRoster("course-1", 42)
	p.Roster("course-1").Remove(0)
	resp, err := http.Get(p.Server.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"Roster of course-1: 41 members", "Alan", "TeachingAssistant"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("demo page lacks %q", want)
		}
	}
}
