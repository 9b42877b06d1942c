package pg

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/apperr"
)

// Cursor is a keyset position for listings ordered by (created_at, id):
// stable under concurrent inserts, unlike an offset. Clients see it only as
// an opaque string.
type Cursor struct {
	At time.Time `json:"t"`
	ID uuid.UUID `json:"i"`
}

// String encodes c for a next_cursor field.
func (c Cursor) String() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor decodes a client's cursor; "" is the first page.
func ParseCursor(s string) (*Cursor, error) {
	if s == "" {
		return nil, nil
	}
	var c Cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == uuid.Nil {
		return nil, apperr.InvalidFields(apperr.FieldError{Field: "cursor", Message: "is not a cursor this API returned"})
	}
	return &c, nil
}

// Page asks for up to Limit items after Cursor.
type Page struct {
	After *Cursor
	Limit int
}

// TrimPage cuts the extra row a listing fetched (Limit+1) to learn whether
// another page follows, and returns that page's cursor.
func TrimPage[T any](items []T, limit int, cursor func(T) Cursor) ([]T, *Cursor, error) {
	if len(items) <= limit {
		return items, nil, nil
	}
	items = items[:limit]
	c := cursor(items[limit-1])
	return items, &c, nil
}
