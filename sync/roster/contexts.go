package roster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Course is a course (LTI context) as the REST API shows it, with its
// roster's state.
type Course struct {
	ID             uuid.UUID      `db:"id" json:"id"`
	RegistrationID uuid.UUID      `db:"registration_id" json:"registration_id"`
	DeploymentID   string         `db:"deployment_id" json:"deployment_id"`
	ContextID      string         `db:"context_id" json:"context_id"`
	Label          *string        `db:"label" json:"label"`
	Title          *string        `db:"title" json:"title"`
	Types          pq.StringArray `db:"types" json:"types"`
	MembershipsURL *string        `db:"nrps_url" json:"context_memberships_url"`
	Differences    bool           `db:"differences" json:"differences_offered"`
	Members        int            `db:"members" json:"active_members"`
	SyncedAt       *time.Time     `db:"roster_synced_at" json:"roster_synced_at"`
	NextSyncAt     *time.Time     `db:"roster_next_sync_at" json:"roster_next_sync_at"`
	GoneAt         *time.Time     `db:"roster_gone_at" json:"platform_gone_at"`
	UpdatedAt      time.Time      `db:"updated_at" json:"updated_at"`
}

const courseColumns = `c.id, c.registration_id, c.deployment_id, c.context_id, c.label, c.title, c.types, c.nrps_url,
	c.roster_differences_url IS NOT NULL AS differences, c.roster_synced_at, c.roster_next_sync_at, c.roster_gone_at, c.updated_at,
	(SELECT count(*) FROM memberships m WHERE m.tenant_id = c.tenant_id AND m.context_ref = c.id AND m.status = 'active') AS members`

// Courses lists the tenant's courses by id.
func (s *Service) Courses(ctx context.Context, tenant uuid.UUID, page pg.Page) ([]Course, *pg.Cursor, error) {
	var after *uuid.UUID
	if page.After != nil {
		after = &page.After.ID
	}
	var list []Course
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &list, `SELECT `+courseColumns+` FROM contexts c
			WHERE c.tenant_id = $1 AND ($2::uuid IS NULL OR c.id > $2) ORDER BY c.id LIMIT $3`, tenant, after, page.Limit+1)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("roster: list courses: %w", err))
	}
	return pg.TrimPage(list, page.Limit, func(c Course) pg.Cursor { return pg.Cursor{ID: c.ID} })
}

// Course is one of the tenant's courses; NotFound when it has none by id.
func (s *Service) Course(ctx context.Context, tenant, id uuid.UUID) (Course, error) {
	var c Course
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &c, `SELECT `+courseColumns+` FROM contexts c WHERE c.tenant_id = $1 AND c.id = $2`, tenant, id)
	})
	if pg.IsNoRows(err) {
		return Course{}, apperr.New(apperr.NotFound, "no such course")
	}
	return c, pg.MapError(err)
}

// Member is a member of a course as the REST API shows it.
type Member struct {
	UserID     uuid.UUID      `db:"user_id" json:"user_id"`
	Subject    *string        `db:"subject" json:"lti_user_id"`
	Name       *string        `db:"name" json:"name"`
	GivenName  *string        `db:"given_name" json:"given_name"`
	FamilyName *string        `db:"family_name" json:"family_name"`
	Email      *string        `db:"email" json:"email"`
	Roles      pq.StringArray `db:"roles" json:"roles"`
	Status     string         `db:"status" json:"status"`
	Source     string         `db:"source" json:"source"`
	LastLaunch *time.Time     `db:"launched_at" json:"last_launch_at"`
	SyncedAt   *time.Time     `db:"synced_at" json:"synced_at"`
	UpdatedAt  time.Time      `db:"updated_at" json:"updated_at"`
}

// MemberFilter selects members: by role (a full role URI or a short
// context role such as Learner, matching sub-roles too) and status.
type MemberFilter struct {
	Role   string
	Status string
	Page   pg.Page
}

// Members lists a course's members by user id; NotFound for an unknown
// course.
func (s *Service) Members(ctx context.Context, tenant, course uuid.UUID, f MemberFilter) ([]Member, *pg.Cursor, error) {
	var after *uuid.UUID
	if f.Page.After != nil {
		after = &f.Page.After.ID
	}
	roles := roleForms(f.Role)
	var list []Member
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var exists bool
		if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM contexts WHERE tenant_id = $1 AND id = $2)`, tenant, course); err != nil {
			return err
		}
		if !exists {
			return apperr.New(apperr.NotFound, "no such course")
		}
		return tx.SelectContext(ctx, &list, `SELECT m.user_id, i.subject, u.name, u.given_name, u.family_name, u.email, m.roles,
				m.status, m.source, m.launched_at, m.synced_at, m.updated_at
			FROM memberships m
			JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
			JOIN contexts c ON c.tenant_id = m.tenant_id AND c.id = m.context_ref
			LEFT JOIN lti_registrations r ON r.id = c.registration_id
			LEFT JOIN LATERAL (SELECT subject FROM lti_identities li WHERE li.tenant_id = m.tenant_id AND li.user_id = m.user_id
				AND li.issuer = r.issuer LIMIT 1) i ON true
			WHERE m.tenant_id = $1 AND m.context_ref = $2 AND ($3 = '' OR m.status = $3)
				AND (coalesce(cardinality($4::text[]), 0) = 0 OR EXISTS (SELECT 1 FROM unnest(m.roles) AS role
					WHERE role = ANY($4) OR role LIKE ANY (SELECT p || '#%' FROM unnest($4::text[]) AS p)))
				AND ($5::uuid IS NULL OR m.user_id > $5)
			ORDER BY m.user_id LIMIT $6`, tenant, course, f.Status, pq.StringArray(roles), after, f.Page.Limit+1)
	})
	if err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) {
			return nil, nil, err
		}
		return nil, nil, pg.MapError(fmt.Errorf("roster: list members: %w", err))
	}
	return pg.TrimPage(list, f.Page.Limit, func(m Member) pg.Cursor { return pg.Cursor{ID: m.UserID} })
}

// roleForms turns a role filter into the stored forms it matches: a full
// URI as given; a short context role (Instructor) as its membership URI
// and, by prefix, its sub-roles (membership/Instructor#…).
func roleForms(role string) []string {
	const membership = "http://purl.imsglobal.org/vocab/lis/v2/membership"
	switch {
	case role == "":
		return nil
	case len(role) > 7 && (role[:7] == "http://" || (len(role) > 8 && role[:8] == "https://")):
		return []string{role}
	}
	return []string{membership + "#" + role, membership + "/" + role}
}

// Schedule is a tenant's roster sync schedule.
type Schedule struct {
	Enabled         bool       `json:"enabled"`
	IntervalMinutes int        `json:"interval_minutes"`
	UpdatedAt       *time.Time `json:"updated_at"`
}

// Schedule reads the tenant's schedule (the default when it set none).
func (s *Service) Schedule(ctx context.Context, tenant uuid.UUID) (Schedule, error) {
	sc := Schedule{Enabled: true, IntervalMinutes: int(DefaultInterval / time.Minute)}
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var row struct {
			Enabled   bool      `db:"enabled"`
			Interval  int       `db:"interval_minutes"`
			UpdatedAt time.Time `db:"updated_at"`
		}
		err := tx.GetContext(ctx, &row, `SELECT enabled, interval_minutes, updated_at FROM roster_schedules WHERE tenant_id = $1`, tenant)
		if pg.IsNoRows(err) {
			return nil
		}
		sc = Schedule{Enabled: row.Enabled, IntervalMinutes: row.Interval, UpdatedAt: &row.UpdatedAt}
		return err
	})
	return sc, pg.MapError(err)
}

// Bounds of a schedule's interval.
const (
	MinIntervalMinutes = 15
	MaxIntervalMinutes = 7 * 24 * 60
)

// SetSchedule sets the tenant's schedule: every intervalMinutes, or off.
// Courses already scheduled keep their next time when it comes sooner
// than the new interval; later ones are brought forward.
func (s *Service) SetSchedule(ctx context.Context, by audit.Actor, tenant uuid.UUID, sc Schedule) (Schedule, error) {
	now := s.Now()
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO roster_schedules (tenant_id, enabled, interval_minutes, updated_at)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id) DO UPDATE SET enabled = excluded.enabled, interval_minutes = excluded.interval_minutes,
				updated_at = excluded.updated_at`, tenant, sc.Enabled, sc.IntervalMinutes, now); err != nil {
			return err
		}
		if sc.Enabled {
			if _, err := tx.ExecContext(ctx, `UPDATE contexts SET roster_next_sync_at = $2
				WHERE tenant_id = $1 AND roster_next_sync_at > $2`, tenant, nextSync(now, time.Duration(sc.IntervalMinutes)*time.Minute)); err != nil {
				return err
			}
		}
		details := map[string]string{"enabled": fmt.Sprint(sc.Enabled), "interval_minutes": fmt.Sprint(sc.IntervalMinutes)}
		_, err := s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "roster_schedule.updated", TargetType: "tenant",
			TargetID: tenant.String(), Details: details}, now)
		return err
	})
	if err != nil {
		return Schedule{}, pg.MapError(fmt.Errorf("roster: set schedule: %w", err))
	}
	sc.UpdatedAt = &now
	return sc, nil
}
