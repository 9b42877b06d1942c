// Package apperr is the hub's one error vocabulary. Domain packages return
// these codes; the api package maps each code to an HTTP status in exactly
// one place, so no domain package needs to know about HTTP.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error by what the caller can do about it.
type Code string

const (
	Invalid      Code = "invalid"      // the input is malformed or fails validation
	NotFound     Code = "not_found"    // no such object, or not visible to the caller
	Conflict     Code = "conflict"     // the object exists already, or its state forbids the change
	Unauthorized Code = "unauthorized" // no valid credential
	Forbidden    Code = "forbidden"    // the credential is valid but may not do this
	Unavailable  Code = "unavailable"  // a dependency is down; retrying may help
	RateLimited  Code = "rate_limited" // the caller is over an allowance; retry after a pause
	// Unprocessable: well-formed, but it contradicts an earlier request
	// (an Idempotency-Key reused for a different body).
	Unprocessable Code = "unprocessable"
	// Refused: well-formed and valid, but the hub's policy refuses it (a
	// public mail provider's domain assigned to a tenant).
	Refused Code = "refused"
)

// FieldError names one offending input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a classified error with a message safe to show to a client.
// The wrapped Err carries detail for logs only.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with the given code and client-safe message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap classifies err while keeping it for logs.
func Wrap(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// InvalidFields returns an Invalid error listing the offending fields.
func InvalidFields(fields ...FieldError) *Error {
	return &Error{Code: Invalid, Message: "the request has invalid fields", Fields: fields}
}

// CodeOf returns the code of the first *Error in err's chain, or "" for an
// unclassified (internal) error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool { return CodeOf(err) == code }

// Validator collects field errors so a handler can report them all at once.
type Validator struct{ fields []FieldError }

// Check records message for field unless ok.
func (v *Validator) Check(ok bool, field, message string) {
	if !ok {
		v.fields = append(v.fields, FieldError{Field: field, Message: message})
	}
}

// Err returns the collected errors as one Invalid error, or nil.
func (v *Validator) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return InvalidFields(v.fields...)
}
