package lti

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/tenants"
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

// ReasonDeepLinkingNotBound refuses a picker submission from a browser
// other than the one shown the picker (its cookie is missing or wrong).
const ReasonDeepLinkingNotBound Reason = "deep_linking_session_not_bound"

// ReasonDeepLinkingUsed refuses a picker session submitted (or cancelled)
// before: each answers the platform once.
const ReasonDeepLinkingUsed Reason = "deep_linking_session_used"

// dlSession carries the request's settings from the picker page to the
// response, sealed so the browser cannot change them. It is bound to the
// browser shown the picker (a cookie holds the secret whose hash is
// BrowserHash) and answers the platform once (ID is recorded when used).
type dlSession struct {
	ID           string    `json:"i"`
	Registration uuid.UUID `json:"r"`
	Tenant       uuid.UUID `json:"tn"`
	Deployment   string    `json:"d"`
	ReturnURL    string    `json:"u"`
	Data         string    `json:"data,omitempty"`
	Title        string    `json:"t,omitempty"`
	Multiple     bool      `json:"m"`
	LinksOK      bool      `json:"l"`
	BrowserHash  string    `json:"b"`
	Expires      int64     `json:"e"`
}

var dlAAD = []byte("hub deep linking session")

// cookieName is the browser-binding cookie of this picker.
func (s dlSession) cookieName() string { return "hub_dl_" + s.ID }

func (t *Tool) pickActivities(c echo.Context, l *Launch) error {
	if !slices.ContainsFunc(l.Roles, isStaff) {
		return t.refuse(c, "deep_linking", fail(ReasonDeepLinkingNotAllowed, "roles %v", l.Roles))
	}
	s, secret := l.Claims.DeepLinking, token.Random(24)
	sess := dlSession{ID: token.Random(12), Registration: l.Registration.ID, Tenant: l.Registration.TenantID, Deployment: *l.Claims.DeploymentID, ReturnURL: s.ReturnURL,
		Data: s.Data, Title: s.Title, Multiple: s.AcceptMultiple == nil || *s.AcceptMultiple,
		LinksOK: slices.Contains(s.AcceptTypes, "ltiResourceLink"), BrowserHash: hashSecret(secret), Expires: t.Now().Add(t.StateTTL).Unix()}
	b, _ := json.Marshal(sess)
	sealed, err := t.sealer.Seal(b, dlAAD)
	if err != nil {
		return t.refuse(c, "deep_linking", fmt.Errorf("lti: seal picker session: %w", err))
	}
	// Partitioned: the picker runs in the LMS's frame, where browsers
	// that block third-party cookies still keep a cookie partitioned to
	// the LMS's site.
	c.SetCookie(&http.Cookie{Name: sess.cookieName(), Value: secret, Path: t.cookiePath(), MaxAge: int(t.StateTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode, Partitioned: true})
	return t.showPicker(c, sess, base64.RawURLEncoding.EncodeToString(sealed), "")
}

// showPicker renders the catalog for a session; notice says why it is
// shown again.
func (t *Tool) showPicker(c echo.Context, sess dlSession, sealed, notice string) error {
	activities, err := t.Catalog.List(c.Request().Context())
	if err != nil {
		return t.refuse(c, "deep_linking", err)
	}
	return t.page(c, http.StatusOK, "picker", map[string]any{
		"Action": t.publicURL.String() + "/lti/deep-link", "Session": sealed, "Activities": activities,
		"Multiple": sess.Multiple, "LinksOK": sess.LinksOK, "Title": sess.Title, "Notice": notice,
	})
}

// HandleDeepLink answers the picker's form: Add signs the chosen
// activities, Cancel an empty answer, with the hub's LTI key, and the page
// posts the response to the platform. Add with nothing chosen shows the
// picker again.
func (t *Tool) HandleDeepLink(c echo.Context) error {
	raw := c.FormValue("session")
	sess, err := t.openDLSession(raw)
	if err == nil {
		err = sess.boundTo(c)
	}
	if err != nil {
		return t.refuse(c, "deep_linking", err)
	}
	form, _ := c.FormParams()
	cancel, chosen := c.FormValue("cancel") != "", form["activity"]
	switch {
	case cancel:
		chosen = nil
	case len(chosen) == 0:
		return t.showPicker(c, sess, raw, "Choose an activity to add, or Cancel to add nothing.")
	case !sess.Multiple && len(chosen) > 1, !sess.LinksOK:
		return t.refuse(c, "deep_linking", fail(ReasonDeepLinkingSession, "choice not acceptable to the platform"))
	}
	jwt, err := t.answerPicker(c.Request().Context(), sess, chosen)
	if err != nil {
		return t.refuse(c, "deep_linking", err)
	}
	c.SetCookie(&http.Cookie{Name: sess.cookieName(), Path: t.cookiePath(), MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode, Partitioned: true})
	return t.page(c, http.StatusOK, "deep-link-return", map[string]any{"Action": sess.ReturnURL, "JWT": jwt})
}

// answerPicker checks the registration and its tenant are still usable,
// uses the session up and signs the response.
func (t *Tool) answerPicker(ctx context.Context, sess dlSession, chosen []string) (string, error) {
	reg, err := t.targetOf(ctx, sess.Registration, sess.Tenant)
	if err != nil {
		return "", err
	}
	if err := reg.usable(sess.Deployment); err != nil {
		return "", err
	}
	items, err := t.contentItems(ctx, chosen)
	if err != nil {
		return "", err
	}
	if err := t.usePickerSession(ctx, reg.Registration, sess); err != nil {
		return "", err
	}
	return t.deepLinkingResponse(ctx, reg.Registration, sess, items)
}

// boundTo checks the request carries the cookie the picker set.
func (s dlSession) boundTo(c echo.Context) error {
	ck, err := c.Cookie(s.cookieName())
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(hashSecret(ck.Value)), []byte(s.BrowserHash)) != 1 {
		return fail(ReasonDeepLinkingNotBound, "the picker's cookie is missing or does not match")
	}
	return nil
}

// usePickerSession records the session as used, in one transaction that
// also reads the tenant's status afresh: a suspension refuses at once,
// whatever the registration cache holds. The tenant's expired sessions are
// cleared on the way.
func (t *Tool) usePickerSession(ctx context.Context, reg Registration, s dlSession) error {
	err := pg.InTenant(ctx, t.db, reg.TenantID, func(tx *sqlx.Tx) error {
		if err := checkTenantActive(ctx, tx, reg.TenantID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM lti_picker_sessions WHERE tenant_id = $1 AND expires_at < $2`,
			reg.TenantID, t.Now()); err != nil {
			return fmt.Errorf("lti: clear expired picker sessions: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO lti_picker_sessions (tenant_id, registration_id, session_id, expires_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, reg.TenantID, reg.ID, s.ID, time.Unix(s.Expires, 0))
		if err != nil {
			return fmt.Errorf("lti: use picker session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fail(ReasonDeepLinkingUsed, "picker session %s already used", s.ID)
		}
		return nil
	})
	return pg.MapError(err)
}

// checkTenantActive reads the tenant's status inside its own transaction.
func checkTenantActive(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID) error {
	var status string
	if err := tx.GetContext(ctx, &status, `SELECT status FROM tenants WHERE id = $1`, tenant); err != nil {
		return fmt.Errorf("lti: tenant status: %w", err)
	}
	if status != string(tenants.Active) {
		return fail(ReasonTenantSuspended, "tenant %s is %s", tenant, status)
	}
	return nil
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
	if s.ID == "" || s.BrowserHash == "" {
		return s, fail(ReasonDeepLinkingSession, "session without an id or browser binding")
	}
	return s, nil
}

// contentItems turns chosen catalog ids into ltiResourceLink items, with a
// line item for gradable activities so the LMS makes a gradebook column.
func (t *Tool) contentItems(ctx context.Context, ids []string) ([]map[string]any, error) {
	items := []map[string]any{}
	for _, id := range ids {
		a, err := t.Catalog.Get(ctx, id)
		if apperr.Is(err, apperr.NotFound) {
			return nil, failErr(ReasonDeepLinkingSession, err)
		}
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
		"nonce": token.Random(16), ClaimDeploymentID: s.Deployment, ClaimMessageType: MessageDeepLinkResponse,
		ClaimVersion: Version, ClaimDLContentItems: items,
	}
	if s.Data != "" {
		claims[ClaimDLData] = s.Data
	}
	payload, _ := json.Marshal(claims)
	signed, err := t.Signer.Sign(ctx, keys.LTI, payload)
	return string(signed), err
}
