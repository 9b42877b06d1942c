package scim

import (
	"bytes"
	"encoding/json"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// Operation is one PATCH operation (RFC 7644 §3.5.2): op is add, replace
// or remove, whatever its case ("Replace", Entra ID); Path is nil when
// none was sent; Value is raw JSON.
type Operation struct {
	Op    string
	Path  *filter.Path
	Raw   string // the path as sent, for error details
	Value json.RawMessage
}

// MaxOperations bounds the operations of one PATCH (Okta sends one per
// member it removes; the body's 1 MiB bounds them first).
const MaxOperations = 20_000

// MaxUserOperations bounds the operations of one PATCH of a user (Entra ID
// sends one per changed attribute), and MaxValues the values of one
// multi-valued attribute (emails, roles, …): each operation's work grows
// with the values, so a PATCH's work stays linear in its size.
const (
	MaxUserOperations = 1000
	MaxValues         = 100
)

// ParsePatch reads a PatchOp body. A body that is not JSON, names no
// operations, an unknown op or a path that does not parse is a 400
// (invalidSyntax, invalidValue or invalidPath).
func ParsePatch(body []byte) ([]Operation, error) {
	var req struct {
		Schemas    []string `json:"schemas"`
		Operations []struct {
			Op    string          `json:"op"`
			Path  *string         `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"Operations"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errorf(InvalidSyntax, "the body is not a PatchOp (RFC 7644 §3.5.2)")
	}
	if len(req.Operations) == 0 {
		return nil, errorf(InvalidValue, "the body names no Operations")
	}
	if len(req.Operations) > MaxOperations {
		return nil, errorf(TooMany, "a PATCH has at most %d operations", MaxOperations)
	}
	ops := make([]Operation, 0, len(req.Operations))
	for _, o := range req.Operations {
		op := Operation{Op: strings.ToLower(o.Op), Value: o.Value}
		if op.Op != "add" && op.Op != "replace" && op.Op != "remove" {
			return nil, errorf(InvalidSyntax, "unknown op %q: add, replace or remove", clip(o.Op))
		}
		if o.Path != nil && strings.TrimSpace(*o.Path) != "" {
			p, err := ParsePath(*o.Path)
			if err != nil {
				return nil, err
			}
			op.Path, op.Raw = &p, *o.Path
		}
		if op.Path == nil && op.Op == "remove" {
			return nil, errorf(NoTarget, "remove needs a path")
		}
		if op.Op != "remove" && (len(bytes.TrimSpace(op.Value)) == 0) {
			return nil, errorf(InvalidValue, "%s needs a value", op.Op)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// ParsePath parses a PATCH path (RFC 7644 §3.5.2: attrPath, or
// valuePath with an optional sub-attribute: emails[type eq "work"].value),
// a 400 invalidPath when it does not parse.
func ParsePath(text string) (p filter.Path, err error) {
	defer func() {
		if recover() != nil {
			p, err = filter.Path{}, errorf(InvalidPath, "the path %q does not parse", clip(text))
		}
	}()
	if len(text) > MaxFilterLength {
		return filter.Path{}, errorf(InvalidPath, "the path is longer than %d bytes", MaxFilterLength)
	}
	p, perr := filter.ParsePath([]byte(strings.TrimSpace(text)))
	if perr != nil {
		return filter.Path{}, errorf(InvalidPath, "the path %q does not parse", clip(text))
	}
	return p, nil
}

// decodeValue reads an operation's value as plain JSON values.
func decodeValue(raw json.RawMessage) (any, *Error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, errorf(InvalidSyntax, "an operation's value is not JSON")
	}
	if err := checkText(v); err != nil {
		return nil, err
	}
	return v, nil
}
