package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// groupRow is a scim_groups row.
type groupRow struct {
	ID          uuid.UUID `db:"id"`
	TenantID    uuid.UUID `db:"tenant_id"`
	DisplayName string    `db:"display_name"`
	ExternalID  *string   `db:"external_id"`
	CreatedAt   time.Time `db:"created_at"`
	UpdatedAt   time.Time `db:"updated_at"`
	Version     int64     `db:"version"`
}

// member is one member of a group as answered.
type member struct {
	GroupID uuid.UUID `db:"group_id"`
	UserID  uuid.UUID `db:"user_id"`
	Display *string   `db:"display"`
}

func groupResource(g *groupRow, base string, members []member, withMembers bool) Resource {
	tag := weakTag(g.Version)
	body := map[string]any{"schemas": []string{SchemaGroup}, "id": g.ID.String(), "displayName": g.DisplayName,
		"meta": Meta{ResourceType: "Group", Created: stamp(g.CreatedAt), LastModified: stamp(g.UpdatedAt),
			Location: base + "/Groups/" + g.ID.String(), Version: tag}}
	if g.ExternalID != nil {
		body["externalId"] = *g.ExternalID
	}
	if withMembers {
		list := make([]map[string]any, 0, len(members))
		for _, m := range members {
			e := map[string]any{"value": m.UserID.String(), "$ref": base + "/Users/" + m.UserID.String(), "type": "User"}
			if m.Display != nil {
				e["display"] = *m.Display
			}
			list = append(list, e)
		}
		body["members"] = list
	}
	return Resource{Body: body, ETag: tag}
}

// groupInput is a Group body of a POST or PUT.
type groupInput struct {
	DisplayName string
	ExternalID  *string
	Members     []uuid.UUID
}

func parseGroup(body []byte) (groupInput, *Error) {
	in, err := decodeBody(body)
	if err != nil {
		return groupInput{}, err
	}
	var g groupInput
	for k, v := range in {
		switch strings.ToLower(k) {
		case "displayname":
			g.DisplayName, _ = v.(string)
		case "externalid":
			if s, ok := v.(string); ok && s != "" {
				g.ExternalID = &s
			} else if v != nil {
				return g, errorf(InvalidValue, "externalId must be a string")
			}
			if tooLong(g.ExternalID) {
				return g, errorf(InvalidValue, "externalId has at most %d characters", maxIdentifier)
			}
		case "members":
			if g.Members, err = memberIDs(v); err != nil {
				return g, err
			}
		}
	}
	if strings.TrimSpace(g.DisplayName) == "" || len([]rune(g.DisplayName)) > maxIdentifier {
		return g, errorf(InvalidValue, "displayName is required, at most %d characters", maxIdentifier)
	}
	return g, nil
}

// memberIDs reads members' values: [{"value": id}, …], or one such object.
func memberIDs(v any) ([]uuid.UUID, *Error) {
	list, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		list = []any{v}
	}
	ids := make([]uuid.UUID, 0, len(list))
	for _, e := range list {
		var s string
		for k, x := range asObject(e) {
			if strings.EqualFold(k, "value") {
				s, _ = x.(string)
			}
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, errorf(InvalidValue, "member %q is not a user of this directory", clip(s))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// groupError maps a unique violation to 409 uniqueness.
func groupError(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return &Error{Status: http.StatusConflict, ScimType: Uniqueness, Detail: "a group with this displayName or externalId exists"}
	}
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return pg.MapError(err)
}

// CreateGroup creates a group with its members (RFC 7644 §3.3).
func (s *Store) CreateGroup(ctx context.Context, by audit.Actor, tenant uuid.UUID, base string, body []byte) (Resource, error) {
	in, serr := parseGroup(body)
	if serr != nil {
		return Resource{}, serr
	}
	var g groupRow
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		now := s.Now()
		if err := tx.GetContext(ctx, &g, `INSERT INTO scim_groups (id, tenant_id, display_name, external_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) RETURNING *`, uuid.New(), tenant, in.DisplayName, in.ExternalID, now); err != nil {
			return err
		}
		added, err := s.addMembers(ctx, tx, tenant, g.ID, in.Members)
		if err != nil {
			return err
		}
		return s.auditGroup(ctx, tx, by, "scim.group.created", g, map[string]string{"members_added": fmt.Sprint(added)})
	})
	if err != nil {
		return Resource{}, groupError(err)
	}
	return s.GetGroup(ctx, tenant, base, g.ID.String(), Projection{})
}

func (s *Store) auditGroup(ctx context.Context, tx *sqlx.Tx, by audit.Actor, action string, g groupRow, details map[string]string) error {
	_, err := s.chain.Append(ctx, tx, &g.TenantID, by, audit.Event{Action: action, TargetType: "scim_group",
		TargetID: g.ID.String(), Details: details}, s.Now())
	return err
}

// checkMembers refuses ids that are not users the directory sees: a 400
// invalidValue, as Entra ID expects, rather than a membership silently
// dropped. It reads the named ids only (= ANY, a hashed array whatever the
// plan), never the group's members, and holds them (FOR KEY SHARE): a user
// being deleted meanwhile is checked again once deleted, and refused.
func checkMembers(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	var found []uuid.UUID
	err := tx.SelectContext(ctx, &found, `SELECT u.id FROM users u WHERE u.tenant_id = $1 AND u.id = ANY($2::uuid[]) AND `+userVisible+` FOR KEY SHARE OF u`,
		tenant, uuidArray(ids))
	if err != nil {
		return err
	}
	known := make(map[uuid.UUID]bool, len(found))
	for _, id := range found {
		known[id] = true
	}
	for _, id := range ids {
		if !known[id] {
			return errorf(InvalidValue, "member %q is not a user of this directory", id.String())
		}
	}
	return nil
}

func uuidArray(ids []uuid.UUID) any {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return pq.Array(s)
}

// addMembers adds ids to the group, set-wise; it answers how many were
// not members before.
func (s *Store) addMembers(ctx context.Context, tx *sqlx.Tx, tenant, group uuid.UUID, ids []uuid.UUID) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if err := checkMembers(ctx, tx, tenant, ids); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO scim_group_members (tenant_id, group_id, user_id)
		SELECT $1, $2, x.id FROM unnest($3::uuid[]) AS x(id) ON CONFLICT DO NOTHING`, tenant, group, uuidArray(ids))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// removeMembers removes ids from the group, all members when ids is nil.
func (s *Store) removeMembers(ctx context.Context, tx *sqlx.Tx, tenant, group uuid.UUID, ids []uuid.UUID, all bool) (int64, error) {
	q, args := `DELETE FROM scim_group_members WHERE tenant_id = $1 AND group_id = $2 AND user_id = ANY($3::uuid[])`,
		[]any{tenant, group, uuidArray(ids)}
	if all {
		q, args = `DELETE FROM scim_group_members WHERE tenant_id = $1 AND group_id = $2`, args[:2]
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// replaceMembers makes ids the group's members, set-wise.
func (s *Store) replaceMembers(ctx context.Context, tx *sqlx.Tx, tenant, group uuid.UUID, ids []uuid.UUID) (added, removed int64, err error) {
	if err := checkMembers(ctx, tx, tenant, ids); err != nil {
		return 0, 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM scim_group_members WHERE tenant_id = $1 AND group_id = $2
		AND NOT (user_id = ANY($3::uuid[]))`, tenant, group, uuidArray(ids))
	if err != nil {
		return 0, 0, err
	}
	removed, _ = res.RowsAffected()
	added, err = s.addMembers(ctx, tx, tenant, group, ids)
	return added, removed, err
}

// GetGroup reads a group, its members unless the projection leaves them
// out (then they are not read at all).
func (s *Store) GetGroup(ctx context.Context, tenant uuid.UUID, base, id string, proj Projection) (Resource, error) {
	gid, serr := parseID("group", id)
	if serr != nil {
		return Resource{}, serr
	}
	var res Resource
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var g groupRow
		if err := tx.GetContext(ctx, &g, `SELECT * FROM scim_groups WHERE tenant_id = $1 AND id = $2`, tenant, gid); err != nil {
			return err
		}
		with := !proj.Excludes("members")
		var members map[uuid.UUID][]member
		if with {
			var err error
			if members, err = loadMembers(ctx, tx, tenant, []uuid.UUID{gid}); err != nil {
				return err
			}
		}
		res = groupResource(&g, base, members[gid], with)
		return nil
	})
	if pg.IsNoRows(err) {
		return Resource{}, notFound("group", id)
	}
	return res, groupError(err)
}

// loadMembers reads the members of groups.
func loadMembers(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, groups []uuid.UUID) (map[uuid.UUID][]member, error) {
	var ms []member
	err := tx.SelectContext(ctx, &ms, `SELECT m.group_id, m.user_id, coalesce(u.display_name, u.user_name) AS display
		FROM scim_group_members m JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
		WHERE m.tenant_id = $1 AND m.group_id = ANY($2::uuid[]) ORDER BY m.group_id, m.user_id`, tenant, uuidArray(groups))
	out := map[uuid.UUID][]member{}
	for _, m := range ms {
		out[m.GroupID] = append(out[m.GroupID], m)
	}
	return out, err
}

// lockGroup reads a group for a change, checking If-Match.
func lockGroup(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, id, ifMatch string) (groupRow, error) {
	var g groupRow
	gid, serr := parseID("group", id)
	if serr != nil {
		return g, serr
	}
	err := tx.GetContext(ctx, &g, `SELECT * FROM scim_groups WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, gid)
	if pg.IsNoRows(err) {
		return g, notFound("group", id)
	}
	if err != nil {
		return g, err
	}
	if !tagMatches(ifMatch, weakTag(g.Version)) {
		return g, errPrecondition
	}
	return g, nil
}

// bump records a change of the group: a new version.
func bump(ctx context.Context, tx *sqlx.Tx, g *groupRow, now time.Time) error {
	return tx.GetContext(ctx, g, `UPDATE scim_groups SET display_name = $3, external_id = $4, updated_at = $5, version = version + 1
		WHERE tenant_id = $1 AND id = $2 RETURNING *`, g.TenantID, g.ID, g.DisplayName, g.ExternalID, now)
}

// ReplaceGroup replaces a group's name, externalId and members (RFC 7644
// §3.5.1).
func (s *Store) ReplaceGroup(ctx context.Context, by audit.Actor, tenant uuid.UUID, base, id, ifMatch string, body []byte) (Resource, error) {
	in, serr := parseGroup(body)
	if serr != nil {
		return Resource{}, serr
	}
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		g, err := lockGroup(ctx, tx, tenant, id, ifMatch)
		if err != nil {
			return err
		}
		added, removed, err := s.replaceMembers(ctx, tx, tenant, g.ID, in.Members)
		if err != nil {
			return err
		}
		g.DisplayName, g.ExternalID = in.DisplayName, in.ExternalID
		if err := bump(ctx, tx, &g, s.Now()); err != nil {
			return err
		}
		return s.auditGroup(ctx, tx, by, "scim.group.replaced", g, map[string]string{
			"members_added": fmt.Sprint(added), "members_removed": fmt.Sprint(removed)})
	})
	if err != nil {
		return Resource{}, groupError(err)
	}
	return s.GetGroup(ctx, tenant, base, id, Projection{})
}

// PatchGroup applies a PATCH (RFC 7644 §3.5.2) to a group, all or none.
// Membership changes are statements over the ids the operations name,
// never a read of the group's members, so a group of any size is patched
// in the time its changes take. The audit log has one entry for the
// patch, with the counts of members added and removed.
func (s *Store) PatchGroup(ctx context.Context, by audit.Actor, tenant uuid.UUID, id, ifMatch string, ops []Operation) error {
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		g, err := lockGroup(ctx, tx, tenant, id, ifMatch)
		if err != nil {
			return err
		}
		p := groupPatch{s: s, tx: tx, g: &g}
		for _, op := range ops {
			if err := p.apply(ctx, op); err != nil {
				return err
			}
		}
		if err := p.flush(ctx); err != nil {
			return err
		}
		if err := bump(ctx, tx, &g, s.Now()); err != nil {
			return err
		}
		return s.auditGroup(ctx, tx, by, "scim.group.patched", g, map[string]string{
			"members_added": fmt.Sprint(p.added), "members_removed": fmt.Sprint(p.removed)})
	})
	return groupError(err)
}

// groupPatch is a PATCH being applied to a group. A run of operations
// that add members, or remove named ones (Okta sends one operation per
// member), is gathered and applied as one statement.
type groupPatch struct {
	s              *Store
	tx             *sqlx.Tx
	g              *groupRow
	added, removed int64
	pendingOp      string
	pending        []uuid.UUID
}

// gather adds ids to the run of op, applying the run before when it was
// of the other op.
func (p *groupPatch) gather(ctx context.Context, op string, ids []uuid.UUID) error {
	if p.pendingOp != op {
		if err := p.flush(ctx); err != nil {
			return err
		}
		p.pendingOp = op
	}
	p.pending = append(p.pending, ids...)
	return nil
}

// flush applies the gathered run.
func (p *groupPatch) flush(ctx context.Context) error {
	op, ids := p.pendingOp, p.pending
	p.pendingOp, p.pending = "", nil
	var n int64
	var err error
	switch op {
	case "add":
		n, err = p.s.addMembers(ctx, p.tx, p.g.TenantID, p.g.ID, ids)
		p.added += n
	case "remove":
		n, err = p.s.removeMembers(ctx, p.tx, p.g.TenantID, p.g.ID, ids, false)
		p.removed += n
	}
	return err
}

func (p *groupPatch) apply(ctx context.Context, op Operation) error {
	v, serr := decodeValue(op.Value)
	if serr != nil {
		return serr
	}
	if op.Path == nil {
		obj, ok := v.(map[string]any)
		if !ok {
			return errorf(InvalidValue, "without a path, the value must be an object of attributes")
		}
		for k, x := range obj {
			if err := p.attribute(ctx, op.Op, k, nil, x, true); err != nil {
				return err
			}
		}
		return nil
	}
	ap := op.Path.AttributePath
	if ap.URIPrefix != nil && !strings.EqualFold(ap.URI(), SchemaGroup) {
		return errorf(InvalidPath, "groups have no schema %s", clip(ap.URI()))
	}
	if ap.SubAttribute != nil || op.Path.SubAttribute != nil {
		return errorf(InvalidPath, "the path %q names no attribute of a group", clip(op.Raw))
	}
	return p.attribute(ctx, op.Op, ap.AttributeName, op.Path.ValueExpression, v, false)
}

// attribute applies op to one attribute of the group.
func (p *groupPatch) attribute(ctx context.Context, op, name string, sel filter.Expression, v any, noPath bool) error {
	switch strings.ToLower(name) {
	case "displayname":
		s, ok := v.(string)
		if op == "remove" || !ok || strings.TrimSpace(s) == "" || len([]rune(s)) > maxIdentifier {
			return errorf(InvalidValue, "displayName is required, at most %d characters", maxIdentifier)
		}
		p.g.DisplayName = s
	case "externalid":
		s, _ := v.(string)
		if op == "remove" || s == "" {
			p.g.ExternalID = nil
		} else if len([]rune(s)) > maxIdentifier {
			return errorf(InvalidValue, "externalId has at most %d characters", maxIdentifier)
		} else {
			p.g.ExternalID = &s
		}
	case "members":
		return p.members(ctx, op, sel, v)
	case "id":
		if s, _ := v.(string); noPath && s == p.g.ID.String() {
			return nil
		}
		return errorf(Mutability, "id is read-only")
	case "schemas", "meta":
		if noPath {
			return nil
		}
		return errorf(Mutability, "%s is read-only", name)
	default:
		return errorf(InvalidPath, "groups have no attribute %s", clip(name))
	}
	return nil
}

// members adds, removes or replaces members: add members [{value}],
// remove members[value eq "id"] or members with a value list (Entra ID),
// remove members without either (all), replace members (the whole set).
func (p *groupPatch) members(ctx context.Context, op string, sel filter.Expression, v any) error {
	var ids []uuid.UUID
	if sel != nil {
		if op != "remove" {
			return errorf(InvalidPath, "only remove takes a members filter")
		}
		var ok bool
		if ids, ok = selectedIDs(sel); !ok {
			return errorf(InvalidFilter, `a members filter is value eq "id", or several joined by or`)
		}
	} else {
		var serr *Error
		if ids, serr = memberIDs(v); serr != nil {
			return serr
		}
	}
	if op == "add" || op == "remove" && (sel != nil || v != nil) {
		return p.gather(ctx, op, ids)
	}
	if err := p.flush(ctx); err != nil {
		return err
	}
	if op == "remove" { // members, with neither filter nor value: all of them
		n, err := p.s.removeMembers(ctx, p.tx, p.g.TenantID, p.g.ID, nil, true)
		p.removed += n
		return err
	}
	a, r, err := p.s.replaceMembers(ctx, p.tx, p.g.TenantID, p.g.ID, ids)
	p.added, p.removed = p.added+a, p.removed+r
	return err
}

// selectedIDs reads the ids of value eq "id" [or value eq "id" …]; an id
// that is not one selects nothing.
func selectedIDs(e filter.Expression) ([]uuid.UUID, bool) {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if !strings.EqualFold(string(x.Operator), "or") {
			return nil, false
		}
		l, ok := selectedIDs(x.Left)
		if !ok {
			return nil, false
		}
		r, ok := selectedIDs(x.Right)
		return append(l, r...), ok
	case *filter.AttributeExpression:
		s, isStr := x.CompareValue.(string)
		if !strings.EqualFold(x.AttributePath.AttributeName, "value") || x.AttributePath.SubAttribute != nil ||
			!strings.EqualFold(string(x.Operator), "eq") || !isStr {
			return nil, false
		}
		if id, err := uuid.Parse(unescape(s)); err == nil {
			return []uuid.UUID{id}, true
		}
		return nil, true
	}
	return nil, false
}

// DeleteGroup deletes a group and its memberships (RFC 7644 §3.6).
func (s *Store) DeleteGroup(ctx context.Context, by audit.Actor, tenant uuid.UUID, id, ifMatch string) error {
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		g, err := lockGroup(ctx, tx, tenant, id, ifMatch)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM scim_groups WHERE tenant_id = $1 AND id = $2`, tenant, g.ID); err != nil {
			return err
		}
		return s.auditGroup(ctx, tx, by, "scim.group.deleted", g, nil)
	})
	return groupError(err)
}

// ListGroups answers a page of the groups a filter selects, oldest first,
// their members unless the projection leaves them out.
func (s *Store) ListGroups(ctx context.Context, tenant uuid.UUID, base, filterText string, page Page, proj Projection) (List, error) {
	var rows []groupRow
	var members map[uuid.UUID][]member
	with := !proj.Excludes("members")
	l, err := s.list(ctx, tenant, "Group", filterText, page, `scim_groups g WHERE g.tenant_id = $1`,
		`SELECT g.* FROM scim_groups g WHERE g.tenant_id = $1`, "g.created_at, g.id",
		func(r *sqlx.Rows) error {
			var g groupRow
			err := r.StructScan(&g)
			rows = append(rows, g)
			return err
		},
		func(tx *sqlx.Tx) error {
			if !with || len(rows) == 0 {
				return nil
			}
			ids := make([]uuid.UUID, len(rows))
			for i, g := range rows {
				ids[i] = g.ID
			}
			var err error
			members, err = loadMembers(ctx, tx, tenant, ids)
			return err
		})
	for i := range rows {
		l.Resources = append(l.Resources, groupResource(&rows[i], base, members[rows[i].ID], with))
	}
	return l, err
}
