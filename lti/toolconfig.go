package lti

// ToolConfiguration is what an LMS admin pastes into their LMS to register
// the hub for one registration. Its login URL is the registration's own,
// which routes to it whatever other registrations share its issuer and
// client_id.
type ToolConfiguration struct {
	LoginURL string `json:"login_url"`
	// RegistrationLoginURL is LoginURL, under the name it had when the
	// login URL was the shared one.
	RegistrationLoginURL string   `json:"registration_login_url"`
	RedirectURIs         []string `json:"redirect_uris"`
	TargetLinkURI        string   `json:"target_link_uri"`
	DeepLinkURL          string   `json:"deep_link_url"`
	JWKSURL              string   `json:"jwks_url"`
	Scopes               []string `json:"scopes"`
	Canvas               any      `json:"canvas"`
}

// Scopes are the LTI Advantage services the hub asks for, in the tool
// configuration and in dynamic registration. The hub does not call these
// services yet: roster sync (NRPS) and grade passback (AGS) are the next
// features, and asking now spares every LMS admin a second registration
// when they arrive. An LMS grants scopes at registration time only.
var Scopes = []string{ScopeNRPS, ScopeAGSLineItem, ScopeAGSLineItemRead, ScopeAGSResultRead, ScopeAGSScore}

// Configuration returns the tool configuration of reg.
func (t *Tool) Configuration(reg Registration) ToolConfiguration {
	base := t.publicURL.String()
	jwks := base + "/.well-known/jwks.json"
	login := t.RegistrationLoginURL(reg.ID)
	return ToolConfiguration{
		LoginURL: login, RegistrationLoginURL: login,
		RedirectURIs: []string{t.LaunchURL()}, TargetLinkURI: t.LaunchURL(), DeepLinkURL: t.LaunchURL(),
		JWKSURL: jwks, Scopes: Scopes,
		Canvas: map[string]any{
			"title":               "Learning hub",
			"description":         "Courses and activities from the learning platform",
			"oidc_initiation_url": login,
			"target_link_uri":     t.LaunchURL(),
			"public_jwk_url":      jwks,
			"scopes":              Scopes,
			"extensions": []any{map[string]any{
				"platform":      "canvas.instructure.com",
				"privacy_level": "public",
				"settings": map[string]any{"placements": []any{
					map[string]any{"placement": "link_selection", "message_type": MessageDeepLinkingRequest, "target_link_uri": t.LaunchURL()},
					map[string]any{"placement": "assignment_selection", "message_type": MessageDeepLinkingRequest, "target_link_uri": t.LaunchURL()},
					map[string]any{"placement": "course_navigation", "message_type": MessageResourceLink, "target_link_uri": t.LaunchURL()},
				}},
			}},
		},
	}
}
