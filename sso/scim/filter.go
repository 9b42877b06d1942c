package scim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	filter "github.com/scim2/filter-parser/v2"
)

// MaxFilterLength bounds a filter's text (bytes); a longer one is refused
// before it is parsed.
const MaxFilterLength = 4096

// Where is a filter translated into a SQL condition: every value the filter
// compares with is one of Args, referred to as $n, so no client text ever
// becomes SQL. Attribute names only select among the resource's known
// columns and constant JSON keys.
type Where struct {
	SQL  string
	Args []any
}

// column is where an attribute of a resource is kept.
type column struct {
	sql   string   // a scalar SQL expression
	typ   attrType // typeString (caseExact says how it compares), typeBoolean, typeDateTime
	exact bool     // caseExact (RFC 7643 §2.2): externalId, id
	// A multi-valued attribute: the SQL of its elements' set, each element
	// called elem, and the element's columns by sub-attribute.
	elements string
	elem     string
	subs     func(sub string) (column, bool)
}

// resolver finds the column of an attribute path of one resource type.
type resolver func(p filter.AttributePath) (column, bool)

// translator builds a Where, numbering parameters from first.
type translator struct {
	resolve resolver
	args    []any
	first   int
	depth   int
}

// maxFilterDepth bounds the nesting of and/or/not and brackets.
const maxFilterDepth = 50

// Filter parses filter text (RFC 7644 §3.4.2.2) and translates it for a
// resource type: "User" or "Group". Its parameters are numbered from
// first. A filter that does not parse, names an attribute the resource
// has no column for, or compares with a value of the wrong type is a 400
// invalidFilter.
func Filter(resourceType, text string, first int) (Where, error) {
	if len(text) > MaxFilterLength {
		return Where{}, errorf(InvalidFilter, "the filter is longer than %d bytes", MaxFilterLength)
	}
	r := userColumn
	if resourceType == "Group" {
		r = groupColumn
	}
	expr, err := parseFilter(text)
	if err != nil {
		return Where{}, err
	}
	t := &translator{resolve: r, first: first}
	sql, serr := t.expr(expr, nil)
	if serr != nil {
		return Where{}, serr
	}
	return Where{SQL: sql, Args: t.args}, nil
}

// parseFilter parses text, refusing what the parser cannot read; a panic
// in the parser is a refusal too, never a crash.
func parseFilter(text string) (expr filter.Expression, err error) {
	defer func() {
		if recover() != nil {
			expr, err = nil, errorf(InvalidFilter, "the filter does not parse")
		}
	}()
	expr, perr := filter.ParseFilter([]byte(text))
	if perr != nil || expr == nil {
		return nil, errorf(InvalidFilter, "the filter does not parse (RFC 7644 §3.4.2.2)")
	}
	return expr, nil
}

func (t *translator) arg(v any) string {
	t.args = append(t.args, v)
	return fmt.Sprintf("$%d", t.first+len(t.args)-1)
}

// expr translates e; within a value path ("emails[type eq \"work\"]") elem
// is the element's columns.
func (t *translator) expr(e filter.Expression, elem *column) (string, *Error) {
	t.depth++
	defer func() { t.depth-- }()
	if t.depth > maxFilterDepth {
		return "", errorf(InvalidFilter, "the filter nests deeper than %d", maxFilterDepth)
	}
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, err := t.expr(x.Left, elem)
		if err != nil {
			return "", err
		}
		r, err := t.expr(x.Right, elem)
		if err != nil {
			return "", err
		}
		op := " AND "
		if strings.EqualFold(string(x.Operator), "or") {
			op = " OR "
		}
		return "(" + l + op + r + ")", nil
	case *filter.NotExpression:
		in, err := t.expr(x.Expression, elem)
		if err != nil {
			return "", err
		}
		return "(NOT coalesce(" + in + ", false))", nil
	case *filter.ValuePath:
		if elem != nil {
			return "", errorf(InvalidFilter, "a value filter cannot nest another")
		}
		return t.valuePath(x)
	case *filter.AttributeExpression:
		return t.attrExpr(x, elem)
	}
	return "", errorf(InvalidFilter, "the filter does not parse")
}

// valuePath is "attr[filter]": some element of the multi-valued attribute
// matches the inner filter.
func (t *translator) valuePath(v *filter.ValuePath) (string, *Error) {
	c, ok := t.resolve(v.AttributePath)
	if !ok || c.elements == "" || v.AttributePath.SubAttribute != nil {
		return "", errorf(InvalidFilter, "%s is not a multi-valued attribute the filter can select from", clip(v.AttributePath.String()))
	}
	in, err := t.expr(v.ValueFilter, &c)
	if err != nil {
		return "", err
	}
	return "EXISTS (SELECT 1 FROM " + c.elements + " WHERE " + in + ")", nil
}

// attrExpr is one comparison. On a multi-valued attribute it holds when
// some element's sub-attribute (value, when none is named) compares so.
func (t *translator) attrExpr(x *filter.AttributeExpression, elem *column) (string, *Error) {
	p := x.AttributePath
	var c column
	var ok bool
	if elem != nil {
		if p.URIPrefix != nil || p.SubAttribute != nil {
			return "", errorf(InvalidFilter, "%s is not a sub-attribute", clip(p.String()))
		}
		c, ok = elem.subs(p.AttributeName)
	} else {
		c, ok = t.resolve(p)
	}
	if !ok {
		return "", errorf(InvalidFilter, "the filter names %s, which cannot be filtered on", clip(p.String()))
	}
	if c.elements != "" { // "emails co …", "emails.value sw …"
		sub := c
		if sc, ok := c.subs(orValue(p.SubAttributeName())); ok {
			sub = sc
		} else {
			return "", errorf(InvalidFilter, "%s has no sub-attribute %s", clip(p.AttributeName), clip(p.SubAttributeName()))
		}
		cond, err := t.compare(sub, x)
		if err != nil {
			return "", err
		}
		return "EXISTS (SELECT 1 FROM " + c.elements + " WHERE " + cond + ")", nil
	}
	return t.compare(c, x)
}

func orValue(sub string) string {
	if sub == "" {
		return "value"
	}
	return sub
}

// compare is c op value, the value a parameter.
func (t *translator) compare(c column, x *filter.AttributeExpression) (string, *Error) {
	op := strings.ToLower(string(x.Operator))
	if op == "pr" {
		if c.typ == typeString {
			return "(char_length(" + c.sql + ") > 0)", nil
		}
		return "(" + c.sql + " IS NOT NULL)", nil
	}
	switch c.typ {
	case typeBoolean:
		return t.compareBool(c, op, x.CompareValue)
	case typeDateTime:
		return t.compareTime(c, op, x.CompareValue)
	}
	s, ok := x.CompareValue.(string)
	if !ok {
		return "", errorf(InvalidFilter, "%s compares with a string", clip(x.AttributePath.String()))
	}
	s = unescape(s)
	if !storable(s) {
		return "", errorf(InvalidFilter, "%s compares with a NUL character or text that is not UTF-8", clip(x.AttributePath.String()))
	}
	col, val := c.sql, t.arg(s)
	if !c.exact {
		col, val = "lower("+col+")", "lower("+val+")"
	}
	switch op {
	case "eq":
		return "(" + col + " = " + val + ")", nil
	case "ne":
		return "(" + c.sql + " IS NULL OR " + col + " <> " + val + ")", nil
	case "co":
		return "(strpos(" + col + ", " + val + ") > 0)", nil
	case "sw":
		return "starts_with(" + col + ", " + val + ")", nil
	case "ew":
		return "(right(" + col + ", char_length(" + val + ")) = " + val + ")", nil
	case "gt", "ge", "lt", "le":
		return "(" + col + " " + sqlOrder[op] + " " + val + ")", nil
	}
	return "", errorf(InvalidFilter, "unknown operator %s", clip(op))
}

var sqlOrder = map[string]string{"gt": ">", "ge": ">=", "lt": "<", "le": "<="}

func (t *translator) compareBool(c column, op string, v any) (string, *Error) {
	b, err := toBool("the compared value", v)
	if err != nil || b == nil {
		return "", errorf(InvalidFilter, "a boolean attribute compares with true or false")
	}
	switch op {
	case "eq":
		return "(" + c.sql + " = " + t.arg(b) + ")", nil
	case "ne":
		return "(" + c.sql + " IS DISTINCT FROM " + t.arg(b) + ")", nil
	}
	return "", errorf(InvalidFilter, "a boolean attribute compares with eq or ne only")
}

func (t *translator) compareTime(c column, op string, v any) (string, *Error) {
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", errorf(InvalidFilter, "a dateTime compares with an RFC 3339 time such as \"2026-01-02T15:04:05Z\"")
	}
	switch op {
	case "eq":
		return "(" + c.sql + " = " + t.arg(at) + ")", nil
	case "ne":
		return "(" + c.sql + " IS DISTINCT FROM " + t.arg(at) + ")", nil
	case "gt", "ge", "lt", "le":
		return "(" + c.sql + " " + sqlOrder[op] + " " + t.arg(at) + ")", nil
	}
	return "", errorf(InvalidFilter, "a dateTime compares with eq, ne, gt, ge, lt or le")
}

// unescape reads the JSON escapes (\" \\ \u00e9) the parser leaves in a
// string; a string whose escapes do not read stays as sent.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out string
	if json.Unmarshal([]byte(`"`+s+`"`), &out) != nil {
		return s
	}
	return out
}
