package web

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/lti"
)

// HandleLogin answers /lti/login (GET or POST) and /lti/login/:registration.
func (h *Handlers) HandleLogin(c echo.Context) error {
	in := lti.LoginRequest{
		Issuer: c.FormValue("iss"), ClientID: c.FormValue("client_id"), LoginHint: c.FormValue("login_hint"),
		MessageHint: c.FormValue("lti_message_hint"), TargetLinkURI: c.FormValue("target_link_uri"),
		DeploymentID: c.FormValue("lti_deployment_id"), StorageTarget: c.FormValue("lti_storage_target"),
		RegistrationID: c.Param("registration"), Source: c.RealIP(), RequestID: requestID(c),
	}
	res, err := h.tool.Login(c.Request().Context(), in)
	if err != nil {
		return h.refuse(c, "login", err)
	}
	h.setBindingCookie(c, res.CookieName, res.CookieValue)
	switch {
	case res.StorageTarget != "":
		return h.page(c, http.StatusOK, "store-state", map[string]any{
			"Next": res.RedirectURL, "Origin": origin(res.RedirectURL), "Target": res.StorageTarget,
			"Key": res.CookieName, "Value": res.CookieValue,
		})
	case framed(c.Request()):
		return h.checkBinding(c, res) // the cookie may not stick: find out first
	}
	return c.Redirect(http.StatusFound, res.RedirectURL)
}

// setBindingCookie binds a login to the browser. SameSite=None so the
// cookie survives the platform's cross-site form post back to us; browsers
// that block third-party cookies drop it in a frame, and then platform
// storage or a new window takes over.
func (h *Handlers) setBindingCookie(c echo.Context, name, secret string) {
	c.SetCookie(&http.Cookie{Name: name, Value: secret, Path: h.cookiePath(), MaxAge: int(h.tool.StateTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
}

// origin is the scheme and host of an absolute URL: the origin a page
// there posts messages from.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// A framed login's cookie may be dropped (see package lti, window.go):
// checkBinding's page asks HandleBound whether it came back, and offers a
// new window, which posts its ticket to HandleWindow, when it did not.

// framed reports a request a browser makes for a frame (Sec-Fetch-Dest).
// Browsers that do not say are treated as top-level, as before.
func framed(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Dest") {
	case "iframe", "frame", "embed", "object":
		return true
	}
	return false
}

// checkBinding answers a framed login without platform storage with the
// page that finds out whether the cookie res set survives.
func (h *Handlers) checkBinding(c echo.Context, res lti.LoginResult) error {
	ticket, err := h.tool.SealWindowTicket(res)
	if err != nil {
		return err
	}
	return h.page(c, http.StatusOK, "check-binding", map[string]any{
		"Next": res.RedirectURL, "Probe": h.publicURL() + "/lti/bound/" + res.CookieName,
		"Window": h.tool.WindowURL(), "Ticket": ticket,
	})
}

// HandleBound answers /lti/bound/:cookie: 204 when the browser sent the
// login cookie named, 404 when it did not.
func (h *Handlers) HandleBound(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	name := c.Param("cookie")
	if !lti.IsLoginCookie(name) {
		return c.NoContent(http.StatusNotFound)
	}
	if ck, err := c.Cookie(name); err != nil || ck.Value == "" {
		return c.NoContent(http.StatusNotFound)
	}
	return c.NoContent(http.StatusNoContent)
}

// HandleWindow answers the new window's post of a ticket: it binds the
// login to this (first-party) window with the cookie and sends the browser
// to the platform's authentication request.
func (h *Handlers) HandleWindow(c echo.Context) error {
	tk, err := h.tool.OpenWindowTicket(c.FormValue("ticket"))
	if err != nil {
		return h.refuse(c, "login", err)
	}
	h.setBindingCookie(c, tk.Cookie, tk.Secret)
	return c.Redirect(http.StatusSeeOther, tk.Next)
}
