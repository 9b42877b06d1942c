package web

import (
	"fmt"
	"strings"

	"github.com/klasterina/hub/tenants/agreements"
)

// consentText is every word of the consent page, by language. English
// first; a launch's locale ("de-DE") picks its language where a
// translation exists.
var consentText = map[string]map[string]string{
	"en": {
		"title":        "Sharing your progress",
		"intro":        "%s asks your permission to share some of your learning records from this course.",
		"what":         "What is shared",
		"with":         "With whom",
		"why":          "Why",
		"how_long":     "For how long",
		"how-long-is":  "Records of what was shared are kept for %d days.",
		"withdraw":     "Whatever you choose, you continue into your course. Declining only stops sharing. You can change your choice at any time.",
		"allow":        "Allow",
		"deny":         "Don't allow",
		"scores":       "your scores",
		"completion":   "whether you completed activities",
		"progress":     "your progress through activities",
		"time_spent":   "the time you spent",
		"certificates": "certificates you earned",
		"name":         "your name",
		"email":        "your email address",
		"external_id":  "your student or employee number",
		"lms":          "your institution's gradebook, in your LMS",
		"webhook":      "your organisation's records system",
		"xapi":         "your organisation's learning record store",
		"and-fields":   "with %s",
		"id-only":      "with a number that stands for you, not your name",
	},
}

// language is the consent page's language for locale: its first part when
// a translation exists, else English.
func language(locale string) map[string]string {
	tag, _, _ := strings.Cut(strings.ToLower(locale), "-")
	tag, _, _ = strings.Cut(tag, "_")
	if text, ok := consentText[tag]; ok {
		return text
	}
	return consentText["en"]
}

// consentPage is what the page says of an agreement, in words.
type consentPage struct {
	Text     map[string]string
	Intro    string
	What     []string
	Fields   string
	With     []string
	Why      []string
	HowLong  string
	Continue string
}

func describe(text map[string]string, tenant string, a agreements.Agreement) consentPage {
	p := consentPage{Text: text, Intro: sprintf(text["intro"], tenant), HowLong: sprintf(text["how-long-is"], a.DisclosureRetentionDays)}
	for _, c := range a.Categories {
		p.What = append(p.What, text[string(c)])
	}
	var fields []string
	for _, f := range a.Fields {
		fields = append(fields, text[string(f)])
	}
	p.Fields = text["id-only"]
	if len(fields) > 0 {
		p.Fields = sprintf(text["and-fields"], strings.Join(fields, ", "))
	}
	seen := map[agreements.DestinationKind]bool{}
	for _, d := range a.Destinations {
		if !seen[d.Kind] {
			p.With, seen[d.Kind] = append(p.With, text[string(d.Kind)]), true
		}
	}
	for _, purpose := range a.Purposes {
		if purpose.Description != "" {
			p.Why = append(p.Why, purpose.Description)
		}
	}
	return p
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
