package scim

import (
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// A User's columns, for filters: the users row is u.
var userColumns = map[string]column{
	"id":                {sql: "u.id::text", exact: true},
	"username":          {sql: "u.user_name"},
	"externalid":        {sql: "u.external_id", exact: true},
	"displayname":       {sql: "u.display_name"},
	"title":             {sql: "u.title"},
	"name.givenname":    {sql: "u.given_name"},
	"name.familyname":   {sql: "u.family_name"},
	"name.formatted":    {sql: "u.name"},
	"active":            {sql: "u.active", typ: typeBoolean},
	"meta.created":      {sql: "u.created_at", typ: typeDateTime},
	"meta.lastmodified": {sql: "u.updated_at", typ: typeDateTime},
	"nickname":          {sql: "(u.directory->>'nickName')"},
	"usertype":          {sql: "(u.directory->>'userType')"},
	"preferredlanguage": {sql: "(u.directory->>'preferredLanguage')"},
	"locale":            {sql: "(u.directory->>'locale')"},
	"timezone":          {sql: "(u.directory->>'timezone')"},
	"profileurl":        {sql: "(u.directory->>'profileUrl')"},
	"name.middlename":   {sql: "(u.directory->'name'->>'middleName')"},
}

// The enterprise extension's columns.
var enterpriseColumns = map[string]column{
	"employeenumber": {sql: "u.employee_number"},
	"department":     {sql: "u.department"},
	"manager":        {sql: "u.manager_id", exact: true},
	"manager.value":  {sql: "u.manager_id", exact: true},
	"costcenter":     {sql: "(u.directory->'" + SchemaEnterprise + "'->>'costCenter')"},
	"organization":   {sql: "(u.directory->'" + SchemaEnterprise + "'->>'organization')"},
	"division":       {sql: "(u.directory->'" + SchemaEnterprise + "'->>'division')"},
}

// userColumn resolves a User attribute path, the core URN prefix optional,
// the enterprise one required for its attributes.
func userColumn(p filter.AttributePath) (column, bool) {
	uri, known := schemaURN(p.URI())
	if !known {
		return column{}, false
	}
	key := strings.ToLower(p.AttributeName)
	if p.SubAttribute != nil {
		key += "." + strings.ToLower(*p.SubAttribute)
	}
	if uri == SchemaEnterprise {
		c, ok := enterpriseColumns[key]
		return c, ok
	}
	if c, ok := userColumns[key]; ok {
		return c, true
	}
	if strings.EqualFold(p.AttributeName, "groups") {
		return userGroupsColumn, true
	}
	a, ok := find(userAttributes, p.AttributeName)
	if !ok || !a.multi || a.readOnly {
		return column{}, false
	}
	return multiColumn(a), true
}

// multiColumn is a multi-valued attribute kept in users.directory: its
// elements, each elem, and their sub-attributes.
func multiColumn(a attribute) column {
	arr := "u.directory->'" + a.name + "'"
	return column{
		elements: "jsonb_array_elements(CASE jsonb_typeof(" + arr + ") WHEN 'array' THEN " + arr + " END) AS elem",
		subs: func(sub string) (column, bool) {
			s, ok := find(a.subs, sub)
			if !ok {
				return column{}, false
			}
			if s.typ == typeBoolean {
				return column{sql: "(CASE jsonb_typeof(elem->'" + s.name + "') WHEN 'boolean' THEN (elem->>'" + s.name + "')::boolean END)",
					typ: typeBoolean}, true
			}
			return column{sql: "(elem->>'" + s.name + "')"}, true
		},
	}
}

// userGroupsColumn is a User's groups: elem is a group's id.
var userGroupsColumn = column{
	elements: "(SELECT m.group_id FROM scim_group_members m WHERE m.tenant_id = u.tenant_id AND m.user_id = u.id) AS elem",
	subs: func(sub string) (column, bool) {
		if !strings.EqualFold(sub, "value") {
			return column{}, false
		}
		return column{sql: "elem.group_id::text", exact: true}, true
	},
}

// A Group's columns: the scim_groups row is g.
var groupColumns = map[string]column{
	"id":                {sql: "g.id::text", exact: true},
	"displayname":       {sql: "g.display_name"},
	"externalid":        {sql: "g.external_id", exact: true},
	"meta.created":      {sql: "g.created_at", typ: typeDateTime},
	"meta.lastmodified": {sql: "g.updated_at", typ: typeDateTime},
}

// membersColumn is a Group's members: elem is a member's user id.
var membersColumn = column{
	elements: "(SELECT m.user_id FROM scim_group_members m WHERE m.tenant_id = g.tenant_id AND m.group_id = g.id) AS elem",
	subs: func(sub string) (column, bool) {
		if !strings.EqualFold(sub, "value") {
			return column{}, false
		}
		return column{sql: "elem.user_id::text", exact: true}, true
	},
}

func groupColumn(p filter.AttributePath) (column, bool) {
	if p.URIPrefix != nil && !strings.EqualFold(p.URI(), SchemaGroup) {
		return column{}, false
	}
	if strings.EqualFold(p.AttributeName, "members") {
		return membersColumn, true
	}
	key := strings.ToLower(p.AttributeName)
	if p.SubAttribute != nil {
		key += "." + strings.ToLower(*p.SubAttribute)
	}
	c, ok := groupColumns[key]
	return c, ok
}
