package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
)

// decodeJSON reads exactly one JSON object into v: unknown fields, a second
// value or trailing bytes, and the wrong content type are all refused, so a
// misspelt field never silently does nothing.
func decodeJSON(c echo.Context, v any) error {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if mt != echo.MIMEApplicationJSON {
		return bodyError("must be sent with Content-Type: application/json")
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		return bodyError("must hold one JSON object and nothing after it")
	}
	return nil
}

func bodyError(message string) error {
	return apperr.InvalidFields(apperr.FieldError{Field: "body", Message: message})
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return bodyError("is empty; a JSON object is required")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return bodyError("is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return bodyError("must be a JSON object")
		}
		return apperr.InvalidFields(apperr.FieldError{Field: typ.Field, Message: "must be of type " + jsonType(typ.Type.Kind().String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if field == "" {
			return bodyError("has a field with an empty name")
		}
		return apperr.InvalidFields(apperr.FieldError{Field: field, Message: "is not a known field"})
	case isMaxBytes(err):
		return echo.ErrStatusRequestEntityTooLarge
	}
	var parse *time.ParseError
	if errors.As(err, &parse) {
		return bodyError("holds a time that is not RFC 3339 (2026-01-31T12:00:00Z)")
	}
	return bodyError("cannot be decoded")
}

func isMaxBytes(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "slice" || kind == "array":
		return "array"
	case kind == "struct" || kind == "map":
		return "object"
	case kind == "bool":
		return "boolean"
	}
	return kind
}

const (
	defaultLimit = 50
	maxLimit     = 200
)

// pageParams reads ?limit= and ?cursor= for keyset-paged listings.
func pageParams(c echo.Context) (pg.Page, error) {
	limit, err := limitParam(c)
	if err != nil {
		return pg.Page{}, err
	}
	after, err := pg.ParseCursor(c.QueryParam("cursor"))
	return pg.Page{After: after, Limit: limit}, err
}

func limitParam(c echo.Context) (int, error) {
	raw := c.QueryParam("limit")
	if raw == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxLimit {
		return 0, apperr.InvalidFields(apperr.FieldError{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", maxLimit)})
	}
	return n, nil
}

// list is the envelope of every paged listing.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func newList[T any](items []T, next *pg.Cursor) list[T] {
	l := list[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if next != nil {
		l.NextCursor = next.String()
	}
	return l
}
