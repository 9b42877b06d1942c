package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Store is a tenant's directory: its Users (rows of users) and Groups.
// Every method works in one transaction with the tenant set, audits its
// change there, and fails with an *Error a client can be shown, or an
// internal error.
type Store struct {
	db    *sqlx.DB
	chain *audit.Keyring
	log   *slog.Logger
	Now   func() time.Time
}

// NewStore returns the directories of db, audited under chain.
func NewStore(db *sqlx.DB, chain *audit.Keyring, log *slog.Logger) *Store {
	return &Store{db: db, chain: chain, log: log, Now: time.Now}
}

// Page is a list's window (RFC 7644 §3.4.2.4): StartIndex is 1-based.
type Page struct {
	StartIndex, Count int
}

// List is a list response's content (RFC 7644 §3.4.2).
type List struct {
	Total     int
	Start     int
	Resources []Resource
}

// decodeBody reads a resource's JSON object.
func decodeBody(body []byte) (map[string]any, *Error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, errorf(InvalidSyntax, "the body is not a JSON object")
	}
	if err := checkText(m); err != nil {
		return nil, err
	}
	return m, nil
}

// storable reports text PostgreSQL can keep: text and jsonb refuse a NUL
// character and what is not UTF-8.
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// checkText refuses a JSON value with a string or key that is not
// storable: invalidValue, rather than the database's refusal (a 500).
func checkText(v any) *Error {
	bad := errorf(InvalidValue, "a value holds a NUL character or is not UTF-8")
	switch x := v.(type) {
	case string:
		if !storable(x) {
			return bad
		}
	case map[string]any:
		for k, e := range x {
			if !storable(k) {
				return bad
			}
			if err := checkText(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := checkText(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateUser provisions a user (RFC 7644 §3.3). A user who already signed
// in through SSO (a users row the directory never provisioned) with the
// same userName, externalId or email is adopted: that row becomes the
// directory's, so one person stays one hub user. A provisioned user with
// the same userName or externalId is 409 uniqueness.
func (s *Store) CreateUser(ctx context.Context, by audit.Actor, tenant uuid.UUID, base string, body []byte) (Resource, error) {
	in, err := decodeBody(body)
	if err != nil {
		return Resource{}, err
	}
	doc, err := normalizeUser(in)
	if err != nil {
		return Resource{}, err
	}
	var r userRow
	if err := r.setFrom(doc); err != nil {
		return Resource{}, err
	}
	txErr := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		now := s.Now()
		existing, err := s.claimant(ctx, tx, tenant, &r)
		if err != nil {
			return err
		}
		action := "scim.user.created"
		if existing != uuid.Nil {
			r.ID, action = existing, "scim.user.adopted"
		} else {
			r.ID = uuid.New()
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, tenant_id, created_at, updated_at) VALUES ($1, $2, $3, $3)`,
				r.ID, tenant, now); err != nil {
				return err
			}
		}
		if err := s.writeUser(ctx, tx, tenant, &r, now); err != nil {
			return err
		}
		if err := loadGroups(ctx, tx, tenant, []*userRow{&r}); err != nil {
			return err
		}
		return s.auditUser(ctx, tx, by, action, r, nil)
	})
	if txErr != nil {
		return Resource{}, userError(txErr)
	}
	return userResource(&r, base), nil
}

// claimant is the users row a new directory user is: an unprovisioned
// user with the same userName, externalId or email (in that order of
// preference), or none. A provisioned user with the same userName or
// externalId is a conflict.
func (s *Store) claimant(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, r *userRow) (uuid.UUID, error) {
	var found []struct {
		ID          uuid.UUID `db:"id"`
		Provisioned bool      `db:"provisioned"`
		ByID        bool      `db:"by_id"`
	}
	err := tx.SelectContext(ctx, &found, `SELECT u.id, u.provisioned_at IS NOT NULL AS provisioned,
			coalesce(lower(u.user_name) = lower($2) OR u.external_id = $3, false) AS by_id
		FROM users u
		WHERE u.tenant_id = $1 AND u.erased_at IS NULL AND u.deprovisioned_at IS NULL
		  AND (lower(u.user_name) = lower($2) OR u.external_id = $3 OR lower(u.email) = lower($4))
		ORDER BY (lower(u.user_name) = lower($2)) IS TRUE DESC, (u.external_id = $3) IS TRUE DESC, u.created_at, u.id
		LIMIT 10 FOR UPDATE OF u`, tenant, r.UserName, r.ExternalID, r.Email)
	if err != nil {
		return uuid.Nil, err
	}
	for _, f := range found {
		if f.Provisioned && f.ByID {
			return uuid.Nil, &Error{Status: http.StatusConflict, ScimType: Uniqueness, Detail: "a user with this userName or externalId exists"}
		}
	}
	for _, f := range found {
		if !f.Provisioned {
			return f.ID, nil
		}
	}
	return uuid.Nil, nil
}

// writeUser stores r's columns in its row, provisioned from now on, and
// reads the row back. Deactivation (active false) sets deactivated_at
// once; reactivation clears it. The email and locale the row had stay when
// the directory sends none.
func (s *Store) writeUser(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, r *userRow, now time.Time) error {
	var dir any
	if r.Directory != nil {
		dir = string(r.Directory)
	}
	return tx.GetContext(ctx, r, `UPDATE users u SET user_name = $3, external_id = $4, name = $5, given_name = $6,
			family_name = $7, email = coalesce($8, u.email), locale = coalesce($9, u.locale), display_name = $10, title = $11,
			employee_number = $12, department = $13, manager_id = $14, directory = $15::jsonb, active = $16,
			deactivated_at = CASE WHEN $16 THEN NULL ELSE coalesce(u.deactivated_at, $17) END,
			provisioned_at = coalesce(u.provisioned_at, $17), updated_at = greatest($17, u.updated_at + interval '1 microsecond')
		WHERE u.tenant_id = $1 AND u.id = $2 RETURNING `+userSelect,
		tenant, r.ID, r.UserName, r.ExternalID, r.Name, r.GivenName, r.FamilyName, r.Email, r.Locale, r.DisplayName,
		r.Title, r.EmployeeNumber, r.Department, r.ManagerID, dir, r.Active, now)
}

// userError maps a unique violation to 409 uniqueness.
func userError(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return &Error{Status: http.StatusConflict, ScimType: Uniqueness, Detail: "a user with this userName or externalId exists"}
	}
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return pg.MapError(err)
}

func (s *Store) auditUser(ctx context.Context, tx *sqlx.Tx, by audit.Actor, action string, r userRow, details map[string]string) error {
	if details == nil {
		details = map[string]string{}
	}
	details["active"] = fmt.Sprint(r.Active)
	_, err := s.chain.Append(ctx, tx, &r.TenantID, by, audit.Event{Action: action, TargetType: "user",
		TargetID: r.ID.String(), Details: details}, s.Now())
	return err
}

// parseID reads a resource id; anything else is no resource.
func parseID(what, id string) (uuid.UUID, *Error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, notFound(what, id)
	}
	return u, nil
}

// GetUser reads one user; 404 when the directory does not see them.
func (s *Store) GetUser(ctx context.Context, tenant uuid.UUID, base, id string) (Resource, error) {
	uid, serr := parseID("user", id)
	if serr != nil {
		return Resource{}, serr
	}
	var r userRow
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &r, `SELECT `+userSelect+` FROM users u WHERE u.tenant_id = $1 AND u.id = $2 AND `+userVisible, tenant, uid)
		if err != nil {
			return err
		}
		return loadGroups(ctx, tx, tenant, []*userRow{&r})
	})
	if pg.IsNoRows(err) {
		return Resource{}, notFound("user", id)
	}
	if err != nil {
		return Resource{}, pg.MapError(err)
	}
	return userResource(&r, base), nil
}

// lockUser reads the user for a change, checking If-Match.
func (s *Store) lockUser(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, id, ifMatch string) (userRow, error) {
	uid, serr := parseID("user", id)
	if serr != nil {
		return userRow{}, serr
	}
	var r userRow
	err := tx.GetContext(ctx, &r, `SELECT `+userSelect+` FROM users u WHERE u.tenant_id = $1 AND u.id = $2 AND `+userVisible+` FOR UPDATE`, tenant, uid)
	if pg.IsNoRows(err) {
		return r, notFound("user", id)
	}
	if err != nil {
		return r, err
	}
	if !tagMatches(ifMatch, r.etag()) {
		return r, errPrecondition
	}
	return r, nil
}

// tagMatches reports whether an If-Match header admits version tag
// (RFC 9110 §13.1.1, weak comparison): none and "*" admit any.
func tagMatches(ifMatch, tag string) bool {
	ifMatch = strings.TrimSpace(ifMatch)
	if ifMatch == "" || ifMatch == "*" {
		return true
	}
	bare := strings.TrimPrefix(tag, "W/")
	for _, t := range strings.Split(ifMatch, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == bare {
			return true
		}
	}
	return false
}

// ReplaceUser replaces a user with body (RFC 7644 §3.5.1): what body
// leaves out is cleared, except the email and locale the hub keeps, and
// active: a body without it leaves a deactivated user deactivated.
func (s *Store) ReplaceUser(ctx context.Context, by audit.Actor, tenant uuid.UUID, base, id, ifMatch string, body []byte) (Resource, error) {
	in, serr := decodeBody(body)
	if serr != nil {
		return Resource{}, serr
	}
	doc, serr := normalizeUser(in)
	if serr != nil {
		return Resource{}, serr
	}
	return s.changeUser(ctx, by, tenant, base, id, ifMatch, "scim.user.replaced", func(r *userRow) *Error {
		if _, ok := doc["active"]; !ok {
			doc["active"] = r.Active
		}
		return r.setFrom(doc)
	})
}

// PatchUser applies a PATCH's operations (RFC 7644 §3.5.2) all or none.
// Removing active, or setting it to null, leaves it as it was, as a PUT
// without it does: an unassigned active must not reactivate a user.
func (s *Store) PatchUser(ctx context.Context, by audit.Actor, tenant uuid.UUID, base, id, ifMatch string, ops []Operation) (Resource, error) {
	return s.changeUser(ctx, by, tenant, base, id, ifMatch, "scim.user.patched", func(r *userRow) *Error {
		doc := r.document()
		if err := applyUser(doc, r.ID.String(), ops); err != nil {
			return err
		}
		if _, ok := doc["active"]; !ok {
			doc["active"] = r.Active
		}
		return r.setFrom(doc)
	})
}

// changeUser locks the user, changes the row with change, writes it and
// audits it; a deactivation is audited as such.
func (s *Store) changeUser(ctx context.Context, by audit.Actor, tenant uuid.UUID, base, id, ifMatch, action string,
	change func(*userRow) *Error) (Resource, error) {
	var r userRow
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		if r, err = s.lockUser(ctx, tx, tenant, id, ifMatch); err != nil {
			return err
		}
		was := r.Active
		if err := change(&r); err != nil {
			return err
		}
		if err := s.writeUser(ctx, tx, tenant, &r, s.Now()); err != nil {
			return err
		}
		if err := loadGroups(ctx, tx, tenant, []*userRow{&r}); err != nil {
			return err
		}
		switch {
		case was && !r.Active:
			action = "scim.user.deactivated"
		case !was && r.Active:
			action = "scim.user.reactivated"
		}
		return s.auditUser(ctx, tx, by, action, r, nil)
	})
	if err != nil {
		return Resource{}, userError(err)
	}
	return userResource(&r, base), nil
}

// DeleteUser deprovisions a user (RFC 7644 §3.6): the row stays, since
// results and the record of disclosures name it, but deactivated and
// deprovisioned, its userName, externalId and employeeNumber cleared and
// its group memberships ended. The directory sees them no more: their id
// is 404 and their userName free for a new user.
func (s *Store) DeleteUser(ctx context.Context, by audit.Actor, tenant uuid.UUID, id, ifMatch string) error {
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if err := lockGroupsOf(ctx, tx, tenant, id); err != nil {
			return err
		}
		r, err := s.lockUser(ctx, tx, tenant, id, ifMatch)
		if err != nil {
			return err
		}
		now := s.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE users SET active = false, deactivated_at = coalesce(deactivated_at, $3),
				deprovisioned_at = $3, user_name = NULL, external_id = NULL, employee_number = NULL, updated_at = $3
			WHERE tenant_id = $1 AND id = $2`, tenant, r.ID, now); err != nil {
			return err
		}
		var n int
		err = tx.GetContext(ctx, &n, `WITH gone AS (
				DELETE FROM scim_group_members WHERE tenant_id = $1 AND user_id = $2 RETURNING group_id),
			changed AS (
				UPDATE scim_groups g SET version = g.version + 1, updated_at = $3 FROM gone
				WHERE g.tenant_id = $1 AND g.id = gone.group_id RETURNING 1)
			SELECT count(*) FROM changed`, tenant, r.ID, now)
		if err != nil {
			return err
		}
		r.Active = false
		return s.auditUser(ctx, tx, by, "scim.user.deleted", r, map[string]string{"groups_left": fmt.Sprint(n)})
	})
	return userError(err)
}

// lockGroupsOf locks the groups user id is in, in id order, before the
// user is: a group's PATCH locks the group, then its members, so a
// deletion taking them the other way round would deadlock with it.
func lockGroupsOf(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, id string) error {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil // lockUser answers 404
	}
	_, err = tx.ExecContext(ctx, `SELECT g.id FROM scim_groups g
		WHERE g.tenant_id = $1 AND g.id IN (SELECT m.group_id FROM scim_group_members m WHERE m.tenant_id = $1 AND m.user_id = $2)
		ORDER BY g.id FOR UPDATE OF g`, tenant, uid)
	return err
}

// ListUsers answers a page of the users a filter selects, oldest first.
func (s *Store) ListUsers(ctx context.Context, tenant uuid.UUID, base, filterText string, page Page) (List, error) {
	var rows []*userRow
	l, err := s.list(ctx, tenant, "User", filterText, page, `users u WHERE u.tenant_id = $1 AND `+userVisible,
		`SELECT `+userSelect+` FROM users u WHERE u.tenant_id = $1 AND `+userVisible, "u.created_at, u.id",
		func(sr *sqlx.Rows) error {
			var r userRow
			rows = append(rows, &r)
			return sr.StructScan(&r)
		},
		func(tx *sqlx.Tx) error { return loadGroups(ctx, tx, tenant, rows) })
	for _, r := range rows {
		l.Resources = append(l.Resources, userResource(r, base))
	}
	return l, err
}

// loadGroups reads the groups of users, in one statement.
func loadGroups(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, users []*userRow) error {
	if len(users) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(users))
	byID := make(map[uuid.UUID]*userRow, len(users))
	for i, u := range users {
		ids[i], byID[u.ID] = u.ID, u
	}
	var refs []groupRef
	err := tx.SelectContext(ctx, &refs, `SELECT m.user_id, g.id AS group_id, g.display_name
		FROM scim_group_members m JOIN scim_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id
		WHERE m.tenant_id = $1 AND m.user_id = ANY($2::uuid[]) ORDER BY lower(g.display_name), g.id`, tenant, uuidArray(ids))
	for _, ref := range refs {
		byID[ref.UserID].Groups = append(byID[ref.UserID].Groups, ref)
	}
	return err
}

// list counts what from (a FROM clause with its tenant condition) the
// filter selects, reads the page of it with query, in order, each row
// with scan, and calls after in the same transaction.
func (s *Store) list(ctx context.Context, tenant uuid.UUID, resourceType, filterText string, page Page, from, query, order string,
	scan func(*sqlx.Rows) error, after func(*sqlx.Tx) error) (List, error) {
	cond, args := "", []any{tenant}
	if strings.TrimSpace(filterText) != "" {
		w, err := Filter(resourceType, filterText, 2)
		if err != nil {
			return List{}, err
		}
		cond, args = " AND "+w.SQL, append(args, w.Args...)
	}
	l := List{Start: page.StartIndex}
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &l.Total, `SELECT count(*) FROM `+from+cond, args...); err != nil {
			return err
		}
		if page.Count == 0 || l.Total < page.StartIndex {
			return nil
		}
		n := len(args)
		rows, err := tx.QueryxContext(ctx, query+cond+fmt.Sprintf(" ORDER BY %s OFFSET $%d LIMIT $%d", order, n+1, n+2),
			append(args, page.StartIndex-1, page.Count)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return after(tx)
	})
	if err != nil {
		return List{}, pg.MapError(fmt.Errorf("scim: list %s: %w", resourceType, err))
	}
	return l, nil
}
