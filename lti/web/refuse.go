package web

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/lti"
)

// refuse shows the error page with the reason code and the request id as
// reference, counts the refusal and logs the detail, which the browser
// never sees. The page says whose the fault is: the hub's own failures
// (its database unavailable, an internal error) are never put on the LMS.
func (h *Handlers) refuse(c echo.Context, stage string, err error) error {
	reason, status := lti.ReasonOf(err), http.StatusBadRequest
	switch reason {
	case lti.ReasonUnavailable:
		status = http.StatusServiceUnavailable
		c.Response().Header().Set("Retry-After", "30")
	case lti.ReasonInternal:
		status = http.StatusInternalServerError
	case lti.ReasonKeysetUnavailable:
		status = http.StatusBadGateway
	case lti.ReasonRateLimited:
		var f *lti.Failure
		errors.As(err, &f)
		status = http.StatusTooManyRequests
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(f.RetryAfter, time.Second).Seconds()))))
	case lti.ReasonDeepLinkingNotAllowed, lti.ReasonTenantSuspended:
		status = http.StatusForbidden
	}
	h.tool.Metrics.CountRefusal(stage, reason)
	level := slog.LevelWarn
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	h.log.Log(c.Request().Context(), level, "lti "+stage+" refused", "reason", reason, "err", err)
	page := stagePages[stage]
	if page.heading == "" {
		page = stagePages["launch"]
	}
	message := messages[reason]
	if message == "" {
		message = page.message
	}
	data := map[string]any{
		"Reason": reason, "RequestID": requestID(c), "Heading": page.heading, "Message": message, "Contact": page.contact,
	}
	if reason == lti.ReasonAmbiguousIssuer {
		// The form of the URL only: which registrations matched is no
		// business of whoever sent the login.
		data["LoginURL"] = h.tool.LoginURL() + "/{registration id}"
	}
	return h.page(c, status, "error", data)
}

// stagePages say, for each stage, what failed, what to do when the reason
// has no message of its own, and whom to give the reference.
var stagePages = map[string]struct{ heading, message, contact string }{
	"login": {"This launch could not be completed", "The LMS sent a launch the hub cannot accept. Please go back to the LMS and launch again.",
		"your LMS administrator"},
	"launch": {"This launch could not be completed", "The LMS sent a launch the hub cannot accept. Please go back to the LMS and launch again.",
		"your LMS administrator"},
	"deep_linking": {"The activity could not be added", "The hub could not add the activity. Please go back to the LMS and start again.",
		"your LMS administrator"},
	"sign_in": {"The sign-in could not be completed", "The hub could not finish your sign-in. Please sign in again.",
		"your organisation's IT team"},
	"registration": {"The registration could not be completed", "The hub could not register with your LMS. Start again from your LMS's tool registration page.",
		"your organisation's hub administrator"},
}

// messages say, for the reasons a person can act on, what happened and
// what to do.
var messages = map[lti.Reason]string{
	lti.ReasonUnknownRegistration:      "This LMS is not registered with the hub.",
	lti.ReasonUnknownDeployment:        "This installation of the tool is not registered with the hub.",
	lti.ReasonAmbiguousIssuer:          "More than one registration with the hub matches this LMS, so the hub cannot tell where this launch belongs.",
	lti.ReasonTenantSuspended:          "Access for your organisation is suspended.",
	lti.ReasonStateExpired:             "The launch took too long. Please go back and launch again.",
	lti.ReasonNonceReplayed:            "This launch was already used. Please go back and launch again.",
	lti.ReasonUnavailable:              "The hub is temporarily unavailable. Please try again in a minute.",
	lti.ReasonInternal:                 "Something went wrong in the hub, not in your LMS. Please try again in a minute.",
	lti.ReasonInvalidIdentifier:        "The LMS sent an identifier the hub cannot store: it holds characters that are not text.",
	lti.ReasonInvalidParameter:         "The LMS sent a sign-in request the hub cannot accept: a parameter is too long or not text.",
	lti.ReasonRateLimited:              "Too many sign-ins came from your network at once. Please wait a moment and launch again.",
	lti.ReasonStorageSecretUnexpected:  "This launch could not be tied to your browser. Please go back to the LMS and launch again.",
	lti.ReasonStorageSecretCrossOrigin: "This launch could not be tied to your browser. Please go back to the LMS and launch again.",
	lti.ReasonDeepLinkingNotAllowed: "Adding activities is for instructors and other course staff. " +
		"If you teach this course, ask your LMS administrator to check your role in it.",
	lti.ReasonDeepLinkingSession: "This page expired, or the choice is not one your LMS accepts. " +
		"Please go back to the LMS and start adding the activity again.",
	lti.ReasonDeepLinkingNotBound: "This page was opened in another browser, or your browser blocked the hub's cookie. " +
		"Please go back to the LMS and start adding the activity again.",
	lti.ReasonDeepLinkingUsed: "This choice was already sent to the LMS. To add more, start again from the LMS.",
	lti.ReasonRegistrationLink: "This registration link is unknown, has expired, or was used already. " +
		"Ask your organisation's hub administrator for a new registration link and start again from your LMS.",
	lti.ReasonRegistrationLinkSpent: "This registration link failed too many times and can no longer be used. " +
		"Ask your organisation's hub administrator for a new registration link.",
	lti.ReasonPlatformConfig: "The hub could not read your LMS's registration details. Start the registration again " +
		"from your LMS's tool registration page; if it fails again, give your hub administrator the reference below.",
	lti.ReasonPlatformRegistration: "Your LMS did not accept the hub's registration. Check that your LMS allows registering " +
		"this tool, then start again from its tool registration page: the link can be tried again a few times.",
}
