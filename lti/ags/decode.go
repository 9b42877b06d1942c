package ags

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klasterina/hub/internal/apperr"
)

// ErrMalformed means a platform's answer is not a line item or line item
// container the hub can use.
var ErrMalformed = errors.New("ags: malformed platform answer") // wrapped with the detail (which field, which line item)

// ErrInvalid means a line item or score the hub was asked to send breaks
// the specification; nothing was sent.
var ErrInvalid = errors.New("ags: invalid")

// MaxIDBytes bounds a line item's id (its URL).
const MaxIDBytes = 4096

// decodeLineItem reads one line item from at most limit bytes of r.
func decodeLineItem(r io.Reader, limit int64) (LineItem, error) {
	body := &limitedReader{r: r, left: limit}
	dec := json.NewDecoder(body)
	var w wireItem
	err := dec.Decode(&w)
	switch {
	case body.over:
		return LineItem{}, fmt.Errorf("%w: body over %d bytes", ErrMalformed, limit)
	case err != nil || w == nil:
		return LineItem{}, malformed("the line item is not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return LineItem{}, malformed("content after the line item")
	}
	li, err := w.lineItem()
	if err != nil {
		return LineItem{}, fmt.Errorf("%w: line item: %s", ErrMalformed, err)
	}
	return li, nil
}

// decodeContainer reads a line item container (a JSON array of line
// items) token by token, one line item at a time, from at most limit
// bytes of r.
func decodeContainer(r io.Reader, limit int64) ([]LineItem, error) {
	body := &limitedReader{r: r, left: limit}
	dec := json.NewDecoder(body)
	items, err := decodeItems(dec)
	switch {
	case body.over:
		return nil, fmt.Errorf("%w: body over %d bytes", ErrMalformed, limit)
	case err != nil:
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("content after the container")
	}
	return items, nil
}

func decodeItems(dec *json.Decoder) ([]LineItem, error) {
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '[' {
		return nil, malformed("the container is not a JSON array")
	}
	items := []LineItem{}
	for i := 0; dec.More(); i++ {
		var w wireItem
		if err := dec.Decode(&w); err != nil || w == nil {
			return nil, malformed("line item %d is not a JSON object", i)
		}
		li, err := w.lineItem()
		if err != nil {
			return nil, fmt.Errorf("%w: line item %d: %s", ErrMalformed, i, err)
		}
		items = append(items, li)
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed("container: %v", err)
	}
	return items, nil
}

// wireItem is a line item as a platform sends it, member by member: keys
// are matched exactly (not case-insensitively, as struct decoding would),
// and unknown members (Blackboard's gradesReleased, Sakai's and Canvas's
// extensions) are ignored.
type wireItem map[string]json.RawMessage

// lineItem checks a decoded line item and gives it the hub's shape: an id
// that is an absolute http(s) URL, a scoreMaximum greater than 0, text
// identifiers, RFC 3339 dates. A missing label is empty and a label is
// cleaned for display; null is absent everywhere.
func (w wireItem) lineItem() (LineItem, error) {
	var li LineItem
	var err error
	if li.ID, err = w.id(); err != nil {
		return LineItem{}, err
	}
	if li.ScoreMaximum, err = w.scoreMaximum(); err != nil {
		return LineItem{}, err
	}
	label, err := w.str("label")
	if err != nil {
		return LineItem{}, err
	}
	li.Label = apperr.CleanText(label)
	if li.ResourceID, err = w.identifier("resourceId"); err != nil {
		return LineItem{}, err
	}
	if li.ResourceLinkID, err = w.identifier("resourceLinkId"); err != nil {
		return LineItem{}, err
	}
	if li.Tag, err = w.identifier("tag"); err != nil {
		return LineItem{}, err
	}
	if li.StartDateTime, err = w.date("startDateTime"); err != nil {
		return LineItem{}, err
	}
	if li.EndDateTime, err = w.date("endDateTime"); err != nil {
		return LineItem{}, err
	}
	return li, nil
}

func (w wireItem) id() (string, error) {
	id, err := w.str("id")
	switch {
	case err != nil:
		return "", err
	case id == "":
		return "", errors.New("id is missing")
	case len(id) > MaxIDBytes:
		return "", fmt.Errorf("id is longer than %d bytes", MaxIDBytes)
	}
	u, err := url.Parse(id)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !isIdentifier(id) {
		return "", fmt.Errorf("id %q is not an absolute http(s) URL", truncate(id, 80))
	}
	return id, nil
}

func (w wireItem) scoreMaximum() (float64, error) {
	raw, ok := w.value("scoreMaximum")
	if !ok {
		return 0, errors.New("scoreMaximum is missing")
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil || v <= 0 {
		return 0, fmt.Errorf("scoreMaximum %s is not a number greater than 0", truncate(string(raw), 40))
	}
	return v, nil
}

// identifier reads resourceId, resourceLinkId or tag: a string, or a
// number kept as its text (Canvas's resourceId); it must be an identifier
// the hub can match on, so text that was not valid UTF-8 is refused.
func (w wireItem) identifier(key string) (string, error) {
	raw, ok := w.value(key)
	if !ok {
		return "", nil
	}
	if c := raw[0]; c == '-' || (c >= '0' && c <= '9') {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", fmt.Errorf("%s is not a string", key)
		}
		return n.String(), nil
	}
	s, err := w.str(key)
	if err == nil && !isIdentifier(s) {
		err = fmt.Errorf("%s holds a NUL character or bytes that are not UTF-8", key)
	}
	return s, err
}

// date reads startDateTime or endDateTime: RFC 3339 with or without
// fractional seconds; "" is none.
func (w wireItem) date(key string) (time.Time, error) {
	s, err := w.str(key)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 date and time", key, truncate(s, 40))
	}
	return t, nil
}

// str reads a string member; absent and null are "".
func (w wireItem) str(key string) (string, error) {
	raw, ok := w.value(key)
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", key)
	}
	return s, nil
}

// value is the member key, absent when missing or null.
func (w wireItem) value(key string) (json.RawMessage, bool) {
	raw, ok := w[key]
	if !ok || len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, false
	}
	return raw, true
}

// isIdentifier reports whether s is text that came as it was sent: no
// NUL, and no U+FFFD, which the decoder puts for bytes that were not
// UTF-8 (so two identifiers could become one).
func isIdentifier(s string) bool {
	return apperr.IsText(s) && !strings.ContainsRune(s, utf8.RuneError)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// limitedReader is io.LimitReader that also records whether the body went
// on past the limit, so an oversized answer is told from a truncated one.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(l.r, one[:]); n > 0 {
			l.over = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
