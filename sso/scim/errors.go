package scim

import (
	"fmt"
	"net/http"
)

// scimType values of RFC 7644 §3.12, table 9.
const (
	InvalidFilter = "invalidFilter"
	TooMany       = "tooMany"
	Uniqueness    = "uniqueness"
	Mutability    = "mutability"
	InvalidSyntax = "invalidSyntax"
	InvalidPath   = "invalidPath"
	NoTarget      = "noTarget"
	InvalidValue  = "invalidValue"
	InvalidVers   = "invalidVers"
)

// Error is a SCIM error (RFC 7644 §3.12): an HTTP status, a scimType where
// table 9 has one for it, and a detail safe to show the client.
type Error struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("scim: %d %s: %s", e.Status, e.ScimType, e.Detail)
}

// errorf is a 400 with scimType.
func errorf(scimType, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func notFound(what, id string) *Error {
	return &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %q not found", what, clip(id))}
}

// errPrecondition is an If-Match that names another version (RFC 7644 §3.14).
var errPrecondition = &Error{Status: http.StatusPreconditionFailed, Detail: "the resource has changed: If-Match names another version"}

// clip shortens client text repeated in a detail.
func clip(s string) string {
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}

// errorBody is the error's JSON: status is a string (RFC 7644 §3.12).
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

func (e *Error) body() errorBody {
	return errorBody{Schemas: []string{SchemaError}, Status: fmt.Sprint(e.Status), ScimType: e.ScimType, Detail: e.Detail}
}
