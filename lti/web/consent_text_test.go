package web

import (
	"regexp"
	"slices"
	"testing"
)

var verb = regexp.MustCompile(`%[a-z]`)

// Every translation says everything English says, with the same
// placeholders in the same order.
func TestTranslationsAreComplete(t *testing.T) {
	for lang, text := range consentText {
		if text["lang"] != lang {
			t.Errorf("%s: lang is %q", lang, text["lang"])
		}
		for key, english := range consentText["en"] {
			got, ok := text[key]
			if !ok || got == "" {
				t.Errorf("%s lacks %q", lang, key)
				continue
			}
			if !slices.Equal(verb.FindAllString(got, -1), verb.FindAllString(english, -1)) {
				t.Errorf("%s %q: placeholders %v, English has %v", lang, key, verb.FindAllString(got, -1), verb.FindAllString(english, -1))
			}
		}
		for key := range text {
			if _, ok := consentText["en"][key]; !ok {
				t.Errorf("%s has %q, which English lacks", lang, key)
			}
		}
	}
}

func TestLanguageFollowsTheLocale(t *testing.T) {
	for locale, want := range map[string]string{"": "en", "en-US": "en", "fr": "fr", "fr-CA": "fr", "FR_be": "fr", "de-DE": "en",
		"x": "en", "français": "en"} {
		if got := language(locale)["lang"]; got != want {
			t.Errorf("locale %q: %s, want %s", locale, got, want)
		}
	}
}
