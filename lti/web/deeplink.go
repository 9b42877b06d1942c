package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/lti"
)

// pickActivities answers a deep linking request with the activity picker,
// bound to this browser by a cookie.
func (h *Handlers) pickActivities(c echo.Context, l *lti.Launch) error {
	p, err := h.tool.StartPicker(l)
	if err != nil {
		return h.refuse(c, "deep_linking", err)
	}
	// Partitioned: the picker runs in the LMS's frame, where browsers
	// that block third-party cookies still keep a cookie partitioned to
	// the LMS's site.
	c.SetCookie(&http.Cookie{Name: p.CookieName, Value: p.CookieValue, Path: h.cookiePath(), MaxAge: int(h.tool.StateTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode, Partitioned: true})
	return h.showPicker(c, p, "")
}

// showPicker renders the catalog for a picker; notice says why it is
// shown again.
func (h *Handlers) showPicker(c echo.Context, p lti.Picker, notice string) error {
	activities, err := h.tool.Catalog.List(c.Request().Context())
	if err != nil {
		return h.refuse(c, "deep_linking", err)
	}
	return h.page(c, http.StatusOK, "picker", map[string]any{
		"Action": h.publicURL() + "/lti/deep-link", "Session": p.Sealed, "Activities": activities,
		"Multiple": p.Multiple, "LinksOK": p.LinksOK, "Title": p.Title, "Notice": notice,
	})
}

// HandleDeepLink answers the picker's form: Add signs the chosen
// activities, Cancel an empty answer, and the page posts the response to
// the platform. Add with nothing chosen shows the picker again.
func (h *Handlers) HandleDeepLink(c echo.Context) error {
	p, err := h.tool.ResumePicker(c.FormValue("session"), cookieOf(c))
	if err != nil {
		return h.refuse(c, "deep_linking", err)
	}
	form, _ := c.FormParams()
	cancel, chosen := c.FormValue("cancel") != "", form["activity"]
	switch {
	case cancel:
		chosen = nil
	case len(chosen) == 0:
		return h.showPicker(c, p, "Choose an activity to add, or Cancel to add nothing.")
	}
	jwt, err := h.tool.AnswerPicker(c.Request().Context(), p, chosen)
	if err != nil {
		return h.refuse(c, "deep_linking", err)
	}
	c.SetCookie(&http.Cookie{Name: p.CookieName, Path: h.cookiePath(), MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode, Partitioned: true})
	return h.page(c, http.StatusOK, "deep-link-return", map[string]any{"Action": p.ReturnURL, "JWT": jwt})
}
