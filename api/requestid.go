package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"

	"github.com/labstack/echo/v4"
)

type requestIDKey struct{}

// maxClientRequestID bounds the caller's own request id, which is kept
// for correlation only.
const maxClientRequestID = 128

// clientRequestIDKey holds the caller's own id in the echo context.
const clientRequestIDKey = "client_request_id"

// assignRequestID gives every request an id the hub made (a caller cannot
// choose the id its audit entries and logs carry) and sets it on the
// response. A caller's X-Request-ID, when short and plain, is kept beside it
// as client_request_id.
func assignRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := newRequestID()
		c.Set(clientRequestIDKey, clientRequestID(c.Request().Header.Get(echo.HeaderXRequestID)))
		c.Request().Header.Del(echo.HeaderXRequestID)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// clientRequestID is the caller's X-Request-ID when it is 1–128 characters
// of letters, digits and ._:- ; anything else is dropped.
func clientRequestID(raw string) string {
	if len(raw) == 0 || len(raw) > maxClientRequestID {
		return ""
	}
	for _, r := range raw {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)) {
			return ""
		}
	}
	return raw
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RequestIDFrom returns the request id carried by ctx, if any.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// LogHandler adds the request id of the record's context to every log line,
// so a line can be matched to the request (and to the problem a client got).
type LogHandler struct{ slog.Handler }

// Handle adds request_id when the context carries one.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestIDFrom(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around derived handlers.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around derived handlers.
func (h LogHandler) WithGroup(name string) slog.Handler {
	return LogHandler{h.Handler.WithGroup(name)}
}
