package lti

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/klasterina/hub/internal/apperr"
)

// Claim names of the LTI 1.3 core, Deep Linking, NRPS and AGS
// specifications.
const (
	ClaimMessageType    = "https://purl.imsglobal.org/spec/lti/claim/message_type"
	ClaimVersion        = "https://purl.imsglobal.org/spec/lti/claim/version"
	ClaimDeploymentID   = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
	ClaimTargetLinkURI  = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri"
	ClaimResourceLink   = "https://purl.imsglobal.org/spec/lti/claim/resource_link"
	ClaimRoles          = "https://purl.imsglobal.org/spec/lti/claim/roles"
	ClaimContext        = "https://purl.imsglobal.org/spec/lti/claim/context"
	ClaimPlatform       = "https://purl.imsglobal.org/spec/lti/claim/tool_platform"
	ClaimLaunchPresent  = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"
	ClaimCustom         = "https://purl.imsglobal.org/spec/lti/claim/custom"
	ClaimDeepLinking    = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
	ClaimNRPS           = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
	ClaimAGS            = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
	ClaimDLContentItems = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
	ClaimDLData         = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
	ClaimDLMessage      = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"

	MessageResourceLink       = "LtiResourceLinkRequest"
	MessageDeepLinkingRequest = "LtiDeepLinkingRequest"
	MessageDeepLinkResponse   = "LtiDeepLinkingResponse"
	Version                   = "1.3.0"

	ScopeNRPS            = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
	ScopeAGSLineItem     = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
	ScopeAGSLineItemRead = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
	ScopeAGSResultRead   = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
	ScopeAGSScore        = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
)

// Audience is the aud claim: a string, or an array (Schoology sends one).
type Audience []string

// UnmarshalJSON accepts both forms.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// Claims is the part of an id_token the hub reads. Unknown claims (vendor
// extensions, Canvas's and Blackboard's many) are ignored.
type Claims struct {
	Issuer          string          `json:"iss"`
	Subject         *string         `json:"sub"`
	Audience        Audience        `json:"aud"`
	AuthorizedParty string          `json:"azp"`
	ExpiresAt       *float64        `json:"exp"`
	IssuedAt        *float64        `json:"iat"`
	NotBefore       *float64        `json:"nbf"`
	Nonce           string          `json:"nonce"`
	Name            string          `json:"name"`
	GivenName       string          `json:"given_name"`
	FamilyName      string          `json:"family_name"`
	Email           string          `json:"email"`
	Picture         string          `json:"picture"`
	Locale          string          `json:"locale"`
	MessageType     *string         `json:"https://purl.imsglobal.org/spec/lti/claim/message_type"`
	Version         *string         `json:"https://purl.imsglobal.org/spec/lti/claim/version"`
	DeploymentID    *string         `json:"https://purl.imsglobal.org/spec/lti/claim/deployment_id"`
	TargetLinkURI   string          `json:"https://purl.imsglobal.org/spec/lti/claim/target_link_uri"`
	ResourceLink    *ResourceLink   `json:"https://purl.imsglobal.org/spec/lti/claim/resource_link"`
	Roles           *[]string       `json:"https://purl.imsglobal.org/spec/lti/claim/roles"`
	Context         *Context        `json:"https://purl.imsglobal.org/spec/lti/claim/context"`
	Platform        *Platform       `json:"https://purl.imsglobal.org/spec/lti/claim/tool_platform"`
	Presentation    *Presentation   `json:"https://purl.imsglobal.org/spec/lti/claim/launch_presentation"`
	Custom          map[string]any  `json:"https://purl.imsglobal.org/spec/lti/claim/custom"`
	DeepLinking     *DeepLinking    `json:"https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"`
	NRPS            *NRPSEndpoint   `json:"https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"`
	AGS             *AGSEndpoint    `json:"https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"`
	Extra           json.RawMessage `json:"-"`
}

// ResourceLink is the placement launched.
type ResourceLink struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

// Context is the course.
type Context struct {
	ID    string   `json:"id"`
	Label string   `json:"label"`
	Title string   `json:"title"`
	Type  []string `json:"type"`
}

// Platform describes the LMS instance.
type Platform struct {
	GUID    string `json:"guid"`
	Name    string `json:"name"`
	Product string `json:"product_family_code"`
}

// Presentation says how the launch is shown.
type Presentation struct {
	DocumentTarget string `json:"document_target"`
	ReturnURL      string `json:"return_url"`
	Locale         string `json:"locale"`
}

// DeepLinking is the deep linking request's settings.
type DeepLinking struct {
	ReturnURL        string   `json:"deep_link_return_url"`
	AcceptTypes      []string `json:"accept_types"`
	AcceptTargets    []string `json:"accept_presentation_document_targets"`
	AcceptMultiple   *bool    `json:"accept_multiple"`
	AutoCreate       *bool    `json:"auto_create"`
	Title            string   `json:"title"`
	Text             string   `json:"text"`
	Data             string   `json:"data"`
	AcceptLineItem   *bool    `json:"accept_lineitem"`
	AcceptMediaTypes string   `json:"accept_media_types"`
}

// NRPSEndpoint is the roster service of the context.
type NRPSEndpoint struct {
	URL      string   `json:"context_memberships_url"`
	Versions []string `json:"service_versions"`
}

// AGSEndpoint is the grade service of the context and link.
type AGSEndpoint struct {
	Scope     []string `json:"scope"`
	LineItems string   `json:"lineitems"`
	LineItem  string   `json:"lineitem"`
}

// Role vocabularies of LTI 1.3 (LIS v2). A context role is a principal
// role (membership#Instructor) or one of its sub-roles, which live under a
// path of their own: membership/Instructor#TeachingAssistant.
const (
	roleMembership  = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
	roleSubRole     = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
	roleInstitution = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
	roleSystem      = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
	RoleLearner     = roleMembership + "Learner"
	RoleInstructor  = roleMembership + "Instructor"
	// RoleTeachingAssistant is the sub-role of Instructor platforms give
	// teaching assistants (Canvas's TA enrolment).
	RoleTeachingAssistant = roleSubRole + "Instructor#TeachingAssistant"
)

// contextRoleNames are the principal context roles, whose short names
// LTI 1.3 lets platforms send ("Learner", "Instructor#TeachingAssistant"),
// which the hub stores in full.
var contextRoleNames = map[string]bool{
	"Administrator": true, "ContentDeveloper": true, "Instructor": true, "Learner": true,
	"Mentor": true, "Manager": true, "Member": true, "Officer": true,
}

// staffRoles are the principal roles of course staff: they, and any of
// their sub-roles, may add activities by deep linking. Mentor is not one:
// Canvas sends its observers (parents among them) as Mentor.
var staffRoles = map[string]bool{"Administrator": true, "ContentDeveloper": true, "Instructor": true}

// Roles sorts a launch's roles into context, institution and system roles,
// expanding short context role names and sub-roles. Unknown roles are kept
// as context roles, as sent: the tool must not fail on them.
func Roles(raw []string) (context, institution, system []string) {
	context, institution, system = []string{}, []string{}, []string{}
	for _, r := range raw {
		r = strings.TrimSpace(r)
		switch {
		case r == "":
		case strings.HasPrefix(r, roleInstitution):
			institution = append(institution, r)
		case strings.HasPrefix(r, roleSystem):
			system = append(system, r)
		default:
			context = append(context, expandContextRole(r))
		}
	}
	return context, institution, system
}

// expandContextRole gives a short context role ("Instructor") or sub-role
// ("Instructor#TeachingAssistant") its full URI; anything else is kept.
func expandContextRole(r string) string {
	principal, sub, isSub := strings.Cut(r, "#")
	switch {
	case !contextRoleNames[principal]:
		return r
	case !isSub:
		return roleMembership + r
	case sub != "" && !strings.Contains(sub, "#"):
		return roleSubRole + r
	}
	return r
}

// principalRole names the principal role of a full context role or
// sub-role URI, "" for anything else.
func principalRole(r string) string {
	if name, ok := strings.CutPrefix(r, roleMembership); ok {
		return name
	}
	if rest, ok := strings.CutPrefix(r, roleSubRole); ok {
		if principal, sub, ok := strings.Cut(rest, "#"); ok && sub != "" {
			return principal
		}
	}
	return ""
}

// isStaff reports whether an expanded context role is course staff's.
func isStaff(role string) bool { return staffRoles[principalRole(role)] }

// checkText is the launch step for text the hub stores. An identifier
// holding a NUL character, or U+FFFD (what the JSON decoder makes of bytes
// that were not UTF-8, so two different identifiers could become one),
// refuses the launch. Personal display fields are cleaned instead, so a
// learner whose name in the LMS holds a stray NUL can still launch.
func checkText(_ context.Context, l *Launch) error {
	if claim, ok := l.Claims.invalidIdentifier(); ok {
		return fail(ReasonInvalidIdentifier, "%s holds a NUL character or bytes that are not UTF-8", claim)
	}
	l.Claims.cleanDisplay()
	return nil
}

func validIdentifier(s string) bool {
	return apperr.IsText(s) && !strings.ContainsRune(s, utf8.RuneError)
}

// invalidIdentifier names the first identifier claim that is not valid.
func (c *Claims) invalidIdentifier() (string, bool) {
	for _, id := range c.identifiers() {
		if slices.ContainsFunc(id.values, func(s string) bool { return !validIdentifier(s) }) {
			return id.claim, true
		}
	}
	return "", false
}

type identifier struct {
	claim  string
	values []string
}

// identifiers are the claims that name something or are compared and
// stored as sent, in the order a refusal names them.
func (c *Claims) identifiers() []identifier {
	ids := []identifier{{"iss", []string{c.Issuer}}, {"sub", deref(c.Subject)}, {"aud", c.Audience},
		{"azp", []string{c.AuthorizedParty}}, {"nonce", []string{c.Nonce}}, {"deployment_id", deref(c.DeploymentID)},
		{"message_type", deref(c.MessageType)}, {"version", deref(c.Version)}, {"target_link_uri", []string{c.TargetLinkURI}}}
	if c.Roles != nil {
		ids = append(ids, identifier{"roles", *c.Roles})
	}
	if c.Context != nil {
		ids = append(ids, identifier{"context.id", []string{c.Context.ID}}, identifier{"context.type", c.Context.Type})
	}
	if c.ResourceLink != nil {
		ids = append(ids, identifier{"resource_link.id", []string{c.ResourceLink.ID}})
	}
	if c.NRPS != nil {
		ids = append(ids, identifier{"namesroleservice", append([]string{c.NRPS.URL}, c.NRPS.Versions...)})
	}
	if c.AGS != nil {
		ids = append(ids, identifier{"endpoint", append([]string{c.AGS.LineItems, c.AGS.LineItem}, c.AGS.Scope...)})
	}
	if c.DeepLinking != nil {
		ids = append(ids, identifier{"deep_link_return_url", []string{c.DeepLinking.ReturnURL}})
	}
	return ids
}

func deref(s *string) []string {
	if s == nil {
		return nil
	}
	return []string{*s}
}

// cleanDisplay drops NUL characters from the fields shown to people and
// stored with them; the JSON decoder already replaced bytes that were not
// UTF-8.
func (c *Claims) cleanDisplay() {
	for _, s := range []*string{&c.Name, &c.GivenName, &c.FamilyName, &c.Email, &c.Locale} {
		*s = apperr.CleanText(*s)
	}
	if !isPictureURL(c.Picture) {
		c.Picture = "" // passed on only as a web address the app can show
	}
	if c.Presentation != nil {
		c.Presentation.Locale = apperr.CleanText(c.Presentation.Locale)
	}
	if c.Context != nil {
		c.Context.Title, c.Context.Label = apperr.CleanText(c.Context.Title), apperr.CleanText(c.Context.Label)
	}
	if c.ResourceLink != nil {
		c.ResourceLink.Title, c.ResourceLink.Description = apperr.CleanText(c.ResourceLink.Title), apperr.CleanText(c.ResourceLink.Description)
	}
	if c.DeepLinking != nil {
		c.DeepLinking.Title, c.DeepLinking.Text = apperr.CleanText(c.DeepLinking.Title), apperr.CleanText(c.DeepLinking.Text)
	}
}

// isPictureURL reports an absolute http(s) URL of bounded length, valid
// text: the only pictures the hub passes on.
func isPictureURL(s string) bool {
	if s == "" || len(s) > MaxURLLength || !validIdentifier(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
