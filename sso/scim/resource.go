package scim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Meta is a resource's meta attribute (RFC 7643 §3.1).
type Meta struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
	Location     string `json:"location"`
	Version      string `json:"version"`
}

// Resource is a User or Group as answered: its JSON object and its ETag.
type Resource struct {
	Body map[string]any
	ETag string
}

func weakTag(n int64) string { return fmt.Sprintf(`W/"%d"`, n) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// userResource renders a user; base is the Users endpoint's URL.
func userResource(r *userRow, base string) Resource {
	doc := r.document()
	body := map[string]any(doc)
	schemas := []string{SchemaUser}
	for k := range maps.Keys(doc) {
		if isURN(k) {
			schemas = append(schemas, k)
		}
	}
	slices.Sort(schemas[1:])
	body["schemas"] = schemas
	body["id"] = r.ID.String()
	if len(r.Groups) > 0 {
		groups := make([]map[string]any, 0, len(r.Groups))
		for _, g := range r.Groups {
			groups = append(groups, map[string]any{"value": g.GroupID.String(), "display": g.Display,
				"$ref": base + "/Groups/" + g.GroupID.String(), "type": "direct"})
		}
		body["groups"] = groups
	}
	tag := r.etag()
	body["meta"] = Meta{ResourceType: "User", Created: stamp(r.CreatedAt), LastModified: stamp(r.UpdatedAt),
		Location: base + "/Users/" + r.ID.String(), Version: tag}
	return Resource{Body: body, ETag: tag}
}

// Projection is a request's attributes and excludedAttributes (RFC 7644
// §3.4.2.5), top-level names compared ignoring case.
type Projection struct {
	Attributes, Excluded []string
}

// ParseProjection reads the two comma-separated lists.
func ParseProjection(attributes, excluded string) Projection {
	split := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, strings.ToLower(topLevel(p)))
			}
		}
		return out
	}
	return Projection{Attributes: split(attributes), Excluded: split(excluded)}
}

// topLevel is the top-level attribute a path names: name of name.givenName,
// the extension's URN of urn:…:User:department (its attributes are
// returned with their container).
func topLevel(p string) string {
	if isURN(p) {
		if i := strings.LastIndex(p, ":"); i > 0 && !strings.EqualFold(p, SchemaEnterprise) && !strings.EqualFold(p, SchemaUser) {
			if strings.EqualFold(p[:i], SchemaUser) {
				p = p[i+1:]
			} else {
				return p[:i]
			}
		}
	}
	if i := strings.IndexByte(p, '.'); i > 0 {
		return p[:i]
	}
	return p
}

// Excludes reports whether the projection leaves attribute name out.
func (p Projection) Excludes(name string) bool {
	name = strings.ToLower(name)
	if slices.Contains(p.Excluded, name) {
		return true
	}
	return len(p.Attributes) > 0 && !slices.Contains(p.Attributes, name)
}

// apply leaves out of body what the projection excludes; schemas, id and
// meta always stay (returned "always", RFC 7643 §7).
func (p Projection) apply(body map[string]any) {
	for k := range body {
		switch k {
		case "schemas", "id", "meta":
			continue
		}
		if p.Excludes(k) {
			delete(body, k)
		}
	}
}
