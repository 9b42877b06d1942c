package nrps

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodePage feeds arbitrary bodies to the page decoder: it never
// panics, fails only with ErrMalformed, and every page it accepts has
// members the hub can key and a status it knows.
func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"members":[{"user_id":"a","roles":["Learner"],"status":"Inactive"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := decodePage(bytes.NewReader(body), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		for i, m := range page.Members {
			if m.UserID == "" || len(m.UserID) > MaxUserIDBytes || strings.ContainsRune(m.UserID, 0) {
				t.Fatalf("member %d accepted with user_id %q", i, m.UserID)
			}
			if m.Status != StatusActive && m.Status != StatusInactive && m.Status != StatusDeleted {
				t.Fatalf("member %d accepted with status %q", i, m.Status)
			}
		}
	})
}
