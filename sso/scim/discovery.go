package scim

// MaxResults is the most resources one list answers (count is lowered to
// it), as ServiceProviderConfig says; DefaultCount is a list's count when
// the request names none.
const (
	MaxResults   = 1000
	DefaultCount = 100
)

// serviceProviderConfig is RFC 7643 §5: what this directory supports.
func serviceProviderConfig(base string) map[string]any {
	return map[string]any{
		"schemas":          []string{SchemaSPConfig},
		"documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": MaxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "A SCIM token the tenant's admin issues at /api/v1/tenants/{tenant}/scim-tokens, sent as Authorization: Bearer <token>.",
			"specUri":     "https://www.rfc-editor.org/rfc/rfc6750",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": base + "/ServiceProviderConfig"},
	}
}

// resourceTypes is RFC 7643 §6: User, with the enterprise extension, and
// Group.
func resourceTypes(base string) []map[string]any {
	return []map[string]any{
		{
			"schemas": []string{SchemaResourceType}, "id": "User", "name": "User", "endpoint": "/Users",
			"description": "User Account", "schema": SchemaUser,
			"schemaExtensions": []map[string]any{{"schema": SchemaEnterprise, "required": false}},
			"meta":             map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/User"},
		},
		{
			"schemas": []string{SchemaResourceType}, "id": "Group", "name": "Group", "endpoint": "/Groups",
			"description": "Group", "schema": SchemaGroup,
			"meta": map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/Group"},
		},
	}
}

// groupAttributes are the Group schema's (RFC 7643 §4.2), as this
// directory keeps them.
var groupAttributes = []attribute{
	str("displayName"),
	complexOf("members", true, str("value"), attribute{name: "$ref", typ: typeReference}, str("display"), str("type")),
}

// schemas is RFC 7643 §7: the attribute definitions, made from the very
// tables the directory reads bodies and paths with.
func schemas(base string) []map[string]any {
	mk := func(id, name, desc string, attrs []attribute) map[string]any {
		var defs []map[string]any
		for _, a := range attrs {
			if a.name == "id" || a.name == "meta" || a.name == "externalId" {
				continue // common attributes (RFC 7643 §3.1), in no schema
			}
			defs = append(defs, definition(a))
		}
		return map[string]any{"schemas": []string{SchemaSchema}, "id": id, "name": name, "description": desc,
			"attributes": defs, "meta": map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + id}}
	}
	group := mk(SchemaGroup, "Group", "Group", groupAttributes)
	group["attributes"].([]map[string]any)[0]["required"] = true // displayName
	return []map[string]any{
		mk(SchemaUser, "User", "User Account", userAttributes),
		mk(SchemaEnterprise, "EnterpriseUser", "Enterprise User", enterpriseAttributes),
		group,
	}
}

var typeNames = map[attrType]string{typeString: "string", typeBoolean: "boolean", typeComplex: "complex",
	typeDateTime: "dateTime", typeReference: "reference"}

// definition is one attribute's definition (RFC 7643 §7).
func definition(a attribute) map[string]any {
	d := map[string]any{
		"name": a.name, "type": typeNames[a.typ], "multiValued": a.multi, "description": a.name,
		"required": false, "caseExact": false,
		"mutability": "readWrite", "returned": "default", "uniqueness": "none",
	}
	switch a.name {
	case "userName":
		d["uniqueness"], d["required"] = "server", true
	case "password":
		d["mutability"], d["returned"] = "writeOnly", "never"
	case "groups":
		d["mutability"] = "readOnly"
	case "$ref":
		d["referenceTypes"] = []string{"User"}
	case "profileUrl":
		d["referenceTypes"] = []string{"external"}
	}
	if a.typ == typeComplex && len(a.subs) > 0 {
		var subs []map[string]any
		for _, s := range a.subs {
			subs = append(subs, definition(s))
		}
		d["subAttributes"] = subs
	}
	return d
}
