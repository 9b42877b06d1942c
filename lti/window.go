package lti

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// A login inside the LMS's frame binds its state with a cookie that a
// browser blocking third-party cookies drops. Platforms spend their login
// hints on the first authentication request, so the hub must know whether
// the cookie stuck before it sends the browser there: framed logins
// without platform storage answer a page that asks the hub whether the
// cookie came back. It did: the page goes on to the platform. It did not:
// the page offers a new window, which posts a sealed ticket back; there,
// first-party, the hub sets the cookie and redirects to the very
// authentication request the frame would have made. Each hint is used
// once, in the window where the launch can succeed. The pages and cookies
// are package web's; the ticket is sealed here.

// WindowTicket carries a login's binding and authentication request from
// the frame to the new window, sealed so no one else can make one.
type WindowTicket struct {
	Cookie  string `json:"c"` // the login cookie's name
	Secret  string `json:"s"` // and its value
	Next    string `json:"n"` // the authentication request
	Expires int64  `json:"e"`
}

var windowAAD = []byte("hub lti new window")

// SealWindowTicket seals the ticket of a framed login's new window.
func (t *Tool) SealWindowTicket(res LoginResult) (string, error) {
	b, _ := json.Marshal(WindowTicket{Cookie: res.CookieName, Secret: res.CookieValue, Next: res.RedirectURL,
		Expires: t.Now().Add(t.StateTTL).Unix()})
	sealed, err := t.sealer.Seal(b, windowAAD)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// WindowURL is where the new window of a framed login starts.
func (t *Tool) WindowURL() string { return t.publicURL.String() + "/lti/window" }

// OpenWindowTicket opens a ticket the new window posted, refusing forged
// and expired ones.
func (t *Tool) OpenWindowTicket(raw string) (WindowTicket, error) {
	var tk WindowTicket
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
