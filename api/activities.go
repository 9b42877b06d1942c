package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/lti"
)

// The activity catalog: the operator curates it; any tenant admin may read
// it, since it is what their instructors pick from.

func (s *Server) createActivity(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	var in lti.Activity
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	a, err := s.catalog.Create(c.Request().Context(), actor(c), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/activities/"+a.ID)
	return c.JSON(http.StatusCreated, a)
}

func (s *Server) listActivities(c echo.Context) error {
	as, err := s.catalog.List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list[lti.Activity]{Items: as})
}

func (s *Server) getActivity(c echo.Context) error {
	a, err := s.catalog.Get(c.Request().Context(), c.Param("activity"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) deleteActivity(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	if err := s.catalog.Delete(c.Request().Context(), actor(c), c.Param("activity")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
