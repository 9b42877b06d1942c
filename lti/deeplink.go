package lti

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/keys"
)

// Deep Linking 2.0: an instructor's LtiDeepLinkingRequest shows the
// activity catalog; the choice goes back to the platform as a signed
// LtiDeepLinkingResponse posted to deep_link_return_url.

// ReasonDeepLinkingNotAllowed refuses a deep linking request from a
// learner: only course staff may add activities.
const ReasonDeepLinkingNotAllowed Reason = "deep_linking_not_allowed"

// ReasonDeepLinkingSession refuses a picker submission whose session is
// forged, expired or asks for what the platform did not accept.
const ReasonDeepLinkingSession Reason = "deep_linking_session_invalid"

// staffRoles may deep link.
var staffRoles = []string{RoleInstructor, roleMembership + "ContentDeveloper", roleMembership + "Administrator",
	roleMembership + "Instructor#TeachingAssistant"}

// dlSession carries the request's settings from the picker page to the
// response, sealed so the browser cannot change them.
type dlSession struct {
	Registration uuid.UUID `json:"r"`
	Tenant       uuid.UUID `json:"t"`
	Deployment   string    `json:"d"`
	ReturnURL    string    `json:"u"`
	Data         string    `json:"data,omitempty"`
	Multiple     bool      `json:"m"`
	LinksOK      bool      `json:"l"`
	Expires      int64     `json:"e"`
}

var dlAAD = []byte("hub deep linking session")

func (t *Tool) pickActivities(c echo.Context, l *Launch) error {
	if !slices.ContainsFunc(l.Roles, func(r string) bool { return slices.Contains(staffRoles, r) }) {
		return t.refuse(c, "deep_linking", fail(ReasonDeepLinkingNotAllowed, "roles %v", l.Roles))
	}
	s := l.Claims.DeepLinking
	sess := dlSession{Registration: l.Registration.ID, Tenant: l.Registration.TenantID, Deployment: *l.Claims.DeploymentID, ReturnURL: s.ReturnURL,
		Data: s.Data, Multiple: s.AcceptMultiple == nil || *s.AcceptMultiple, LinksOK: slices.Contains(s.AcceptTypes, "ltiResourceLink"),
		Expires: t.Now().Add(t.StateTTL).Unix()}
	b, _ := json.Marshal(sess)
	sealed, err := t.sealer.Seal(b, dlAAD)
	if err != nil {
		return err
	}
	activities, err := t.Catalog.List(c.Request().Context())
	if err != nil {
		return err
	}
	return t.page(c, http.StatusOK, "picker", map[string]any{
		"Action": t.publicURL.String() + "/lti/deep-link", "Session": base64.RawURLEncoding.EncodeToString(sealed),
		"Activities": activities, "Multiple": sess.Multiple, "LinksOK": sess.LinksOK, "Title": s.Title,
	})
}

// HandleDeepLink answers the picker's form: it signs the response with the
// hub's LTI key and posts it to the platform.
func (t *Tool) HandleDeepLink(c echo.Context) error {
	ctx := c.Request().Context()
	sess, err := t.openDLSession(c.FormValue("session"))
	if err != nil {
		return t.refuse(c, "deep_linking", err)
	}
	form, _ := c.FormParams()
	chosen := form["activity"]
	if (!sess.Multiple && len(chosen) > 1) || (!sess.LinksOK && len(chosen) > 0) {
		return t.refuse(c, "deep_linking", fail(ReasonDeepLinkingSession, "choice not acceptable to the platform"))
	}
	reg, err := t.targetOf(ctx, sess.Registration, sess.Tenant)
	if err != nil {
		return t.refuse(c, "deep_linking", err)
	}
	items, err := t.contentItems(ctx, chosen)
	if err != nil {
		return err
	}
	jwt, err := t.deepLinkingResponse(ctx, reg.Registration, sess, items)
	if err != nil {
		return err
	}
	return t.page(c, http.StatusOK, "deep-link-return", map[string]any{"Action": sess.ReturnURL, "JWT": jwt})
}

func (t *Tool) openDLSession(raw string) (dlSession, error) {
	var s dlSession
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	if err == nil {
		var b []byte
		if b, err = t.sealer.Open(sealed, dlAAD); err == nil {
			err = json.Unmarshal(b, &s)
		}
	}
	if err != nil {
		return s, failErr(ReasonDeepLinkingSession, err)
	}
	if t.Now().Unix() > s.Expires {
		return s, fail(ReasonDeepLinkingSession, "session expired")
	}
	return s, nil
}

// contentItems turns chosen catalog ids into ltiResourceLink items, with a
// line item for gradable activities so the LMS makes a gradebook column.
func (t *Tool) contentItems(ctx context.Context, ids []string) ([]map[string]any, error) {
	items := []map[string]any{}
	for _, id := range ids {
		a, err := t.Catalog.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		item := map[string]any{
			"type": "ltiResourceLink", "title": a.Title, "text": a.Description, "url": t.LaunchURL(),
			"custom": map[string]string{"activity_id": a.ID},
		}
		if a.Gradable {
			item["lineItem"] = map[string]any{"scoreMaximum": *a.MaxScore, "label": a.Title, "resourceId": a.ID}
		}
		items = append(items, item)
	}
	return items, nil
}

func (t *Tool) deepLinkingResponse(ctx context.Context, reg Registration, s dlSession, items []map[string]any) (string, error) {
	now := t.Now()
	claims := map[string]any{
		"iss": reg.ClientID, "aud": reg.Issuer, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": randomToken(16), ClaimDeploymentID: s.Deployment, ClaimMessageType: MessageDeepLinkResponse,
		ClaimVersion: Version, ClaimDLContentItems: items,
	}
	if s.Data != "" {
		claims[ClaimDLData] = s.Data
	}
	payload, _ := json.Marshal(claims)
	signed, err := t.Signer.Sign(ctx, keys.LTI, payload)
	return string(signed), err
}
