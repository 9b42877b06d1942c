package api

import (
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
)

// listDisclosures answers the tenant's record of disclosures, newest
// first: ?learner= ?destination= ?decision= ?since= ?until=, a page of
// JSON, or every matching row as CSV (?format=csv or Accept: text/csv).
// A read narrowed to one learner is admin access to that learner's data,
// and is audited before anything is answered.
func (s *Server) listDisclosures(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	f, err := disclosureFilter(c)
	if err != nil {
		return err
	}
	asCSV, err := wantsCSV(c)
	if err != nil {
		return err
	}
	if f.Learner != nil {
		format := "json"
		if asCSV {
			format = "csv"
		}
		err := s.audit.Record(c.Request().Context(), &t.ID, actor(c), audit.Event{Action: "learner.disclosures_read",
			TargetType: "user", TargetID: f.Learner.String(), Details: map[string]string{"format": format}})
		if err != nil {
			return err
		}
	}
	if asCSV {
		return s.exportDisclosures(c, t.ID, f)
	}
	list, next, err := s.agreements.Disclosures(c.Request().Context(), t.ID, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

// exportWriteWindow is how long each write of an export may take: an
// export as a whole may outlast the server's write timeout, a stalled
// client may not.
const exportWriteWindow = time.Minute

// exportDisclosures streams every disclosure f selects as CSV. Nothing is
// sent before the first batch was read, so a failure there is still a
// problem+json; a failure later can only cut the download short.
func (s *Server) exportDisclosures(c echo.Context, tenant uuid.UUID, f agreements.DisclosureFilter) error {
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	res.Header().Set(echo.HeaderContentDisposition, `attachment; filename="disclosures.csv"`)
	w := &windowedWriter{w: res, rc: http.NewResponseController(res.Writer)}
	err := s.agreements.WriteDisclosuresCSV(c.Request().Context(), tenant, f, w)
	if err != nil && res.Committed {
		s.log.ErrorContext(c.Request().Context(), "disclosures export cut short", "err", err)
	}
	return err
}

// windowedWriter gives each write its own deadline.
type windowedWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (w *windowedWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(exportWriteWindow)) // unsupported: the server's own timeout holds
	return w.w.Write(p)
}

// disclosureFilter reads the listing's parameters, naming each one at
// fault.
func disclosureFilter(c echo.Context) (agreements.DisclosureFilter, error) {
	page, err := pageParams(c)
	if err != nil {
		return agreements.DisclosureFilter{}, err
	}
	f := agreements.DisclosureFilter{Decision: agreements.Outcome(c.QueryParam("decision")), Page: page}
	var v apperr.Validator
	if raw := c.QueryParam("learner"); raw != "" {
		id, err := uuid.Parse(raw)
		v.Check(err == nil, "learner", "must be a user id")
		f.Learner = &id
	}
	if raw := c.QueryParam("destination"); raw != "" {
		d, ok := parseDestination(raw)
		v.Check(ok, "destination", "must be lms, webhook, xapi, webhook:<id> or xapi:<id>")
		f.Destination = &d
	}
	v.Check(f.Decision == "" || slices.Contains(agreements.Outcomes, f.Decision), "decision",
		"must be share, share_minimized or withhold")
	f.Since = timeParam(c, &v, "since")
	f.Until = timeParam(c, &v, "until")
	v.Check(f.Since.IsZero() || f.Until.IsZero() || f.Since.Before(f.Until), "until", "must be later than since")
	return f, v.Err()
}

// parseDestination reads lms, a kind of named destination (webhook,
// xapi: all of that kind), or one of them by id (webhook:<id>).
func parseDestination(raw string) (agreements.Destination, bool) {
	kind, rawID, named := strings.Cut(raw, ":")
	d := agreements.Destination{Kind: agreements.DestinationKind(kind)}
	switch d.Kind {
	case agreements.DestinationLMS:
		return d, !named
	case agreements.DestinationWebhook, agreements.DestinationXAPI:
		if !named {
			return d, true
		}
		id, err := uuid.Parse(rawID)
		d.ID = &id
		return d, err == nil && len(rawID) == 36
	}
	return d, false
}

// wantsCSV reads ?format= (json or csv), and without it the Accept
// header: CSV when it lists text/csv.
func wantsCSV(c echo.Context) (bool, error) {
	switch c.QueryParam("format") {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, apperr.InvalidFields(apperr.FieldError{Field: "format", Message: "must be json or csv"})
	}
	for _, part := range strings.Split(c.Request().Header.Get(echo.HeaderAccept), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/csv" {
			return true, nil
		}
	}
	return false, nil
}
