package api

import (
	"net/http"
	"slices"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
)

// listDeliveries lists the tenant's deliveries, newest first: ?status=
// ?destination= (a destination's id) ?kind= (lms, webhook, xapi)
// ?learner= (a user id).
func (s *Server) listDeliveries(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	f, err := deliveryFilter(deliveryQuery{Status: c.QueryParam("status"), Destination: c.QueryParam("destination"),
		Learner: c.QueryParam("learner"), Kind: c.QueryParam("kind")}, delivery.Statuses)
	if err != nil {
		return err
	}
	f.Page = page
	list, next, err := s.deliveries.List(c.Request().Context(), t.ID, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

// deliveryDetail is a delivery with every attempt at it, oldest first.
type deliveryDetail struct {
	Delivery delivery.Delivery  `json:"delivery"`
	Attempts []delivery.Attempt `json:"attempts"`
}

func (s *Server) getDelivery(c echo.Context) error {
	t, id, err := s.tenantAndDelivery(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	d, attempts, err := s.deliveries.Get(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	if attempts == nil {
		attempts = []delivery.Attempt{}
	}
	return c.JSON(http.StatusOK, deliveryDetail{Delivery: d, Attempts: attempts})
}

// redriveDelivery sends a dead or failed delivery again.
func (s *Server) redriveDelivery(c echo.Context) error {
	t, id, err := s.tenantAndDelivery(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	d, err := s.deliveries.Redrive(c.Request().Context(), actor(c), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// redriveDeliveries sends again every dead or failed delivery the body's
// filter selects (none: all of them).
func (s *Server) redriveDeliveries(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in deliveryQuery
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	f, err := deliveryFilter(in, delivery.Redrivable)
	if err != nil {
		return err
	}
	n, err := s.deliveries.RedriveAll(c.Request().Context(), actor(c), t.ID, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"redriven": n})
}

// deliveryQuery is a deliveries filter as a client spells it, in a query
// string or a bulk redrive's body.
type deliveryQuery struct {
	Status      string `json:"status"`
	Destination string `json:"destination"`
	Learner     string `json:"learner"`
	Kind        string `json:"kind"`
}

var deliveryKinds = []string{string(agreements.DestinationLMS), string(agreements.DestinationWebhook), string(agreements.DestinationXAPI)}

// deliveryFilter reads q, status being one of statuses, naming each
// field at fault.
func deliveryFilter(q deliveryQuery, statuses []string) (delivery.Filter, error) {
	f := delivery.Filter{Status: q.Status, DestinationKind: q.Kind}
	var v apperr.Validator
	v.Check(f.Status == "" || slices.Contains(statuses, f.Status), "status", "must be "+orList(statuses))
	v.Check(f.DestinationKind == "" || slices.Contains(deliveryKinds, f.DestinationKind), "kind", "must be lms, webhook or xapi")
	if q.Destination != "" {
		id, err := uuid.Parse(q.Destination)
		v.Check(err == nil && len(q.Destination) == 36, "destination", "must be a destination's id")
		f.DestinationID = &id
	}
	if q.Learner != "" {
		id, err := uuid.Parse(q.Learner)
		v.Check(err == nil && len(q.Learner) == 36, "learner", "must be a user id")
		f.Learner = &id
	}
	return f, v.Err()
}

// orList is "a, b or c".
func orList(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	out := words[0]
	for _, w := range words[1 : len(words)-1] {
		out += ", " + w
	}
	return out + " or " + words[len(words)-1]
}

func (s *Server) tenantAndDelivery(c echo.Context, scope tenants.Scope) (tenants.Tenant, uuid.UUID, error) {
	t, err := s.tenantFor(c, scope)
	if err != nil {
		return t, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("delivery"))
	if err != nil {
		return t, uuid.Nil, apperr.New(apperr.NotFound, "no such delivery")
	}
	return t, id, nil
}
