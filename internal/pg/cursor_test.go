package pg_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
)

func TestCursorRoundTrip(t *testing.T) {
	c := pg.Cursor{At: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), ID: uuid.New()}
	got, err := pg.ParseCursor(c.String())
	if err != nil || !got.At.Equal(c.At) || got.ID != c.ID {
		t.Fatalf("ParseCursor(String()) = %+v, %v; want %+v", got, err, c)
	}
	if got, err := pg.ParseCursor(""); got != nil || err != nil {
		t.Fatalf("empty cursor = %+v, %v; want the first page", got, err)
	}
}

// FuzzParseCursor: a client's cursor is untrusted; anything but a cursor we
// issued is a validation error naming the cursor field.
func FuzzParseCursor(f *testing.F) {
	f.Add(pg.Cursor{At: time.Unix(0, 0), ID: uuid.New()}.String())
	f.Add("bm90IGpzb24")
	f.Add("e30") // {}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := pg.ParseCursor(s)
		switch {
		case err != nil && !apperr.Is(err, apperr.Invalid):
			t.Fatalf("%q: error %v is not Invalid", s, err)
		case err == nil && s != "" && (c == nil || c.ID == uuid.Nil):
			t.Fatalf("%q: accepted without an id", s)
		}
	})
}
