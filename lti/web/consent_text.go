package web

import (
	"fmt"
	"strings"

	"github.com/klasterina/hub/tenants/agreements"
)

// consentText is every word of the consent pages, by language (a BCP 47
// primary tag). English first; a launch's or link's locale ("fr-CA")
// picks its language where a translation exists. A translation has every
// key English has (a test checks).
var consentText = map[string]map[string]string{
	"en": {
		"lang":         "en",
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
		"comment":      "comments on your work",
		"lms":          "your institution's gradebook, in your LMS",
		"webhook":      "your organisation's records system",
		"xapi":         "your organisation's learning record store",
		"and-fields":   "with %s",
		"id-only":      "with a number that stands for you, not your name",

		"notice_title":    "How your progress is shared",
		"notice-intro":    "%s shares some of your learning records from this course, unless you object.",
		"object_any_time": "You can object now or at any time. Objecting only stops sharing: you continue into your course either way.",
		"continue":        "Continue",
		"object":          "Object to sharing",

		"choices_title":  "Your sharing choices",
		"your_choice":    "Your choice",
		"stop":           "Stop sharing",
		"saved":          "Your choice is saved.",
		"nothing-shared": "%s has no agreement to share your learning records: nothing about you is shared.",
		"not-required":   "%s shares these records under its agreement with us, which does not ask for your consent. Ask your organisation if you have questions about it.",
		"granted":        "You allowed sharing.",
		"refused":        "You stopped sharing: nothing is shared.",
		"unanswered-in":  "You have not answered yet: nothing is shared until you allow it.",
		"unanswered-out": "Shared unless you object.",
		"expired_title":  "This link has expired",
		"expired":        "Open your sharing choices again from the learning app.",
	},
	"fr": {
		"lang":         "fr",
		"title":        "Partage de votre progression",
		"intro":        "%s vous demande l'autorisation de partager certaines données d'apprentissage de ce cours.",
		"what":         "Ce qui est partagé",
		"with":         "Avec qui",
		"why":          "Pourquoi",
		"how_long":     "Pendant combien de temps",
		"how-long-is":  "La trace de ce qui a été partagé est conservée %d jours.",
		"withdraw":     "Quel que soit votre choix, vous accédez à votre cours. Refuser arrête seulement le partage. Vous pouvez changer d'avis à tout moment.",
		"allow":        "Autoriser",
		"deny":         "Ne pas autoriser",
		"scores":       "vos notes",
		"completion":   "si vous avez terminé les activités",
		"progress":     "votre progression dans les activités",
		"time_spent":   "le temps que vous y avez passé",
		"certificates": "les certificats obtenus",
		"name":         "votre nom",
		"email":        "votre adresse e-mail",
		"external_id":  "votre numéro d'étudiant ou d'employé",
		"comment":      "les commentaires sur votre travail",
		"lms":          "le carnet de notes de votre établissement, dans votre LMS",
		"webhook":      "le système de gestion de votre organisation",
		"xapi":         "l'entrepôt de traces d'apprentissage de votre organisation",
		"and-fields":   "avec %s",
		"id-only":      "avec un numéro qui vous représente, pas votre nom",

		"notice_title":    "Comment votre progression est partagée",
		"notice-intro":    "%s partage certaines données d'apprentissage de ce cours, sauf si vous vous y opposez.",
		"object_any_time": "Vous pouvez vous y opposer maintenant ou à tout moment. Vous opposer arrête seulement le partage : vous accédez à votre cours dans tous les cas.",
		"continue":        "Continuer",
		"object":          "M'opposer au partage",

		"choices_title":  "Vos choix de partage",
		"your_choice":    "Votre choix",
		"stop":           "Arrêter le partage",
		"saved":          "Votre choix est enregistré.",
		"nothing-shared": "%s n'a aucun accord pour partager vos données d'apprentissage : rien vous concernant n'est partagé.",
		"not-required":   "%s partage ces données en vertu de son accord avec nous, qui ne demande pas votre consentement. Adressez vos questions à votre organisation.",
		"granted":        "Vous avez autorisé le partage.",
		"refused":        "Vous avez arrêté le partage : rien n'est partagé.",
		"unanswered-in":  "Vous n'avez pas encore répondu : rien n'est partagé tant que vous ne l'autorisez pas.",
		"unanswered-out": "Partagé sauf si vous vous y opposez.",
		"expired_title":  "Ce lien a expiré",
		"expired":        "Ouvrez de nouveau vos choix de partage depuis l'application d'apprentissage.",
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

// consentPage is what a consent page says of an agreement, in words, and
// where its form goes.
type consentPage struct {
	Text    map[string]string
	Intro   string
	What    []string
	Fields  string
	With    []string
	Why     []string
	HowLong string
	// Continue is the sealed launch a launch's page continues; Action
	// where its form posts.
	Continue, Action string
	// The choices page's: whether there is an agreement to describe, the
	// learner's standing with it, whether they can answer, and the
	// confirmation of an answer just saved.
	Described  bool
	Standing   string
	Answerable bool
	Saved      string
}

// describe puts agreement a of tenant in the words of text, introduced by
// the text's intro key.
func describe(text map[string]string, intro, tenant string, a agreements.Agreement) consentPage {
	p := consentPage{Text: text, Intro: sprintf(text[intro], tenant), HowLong: sprintf(text["how-long-is"], a.DisclosureRetentionDays),
		Described: true}
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
