package lti

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// A login inside the LMS's frame binds its state with a cookie that a
// browser blocking third-party cookies drops. Platforms spend their login
// hints on the first authentication request, so the hub must know whether
// the cookie stuck before it sends the browser there: framed logins
// without platform storage answer a page that asks the hub (HandleBound)
// whether the cookie came back. It did: the page goes on to the platform.
// It did not: the page offers a new window, which posts a sealed ticket to
// HandleWindow; there, first-party, the hub sets the cookie and redirects
// to the very authentication request the frame would have made. Each hint
// is used once, in the window where the launch can succeed.

// windowTicket carries a login's binding and authentication request from
// the frame to the new window, sealed so no one else can make one.
type windowTicket struct {
	Cookie  string `json:"c"`
	Secret  string `json:"s"`
	Next    string `json:"n"`
	Expires int64  `json:"e"`
}

var windowAAD = []byte("hub lti new window")

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
func (t *Tool) checkBinding(c echo.Context, res LoginResult) error {
	b, _ := json.Marshal(windowTicket{Cookie: res.CookieName, Secret: res.CookieValue, Next: res.RedirectURL,
		Expires: t.Now().Add(t.StateTTL).Unix()})
	sealed, err := t.sealer.Seal(b, windowAAD)
	if err != nil {
		return err
	}
	return t.page(c, http.StatusOK, "check-binding", map[string]any{
		"Next": res.RedirectURL, "Probe": t.publicURL.String() + "/lti/bound/" + res.CookieName,
		"Window": t.WindowURL(), "Ticket": base64.RawURLEncoding.EncodeToString(sealed),
	})
}

// WindowURL is where the new window of a framed login starts.
func (t *Tool) WindowURL() string { return t.publicURL.String() + "/lti/window" }

// HandleBound answers /lti/bound/:cookie: 204 when the browser sent the
// login cookie named, 404 when it did not.
func (t *Tool) HandleBound(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	name := c.Param("cookie")
	if !strings.HasPrefix(name, cookiePrefix) {
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
func (t *Tool) HandleWindow(c echo.Context) error {
	tk, err := t.openTicket(c.FormValue("ticket"))
	if err != nil {
		return t.refuse(c, "login", err)
	}
	t.setBindingCookie(c, tk.Cookie, tk.Secret)
	return c.Redirect(http.StatusSeeOther, tk.Next)
}

func (t *Tool) openTicket(raw string) (windowTicket, error) {
	var tk windowTicket
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return tk, failErr(ReasonInvalidState, err)
	}
	b, err := t.sealer.Open(sealed, windowAAD)
	if err != nil {
		return tk, failErr(ReasonInvalidState, err)
	}
	if err := json.Unmarshal(b, &tk); err != nil || !strings.HasPrefix(tk.Cookie, cookiePrefix) {
		return tk, failErr(ReasonInvalidState, errors.Join(errors.New("lti: malformed window ticket"), err))
	}
	if t.Now().Unix() > tk.Expires {
		return tk, fail(ReasonStateExpired, "window ticket expired")
	}
	return tk, nil
}
