package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// HandleRegister answers /lti/register/:token, opened by the LMS admin
// from their LMS, which adds ?openid_configuration=…&registration_token=….
// Opened in a browser without them, a usable link says how to use it.
func (h *Handlers) HandleRegister(c echo.Context) error {
	ctx := c.Request().Context()
	link, err := h.tool.OpenRegistrationLink(ctx, c.Param("token"))
	if err == nil && c.QueryParam("openid_configuration") == "" {
		return h.info(c, "Register the hub with your LMS", "This is a registration link for the learning hub. "+
			"Use it from your LMS: paste it where your LMS registers an LTI 1.3 tool by URL (LTI Advantage dynamic registration), "+
			"and the LMS opens it with its registration details. The link is still unused.")
	}
	if err != nil {
		return h.refuse(c, "registration", err)
	}
	platform, err := h.tool.Register(ctx, link, c.QueryParam("openid_configuration"), c.QueryParam("registration_token"))
	if err != nil {
		return h.refuse(c, "registration", err)
	}
	return h.page(c, http.StatusOK, "registered", map[string]any{"Platform": platform})
}
