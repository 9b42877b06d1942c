package api

import (
	"net/http"
	"slices"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/sync/roster"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

// listCourses lists the tenant's courses (LTI contexts) with their
// roster's state.
func (s *Server) listCourses(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	list, next, err := s.roster.Courses(c.Request().Context(), t.ID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

func (s *Server) getCourse(c echo.Context) error {
	t, id, err := s.tenantAndCourse(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	course, err := s.roster.Course(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, course)
}

// memberStatuses are the statuses a member listing filters by.
var memberStatuses = []string{"active", "inactive", "deleted", "removed"}

// listMembers lists a course's members: ?role= (a role URI or a short
// context role such as Learner) and ?status=.
func (s *Server) listMembers(c echo.Context) error {
	t, id, err := s.tenantAndCourse(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	f := roster.MemberFilter{Role: c.QueryParam("role"), Status: c.QueryParam("status"), Page: page}
	var v apperr.Validator
	v.Check(f.Status == "" || slices.Contains(memberStatuses, f.Status), "status", "must be active, inactive, deleted or removed")
	v.CheckText("role", f.Role, 0, 255)
	if err := v.Err(); err != nil {
		return err
	}
	list, next, err := s.roster.Members(c.Request().Context(), t.ID, id, f)
	if err != nil {
		return err
	}
	// The listing holds names and emails: who read it is recorded, once
	// per request, before it is sent.
	read := audit.Event{Action: "course.members_read", TargetType: "lti_context", TargetID: id.String()}
	if err := s.audit.Record(c.Request().Context(), &t.ID, actor(c), read); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

// requestRosterSync queues a sync of the course (202 with the run's
// Location), or joins the one queued or running.
func (s *Server) requestRosterSync(c echo.Context) error {
	t, id, err := s.tenantAndCourse(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in struct {
		Mode string `json:"mode"`
	}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	var v apperr.Validator
	v.Check(in.Mode == "" || in.Mode == roster.ModeFull || in.Mode == roster.ModeDifferences, "mode", "must be full or differences")
	if err := v.Err(); err != nil {
		return err
	}
	by := actor(c)
	run, _, err := s.roster.Request(c.Request().Context(), &by, t.ID, id, roster.TriggerRequest, in.Mode)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+c.Param("tenant")+"/roster-syncs/"+run.ID.String())
	return c.JSON(http.StatusAccepted, run)
}

var runStatuses = []string{roster.StatusQueued, roster.StatusRunning, roster.StatusSucceeded, roster.StatusFailed}

// listRosterSyncs lists the tenant's sync runs, newest first: ?context=
// and ?status=.
func (s *Server) listRosterSyncs(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	f := roster.RunFilter{Status: c.QueryParam("status"), Page: page}
	var v apperr.Validator
	v.Check(f.Status == "" || slices.Contains(runStatuses, f.Status), "status", "must be queued, running, succeeded or failed")
	if raw := c.QueryParam("context"); raw != "" {
		id, err := uuid.Parse(raw)
		v.Check(err == nil, "context", "must be a course id")
		f.Context = &id
	}
	if err := v.Err(); err != nil {
		return err
	}
	list, next, err := s.roster.Runs(c.Request().Context(), t.ID, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(list, next))
}

func (s *Server) getRosterSync(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("run"))
	if err != nil {
		return apperr.New(apperr.NotFound, "no such roster sync")
	}
	run, err := s.roster.Run(c.Request().Context(), t.ID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, run)
}

func (s *Server) getRosterSchedule(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeRead)
	if err != nil {
		return err
	}
	sc, err := s.roster.Schedule(c.Request().Context(), t.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sc)
}

// setRosterSchedule sets how often the tenant's courses are synced, or
// turns the schedule off ({"enabled": false}); a field left out keeps its
// current value.
func (s *Server) setRosterSchedule(c echo.Context) error {
	t, err := s.tenantFor(c, tenants.ScopeWrite)
	if err != nil {
		return err
	}
	var in struct {
		Enabled         *bool `json:"enabled"`
		IntervalMinutes *int  `json:"interval_minutes"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	sc, err := s.roster.Schedule(c.Request().Context(), t.ID)
	if err != nil {
		return err
	}
	if in.Enabled != nil {
		sc.Enabled = *in.Enabled
	}
	var v apperr.Validator
	if in.IntervalMinutes != nil {
		sc.IntervalMinutes = *in.IntervalMinutes
		v.Check(sc.IntervalMinutes >= roster.MinIntervalMinutes && sc.IntervalMinutes <= roster.MaxIntervalMinutes,
			"interval_minutes", "must be from 15 (a quarter of an hour) to 10080 (a week)")
	}
	if err := v.Err(); err != nil {
		return err
	}
	sc, err = s.roster.SetSchedule(c.Request().Context(), actor(c), t.ID, sc)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sc)
}

func (s *Server) tenantAndCourse(c echo.Context, scope tenants.Scope) (tenants.Tenant, uuid.UUID, error) {
	t, err := s.tenantFor(c, scope)
	if err != nil {
		return t, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Param("context"))
	if err != nil {
		return t, uuid.Nil, apperr.New(apperr.NotFound, "no such course")
	}
	return t, id, nil
}
