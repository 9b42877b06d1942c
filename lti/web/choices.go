package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
)

// ConsentLinkTTL is how long a link to a learner's choices page works:
// long enough to open it from the learning app, short enough that one
// leaked from a browser's history is soon useless.
const ConsentLinkTTL = 15 * time.Minute

// consentLink is what a link to a learner's choices page carries, sealed
// (encrypted and authenticated with the hub's secret key), so that only
// the hub can make one and nobody can read or change whose it is.
type consentLink struct {
	TenantID   uuid.UUID `json:"tenant_id"`
	TenantName string    `json:"tenant_name"`
	UserID     uuid.UUID `json:"user_id"`
	Locale     string    `json:"locale,omitempty"`
	Expires    time.Time `json:"expires"`
}

var consentLinkAAD = []byte("hub consent link")

// ConsentLink makes the address of user's choices page
// (HUB_PUBLIC_URL/consent/{sealed}), in locale's language where a
// translation exists, working until the time it answers (ConsentLinkTTL
// from now). The learning app obtains it over REST and sends the learner
// there.
func (h *Handlers) ConsentLink(tenant uuid.UUID, tenantName string, user uuid.UUID, locale string, now time.Time) (string, time.Time, error) {
	link := consentLink{TenantID: tenant, TenantName: tenantName, UserID: user, Locale: locale, Expires: now.Add(ConsentLinkTTL).UTC()}
	plain, err := json.Marshal(link)
	if err != nil {
		return "", time.Time{}, err
	}
	sealed, err := h.Sealer.Seal(plain, consentLinkAAD)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("web: seal consent link: %w", err)
	}
	return h.publicURL() + "/consent/" + base64.RawURLEncoding.EncodeToString(sealed), link.Expires, nil
}

// errLinkUnusable marks a link that is malformed, altered, sealed under a
// key the hub no longer holds, or past its time.
var errLinkUnusable = errors.New("consent link unusable")

func (h *Handlers) openLink(text string) (consentLink, error) {
	var link consentLink
	sealed, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return link, fmt.Errorf("%w: %w", errLinkUnusable, err)
	}
	plain, err := h.Sealer.Open(sealed, consentLinkAAD)
	if err != nil {
		return link, fmt.Errorf("%w: %w", errLinkUnusable, err)
	}
	if err := json.Unmarshal(plain, &link); err != nil {
		return consentLink{}, fmt.Errorf("%w: %w", errLinkUnusable, err)
	}
	if time.Now().After(link.Expires) {
		return link, fmt.Errorf("%w: expired at %s", errLinkUnusable, link.Expires)
	}
	return link, nil
}

// HandleChoices shows a learner their choices page, reached with a link
// from ConsentLink: what their organisation's agreement shares, where
// they stand with it, and the buttons to allow or stop sharing.
func (h *Handlers) HandleChoices(c echo.Context) error {
	link, err := h.openLink(c.Param("link"))
	if err != nil {
		return h.linkUnusable(c, link, err)
	}
	return h.showChoices(c, link, "")
}

// choiceAnswers maps the choices page's buttons to the answer recorded:
// stopping withdraws a grant, and declines otherwise.
func choiceAnswer(button string, lc agreements.LearnerConsent) (agreements.ConsentAnswer, bool) {
	switch button {
	case "allow":
		return agreements.ConsentGranted, true
	case "stop":
		if lc.State.Answer == agreements.ConsentGranted {
			return agreements.ConsentWithdrawn, true
		}
		return agreements.ConsentDeclined, true
	}
	return "", false
}

// HandleChoice records the learner's answer from their choices page,
// audited as theirs, and shows the page again with it saved.
func (h *Handlers) HandleChoice(c echo.Context) error {
	link, err := h.openLink(c.Param("link"))
	if err != nil {
		return h.linkUnusable(c, link, err)
	}
	ctx := c.Request().Context()
	lc, err := h.Consents.LearnerConsent(ctx, link.TenantID, link.UserID)
	if err != nil {
		return h.linkUnusable(c, link, err)
	}
	answer, known := choiceAnswer(c.FormValue("answer"), lc)
	if !known || lc.Agreement == nil || lc.Agreement.Consent == agreements.ConsentNotRequired {
		return h.page(c, http.StatusBadRequest, "info", map[string]any{"Heading": "Please choose again",
			"Text": "The page sent an answer the hub does not take here. Go back and choose one of its buttons."})
	}
	by := audit.Actor{Type: audit.ActorLearner, ID: link.UserID.String(), RequestID: requestID(c)}
	if _, err := h.Consents.SetConsent(ctx, by, link.TenantID, link.UserID, answer, agreements.ViaConsentPage); err != nil {
		return h.linkUnusable(c, link, err)
	}
	return h.showChoices(c, link, language(link.Locale)["saved"])
}

func (h *Handlers) showChoices(c echo.Context, link consentLink, saved string) error {
	ctx := c.Request().Context()
	text := language(link.Locale)
	lc, err := h.Consents.LearnerConsent(ctx, link.TenantID, link.UserID)
	if err != nil {
		return h.linkUnusable(c, link, err)
	}
	p := consentPage{Text: text, Standing: sprintf(text["nothing-shared"], link.TenantName)}
	if lc.Agreement != nil {
		a, err := h.Consents.Get(ctx, link.TenantID, lc.Agreement.ID)
		if err != nil {
			return h.refuse(c, "consent", err)
		}
		p = describe(text, "intro", link.TenantName, a)
		p.Standing, p.Answerable = standing(text, link.TenantName, lc), a.Consent != agreements.ConsentNotRequired
	}
	p.Saved = saved
	p.Action = h.publicURL() + "/consent/" + url.PathEscape(c.Param("link"))
	return h.page(c, http.StatusOK, "consent-choices", map[string]any{"Page": p})
}

// standing says in words where the learner stands with the agreement.
func standing(text map[string]string, tenant string, lc agreements.LearnerConsent) string {
	switch {
	case lc.Agreement.Consent == agreements.ConsentNotRequired:
		return sprintf(text["not-required"], tenant)
	case lc.State.Answer == agreements.ConsentDeclined || lc.State.Answer == agreements.ConsentWithdrawn:
		return text["refused"]
	case lc.State.Answer == agreements.ConsentGranted && !lc.MustAsk:
		return text["granted"]
	case lc.Agreement.Consent == agreements.ConsentOptOut:
		return text["unanswered-out"]
	}
	return text["unanswered-in"]
}

// linkUnusable answers a link that cannot be used (expired, altered, or
// for a learner the hub no longer has: erased), all alike to the browser;
// any other failure is refused as such.
func (h *Handlers) linkUnusable(c echo.Context, link consentLink, err error) error {
	if !errors.Is(err, errLinkUnusable) && !apperr.Is(err, apperr.NotFound) {
		return h.refuse(c, "consent", err)
	}
	h.log.InfoContext(c.Request().Context(), "consent link: unusable", "err", err)
	text := language(link.Locale)
	return h.page(c, http.StatusNotFound, "info", map[string]any{"Heading": text["expired_title"], "Text": text["expired"]})
}
