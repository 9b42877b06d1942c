package apperr

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// IsText reports whether s can be stored as PostgreSQL text: valid UTF-8
// without NUL characters. PostgreSQL refuses anything else, so input that
// fails this is the caller's mistake, never an internal error.
func IsText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// CleanText makes s storable for display: invalid UTF-8 becomes U+FFFD and
// NUL characters are dropped. For names and titles only; an identifier
// that is not text must be refused, not changed.
func CleanText(s string) string {
	if IsText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// CheckText records an error for field unless s is text (IsText) of min to
// max characters. The message names the bound, so a client can fix the
// request without reading the documentation.
func (v *Validator) CheckText(field, s string, min, max int) {
	if !IsText(s) {
		v.Check(false, field, "must be UTF-8 text without NUL characters")
		return
	}
	n := utf8.RuneCountInString(s)
	switch {
	case min > 0 && (n < min || n > max):
		v.Check(false, field, fmt.Sprintf("must be %d–%d characters", min, max))
	case n > max:
		v.Check(false, field, fmt.Sprintf("must be at most %d characters", max))
	}
}

// CheckName is CheckText for a name or title: 1 to max characters, and
// not only spaces.
func (v *Validator) CheckName(field, s string, max int) {
	if !IsText(s) {
		v.CheckText(field, s, 1, max)
		return
	}
	n := utf8.RuneCountInString(s)
	v.Check(n >= 1 && n <= max && strings.TrimSpace(s) != "", field, fmt.Sprintf("must be 1–%d characters, not blank", max))
}
