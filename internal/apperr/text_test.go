package apperr

import "testing"

func TestText(t *testing.T) {
	for _, tc := range []struct {
		name, in, clean string
		text            bool
	}{
		{"plain", "Ada Lovelace", "Ada Lovelace", true},
		{"accents and emoji", "Zoë 🎓", "Zoë 🎓", true},
		{"NUL", "Ada\x00 Lovelace", "Ada Lovelace", false},
		{"only NUL", "\x00", "", false},
		{"invalid UTF-8", "Ada\xff\xfe", "Ada\uFFFD", false},
		{"both", "\x00a\xc3", "a\uFFFD", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if IsText(tc.in) != tc.text {
				t.Errorf("IsText(%q) = %v", tc.in, !tc.text)
			}
			if got := CleanText(tc.in); got != tc.clean || !IsText(got) {
				t.Errorf("CleanText(%q) = %q, want %q", tc.in, got, tc.clean)
			}
		})
	}
}

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		min, max int
		want     string
	}{
		{"at the bound", "abcd", 1, 4, ""},
		{"over the bound", "abcde", 1, 4, "must be 1–4 characters"},
		{"empty when required", "", 1, 4, "must be 1–4 characters"},
		{"empty when optional", "", 0, 4, ""},
		{"optional over", "abcde", 0, 4, "must be at most 4 characters"},
		{"characters, not bytes", "éééé", 1, 4, ""},
		{"NUL", "a\x00", 0, 4, "must be UTF-8 text without NUL characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v Validator
			v.CheckText("f", tc.in, tc.min, tc.max)
			got := ""
			if len(v.fields) > 0 {
				got = v.fields[0].Message
			}
			if got != tc.want {
				t.Fatalf("CheckText(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
