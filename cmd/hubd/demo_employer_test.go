package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// signInThroughTheDemo is the demo's walkthrough for employers: Ben,
// provisioned by SCIM, signs in at the demo's provider and lands in the
// learning app as the user the directory made; Cy, deactivated, is
// refused; the SCIM token printed lists the directory.
func signInThroughTheDemo(t *testing.T, out *syncBuffer) {
	t.Helper()
	app := printedURL(t, out, "learning app")
	running := regexp.MustCompile(`The hub is running at (http://\S+)`).FindStringSubmatch(out.String())
	if running == nil {
		t.Fatalf("no hub address printed:\n%s", out.String())
	}
	hub := running[1]
	m := regexp.MustCompile(`SCIM token:\s+(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no SCIM token printed:\n%s", out.String())
	}
	ben := scimUser(t, hub, m[1], "ben@"+employerDomain)

	b := newBrowser(t)
	page := b.get(hub + "/sso/start?email=" + url.QueryEscape("ben@"+employerDomain))
	if !strings.Contains(page.body, "Ben Baker") {
		t.Fatalf("the provider's sign-in page does not offer Ben (%s):\n%s", page.url, page.body)
	}
	page = b.submit(page, url.Values{"ssotest_subject": {"idp-ben"}}) // the provider, then the hub's handoff form
	page = b.submit(page, nil)                                        // the learning app
	if page.url.String() != app || !strings.Contains(page.body, "Ben Baker") {
		t.Fatalf("Ben's sign-in did not land in the learning app (%s):\n%s", page.url, page.body)
	}
	answer := b.submit(page, url.Values{"score_given": {"8"}, "score_maximum": {"10"}, "completed": {"true"}})
	if !strings.Contains(answer.body, "The hub answered 201") {
		t.Fatalf("Ben's result against the catalog activity:\n%s", answer.body)
	}
	sessions := operatorGet(t, out, hub+"/api/v1/tenants/"+employerSlug+"/sso/sessions?user="+ben)
	if !strings.Contains(sessions, ben) {
		t.Fatalf("Ben's session is not the directory's user %s: %s", ben, sessions)
	}

	cy := newBrowser(t)
	page = cy.get(hub + "/sso/start?email=" + url.QueryEscape("cy@"+employerDomain))
	page = cy.submit(page, url.Values{"ssotest_subject": {"idp-cy"}})
	if !strings.Contains(strings.ToLower(page.body), "deactivated") {
		t.Fatalf("Cy's sign-in was not refused as deactivated (%s):\n%s", page.url, page.body)
	}
}

// scimUser finds userName in the demo employer's directory with the
// printed SCIM token and answers its id.
func scimUser(t *testing.T, hub, tok, userName string) string {
	t.Helper()
	q := url.Values{"filter": {`userName eq "` + userName + `"`}}
	req, _ := http.NewRequest(http.MethodGet, hub+"/scim/v2/"+employerSlug+"/Users?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var list struct {
		TotalResults int `json:"totalResults"`
		Resources    []struct {
			ID string `json:"id"`
		} `json:"Resources"`
	}
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil || res.StatusCode != http.StatusOK || list.TotalResults != 1 {
		t.Fatalf("SCIM filter for %s: %d %v %+v", userName, res.StatusCode, err, list)
	}
	return list.Resources[0].ID
}

// operatorGet reads u with the printed operator token.
func operatorGet(t *testing.T, out *syncBuffer, u string) string {
	t.Helper()
	m := regexp.MustCompile(`operator token:\s+(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no operator token printed:\n%s", out.String())
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+m[1])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, res.StatusCode, err)
	}
	return string(body)
}
