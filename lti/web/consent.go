package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/handoff"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
)

// Consents is what the consent page needs of the tenants' agreements.
type Consents interface {
	LearnerConsent(ctx context.Context, tenant, user uuid.UUID) (agreements.LearnerConsent, error)
	Get(ctx context.Context, tenant, id uuid.UUID) (agreements.Agreement, error)
	SetConsent(ctx context.Context, by audit.Actor, tenant, user uuid.UUID, answer agreements.ConsentAnswer, via string) (agreements.LearnerConsent, error)
	NoticeShown(ctx context.Context, tenant, user uuid.UUID) error
}

// continuationTTL is how long a learner may take to answer the page.
const continuationTTL = 30 * time.Minute

// continuation is the launch waiting for the learner's answer, sealed
// into the page: the handoff it continues with.
type continuation struct {
	TenantID   uuid.UUID       `json:"tenant_id"`
	TenantName string          `json:"tenant_name"`
	Subject    handoff.Subject `json:"subject"`
	Expires    time.Time       `json:"expires"`
}

var continuationAAD = []byte("hub lti consent continuation")

// askConsent shows the consent page instead of the handoff when the
// tenant's active agreement asks for opt-in and the learner has not
// answered for it (GDPR Art. 7: consent before sharing, as freely given
// as declining), or the notice of an opt-out agreement the learner has
// not been shown (GDPR Art. 21: the right to object, brought to their
// attention). It reports whether it answered the request.
func (h *Handlers) askConsent(c echo.Context, tenant uuid.UUID, tenantName string, sub handoff.Subject) (bool, error) {
	if h.Consents == nil || h.Sealer == nil {
		return false, nil
	}
	ctx := c.Request().Context()
	user, err := uuid.Parse(sub.UserID)
	if err != nil {
		return false, err
	}
	lc, err := h.Consents.LearnerConsent(ctx, tenant, user)
	if err != nil || (!lc.MustAsk && !lc.MustNotify) {
		return false, err
	}
	a, err := h.Consents.Get(ctx, tenant, lc.Agreement.ID)
	if err != nil {
		return false, err
	}
	name, intro := "consent", "intro"
	if !lc.MustAsk {
		// Shown is told: the notice is recorded as it goes out, once.
		if err := h.Consents.NoticeShown(ctx, tenant, user); err != nil {
			return false, err
		}
		name, intro = "consent-notice", "notice-intro"
	}
	sealed, err := h.seal(continuation{TenantID: tenant, TenantName: tenantName, Subject: sub, Expires: time.Now().Add(continuationTTL)})
	if err != nil {
		return false, err
	}
	p := describe(language(sub.Locale), intro, tenantName, a)
	p.Continue, p.Action = sealed, h.publicURL()+"/lti/consent"
	return true, h.page(c, http.StatusOK, name, map[string]any{"Page": p})
}

// launchAnswers maps the consent page's and the notice's buttons to the
// answer recorded; "continue" (the notice read) records none.
var launchAnswers = map[string]agreements.ConsentAnswer{
	"allow": agreements.ConsentGranted, "deny": agreements.ConsentDeclined, "object": agreements.ConsentDeclined, "continue": "",
}

// HandleConsent answers the consent page's and the notice's post: an
// answer is recorded, audited as the learner's, and the launch continues
// into the course whatever it was.
func (h *Handlers) HandleConsent(c echo.Context) error {
	cont, err := h.open(c.FormValue("continue"))
	if err != nil {
		h.log.WarnContext(c.Request().Context(), "consent page: unusable continuation", "err", err)
		// The continuation cannot say whether it came from a launch or a
		// sign-in: the page names both ways back.
		return h.page(c, http.StatusBadRequest, "info", map[string]any{"Heading": "Please start again",
			"Text": "This page has expired or was changed. Go back to your course in the LMS and open the activity again, " +
				"or sign in again through your organisation."})
	}
	answer, known := launchAnswers[c.FormValue("answer")]
	if !known {
		return h.page(c, http.StatusBadRequest, "info", map[string]any{"Heading": "Please choose again",
			"Text": "The page sent an answer the hub does not know. Go back and choose one of its buttons."})
	}
	if answer != "" {
		user, _ := uuid.Parse(cont.Subject.UserID)
		by := audit.Actor{Type: audit.ActorLearner, ID: cont.Subject.UserID, RequestID: requestID(c)}
		if _, err := h.Consents.SetConsent(c.Request().Context(), by, cont.TenantID, user, answer, agreements.ViaConsentPage); err != nil {
			return h.refuse(c, "consent", fmt.Errorf("record consent: %w", err))
		}
	}
	return h.continueTo(c, cont.TenantName, cont.Subject)
}

func (h *Handlers) seal(cont continuation) (string, error) {
	plain, err := json.Marshal(cont)
	if err != nil {
		return "", err
	}
	sealed, err := h.Sealer.Seal(plain, continuationAAD)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

func (h *Handlers) open(text string) (continuation, error) {
	var cont continuation
	sealed, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return cont, err
	}
	plain, err := h.Sealer.Open(sealed, continuationAAD)
	if err != nil {
		return cont, err
	}
	if err := json.Unmarshal(plain, &cont); err != nil {
		return cont, err
	}
	if time.Now().After(cont.Expires) {
		return cont, fmt.Errorf("continuation expired at %s", cont.Expires)
	}
	return cont, nil
}
