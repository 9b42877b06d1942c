package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"reflect"
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
	if field, ok := notText(reflect.ValueOf(v), ""); ok {
		return apperr.InvalidFields(apperr.FieldError{Field: field, Message: "must be UTF-8 text without NUL characters"})
	}
	return nil
}

// notText finds a decoded string PostgreSQL could not store ("\u0000"; the
// decoder already turned invalid UTF-8 into U+FFFD) and names its field, as
// the JSON spells it, with dots for nested objects.
func notText(v reflect.Value, path string) (string, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return notText(v.Elem(), path)
		}
	case reflect.String:
		return path, !apperr.IsText(v.String())
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if f, bad := notText(v.Index(i), path); bad {
				return f, true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			key := joinField(path, fmt.Sprint(it.Key().Interface()))
			if it.Key().Kind() == reflect.String && !apperr.IsText(it.Key().String()) {
				return path, true
			}
			if f, bad := notText(it.Value(), key); bad {
				return f, true
			}
		}
	case reflect.Struct:
		return structNotText(v, path)
	}
	return "", false
}

func structNotText(v reflect.Value, path string) (string, bool) {
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		field := path
		if !sf.Anonymous {
			if name == "" {
				name = sf.Name
			}
			field = joinField(path, name)
		}
		if f, bad := notText(v.Field(i), field); bad {
			return f, true
		}
	}
	return "", false
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
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
	case isReadTimeout(err):
		// The body did not arrive in time: nothing is wrong with it, so the
		// answer must not say it is invalid.
		return echo.ErrRequestTimeout
	}
	var parse *time.ParseError
	if errors.As(err, &parse) {
		return bodyError("holds a time that is not RFC 3339 (2026-01-31T12:00:00Z)")
	}
	return bodyError("cannot be decoded")
}

// isReadTimeout reports a body cut off by the server's read deadline or a
// cancelled request rather than malformed by the client.
func isReadTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) || (errors.As(err, &ne) && ne.Timeout())
}

func isMaxBytes(err error) bool {
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
		return true // echo's body limit, which counts a chunked body as it arrives
	}
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
