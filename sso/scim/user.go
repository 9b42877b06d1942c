package scim

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
)

// userRow is a users row as the directory reads and writes it.
type userRow struct {
	ID             uuid.UUID  `db:"id"`
	TenantID       uuid.UUID  `db:"tenant_id"`
	UserName       *string    `db:"user_name"`
	ExternalID     *string    `db:"external_id"`
	Name           *string    `db:"name"`
	GivenName      *string    `db:"given_name"`
	FamilyName     *string    `db:"family_name"`
	Email          *string    `db:"email"`
	Locale         *string    `db:"locale"`
	DisplayName    *string    `db:"display_name"`
	Title          *string    `db:"title"`
	EmployeeNumber *string    `db:"employee_number"`
	Department     *string    `db:"department"`
	ManagerID      *string    `db:"manager_id"`
	Directory      []byte     `db:"directory"`
	Active         bool       `db:"active"`
	ProvisionedAt  *time.Time `db:"provisioned_at"`
	DeactivatedAt  *time.Time `db:"deactivated_at"`
	CreatedAt      time.Time  `db:"created_at"`
	UpdatedAt      time.Time  `db:"updated_at"`
	// Groups are the directory's groups the user is in (the read-only
	// groups attribute, RFC 7643 §4.1.2), read with loadGroups.
	Groups []groupRef `db:"-"`
}

// groupRef is one group a user is in.
type groupRef struct {
	UserID  uuid.UUID `db:"user_id"`
	GroupID uuid.UUID `db:"group_id"`
	Display string    `db:"display_name"`
}

// userSelect is userRow's columns of users u.
const userSelect = `u.id, u.tenant_id, u.user_name, u.external_id, u.name, u.given_name, u.family_name, u.email, u.locale,
	u.display_name, u.title, u.employee_number, u.department, u.manager_id, u.directory, u.active, u.provisioned_at,
	u.deactivated_at, u.created_at, u.updated_at`

// userVisible is the users the directory sees: those it provisioned and
// has not deleted, never an erased one.
const userVisible = `u.provisioned_at IS NOT NULL AND u.deprovisioned_at IS NULL AND u.erased_at IS NULL`

// maxIdentifier bounds userName and externalId (characters), as the users
// table does.
const maxIdentifier = 256

// setFrom sets the row's columns from doc: the attributes the hub reads
// become columns, the rest stays in directory as sent. A missing userName
// or a value of the wrong type is invalidValue.
func (r *userRow) setFrom(doc document) *Error {
	d := doc.clone()
	var err *Error
	take := func(m map[string]any, k string) *string {
		v, ok := m[k]
		delete(m, k)
		s, isStr := v.(string)
		if ok && !isStr && err == nil {
			err = errorf(InvalidValue, "%s must be a string", k)
		}
		if !isStr || s == "" {
			return nil
		}
		return &s
	}
	r.UserName, r.ExternalID = take(d, "userName"), take(d, "externalId")
	r.DisplayName, r.Title = take(d, "displayName"), take(d, "title")
	r.Active = true
	if a, ok := d["active"].(bool); ok {
		r.Active = a
	}
	delete(d, "active")
	name := asObject(d["name"])
	r.GivenName, r.FamilyName, r.Name = take(name, "givenName"), take(name, "familyName"), take(name, "formatted")
	cleanEmpty(d, "name")
	ext := asObject(d[SchemaEnterprise])
	r.EmployeeNumber, r.Department = take(ext, "employeeNumber"), take(ext, "department")
	manager := asObject(ext["manager"])
	r.ManagerID = take(manager, "value")
	cleanEmpty(ext, "manager")
	cleanEmpty(d, SchemaEnterprise)
	if err != nil {
		return err
	}
	if r.UserName == nil || strings.TrimSpace(*r.UserName) == "" {
		return errorf(InvalidValue, "userName is required")
	}
	if len([]rune(*r.UserName)) > maxIdentifier || (r.ExternalID != nil && len([]rune(*r.ExternalID)) > maxIdentifier) {
		return errorf(InvalidValue, "userName and externalId have at most %d characters", maxIdentifier)
	}
	r.Email, r.Locale = primaryEmail(doc), firstString(doc, "locale", "preferredLanguage")
	if tooLong(r.EmployeeNumber) || tooLong(r.Email) {
		return errorf(InvalidValue, "employeeNumber and the primary email have at most %d characters", maxIdentifier)
	}
	r.Directory = nil
	if len(d) > 0 {
		r.Directory = asJSON(d)
	}
	return nil
}

// tooLong reports a value longer than maxIdentifier: employeeNumber and
// email are indexed, and a longer one could pass no index.
func tooLong(s *string) bool { return s != nil && len([]rune(*s)) > maxIdentifier }

// cleanEmpty drops m[k] when it is an empty object.
func cleanEmpty(m map[string]any, k string) {
	if o, ok := m[k].(map[string]any); ok && len(o) == 0 {
		delete(m, k)
	}
}

func firstString(doc document, keys ...string) *string {
	for _, k := range keys {
		if s, ok := doc[k].(string); ok && s != "" {
			return &s
		}
	}
	return nil
}

// primaryEmail is the hub's one email of a user: the primary one, else the
// work one, else the first.
func primaryEmail(doc document) *string {
	list, _ := doc["emails"].([]any)
	pick := func(ok func(map[string]any) bool) *string {
		for _, e := range list {
			m := asObject(e)
			if s, isStr := m["value"].(string); isStr && s != "" && ok(m) {
				return &s
			}
		}
		return nil
	}
	if s := pick(func(m map[string]any) bool { return m["primary"] == true }); s != nil {
		return s
	}
	if s := pick(func(m map[string]any) bool { t, _ := m["type"].(string); return strings.EqualFold(t, "work") }); s != nil {
		return s
	}
	return pick(func(map[string]any) bool { return true })
}

// document is the row as a User document: directory with the columns laid
// over it.
func (r *userRow) document() document {
	doc := document{}
	if len(r.Directory) > 0 {
		_ = json.Unmarshal(r.Directory, &doc)
	}
	put := func(m map[string]any, k string, v *string) {
		if v != nil {
			m[k] = *v
		}
	}
	put(doc, "userName", r.UserName)
	put(doc, "externalId", r.ExternalID)
	put(doc, "displayName", r.DisplayName)
	put(doc, "title", r.Title)
	doc["active"] = r.Active
	name := mergeObjects(asObject(doc["name"]), nil)
	put(name, "givenName", r.GivenName)
	put(name, "familyName", r.FamilyName)
	put(name, "formatted", r.Name)
	setOrDelete(doc, "name", name)
	if _, ok := doc["emails"]; !ok && r.Email != nil {
		doc["emails"] = []any{map[string]any{"value": *r.Email, "primary": true}}
	}
	ext := mergeObjects(asObject(doc[SchemaEnterprise]), nil)
	put(ext, "employeeNumber", r.EmployeeNumber)
	put(ext, "department", r.Department)
	if r.ManagerID != nil {
		ext["manager"] = mergeObjects(asObject(ext["manager"]), map[string]any{"value": *r.ManagerID})
	}
	setOrDelete(doc, SchemaEnterprise, ext)
	return doc
}

// etag is a user's version: its last change, to the microsecond.
func (r *userRow) etag() string { return weakTag(r.UpdatedAt.UnixMicro()) }
