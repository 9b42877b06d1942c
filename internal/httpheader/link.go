package httpheader

import (
	"net/url"
	"strings"
)

// Links reads Link headers (RFC 8288 §3) into their targets by relation
// type ("next" for paging, "differences" for NRPS membership
// differences): several links in one header and several headers, rel
// quoted or not (in typographic quotes too, as Moodle sends them), with
// space-separated relation types, compared without regard to case and
// returned in lower case.
// Targets are resolved against base; only absolute http and https URLs are
// kept. For each relation the first link wins. A link that cannot be read
// is skipped, not the header.
func Links(headers []string, base *url.URL) map[string]string {
	links := map[string]string{}
	for _, h := range headers {
		for s := h; s != ""; {
			var target string
			var rels []string
			var ok bool
			target, rels, ok, s = nextLink(s)
			if !ok {
				continue
			}
			resolved, ok := resolve(base, target)
			if !ok {
				continue
			}
			for _, rel := range rels {
				if _, seen := links[rel]; !seen {
					links[rel] = resolved
				}
			}
		}
	}
	return links
}

// nextLink reads one link-value from the start of s and returns its
// target, its relation types (lower case) and the rest of s after the
// comma that ends it; ok is false for a link-value that does not start
// with <…>.
func nextLink(s string) (target string, rels []string, ok bool, rest string) {
	s = strings.TrimLeft(s, " \t,")
	if !strings.HasPrefix(s, "<") {
		return "", nil, false, skipValue(s)
	}
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return "", nil, false, ""
	}
	target, s = strings.TrimSpace(s[1:end]), s[end+1:]
	var relSeen bool
	for {
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ";") {
			break
		}
		var name, value string
		name, value, s = nextParam(s[1:])
		if name == "rel" && !relSeen { // RFC 8288 §3.3: only the first rel counts
			relSeen = true
			// Moodle's line item paging quotes rel in typographic quotes
			// (rel=“next”): read as a token, they are taken off.
			rels = strings.Fields(strings.ToLower(strings.Trim(value, "\u201c\u201d")))
		}
	}
	return target, rels, true, skipValue(s)
}

// nextParam reads `name[=value]` (value a token or a quoted string) and
// returns the rest of s after it.
func nextParam(s string) (name, value, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, "=;,")
	if i < 0 {
		return strings.ToLower(strings.TrimSpace(s)), "", ""
	}
	name = strings.ToLower(strings.TrimSpace(s[:i]))
	if s[i] != '=' {
		return name, "", s[i:]
	}
	s = strings.TrimLeft(s[i+1:], " \t")
	if strings.HasPrefix(s, `"`) {
		value, rest = quoted(s[1:])
		return name, value, rest
	}
	j := strings.IndexAny(s, ";,")
	if j < 0 {
		return name, strings.TrimSpace(s), ""
	}
	return name, strings.TrimSpace(s[:j]), s[j:]
}

// quoted reads a quoted-string's content up to its closing quote, undoing
// backslash escapes; an unclosed string runs to the end.
func quoted(s string) (value, rest string) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// skipValue returns what follows the comma that ends the current
// link-value, passing over commas inside <…> and quoted strings.
func skipValue(s string) string {
	inQuote, inTarget := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"' && !inTarget:
			inQuote = !inQuote
		case c == '<' && !inQuote:
			inTarget = true
		case c == '>' && !inQuote:
			inTarget = false
		case c == ',' && !inQuote && !inTarget:
			return s[i+1:]
		}
	}
	return ""
}

// resolve makes target absolute against base and keeps it only when it is
// an http or https URL with a host.
func resolve(base *url.URL, target string) (string, bool) {
	ref, err := url.Parse(target)
	if err != nil {
		return "", false
	}
	if base != nil {
		ref = base.ResolveReference(ref)
	}
	if (ref.Scheme != "http" && ref.Scheme != "https") || ref.Host == "" {
		return "", false
	}
	return ref.String(), true
}
