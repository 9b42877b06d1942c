package lti

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/tenants"
)

// Deep Linking 2.0: an instructor's LtiDeepLinkingRequest shows the
// activity catalog; the choice goes back to the platform as a signed
// LtiDeepLinkingResponse posted to deep_link_return_url. The picker page
// and its cookie are package web's; the session, the staff decision and
// the signed response are made here.

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

// Picker is a deep linking picker's session as its page needs it: the
// sealed session the page posts back, the browser-binding cookie, and what
// the platform accepts.
type Picker struct {
	Sealed      string // the session, sealed, as the page carries it
	CookieName  string // the cookie binding the picker to its browser
	CookieValue string // its secret: set only by StartPicker
	Title       string
	Multiple    bool // the platform accepts more than one item
	LinksOK     bool // the platform accepts resource links
	ReturnURL   string
	session     dlSession
}

func pickerOf(s dlSession, sealed string) Picker {
	return Picker{Sealed: sealed, CookieName: s.cookieName(), Title: s.Title, Multiple: s.Multiple, LinksOK: s.LinksOK,
		ReturnURL: s.ReturnURL, session: s}
}

// StartPicker opens the picker of a deep linking request. Only course
// staff may add activities: a learner's request is refused
// (ReasonDeepLinkingNotAllowed).
func (t *Tool) StartPicker(l *Launch) (Picker, error) {
	if !slices.ContainsFunc(l.Roles, isStaff) {
		return Picker{}, fail(ReasonDeepLinkingNotAllowed, "roles %v", l.Roles)
	}
	s, secret := l.Claims.DeepLinking, token.Random(24)
	sess := dlSession{ID: token.Random(12), Registration: l.Registration.ID, Tenant: l.Registration.TenantID, Deployment: *l.Claims.DeploymentID, ReturnURL: s.ReturnURL,
		Data: s.Data, Title: s.Title, Multiple: s.AcceptMultiple == nil || *s.AcceptMultiple,
		LinksOK: slices.Contains(s.AcceptTypes, "ltiResourceLink"), BrowserHash: hashSecret(secret), Expires: t.Now().Add(t.StateTTL).Unix()}
	b, _ := json.Marshal(sess)
	sealed, err := t.sealer.Seal(b, dlAAD)
	if err != nil {
		return Picker{}, fmt.Errorf("lti: seal picker session: %w", err)
	}
	p := pickerOf(sess, base64.RawURLEncoding.EncodeToString(sealed))
	p.CookieValue = secret
	return p, nil
}

// ResumePicker opens the session a picker's form posted, refusing forged
// and expired ones and those from a browser other than the one shown the
// picker: cookie looks up the request's cookie by name.
func (t *Tool) ResumePicker(sealed string, cookie func(name string) string) (Picker, error) {
	sess, err := t.openDLSession(sealed)
	if err != nil {
		return Picker{}, err
	}
	if err := sess.boundTo(cookie(sess.cookieName())); err != nil {
		return Picker{}, err
	}
	return pickerOf(sess, sealed), nil
}

// AnswerPicker signs the picker's answer to the platform, with the hub's
// LTI key: the chosen activities, or none to cancel. It refuses a choice
// the platform does not accept, checks the registration and its tenant
// are still usable, and uses the session up: each answers once.
func (t *Tool) AnswerPicker(ctx context.Context, p Picker, chosen []string) (string, error) {
	sess := p.session
	if len(chosen) > 0 && (!sess.Multiple && len(chosen) > 1 || !sess.LinksOK) {
		return "", fail(ReasonDeepLinkingSession, "choice not acceptable to the platform")
	}
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

// boundTo checks the browser holds the secret the picker's cookie was set
// to.
func (s dlSession) boundTo(secret string) error {
	if secret == "" || subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(s.BrowserHash)) != 1 {
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
