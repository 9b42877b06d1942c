package ags

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// checkDecoded holds a decoded line item to the decoder's promises: an
// absolute http(s) id of bounded length, a positive scoreMaximum, and
// identifiers the hub can match on.
func checkDecoded(t *testing.T, li LineItem) {
	t.Helper()
	u, err := url.Parse(li.ID)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(li.ID) > MaxIDBytes {
		t.Fatalf("accepted id %q", li.ID)
	}
	if !(li.ScoreMaximum > 0) {
		t.Fatalf("accepted scoreMaximum %v", li.ScoreMaximum)
	}
	for _, s := range []string{li.ID, li.ResourceID, li.ResourceLinkID, li.Tag} {
		if !isIdentifier(s) {
			t.Fatalf("accepted identifier %q", s)
		}
	}
	if strings.ContainsRune(li.Label, 0) {
		t.Fatalf("accepted label %q", li.Label)
	}
}

// FuzzDecodeLineItem feeds arbitrary bodies to the line item decoder: it
// never panics, fails only with ErrMalformed, and what it accepts keeps
// its promises.
func FuzzDecodeLineItem(f *testing.F) {
	f.Add([]byte(`{"id":"https://lms.example.edu/li/1","label":"Quiz","scoreMaximum":10,"resourceId":7,"endDateTime":"2024-10-11T04:59:59.999Z"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		li, err := decodeLineItem(bytes.NewReader(body), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		checkDecoded(t, li)
	})
}

// FuzzDecodeContainer feeds arbitrary bodies to the container decoder,
// with the same promises for each line item.
func FuzzDecodeContainer(f *testing.F) {
	f.Add([]byte(`[{"id":"https://lms.example.edu/li/1","label":"Quiz","scoreMaximum":10}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := decodeContainer(bytes.NewReader(body), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		for _, li := range items {
			checkDecoded(t, li)
		}
	})
}

// FuzzScoresURL feeds arbitrary line item URLs to ScoresURL: it never
// panics, and a URL it makes has the line item's host and query with
// /scores ending its path.
func FuzzScoresURL(f *testing.F) {
	f.Add("https://lms.example.edu/mod/lti/services.php/5/lineitems/5/lineitem?type_id=1")
	f.Fuzz(func(t *testing.T, in string) {
		out, err := ScoresURL(in)
		if err != nil {
			return
		}
		li, _ := url.Parse(in)
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("ScoresURL(%q) = %q, which does not parse: %v", in, out, err)
		}
		if u.Host != li.Host || u.RawQuery != li.RawQuery || !strings.HasSuffix(u.Path, "/scores") || u.Fragment != "" {
			t.Fatalf("ScoresURL(%q) = %q", in, out)
		}
	})
}
