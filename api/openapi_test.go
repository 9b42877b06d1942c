package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/sso"
	"github.com/klasterina/hub/sso/scim"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/destinations"
)

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// echoWildcard is Echo's catch-all at a path's end, such as River's UI
// under /riverui/*: the document names what it matches {path}.
var echoWildcard = regexp.MustCompile(`/\*$`)

// TestOpenAPIMatchesRoutes fails when a registered route is missing from the
// document, or a documented operation is not registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	srv, err := New(Deps{DB: pgtest.Open(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" && method != "summary" && method != "description" {
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	registered := map[string]bool{}
	for _, r := range srv.routePaths() {
		if r.Method == echoRouteNotFound {
			continue
		}
		path := echoWildcard.ReplaceAllString(echoParam.ReplaceAllString(r.Path, "{$1}"), "/{path}")
		registered[r.Method+" "+path] = true
	}
	for op := range registered {
		if !documented[op] {
			t.Errorf("route %s is not in openapi.json", op)
		}
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("openapi.json documents %s, which is not registered", op)
		}
	}
	if len(registered) < 18 {
		t.Fatalf("only %d routes registered: %v", len(registered), slices.Sorted(maps.Keys(registered)))
	}
}

// echoRouteNotFound is the pseudo-method Echo registers for a group's
// catch-all 404 route.
const echoRouteNotFound = "echo_route_not_found"

func TestOpenAPIIsServed(t *testing.T) {
	srv, err := New(Deps{DB: pgtest.Open(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET openapi.json: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}

// TestOpenAPILicense: the document names the licence the repository's
// LICENSE file grants.
func TestOpenAPILicense(t *testing.T) {
	var doc struct {
		Info struct {
			License struct {
				Name       string `json:"name"`
				Identifier string `json:"identifier"`
			} `json:"license"`
		} `json:"info"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if l := doc.Info.License; l.Identifier != "Apache-2.0" || l.Name != "Apache-2.0" {
		t.Fatalf("info.license = %+v, want Apache-2.0", l)
	}
}

// TestOpenAPIDocumentsTheBounds keeps the document's maxItems and
// maxLength equal to the bounds the code enforces.
func TestOpenAPIDocumentsTheBounds(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					MaxLength int `json:"maxLength"`
					MaxItems  int `json:"maxItems"`
					Items     struct {
						MaxLength int `json:"maxLength"`
					} `json:"items"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Components.Schemas
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"NewRegistration.deployment_ids maxItems", s["NewRegistration"].Properties["deployment_ids"].MaxItems, lti.MaxDeploymentsPerRequest},
		{"NewRegistration.deployment_ids[] maxLength", s["NewRegistration"].Properties["deployment_ids"].Items.MaxLength, lti.MaxIDLength},
		{"NewRegistration.client_id maxLength", s["NewRegistration"].Properties["client_id"].MaxLength, lti.MaxIDLength},
		{"NewRegistration.issuer maxLength", s["NewRegistration"].Properties["issuer"].MaxLength, lti.MaxURLLength},
		{"NewRegistration.auth_login_url maxLength", s["NewRegistration"].Properties["auth_login_url"].MaxLength, lti.MaxURLLength},
		{"NewRegistration.auth_token_url maxLength", s["NewRegistration"].Properties["auth_token_url"].MaxLength, lti.MaxURLLength},
		{"NewRegistration.jwks_url maxLength", s["NewRegistration"].Properties["jwks_url"].MaxLength, lti.MaxURLLength},
		{"NewRegistration.token_audience maxLength", s["NewRegistration"].Properties["token_audience"].MaxLength, lti.MaxURLLength},
		{"NewRegistration.trusted_audiences maxItems", s["NewRegistration"].Properties["trusted_audiences"].MaxItems, lti.MaxTrustedAudiences},
		{"NewRegistration.trusted_audiences[] maxLength", s["NewRegistration"].Properties["trusted_audiences"].Items.MaxLength, lti.MaxURLLength},
		{"NewSharedRegistration.client_id maxLength", s["NewSharedRegistration"].Properties["client_id"].MaxLength, lti.MaxIDLength},
		{"NewSharedRegistration.jwks_url maxLength", s["NewSharedRegistration"].Properties["jwks_url"].MaxLength, lti.MaxURLLength},
		{"RegistrationPatch.auth_login_url maxLength", s["RegistrationPatch"].Properties["auth_login_url"].MaxLength, lti.MaxURLLength},
		{"RegistrationPatch.token_audience maxLength", s["RegistrationPatch"].Properties["token_audience"].MaxLength, lti.MaxURLLength},
		{"NewTenant.display_name maxLength", s["NewTenant"].Properties["display_name"].MaxLength, tenants.MaxDisplayName},
		{"TenantPatch.display_name maxLength", s["TenantPatch"].Properties["display_name"].MaxLength, tenants.MaxDisplayName},
		{"NewAPIKey.name maxLength", s["NewAPIKey"].Properties["name"].MaxLength, tenants.MaxKeyName},
		{"NewAPIKey.scopes maxItems", s["NewAPIKey"].Properties["scopes"].MaxItems, tenants.MaxKeyScopes},
		{"Activity.title maxLength", s["Activity"].Properties["title"].MaxLength, lti.MaxActivityTitle},
		{"Activity.description maxLength", s["Activity"].Properties["description"].MaxLength, lti.MaxActivityDescription},
		{"NewDestination.name maxLength", s["NewDestination"].Properties["name"].MaxLength, destinations.MaxName},
		{"NewDestination.url maxLength", s["NewDestination"].Properties["url"].MaxLength, destinations.MaxURLLength},
		{"NewDestination.username maxLength", s["NewDestination"].Properties["username"].MaxLength, destinations.MaxCredential},
		{"NewDestination.password maxLength", s["NewDestination"].Properties["password"].MaxLength, destinations.MaxCredential},
		{"DestinationPatch.name maxLength", s["DestinationPatch"].Properties["name"].MaxLength, destinations.MaxName},
		{"DestinationPatch.url maxLength", s["DestinationPatch"].Properties["url"].MaxLength, destinations.MaxURLLength},
		{"DestinationPatch.password maxLength", s["DestinationPatch"].Properties["password"].MaxLength, destinations.MaxCredential},
		{"NewSCIMToken.name maxLength", s["NewSCIMToken"].Properties["name"].MaxLength, scim.MaxTokenName},
		{"NewSSOConnection.name maxLength", s["NewSSOConnection"].Properties["name"].MaxLength, sso.MaxName},
		{"NewSSOConnection.issuer maxLength", s["NewSSOConnection"].Properties["issuer"].MaxLength, sso.MaxURLLength},
		{"NewSSOConnection.expected_issuer maxLength", s["NewSSOConnection"].Properties["expected_issuer"].MaxLength, sso.MaxURLLength},
		{"NewSSOConnection.client_id maxLength", s["NewSSOConnection"].Properties["client_id"].MaxLength, sso.MaxClientID},
		{"NewSSOConnection.client_secret maxLength", s["NewSSOConnection"].Properties["client_secret"].MaxLength, sso.MaxClientSecret},
		{"NewSSOConnection.scopes maxItems", s["NewSSOConnection"].Properties["scopes"].MaxItems, sso.MaxScopes},
		{"NewSSOConnection.scopes[] maxLength", s["NewSSOConnection"].Properties["scopes"].Items.MaxLength, sso.MaxScope},
		{"SSOConnectionPatch.issuer maxLength", s["SSOConnectionPatch"].Properties["issuer"].MaxLength, sso.MaxURLLength},
		{"SSOConnectionPatch.client_secret maxLength", s["SSOConnectionPatch"].Properties["client_secret"].MaxLength, sso.MaxClientSecret},
		{"SSOClaims.employee_id maxLength", s["SSOClaims"].Properties["employee_id"].MaxLength, sso.MaxClaimName},
		{"Domain.domain maxLength", s["Domain"].Properties["domain"].MaxLength, sso.MaxDomain},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, the code's bound is %d", tc.name, tc.got, tc.want)
		}
	}
}
