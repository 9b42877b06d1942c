package scim

import "strings"

// The URNs of the schemas and messages the directory speaks (RFC 7643 §8.7,
// RFC 7644 §3.1).
const (
	SchemaUser         = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup        = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaListResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaPatchOp      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaError        = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaSPConfig     = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResourceType = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema       = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// attrType is how an attribute's values are checked and compared.
type attrType int

const (
	typeString attrType = iota
	typeBoolean
	typeComplex
	typeDateTime
	typeReference
	// typeAny is an attribute of an extension the hub has no schema of:
	// kept as sent.
	typeAny
)

// attribute is one attribute of a schema (RFC 7643 §7), as far as the hub
// needs it: its canonical name (names match ignoring case, §2.1), type,
// plurality, sub-attributes, and whether a client may write it.
type attribute struct {
	name     string
	typ      attrType
	multi    bool
	readOnly bool
	subs     []attribute
}

func str(name string) attribute  { return attribute{name: name} }
func flag(name string) attribute { return attribute{name: name, typ: typeBoolean} }
func complexOf(name string, multi bool, subs ...attribute) attribute {
	return attribute{name: name, typ: typeComplex, multi: multi, subs: subs}
}

// multiSubs are the sub-attributes of the plain multi-valued attributes
// (RFC 7643 §2.4).
var multiSubs = []attribute{str("value"), str("display"), str("type"), flag("primary")}

// userAttributes are the core User schema's attributes a client may send
// (RFC 7643 §4.1); password is accepted and never kept.
var userAttributes = []attribute{
	str("userName"),
	complexOf("name", false, str("formatted"), str("familyName"), str("givenName"), str("middleName"),
		str("honorificPrefix"), str("honorificSuffix")),
	str("displayName"), str("nickName"), {name: "profileUrl", typ: typeReference}, str("title"), str("userType"),
	str("preferredLanguage"), str("locale"), str("timezone"), flag("active"), str("password"),
	complexOf("emails", true, multiSubs...), complexOf("phoneNumbers", true, multiSubs...),
	complexOf("ims", true, multiSubs...), complexOf("photos", true, multiSubs...),
	complexOf("addresses", true, str("formatted"), str("streetAddress"), str("locality"), str("region"),
		str("postalCode"), str("country"), str("type"), flag("primary")),
	{name: "groups", typ: typeComplex, multi: true, readOnly: true, subs: []attribute{str("value"), str("$ref"), str("display"), str("type")}},
	complexOf("entitlements", true, multiSubs...), complexOf("roles", true, multiSubs...),
	complexOf("x509Certificates", true, multiSubs...),
	str("externalId"),
	{name: "id", readOnly: true}, {name: "meta", typ: typeComplex, readOnly: true},
}

// enterpriseAttributes are the enterprise User extension's (RFC 7643 §4.3).
var enterpriseAttributes = []attribute{
	str("employeeNumber"), str("costCenter"), str("organization"), str("division"), str("department"),
	complexOf("manager", false, str("value"), str("$ref"), str("displayName")),
}

// find is the attribute of attrs named name, ignoring case.
func find(attrs []attribute, name string) (attribute, bool) {
	for _, a := range attrs {
		if strings.EqualFold(a.name, name) {
			return a, true
		}
	}
	return attribute{}, false
}

// schemaURN is the canonical spelling of a schema URN a client sent in any
// case, and whether it is a User schema the hub knows (core or
// enterprise). Another extension's URN passes through as sent.
func schemaURN(uri string) (string, bool) {
	switch {
	case uri == "" || strings.EqualFold(uri, SchemaUser):
		return "", true
	case strings.EqualFold(uri, SchemaEnterprise):
		return SchemaEnterprise, true
	}
	return uri, false
}

// isURN reports a key that names a schema (an extension's container).
func isURN(key string) bool { return len(key) > 4 && strings.EqualFold(key[:4], "urn:") }
