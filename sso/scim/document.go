package scim

import (
	"encoding/json"
	"maps"
	"strings"
)

// A document is a User as the hub keeps it between reading and writing: the
// core attributes under their canonical names, the enterprise extension
// under SchemaEnterprise, another extension under its URN as sent. Values
// are JSON values (string, bool, float64, map[string]any, []any).
type document map[string]any

// normalizeUser turns a POST or PUT body into a document: names made
// canonical, booleans sent as strings ("True", Entra ID) made booleans, a
// manager sent as a bare id made {"value": id}. Read-only attributes (id,
// meta, groups) and schemas are ignored, as RFC 7644 §3.3 lets a provider
// do; an attribute of no schema is dropped.
func normalizeUser(in map[string]any) (document, *Error) {
	doc := document{}
	for k, v := range in {
		if err := doc.put(k, v); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// put adds one top-level key of a body to doc.
func (doc document) put(k string, v any) *Error {
	if strings.EqualFold(k, "schemas") {
		return nil
	}
	if isURN(k) {
		return doc.putExtension(k, v)
	}
	a, ok := find(userAttributes, k)
	if !ok || a.readOnly || a.name == "password" {
		return nil
	}
	nv, err := normalizeValue(a, v)
	if err != nil {
		return err
	}
	setOrDelete(doc, a.name, nv)
	return nil
}

// putExtension adds an extension's container, or one attribute named with
// its URN prefix ("urn:…:enterprise:2.0:User:department").
func (doc document) putExtension(k string, v any) *Error {
	if uri, known := schemaURN(k); known {
		obj, ok := v.(map[string]any)
		if !ok {
			return errorf(InvalidValue, "%s must be an object", clip(k))
		}
		if uri == "" { // core attributes inside the core URN's container
			for ck, cv := range obj {
				if err := doc.put(ck, cv); err != nil {
					return err
				}
			}
			return nil
		}
		ext := document{}
		for ek, ev := range obj {
			a, ok := find(enterpriseAttributes, ek)
			if !ok {
				continue
			}
			nv, err := normalizeValue(a, ev)
			if err != nil {
				return err
			}
			setOrDelete(ext, a.name, nv)
		}
		setOrDelete(doc, SchemaEnterprise, map[string]any(ext))
		return nil
	}
	if i := strings.LastIndex(k, ":"); i > 0 {
		if uri, known := schemaURN(k[:i]); known && uri == SchemaEnterprise {
			return doc.putExtension(SchemaEnterprise, mergeInto(doc[SchemaEnterprise], k[i+1:], v))
		}
	}
	if _, ok := v.(map[string]any); !ok {
		return errorf(InvalidValue, "extension %s must be an object", clip(k))
	}
	doc[k] = v // another extension's attributes, kept as sent
	return nil
}

// mergeInto is container (an object, or nothing) with key set to v.
func mergeInto(container any, key string, v any) map[string]any {
	m := map[string]any{}
	if c, ok := container.(map[string]any); ok {
		maps.Copy(m, c)
	}
	m[key] = v
	return m
}

// setOrDelete sets k, or deletes it when v is nothing (null, "", an empty
// object or list): RFC 7643 §2.5, unassigned and null are the same.
func setOrDelete(m map[string]any, k string, v any) {
	if empty(v) {
		delete(m, k)
		return
	}
	m[k] = v
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// normalizeValue checks v against a and makes it canonical.
func normalizeValue(a attribute, v any) (any, *Error) {
	if v == nil {
		return nil, nil
	}
	if a.multi {
		list, ok := v.([]any)
		if !ok {
			list = []any{v} // one value where a list is expected: Entra sends so
		}
		if len(list) > MaxValues {
			return nil, tooManyValues(a.name)
		}
		out := make([]any, 0, len(list))
		for _, e := range list {
			ne, err := normalizeSingle(a, e)
			if err != nil {
				return nil, err
			}
			if !empty(ne) {
				out = append(out, ne)
			}
		}
		return out, nil
	}
	return normalizeSingle(a, v)
}

func tooManyValues(name string) *Error {
	return errorf(InvalidValue, "%s has at most %d values", name, MaxValues)
}

// normalizeSingle checks one value of a.
func normalizeSingle(a attribute, v any) (any, *Error) {
	switch a.typ {
	case typeAny:
		return v, nil
	case typeBoolean:
		return toBool(a.name, v)
	case typeComplex:
		return normalizeComplex(a, v)
	}
	switch v.(type) {
	case nil:
		return nil, nil
	case string:
		return v, nil
	case float64, json.Number, bool:
		return nil, errorf(InvalidValue, "%s must be a string", a.name)
	}
	return nil, errorf(InvalidValue, "%s must be a string", a.name)
}

// normalizeComplex checks an object's sub-attributes; a manager may be sent
// as its id alone (Entra ID), a multi-valued attribute's value as a bare
// string.
func normalizeComplex(a attribute, v any) (any, *Error) {
	if s, ok := v.(string); ok && (a.name == "manager" || a.multi) {
		v = map[string]any{"value": s}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(InvalidValue, "%s must be an object", a.name)
	}
	out := map[string]any{}
	for k, sv := range obj {
		sub, ok := find(a.subs, k)
		if !ok {
			continue
		}
		nv, err := normalizeSingle(sub, sv)
		if err != nil {
			return nil, err
		}
		setOrDelete(out, sub.name, nv)
	}
	return out, nil
}

// toBool reads a boolean, or the strings "true" and "false" in any case
// (Entra ID sends "True" and "False").
func toBool(name string, v any) (any, *Error) {
	switch b := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return b, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(b)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return nil, errorf(InvalidValue, "%s must be a boolean", name)
}

// clone is a deep copy of a document, through JSON.
func (doc document) clone() document {
	b, _ := json.Marshal(doc)
	var out document
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = document{}
	}
	return out
}
