package roster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/nrps"
)

// course is what a sync needs of a course and its registration.
type course struct {
	TenantID        uuid.UUID `db:"tenant_id"`
	Ref             uuid.UUID `db:"id"`
	ContextID       string    `db:"context_id"`
	Issuer          string    `db:"issuer"`
	ClientID        string    `db:"client_id"`
	TokenURL        string    `db:"auth_token_url"`
	TokenAudience   string    `db:"token_audience"`
	RegistrationID  uuid.UUID `db:"registration_id"`
	MembershipsURL  *string   `db:"nrps_url"`
	DifferencesURL  *string   `db:"roster_differences_url"`
	IntervalMinutes *int      `db:"interval_minutes"` // nil: the default
	Scheduled       bool      `db:"scheduled"`
}

// stored is one listed member as the hub has them, read with the page.
type stored struct {
	Subject     string         `db:"subject"`
	UserID      uuid.UUID      `db:"user_id"`
	LastLaunch  *time.Time     `db:"last_launch_at"`
	Name        *string        `db:"name"`
	GivenName   *string        `db:"given_name"`
	FamilyName  *string        `db:"family_name"`
	Email       *string        `db:"email"`
	Picture     *string        `db:"picture"`
	SourcedID   *string        `db:"lis_person_sourcedid"`
	LegacyID    *string        `db:"lti11_legacy_user_id"`
	Institution pq.StringArray `db:"institution_roles"`
	Member      bool           `db:"member"`
	Roles       pq.StringArray `db:"roles"`
	Status      *string        `db:"status"`
	Launched    *time.Time     `db:"launched_at"`
	Held        bool           `db:"held"`
}

// readPage reads what the hub has of the page's members and, in the same
// statement, marks those already in the course as listed by run (a full
// sync removes the course's members it did not list; PostgreSQL runs a
// data-modifying WITH whether or not the query reads it) and records the
// page in the run, if its owner ($8) still holds it: every row says so
// (held); when none of the page's members is known, one row with no
// subject says it. An unchanged page costs this one statement.
const readPage = `WITH listed AS (
		SELECT subject FROM unnest($4::text[]) AS s(subject)),
	known AS (
		SELECT i.* FROM listed JOIN LATERAL (
			SELECT subject, user_id, last_launch_at, picture, lis_person_sourcedid, lti11_legacy_user_id, institution_roles
			FROM lti_identities WHERE tenant_id = $1 AND issuer = $2 AND subject = listed.subject LIMIT 1) i ON true),
	marked AS (
		UPDATE memberships m SET synced_run = $5
		WHERE $6::boolean AND m.tenant_id = $1 AND m.context_ref = $3 AND m.user_id = ANY (ARRAY(SELECT user_id FROM known))
		RETURNING m.user_id),
	progressed AS (
		UPDATE roster_syncs SET pages = pages + $11, members = members + cardinality($4::text[]), next_url = nullif($9, ''),
			progressed_at = $10
		WHERE tenant_id = $1 AND id = $7 AND lease_owner = $8 AND status = 'running'
		RETURNING 1)
	SELECT coalesce(k.subject, '') AS subject, coalesce(k.user_id, '00000000-0000-0000-0000-000000000000') AS user_id,
		k.last_launch_at, u.name, u.given_name, u.family_name, u.email, k.picture,
		k.lis_person_sourcedid, k.lti11_legacy_user_id, coalesce(k.institution_roles, '{}') AS institution_roles,
		m.user_id IS NOT NULL AS member, m.roles, m.status, m.launched_at, h.held
	FROM (SELECT EXISTS (SELECT 1 FROM progressed) AS held) h
	LEFT JOIN known k ON true
	LEFT JOIN LATERAL (SELECT name, given_name, family_name, email FROM users
		WHERE tenant_id = $1 AND id = k.user_id LIMIT 1) u ON true
	LEFT JOIN LATERAL (SELECT user_id, roles, status, launched_at FROM memberships
		WHERE tenant_id = $1 AND context_ref = $3 AND user_id = k.user_id LIMIT 1) m ON true`

// Every lookup above is by a whole key, row by row (ARRAY(…) is computed
// once, and a LATERAL subquery with LIMIT stays a subquery): while a
// first sync fills the tables faster than their statistics follow, the
// planner otherwise joins a page with a scan of the whole course, once
// per page. For the same reason the page's statements are planned each
// time, not prepared: the generic plan PostgreSQL settles on after five
// runs of a prepared statement scans the course again.

// change is one member to write, in the columns of writePage.
type change struct {
	subject, name, given, family, email, picture, sourced, legacy string
	userID                                                        uuid.UUID
	roles, institution                                            string // newline-separated
	status                                                        string
	writeUser, writeMember                                        bool
}

// writePage writes, in one statement, the page's new and changed members:
// the platform identity first (its unique key settles a race with the
// member's first launch, whose user it then takes), the user, and the
// membership, and counts the page's added and changed members in the run
// if its owner still holds it. A field the page leaves out (a platform
// that shares names only with some courses, a differences entry with ids
// only) keeps its stored value, as a launch's absent claim does. Neither the user nor the membership is
// overwritten when a launch newer than the page ($7) wrote them.
const writePage = `WITH input AS (
		SELECT * FROM unnest($4::text[], $5::uuid[], $6::text[], $8::text[], $9::text[], $10::text[], $11::text[],
			$12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::boolean[], $18::boolean[])
		AS x(subject, user_id, name, given_name, family_name, email, picture, sourced, legacy, roles, institution, status,
			write_user, write_member)),
	identities AS (
		INSERT INTO lti_identities (tenant_id, issuer, subject, user_id, institution_roles, picture, lis_person_sourcedid,
			lti11_legacy_user_id, synced_at)
		SELECT $1, $2, subject, user_id, string_to_array(institution, E'\n'), nullif(picture, ''), nullif(sourced, ''),
			nullif(legacy, ''), $19 FROM input WHERE write_user
		ON CONFLICT (tenant_id, issuer, subject) DO UPDATE SET picture = coalesce(excluded.picture, lti_identities.picture),
			lis_person_sourcedid = coalesce(excluded.lis_person_sourcedid, lti_identities.lis_person_sourcedid),
			lti11_legacy_user_id = coalesce(excluded.lti11_legacy_user_id, lti_identities.lti11_legacy_user_id),
			institution_roles = CASE WHEN lti_identities.last_launch_at IS NULL THEN excluded.institution_roles
				ELSE lti_identities.institution_roles END,
			synced_at = excluded.synced_at
			WHERE lti_identities.last_launch_at IS NULL OR lti_identities.last_launch_at <= $7
		RETURNING subject, user_id),
	written AS (
		INSERT INTO users (id, tenant_id, name, given_name, family_name, email, created_at, updated_at)
		SELECT i.user_id, $1, nullif(x.name, ''), nullif(x.given_name, ''), nullif(x.family_name, ''), nullif(x.email, ''), $19, $19
		FROM identities i JOIN input x USING (subject)
		ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, users.name),
			given_name = coalesce(excluded.given_name, users.given_name), family_name = coalesce(excluded.family_name, users.family_name),
			email = coalesce(excluded.email, users.email), updated_at = excluded.updated_at
			WHERE users.tenant_id = excluded.tenant_id
		RETURNING id),
	who AS (
		SELECT x.subject, coalesce(i.user_id, x.user_id) AS user_id FROM input x LEFT JOIN identities i USING (subject)),
	members AS (
		INSERT INTO memberships (tenant_id, context_ref, user_id, roles, source, status, synced_at, synced_run, updated_at)
		SELECT $1, $3, w.user_id, string_to_array(x.roles, E'\n'), 'nrps', x.status, $19, $20, $19
		FROM input x JOIN who w USING (subject) WHERE x.write_member
		ON CONFLICT (context_ref, user_id) DO UPDATE SET roles = excluded.roles, source = 'nrps', status = excluded.status,
			synced_at = excluded.synced_at, synced_run = coalesce(excluded.synced_run, memberships.synced_run),
			updated_at = excluded.updated_at
			WHERE memberships.tenant_id = excluded.tenant_id
				AND (memberships.launched_at IS NULL OR memberships.launched_at <= $7)
		RETURNING 1),
	counted AS (
		UPDATE roster_syncs SET added = added + $21, changed = changed + $22
		WHERE tenant_id = $1 AND id = $23 AND lease_owner = $24 AND status = 'running'
		RETURNING 1)
	SELECT EXISTS (SELECT 1 FROM counted)`

// applyPages applies pages (consecutive, one or a few) in tx: members new
// to the hub become users with their platform identity, changed ones are
// updated, and the run's progress and cursor move past the last page, if
// owner still holds the run (errLeaseLost if not). full marks the listed
// members as seen by run. fetched is when the first page was asked for.
func applyPages(ctx context.Context, tx *sqlx.Tx, c course, run Run, owner string, pages []*nrps.Page, fetched, now time.Time,
	full bool) (progress, error) {
	var members []nrps.Member
	for _, page := range pages {
		members = append(members, page.Members...)
	}
	subjects := make([]string, len(members))
	for i, m := range members {
		subjects[i] = m.UserID
	}
	var runRef *uuid.UUID
	if full {
		runRef = &run.ID
	}
	last := pages[len(pages)-1]
	var have []stored
	if err := tx.SelectContext(ctx, &have, readPage, c.TenantID, c.Issuer, c.Ref, pq.StringArray(subjects), runRef, full, run.ID, owner,
		last.Next, now, len(pages)); err != nil {
		return progress{}, pg.MapError(fmt.Errorf("roster: read page: %w", err))
	}
	if len(have) == 0 || !have[0].Held {
		return progress{}, errLeaseLost
	}
	if have[0].Subject == "" {
		have = nil
	}
	changes, p := diff(members, have, fetched)
	p.Next = last.Next
	counts := p // counted with the first chunk
	for len(changes) > 0 {
		chunk := changes[:min(len(changes), writeChunk)]
		if err := write(ctx, tx, c, run, owner, chunk, counts, fetched, now, runRef); err != nil {
			return progress{}, err
		}
		changes, counts = changes[len(chunk):], progress{}
	}
	return p, nil
}

// diff compares pages with what the hub has and returns what to write,
// counting members added to the course and changed (name, email, roles,
// status). Members a launch after fetched wrote are left as they are.
func diff(members []nrps.Member, have []stored, fetched time.Time) ([]change, progress) {
	bySubject := make(map[string]*stored, len(have))
	for i := range have {
		bySubject[have[i].Subject] = &have[i]
	}
	var out []change
	p := progress{Members: len(members)}
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		if seen[m.UserID] { // listed twice on one page: the first counts
			continue
		}
		seen[m.UserID] = true
		ch, added, changed := compare(m, bySubject[m.UserID], fetched)
		if added {
			p.Added++
		} else if changed {
			p.Changed++
		}
		if ch.writeUser || ch.writeMember {
			out = append(out, ch)
		}
	}
	return out, p
}

// compare works out what to write of one member.
func compare(m nrps.Member, s *stored, fetched time.Time) (ch change, added, changed bool) {
	context, institution, system := lti.Roles(m.Roles)
	institution = append(institution, system...)
	ch = change{subject: m.UserID, name: m.Name, given: m.GivenName, family: m.FamilyName, email: m.Email, picture: m.Picture,
		sourced: m.LISPersonSourcedID, legacy: m.LTI11LegacyUserID, roles: joinRoles(context), institution: joinRoles(institution),
		status: memberStatus(m.Status), userID: uuid.New()}
	if s == nil && ch.status == "deleted" {
		return change{}, false, false // gone before the hub knew them: nothing to keep
	}
	if s == nil {
		ch.writeUser, ch.writeMember = true, true
		return ch, true, false
	}
	ch.userID = s.UserID
	launchedSince := s.LastLaunch != nil && s.LastLaunch.After(fetched)
	ch.writeUser = !launchedSince && userDiffers(ch, s)
	memberLaunchedSince := s.Launched != nil && s.Launched.After(fetched)
	switch {
	case !s.Member && ch.status == "deleted": // never in this course as far as the hub knows
	case !s.Member:
		ch.writeMember, added = true, true
	case memberLaunchedSince:
	case *s.Status == "removed" && ch.status == "active":
		ch.writeMember, added = true, true
	case *s.Status != ch.status || !slices.Equal(s.Roles, context):
		ch.writeMember, changed = true, true
	}
	if ch.writeUser && !added && userVisiblyDiffers(ch, s) {
		changed = true
	}
	return ch, added, changed
}

// userDiffers reports whether the page brings anything the stored user
// and identity lack.
func userDiffers(ch change, s *stored) bool {
	return !eq(s.Name, ch.name) || !eq(s.GivenName, ch.given) || !eq(s.FamilyName, ch.family) || !eq(s.Email, ch.email) ||
		!eq(s.Picture, ch.picture) || !eq(s.SourcedID, ch.sourced) || !eq(s.LegacyID, ch.legacy) ||
		(s.LastLaunch == nil && joinRoles(s.Institution) != ch.institution)
}

// userVisiblyDiffers is the part of a user's change a roster reports:
// name and email.
func userVisiblyDiffers(ch change, s *stored) bool {
	return !eq(s.Name, ch.name) || !eq(s.GivenName, ch.given) || !eq(s.FamilyName, ch.family) || !eq(s.Email, ch.email)
}

// eq reports whether a stored value stays as it is: the page sent the
// same, or nothing (an absent field keeps the stored value).
func eq(stored *string, sent string) bool {
	return sent == "" || (stored != nil && *stored == sent)
}

// memberStatus maps NRPS's status (§2.3.1) to the hub's.
func memberStatus(s string) string {
	switch s {
	case "Inactive":
		return "inactive"
	case "Deleted":
		return "deleted"
	}
	return "active"
}

func joinRoles(roles []string) string { return strings.Join(roles, "\n") }

// write writes changes and counts the page's added and changed members
// in the run.
func write(ctx context.Context, tx *sqlx.Tx, c course, run Run, owner string, changes []change, p progress,
	fetched, now time.Time, runRef *uuid.UUID) error {
	n := len(changes)
	cols := make([][]string, 12)
	for i := range cols {
		cols[i] = make([]string, n)
	}
	ids := make([]string, n)
	writeUser, writeMember := make([]bool, n), make([]bool, n)
	for i, ch := range changes {
		for j, v := range []string{ch.subject, "", ch.name, ch.given, ch.family, ch.email, ch.picture, ch.sourced, ch.legacy,
			ch.roles, ch.institution, ch.status} {
			cols[j][i] = v
		}
		ids[i] = ch.userID.String()
		writeUser[i], writeMember[i] = ch.writeUser, ch.writeMember
	}
	a := func(j int) pq.StringArray { return pq.StringArray(cols[j]) }
	var held bool
	err := tx.GetContext(ctx, &held, writePage, c.TenantID, c.Issuer, c.Ref, a(0), pq.StringArray(ids), a(2), fetched,
		a(3), a(4), a(5), a(6), a(7), a(8), a(9), a(10), a(11), pq.BoolArray(writeUser), pq.BoolArray(writeMember), now, runRef,
		p.Added, p.Changed, run.ID, owner)
	if err != nil {
		return pg.MapError(fmt.Errorf("roster: write page: %w", err))
	}
	if !held {
		return errLeaseLost
	}
	return nil
}

// writeChunk is how many members one statement writes.
const writeChunk = 1000

// removeBatch is how many members one statement marks removed.
const removeBatch = 5000

// markRemoved marks up to removeBatch of the course's members the full
// sync run did not list as removed, except those who launched since the
// run started; it returns how many it marked.
func markRemoved(ctx context.Context, tx *sqlx.Tx, c course, run Run, now time.Time) (int, error) {
	started := run.RequestedAt
	if run.StartedAt != nil {
		started = *run.StartedAt
	}
	// The batch is an array computed once, matched by the primary key: a
	// join or "IN (… LIMIT)" runs the batch's scan again for every member
	// when the course's statistics are stale (a course just synced).
	res, err := tx.ExecContext(ctx, `UPDATE memberships SET status = 'removed', updated_at = $4
		WHERE tenant_id = $1 AND context_ref = $2 AND user_id = ANY (ARRAY(
			SELECT user_id FROM memberships WHERE tenant_id = $1 AND context_ref = $2 AND status <> 'removed'
				AND synced_run IS DISTINCT FROM $3 AND (launched_at IS NULL OR launched_at < $5)
			LIMIT $6))`, c.TenantID, c.Ref, run.ID, now, started, removeBatch)
	if err != nil {
		return 0, pg.MapError(fmt.Errorf("roster: mark removed: %w", err))
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
