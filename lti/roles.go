package lti

import (
	"strings"
	"unicode"
)

// RoleLabel names a role in words for the people who see it on a page:
// "Instructor", "Teaching assistant", "Learner". LIS role URIs (context,
// sub-role, institution and system), short names and unknown roles alike
// are named by their last part.
func RoleLabel(role string) string {
	name := strings.TrimSpace(role)
	if i := strings.LastIndexAny(name, "#/:"); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		return role
	}
	if l, ok := roleWords[name]; ok {
		return l
	}
	return words(name)
}

// roleWords names the LIS roles whose names do not read as words.
var roleWords = map[string]string{
	"SysAdmin": "System administrator", "SysSupport": "System support", "AccountAdmin": "Account administrator",
	"ProspectiveStudent": "Prospective student",
}

// RoleLabels names roles in words, each once, in their order.
func RoleLabels(roles []string) []string {
	labels := make([]string, 0, len(roles))
	seen := map[string]bool{}
	for _, r := range roles {
		if l := RoleLabel(r); l != "" && !seen[l] {
			seen[l] = true
			labels = append(labels, l)
		}
	}
	return labels
}

// words splits a CamelCase name into a phrase with its first letter
// capitalised: "TeachingAssistant" is "Teaching assistant".
func words(name string) string {
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		switch {
		case i == 0:
			b.WriteRune(unicode.ToUpper(r))
		case unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))):
			b.WriteRune(' ')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
