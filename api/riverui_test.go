package api_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// operatorUI is the Basic challenge River's UI answers a refused request with.
const operatorUI = `Basic realm="hub operator"`

// withBasic signs a request in with HTTP Basic auth, as a browser does.
func withBasic(user, password string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

func withBearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// riverUI sends a request to River's UI signed in as sign says.
func (h *hub) riverUI(method, path string, body any, sign ...func(*http.Request)) response {
	h.t.Helper()
	req := h.request(method, path, "", body)
	for _, s := range sign {
		s(req)
	}
	return h.send(req)
}

// River's UI and its API admit the operator's token only: without a
// credential, with a wrong one, or with a tenant's API key (as a Basic
// password or a bearer token) the answer is 401 with a Basic challenge,
// so that a browser asks for the operator token. A credential presented
// and refused is audited in the operator's chain.
func TestRiverUIRefusesAllButTheOperator(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	_, key := h.createKey("uni", "write")
	for _, tc := range []struct {
		name string
		sign func(*http.Request)
	}{
		{"no credential", func(*http.Request) {}},
		{"a wrong password", withBasic("operator", "not-the-operator-token")},
		{"the operator token as the user name", withBasic(adminToken, "")},
		{"a tenant API key as the password", withBasic("uni", key)},
		{"a tenant API key as a bearer token", withBearer(key)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/riverui", "/riverui/", "/riverui/jobs", "/riverui/api/jobs?state=available"} {
				r := h.expect(h.riverUI("GET", path, nil, tc.sign), http.StatusUnauthorized)
				if got := r.header.Get("WWW-Authenticate"); got != operatorUI {
					t.Errorf("GET %s: WWW-Authenticate = %q, want %q", path, got, operatorUI)
				}
				if strings.Contains(string(r.body), "<title>River</title>") {
					t.Errorf("GET %s: the UI was served: %s", path, r.body)
				}
			}
			h.expect(h.riverUI("POST", "/riverui/api/jobs/cancel", map[string]any{"ids": []string{"1"}}, tc.sign), http.StatusUnauthorized)
		})
	}
	var page auditPage
	h.expect(h.do("GET", "/api/v1/audit?action=auth.failed&limit=200", adminToken, nil), http.StatusOK).json(t, &page)
	refused := 0
	for _, e := range page.Items {
		if e.TargetType == "operator_token" && e.Details["reason"] == "not_operator_token" && e.Details["route"] == "/riverui/*" {
			refused++
		}
	}
	if refused == 0 {
		t.Fatalf("no refusal of the UI's sign-in in the operator's chain: %+v", page.Items)
	}
}

var riverUIScript = regexp.MustCompile(`src="(/riverui/assets/[^"]+\.js)"`)

// The operator, signed in with any user name and the operator token as
// the password, gets River's UI: its page, with the UI's API under the
// prefix, and the page's script. The bearer token the REST API takes
// serves as well.
func TestRiverUIServesItsPagesToTheOperator(t *testing.T) {
	h := newHub(t)
	h.expect(h.riverUI("GET", "/riverui", nil, withBasic("anyone", adminToken)), http.StatusMovedPermanently)
	for _, sign := range []func(*http.Request){withBasic("anyone", adminToken), withBasic("", adminToken), withBearer(adminToken)} {
		for _, path := range []string{"/riverui/", "/riverui/jobs", "/riverui/queues"} {
			page := h.expect(h.riverUI("GET", path, nil, sign), http.StatusOK)
			if ct := page.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Fatalf("GET %s: Content-Type %q", path, ct)
			}
			body := string(page.body)
			if !strings.Contains(body, "<title>River</title>") || !strings.Contains(body, `/riverui/api`) {
				t.Fatalf("GET %s: not River's page under /riverui: %s", path, body)
			}
		}
	}
	page := h.expect(h.riverUI("GET", "/riverui/", nil, withBasic("anyone", adminToken)), http.StatusOK)
	script := riverUIScript.FindStringSubmatch(string(page.body))
	if script == nil {
		t.Fatalf("no script under /riverui/assets in %s", page.body)
	}
	js := h.expect(h.riverUI("GET", script[1], nil, withBasic("anyone", adminToken)), http.StatusOK)
	if ct := js.header.Get("Content-Type"); !strings.Contains(ct, "javascript") || len(js.body) == 0 {
		t.Fatalf("GET %s: Content-Type %q, %d bytes", script[1], ct, len(js.body))
	}
}

// riverJob is a job as River's UI lists it.
type riverJob struct {
	ID    int64  `json:"id"`
	Args  string `json:"args"`
	Kind  string `json:"kind"`
	Queue string `json:"queue"`
	State string `json:"state"`
}

// The UI's API reads the job engine's tables through the hub's River
// client: a retention run the operator asks for is listed as a job of the
// maintenance queue and counted among the available jobs; the operator
// may cancel it.
func TestRiverUIListsAndCancelsJobs(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	tenant := h.tenantID("uni")
	operator := withBasic("operator", adminToken)
	// The job engine is not running: the run's job stays available.
	h.expect(h.do("POST", "/api/v1/tenants/uni/retention-runs", adminToken, nil), http.StatusAccepted)

	var listed struct {
		Data []riverJob `json:"data"`
	}
	h.expect(h.riverUI("GET", "/riverui/api/jobs?state=available", nil, operator), http.StatusOK).json(t, &listed)
	if len(listed.Data) != 1 {
		t.Fatalf("available jobs %+v, want the retention run's", listed.Data)
	}
	job := listed.Data[0]
	if job.Kind != "retention.run" || job.Queue != "maintenance" || job.State != "available" || !strings.Contains(job.Args, tenant.String()) {
		t.Fatalf("job %+v, want the retention run of tenant %s", job, tenant)
	}

	var states map[string]struct {
		Count int `json:"count"`
	}
	h.expect(h.riverUI("GET", "/riverui/api/states", nil, operator), http.StatusOK).json(t, &states)
	if states["available"].Count != 1 {
		t.Fatalf("counts by state %+v, want 1 available", states)
	}

	cancel := h.request("POST", "/riverui/api/jobs/cancel", "", map[string]any{"ids": []string{strconv.FormatInt(job.ID, 10)}})
	cancel.SetBasicAuth("operator", adminToken)
	cancel.Header.Set("Sec-Fetch-Site", "same-origin")
	h.expect(h.send(cancel), http.StatusOK)
	var got riverJob
	h.expect(h.riverUI("GET", "/riverui/api/jobs/"+strconv.FormatInt(job.ID, 10), nil, operator), http.StatusOK).json(t, &got)
	if got.State != "cancelled" {
		t.Fatalf("job after cancel %+v", got)
	}
}

// A browser sends the operator's Basic credentials to the hub whichever
// site makes it ask, so the UI's changes are refused when another site
// asks for them; reading stays open to the UI's own pages.
func TestRiverUIRefusesChangesFromOtherSites(t *testing.T) {
	h := newHub(t)
	h.createTenant("uni", "institution")
	h.expect(h.do("POST", "/api/v1/tenants/uni/retention-runs", adminToken, nil), http.StatusAccepted)
	operator := withBasic("operator", adminToken)
	var listed struct {
		Data []riverJob `json:"data"`
	}
	h.expect(h.riverUI("GET", "/riverui/api/jobs?state=available", nil, operator), http.StatusOK).json(t, &listed)
	if len(listed.Data) != 1 {
		t.Fatalf("available jobs %+v", listed.Data)
	}
	id := strconv.FormatInt(listed.Data[0].ID, 10)
	for _, tc := range []struct {
		name   string
		header string
		value  string
	}{
		{"another site", "Sec-Fetch-Site", "cross-site"},
		{"a sibling site", "Sec-Fetch-Site", "same-site"},
		{"another origin, older browser", "Origin", "https://elsewhere.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := h.request("POST", "/riverui/api/jobs/cancel", "", map[string]any{"ids": []string{id}})
			req.SetBasicAuth("operator", adminToken)
			req.Header.Set(tc.header, tc.value)
			h.expect(h.send(req), http.StatusForbidden)
		})
	}
	var got riverJob
	h.expect(h.riverUI("GET", "/riverui/api/jobs/"+id, nil, operator), http.StatusOK).json(t, &got)
	if got.State != "available" {
		t.Fatalf("job %+v, want it still available", got)
	}
}
