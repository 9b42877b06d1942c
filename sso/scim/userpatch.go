package scim

import (
	"encoding/json"
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// applyUser applies ops to doc in order (RFC 7644 §3.5.2), stopping at the
// first that fails; the caller keeps the original until all succeed. id is
// the user's, which a value may repeat but never change.
func applyUser(doc document, id string, ops []Operation) *Error {
	if len(ops) > MaxUserOperations {
		return errorf(TooMany, "a PATCH of a user has at most %d operations", MaxUserOperations)
	}
	for _, op := range ops {
		v, err := decodeValue(op.Value)
		if err != nil {
			return err
		}
		if op.Path == nil {
			err = applyNoPath(doc, id, op.Op, v)
		} else {
			err = applyPath(doc, op.Op, *op.Path, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// applyNoPath is an add or replace whose value is an object of attributes
// (§3.5.2.1, §3.5.2.3). Its keys may be paths themselves: Entra ID sends
// "name.givenName" and "urn:…:enterprise:2.0:User:department" so.
func applyNoPath(doc document, id, op string, v any) *Error {
	obj, ok := v.(map[string]any)
	if !ok {
		return errorf(InvalidValue, "without a path, the value must be an object of attributes")
	}
	keys := slices.Sorted(mapKeys(obj))
	for _, k := range keys {
		val := obj[k]
		switch strings.ToLower(k) {
		case "schemas", "meta":
			continue
		case "id":
			if s, _ := val.(string); s == id {
				continue
			}
			return errorf(Mutability, "id is read-only")
		}
		if isContainer(k) {
			inner, ok := val.(map[string]any)
			if !ok {
				return errorf(InvalidValue, "%s must be an object", clip(k))
			}
			prefix := ""
			if uri, _ := schemaURN(k); uri != "" {
				prefix = uri + ":"
			}
			for _, ik := range slices.Sorted(mapKeys(inner)) {
				if err := applyKey(doc, op, prefix+ik, inner[ik]); err != nil {
					return err
				}
			}
			continue
		}
		if err := applyKey(doc, op, k, val); err != nil {
			return err
		}
	}
	return nil
}

// isContainer reports a key that names a schema rather than an attribute:
// the core or enterprise User URN, or another extension's
// ("urn:…:CustomExtension:2.0:User").
func isContainer(k string) bool {
	if !isURN(k) {
		return false
	}
	if _, known := schemaURN(k); known {
		return true
	}
	i := strings.LastIndex(k, ":")
	return strings.EqualFold(k[i+1:], "User")
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// applyKey applies one key of a value object as a path.
func applyKey(doc document, op, key string, v any) *Error {
	p, err := ParsePath(key)
	if err != nil {
		if isURN(key) { // another extension's container, kept as sent
			return doc.putExtension(key, v)
		}
		return err.(*Error)
	}
	return applyPath(doc, op, p, v)
}

// target is what a path names within a document.
type target struct {
	container map[string]any // doc, or an extension's object
	ext       string         // the extension's key in doc, "" for core
	attr      attribute
	sub       *attribute
	filter    filter.Expression
}

// resolve finds what p names; an unknown attribute is invalidPath, a
// read-only one mutability.
func resolve(doc document, p filter.Path, create bool) (target, *Error) {
	uri, known := schemaURN(p.AttributePath.URI())
	t := target{container: doc, filter: p.ValueExpression}
	attrs := userAttributes
	if !known {
		return resolveOther(doc, uri, p, create)
	}
	if uri == SchemaEnterprise {
		attrs, t.ext = enterpriseAttributes, SchemaEnterprise
		t.container = extension(doc, SchemaEnterprise, create)
	}
	a, ok := find(attrs, p.AttributePath.AttributeName)
	if !ok {
		return t, errorf(InvalidPath, "users have no attribute %s", clip(p.AttributePath.AttributeName))
	}
	if a.readOnly {
		return t, errorf(Mutability, "%s is read-only", a.name)
	}
	t.attr = a
	sub := p.AttributePath.SubAttributeName()
	if p.ValueExpression != nil {
		sub = p.SubAttributeName()
		if !a.multi {
			return t, errorf(InvalidPath, "%s is not multi-valued: it takes no filter", a.name)
		}
	}
	if sub != "" {
		s, ok := find(a.subs, sub)
		if !ok {
			return t, errorf(InvalidPath, "%s has no sub-attribute %s", a.name, clip(sub))
		}
		t.sub = &s
	}
	return t, nil
}

// extension is doc's object of extension uri, made (and added when
// create) if it has none.
func extension(doc document, uri string, create bool) map[string]any {
	ext, _ := doc[uri].(map[string]any)
	if ext == nil {
		ext = map[string]any{}
		if create {
			doc[uri] = ext
		}
	}
	return ext
}

// resolveOther finds an attribute of an extension the hub has no schema
// of (Entra ID's custom ones): kept as sent, named as first sent; it takes
// no sub-attribute or filter.
func resolveOther(doc document, uri string, p filter.Path, create bool) (target, *Error) {
	if p.ValueExpression != nil || p.AttributePath.SubAttribute != nil || p.SubAttribute != nil {
		return target{}, errorf(InvalidPath, "an attribute of %s takes no sub-attribute or filter", clip(uri))
	}
	for k := range doc {
		if strings.EqualFold(k, uri) {
			uri = k
		}
	}
	ext := extension(doc, uri, create)
	name := p.AttributePath.AttributeName
	for k := range ext {
		if strings.EqualFold(k, name) {
			name = k
		}
	}
	return target{container: ext, ext: uri, attr: attribute{name: name, typ: typeAny}}, nil
}

// applyPath applies op at path p.
func applyPath(doc document, op string, p filter.Path, v any) *Error {
	t, err := resolve(doc, p, op != "remove")
	if err != nil {
		return err
	}
	if t.attr.name == "password" {
		return nil // accepted, never kept
	}
	switch {
	case t.filter != nil:
		err = t.applyFiltered(op, v)
	case t.sub != nil:
		err = t.applySub(op, v)
	default:
		err = t.applyWhole(op, v)
	}
	if err == nil && t.ext != "" && len(t.container) == 0 {
		delete(doc, t.ext)
	}
	return err
}

// applyWhole sets, adds to or removes the attribute itself.
func (t target) applyWhole(op string, v any) *Error {
	name := t.attr.name
	if op == "remove" {
		delete(t.container, name)
		return nil
	}
	nv, err := normalizeValue(t.attr, v)
	if err != nil {
		return err
	}
	switch {
	case op == "add" && t.attr.multi:
		list, _ := t.container[name].([]any)
		added, _ := nv.([]any)
		if slices.ContainsFunc(added, isPrimary) {
			list = demoted(list, nil)
		}
		seen := make(map[string]bool, len(list)+len(added))
		for _, e := range list {
			seen[string(asJSON(e))] = true
		}
		for _, e := range added {
			if k := string(asJSON(e)); !seen[k] {
				seen[k] = true
				list = append(list, e)
			}
		}
		if len(list) > MaxValues {
			return tooManyValues(name)
		}
		setOrDelete(t.container, name, list)
	case op == "add" && t.attr.typ == typeComplex:
		obj, _ := t.container[name].(map[string]any)
		setOrDelete(t.container, name, mergeObjects(obj, nv))
	default:
		setOrDelete(t.container, name, nv)
	}
	return nil
}

func mergeObjects(old map[string]any, v any) map[string]any {
	out := map[string]any{}
	for k, x := range old {
		out[k] = x
	}
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			out[k] = x
		}
	}
	return out
}

// applySub sets or removes a sub-attribute: of the object (name.givenName),
// or of every value of a multi-valued attribute.
func (t target) applySub(op string, v any) *Error {
	var nv any
	if op != "remove" {
		var err *Error
		if nv, err = normalizeSingle(*t.sub, v); err != nil {
			return err
		}
	}
	name := t.attr.name
	if !t.attr.multi {
		obj := mergeObjects(asObject(t.container[name]), nil)
		setOrDelete(obj, t.sub.name, nv)
		setOrDelete(t.container, name, obj)
		return nil
	}
	list, _ := t.container[name].([]any)
	if len(list) == 0 && op != "remove" {
		list = []any{map[string]any{}}
	}
	for i, e := range list {
		obj := mergeObjects(asObject(e), nil)
		setOrDelete(obj, t.sub.name, nv)
		list[i] = obj
	}
	setOrDelete(t.container, name, dropEmpty(list))
	return nil
}

func asObject(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// dropEmpty leaves out the values a removal left without a value.
func dropEmpty(list []any) []any {
	out := list[:0]
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && m["value"] == nil && !hasAddressPart(m) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// hasAddressPart reports an address, which has no value sub-attribute.
func hasAddressPart(m map[string]any) bool {
	for _, k := range []string{"formatted", "streetAddress", "locality", "region", "postalCode", "country"} {
		if m[k] != nil {
			return true
		}
	}
	return false
}

// applyFiltered applies op to the values the filter selects
// (emails[type eq "work"].value). An add or replace that selects none adds
// a value made of the filter's equalities, as Okta and Entra ID expect of
// emails[type eq "work"].value; a filter that says nothing to make one
// from is noTarget.
func (t target) applyFiltered(op string, v any) *Error {
	name := t.attr.name
	list, _ := t.container[name].([]any)
	var matched []int
	for i, e := range list {
		ok, err := matches(t.attr, asObject(e), t.filter)
		if err != nil {
			return err
		}
		if ok {
			matched = append(matched, i)
		}
	}
	if op == "remove" {
		return t.removeFiltered(list, matched)
	}
	var nv any
	var err *Error
	if t.sub != nil {
		nv, err = normalizeSingle(*t.sub, v)
	} else {
		nv, err = normalizeComplex(t.attr, v)
	}
	if err != nil {
		return err
	}
	if len(matched) == 0 {
		made, ok := equalities(t.attr, t.filter)
		if !ok {
			return errorf(NoTarget, "the filter of %s selects no value", name)
		}
		if len(list) >= MaxValues {
			return tooManyValues(name)
		}
		list = append(list, made)
		matched = []int{len(list) - 1}
	}
	for _, i := range matched {
		obj := mergeObjects(asObject(list[i]), nil)
		if t.sub != nil {
			setOrDelete(obj, t.sub.name, nv)
		} else {
			obj = mergeObjects(obj, nv)
		}
		list[i] = obj
	}
	if slices.ContainsFunc(matched, func(i int) bool { return isPrimary(list[i]) }) {
		list = demoted(list, matched)
	}
	setOrDelete(t.container, name, dropEmpty(list))
	return nil
}

func isPrimary(v any) bool { return asObject(v)["primary"] == true }

// demoted is list with primary false on every value but those at keep:
// a PATCH that makes a value primary makes the others not (RFC 7644
// §3.5.2), so the hub's email follows the directory's new primary one.
func demoted(list []any, keep []int) []any {
	out := make([]any, len(list))
	for i, e := range list {
		out[i] = e
		if isPrimary(e) && !slices.Contains(keep, i) {
			obj := mergeObjects(asObject(e), nil)
			obj["primary"] = false
			out[i] = obj
		}
	}
	return out
}

func (t target) removeFiltered(list []any, matched []int) *Error {
	var out []any
	for i, e := range list {
		switch {
		case !slices.Contains(matched, i):
			out = append(out, e)
		case t.sub != nil:
			obj := mergeObjects(asObject(e), nil)
			delete(obj, t.sub.name)
			out = append(out, obj)
		}
	}
	setOrDelete(t.container, t.attr.name, dropEmpty(out))
	return nil
}

// matches evaluates a value filter on one value of a.
func matches(a attribute, elem map[string]any, e filter.Expression) (bool, *Error) {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, err := matches(a, elem, x.Left)
		if err != nil {
			return false, err
		}
		r, err := matches(a, elem, x.Right)
		if err != nil {
			return false, err
		}
		if strings.EqualFold(string(x.Operator), "or") {
			return l || r, nil
		}
		return l && r, nil
	case *filter.NotExpression:
		in, err := matches(a, elem, x.Expression)
		return !in, err
	case *filter.AttributeExpression:
		return matchesAttr(a, elem, x)
	}
	return false, errorf(InvalidFilter, "the path's filter cannot nest another")
}

func matchesAttr(a attribute, elem map[string]any, x *filter.AttributeExpression) (bool, *Error) {
	p := x.AttributePath
	s, ok := find(a.subs, p.AttributeName)
	if !ok || p.URIPrefix != nil || p.SubAttribute != nil {
		return false, errorf(InvalidFilter, "%s has no sub-attribute %s", a.name, clip(p.String()))
	}
	have, present := elem[s.name]
	op := strings.ToLower(string(x.Operator))
	if op == "pr" {
		return present && !empty(have) && have != "", nil
	}
	if s.typ == typeBoolean {
		want, err := toBool(s.name, x.CompareValue)
		if err != nil {
			return false, errorf(InvalidFilter, "%s compares with true or false", s.name)
		}
		eq := have == want || (have == nil && want == false)
		return (op == "eq" && eq) || (op == "ne" && !eq), nil
	}
	w, ok := x.CompareValue.(string)
	if !ok {
		return false, errorf(InvalidFilter, "%s compares with a string", s.name)
	}
	h, _ := have.(string)
	h, w = strings.ToLower(h), strings.ToLower(unescape(w))
	switch op {
	case "eq":
		return present && h == w, nil
	case "ne":
		return !present || h != w, nil
	case "co":
		return present && strings.Contains(h, w), nil
	case "sw":
		return present && strings.HasPrefix(h, w), nil
	case "ew":
		return present && strings.HasSuffix(h, w), nil
	case "gt":
		return present && h > w, nil
	case "ge":
		return present && h >= w, nil
	case "lt":
		return present && h < w, nil
	case "le":
		return present && h <= w, nil
	}
	return false, errorf(InvalidFilter, "unknown operator %s", clip(op))
}

// equalities is the value a filter of "sub eq value" terms joined by and
// describes, and whether the filter is such.
func equalities(a attribute, e filter.Expression) (map[string]any, bool) {
	out := map[string]any{}
	var walk func(filter.Expression) bool
	walk = func(e filter.Expression) bool {
		switch x := e.(type) {
		case *filter.LogicalExpression:
			return strings.EqualFold(string(x.Operator), "and") && walk(x.Left) && walk(x.Right)
		case *filter.AttributeExpression:
			s, ok := find(a.subs, x.AttributePath.AttributeName)
			if !ok || !strings.EqualFold(string(x.Operator), "eq") {
				return false
			}
			v := x.CompareValue
			if str, ok := v.(string); ok {
				v = unescape(str)
			}
			nv, err := normalizeSingle(s, v)
			if err != nil {
				return false
			}
			out[s.name] = nv
			return true
		}
		return false
	}
	return out, walk(e)
}

// asJSON is v as JSON, for storing.
func asJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
