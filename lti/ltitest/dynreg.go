package ltitest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/klasterina/hub/lti"
)

// The platform side of LTI Dynamic Registration: an OpenID configuration
// and a registration endpoint that checks the tool's client metadata and
// answers with the client id and a deployment.

// OpenIDConfigurationURL is what the platform appends as
// ?openid_configuration= when it opens a tool's registration URL.
func (p *Platform) OpenIDConfigurationURL() string {
	return p.Server.URL + "/.well-known/openid-configuration"
}

func (p *Platform) openIDConfiguration(w http.ResponseWriter, _ *http.Request) {
	issuer := p.Issuer()
	if p.ConfigIssuer != "" {
		issuer = p.ConfigIssuer
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer": issuer, "authorization_endpoint": p.AuthURL(), "token_endpoint": p.TokenURL(),
		"jwks_uri": p.JWKSURL(), "registration_endpoint": p.Server.URL + "/register",
		"token_endpoint_auth_methods_supported":            []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                                 []string{"openid", lti.ScopeNRPS, lti.ScopeAGSLineItem, lti.ScopeAGSLineItemRead, lti.ScopeAGSResultRead, lti.ScopeAGSScore},
		"response_types_supported":                         []string{"id_token"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"claims_supported":                                 []string{"iss", "sub", "name", "email"},
		"https://purl.imsglobal.org/spec/lti-platform-configuration": map[string]any{
			"product_family_code": "ltitest", "version": "1.0",
			"messages_supported": []map[string]any{{"type": lti.MessageResourceLink}, {"type": lti.MessageDeepLinkingRequest}},
		},
	})
}

// Clients is how many tools registered dynamically: each registration
// makes a client, as at a real platform, even with the same metadata.
func (p *Platform) Clients() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clients
}

// register checks the registration token and the tool's metadata as a
// platform does, records the tool configuration and answers.
func (p *Platform) register(w http.ResponseWriter, r *http.Request) {
	if p.RegistrationToken != "" && r.Header.Get("Authorization") != "Bearer "+p.RegistrationToken {
		http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
		return
	}
	var m struct {
		ResponseTypes []string `json:"response_types"`
		GrantTypes    []string `json:"grant_types"`
		LoginURI      string   `json:"initiate_login_uri"`
		RedirectURIs  []string `json:"redirect_uris"`
		JWKSURI       string   `json:"jwks_uri"`
		AuthMethod    string   `json:"token_endpoint_auth_method"`
		Scope         string   `json:"scope"`
		Tool          struct {
			Domain   string           `json:"domain"`
			Target   string           `json:"target_link_uri"`
			Messages []map[string]any `json:"messages"`
		} `json:"https://purl.imsglobal.org/spec/lti-tool-configuration"`
	}
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, `{"error":"invalid_client_metadata"}`, http.StatusBadRequest)
		return
	}
	if !slices.Contains(m.ResponseTypes, "id_token") || !slices.Contains(m.GrantTypes, "implicit") ||
		m.LoginURI == "" || len(m.RedirectURIs) == 0 || m.JWKSURI == "" || m.AuthMethod != "private_key_jwt" ||
		m.Tool.Domain == "" || m.Tool.Target == "" || len(m.Tool.Messages) == 0 {
		http.Error(w, `{"error":"invalid_client_metadata"}`, http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.Registered = append(p.Registered, strings.Fields(m.Scope)...)
	p.ToolJWKSURL = m.JWKSURI
	p.RegisteredLoginURL = m.LoginURI
	p.clients++
	delay, hook := p.RegisterDelay, p.OnRegister
	p.mu.Unlock()
	time.Sleep(delay)
	if hook != nil {
		hook()
	}
	config := map[string]any{"domain": m.Tool.Domain, "deployment_id": p.DeploymentID, "target_link_uri": m.Tool.Target}
	if p.RegisterWithoutDeployment {
		delete(config, "deployment_id")
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"client_id": p.ClientID, "redirect_uris": m.RedirectURIs, "initiate_login_uri": m.LoginURI,
		"https://purl.imsglobal.org/spec/lti-tool-configuration": config,
	})
}
