package nrps

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/lti"
)

// MaxUserIDBytes is the longest user_id the hub accepts: the LTI core
// specification limits a subject to 255 ASCII characters.
const MaxUserIDBytes = 255

// decodePage reads a membership container (NRPS 2.0 §2.3) token by token,
// decoding one member at a time, from at most limit bytes of r. The
// container's id and unknown members are skipped.
func decodePage(r io.Reader, limit int64) (*Page, error) {
	body := &limitedReader{r: r, left: limit}
	dec := json.NewDecoder(body)
	page, err := decodeContainer(dec)
	switch {
	case body.over:
		return nil, fmt.Errorf("%w: body over %d bytes", ErrMalformed, limit)
	case err != nil:
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("content after the container")
	}
	return page, nil
}

func decodeContainer(dec *json.Decoder) (*Page, error) {
	if err := expectDelim(dec, '{', "the container is not a JSON object"); err != nil {
		return nil, err
	}
	page, sawMembers := &Page{}, false
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, malformed("container: %v", err)
		}
		switch key {
		case "context":
			err = decodeContext(dec, page)
		case "members":
			if sawMembers {
				return nil, malformed("members appears twice")
			}
			sawMembers = true
			page.Members, err = decodeMembers(dec)
		default:
			err = skip(dec, fmt.Sprint(key))
		}
		if err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed("container: %v", err)
	}
	if !sawMembers {
		return nil, malformed("members is missing")
	}
	return page, nil
}

func decodeContext(dec *json.Decoder, page *Page) error {
	var c struct {
		ID    string `json:"id"`
		Label string `json:"label"`
		Title string `json:"title"`
	}
	if err := dec.Decode(&c); err != nil {
		return malformed("context: %v", err)
	}
	page.ContextID, page.ContextLabel, page.ContextTitle = c.ID, apperr.CleanText(c.Label), apperr.CleanText(c.Title)
	return nil
}

func decodeMembers(dec *json.Decoder) ([]Member, error) {
	if err := expectDelim(dec, '[', "members is not an array"); err != nil {
		return nil, err
	}
	members := []Member{}
	for i := 0; dec.More(); i++ {
		var w wireMember
		if err := dec.Decode(&w); err != nil {
			return nil, malformed("member %d: %v", i, err)
		}
		m, err := w.member()
		if err != nil {
			return nil, fmt.Errorf("%w: member %d: %s", ErrMalformed, i, err)
		}
		members = append(members, m)
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed("members: %v", err)
	}
	return members, nil
}

// wireMember is a member as sent. Unknown fields (Moodle's
// ext_user_username, Blackboard's group_enrollments) are ignored.
type wireMember struct {
	UserID             *string           `json:"user_id"`
	Status             string            `json:"status"`
	Roles              roleList          `json:"roles"`
	Name               string            `json:"name"`
	GivenName          string            `json:"given_name"`
	FamilyName         string            `json:"family_name"`
	MiddleName         string            `json:"middle_name"`
	Email              string            `json:"email"`
	Picture            string            `json:"picture"`
	LISPersonSourcedID string            `json:"lis_person_sourcedid"`
	LTI11LegacyUserID  string            `json:"lti11_legacy_user_id"`
	Message            []json.RawMessage `json:"message"`
}

// member checks a decoded member and gives it the hub's shape. A missing
// or empty status is Active; missing roles are none. Display fields are
// cleaned as launches clean them (invalid UTF-8 replaced, NUL dropped);
// the secondary identifiers are dropped when they are not valid text.
func (w *wireMember) member() (Member, error) {
	if err := checkUserID(w.UserID); err != nil {
		return Member{}, err
	}
	status := w.Status
	switch status {
	case "":
		status = StatusActive
	case StatusActive, StatusInactive, StatusDeleted:
	default:
		return Member{}, fmt.Errorf("unknown status %q", truncate(status, 40))
	}
	ctxRoles, institution, system := lti.Roles(w.Roles)
	return Member{
		UserID: *w.UserID, Status: status,
		Roles:      append(append(ctxRoles, institution...), system...),
		Name:       apperr.CleanText(w.Name),
		GivenName:  apperr.CleanText(w.GivenName),
		FamilyName: apperr.CleanText(w.FamilyName), MiddleName: apperr.CleanText(w.MiddleName),
		Email: apperr.CleanText(w.Email), Picture: apperr.CleanText(w.Picture),
		LISPersonSourcedID: identifierOrEmpty(w.LISPersonSourcedID),
		LTI11LegacyUserID:  identifierOrEmpty(w.LTI11LegacyUserID),
		Message:            w.Message,
	}, nil
}

// checkUserID refuses a user_id the hub could not key a person by: missing,
// empty, too long, or not text (a NUL, or bytes that were not UTF-8, which
// the decoder turned into U+FFFD, so two subjects could become one).
func checkUserID(id *string) error {
	switch {
	case id == nil:
		return errors.New("user_id is missing")
	case *id == "":
		return errors.New("user_id is empty")
	case len(*id) > MaxUserIDBytes:
		return fmt.Errorf("user_id is longer than %d bytes", MaxUserIDBytes)
	case !isIdentifier(*id):
		return errors.New("user_id holds a NUL character or bytes that are not UTF-8")
	}
	return nil
}

func isIdentifier(s string) bool {
	return apperr.IsText(s) && !strings.ContainsRune(s, utf8.RuneError)
}

func identifierOrEmpty(s string) string {
	if isIdentifier(s) {
		return s
	}
	return ""
}

// roleList is the roles array, refused with a clear message when it is not
// an array of strings.
type roleList []string

// UnmarshalJSON decodes an array of strings; null is no roles.
func (r *roleList) UnmarshalJSON(b []byte) error {
	var roles []string
	if err := json.Unmarshal(b, &roles); err != nil {
		return errors.New("roles is not an array of strings")
	}
	*r = roles
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim, problem string) error {
	tok, err := dec.Token()
	if err != nil {
		return malformed("%s: %v", problem, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return malformed("%s", problem)
	}
	return nil
}

func skip(dec *json.Decoder, key string) error {
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return malformed("%s: %v", truncate(key, 40), err)
	}
	return nil
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
// on past the limit, so an oversized page is told from a truncated one.
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
