package httpheader

import (
	"maps"
	"net/url"
	"testing"
)

func TestLinks(t *testing.T) {
	base, _ := url.Parse("https://lms.example.edu/api/lti/courses/1/names_and_roles?limit=50")
	tests := []struct {
		name    string
		headers []string
		want    map[string]string
	}{
		{"none", nil, map[string]string{}},
		{"absolute next", []string{`<https://lms.example.edu/api/lti/courses/1/names_and_roles?page=2&per_page=50>; rel="next"`},
			map[string]string{"next": "https://lms.example.edu/api/lti/courses/1/names_and_roles?page=2&per_page=50"}},
		{"relative path", []string{`</api/lti/courses/1/names_and_roles?page=3>; rel=next`},
			map[string]string{"next": "https://lms.example.edu/api/lti/courses/1/names_and_roles?page=3"}},
		{"relative query", []string{`<?page=4>; rel="next"`},
			map[string]string{"next": "https://lms.example.edu/api/lti/courses/1/names_and_roles?page=4"}},
		{"Canvas style: several in one header", []string{`<https://lms.example.edu/n?page=1>; rel="current",<https://lms.example.edu/n?page=2>; rel="next",<https://lms.example.edu/n?page=1>; rel="first",<https://lms.example.edu/n?page=9>; rel="last"`},
			map[string]string{"current": "https://lms.example.edu/n?page=1", "next": "https://lms.example.edu/n?page=2",
				"first": "https://lms.example.edu/n?page=1", "last": "https://lms.example.edu/n?page=9"}},
		{"several headers", []string{`<https://lms.example.edu/n?page=2>; rel="next"`, `<https://lms.example.edu/n?since=5>; rel="differences"`},
			map[string]string{"next": "https://lms.example.edu/n?page=2", "differences": "https://lms.example.edu/n?since=5"}},
		{"several rel values", []string{`<https://lms.example.edu/n?p=2>; rel="next last"`},
			map[string]string{"next": "https://lms.example.edu/n?p=2", "last": "https://lms.example.edu/n?p=2"}},
		{"rel case and spacing", []string{`<https://lms.example.edu/n?p=2> ;  REL = "Next"`},
			map[string]string{"next": "https://lms.example.edu/n?p=2"}},
		{"other parameters first", []string{`<https://lms.example.edu/n?p=2>; title="a; b, c"; type="application/json"; rel="next"`},
			map[string]string{"next": "https://lms.example.edu/n?p=2"}},
		{"comma inside the target", []string{`<https://lms.example.edu/n?roles=a,b>; rel="next"`},
			map[string]string{"next": "https://lms.example.edu/n?roles=a,b"}},
		{"first rel counts", []string{`<https://lms.example.edu/n?p=2>; rel="next"; rel="prev"`},
			map[string]string{"next": "https://lms.example.edu/n?p=2"}},
		{"first link of a relation wins", []string{`<https://lms.example.edu/a>; rel=next, <https://lms.example.edu/b>; rel=next`},
			map[string]string{"next": "https://lms.example.edu/a"}},
		{"escaped quote", []string{`<https://lms.example.edu/n?p=2>; title="say \"hi\", then"; rel="next"`},
			map[string]string{"next": "https://lms.example.edu/n?p=2"}},
		{"garbage before a good link", []string{`garbage; rel=next, <https://lms.example.edu/n?p=2>; rel="next"`},
			map[string]string{"next": "https://lms.example.edu/n?p=2"}},
		{"unclosed target", []string{`<https://lms.example.edu/n?p=2; rel="next"`}, map[string]string{}},
		{"no rel", []string{`<https://lms.example.edu/n?p=2>`}, map[string]string{}},
		{"javascript scheme refused", []string{`<javascript:alert(1)>; rel="next"`}, map[string]string{}},
		{"ftp refused", []string{`<ftp://lms.example.edu/n>; rel="next"`}, map[string]string{}},
		{"bad URL refused", []string{`<http://[::1>; rel="next"`}, map[string]string{}},
		{"unclosed quote", []string{`<https://lms.example.edu/n?p=2>; rel="next`},
			map[string]string{"next": "https://lms.example.edu/n?p=2"}},
		{"Moodle's typographic quotes", []string{`<https://lms.example.edu/l?type_id=1&limit=2&from=0>; rel=“first”, <https://lms.example.edu/l?type_id=1&limit=2&from=2>; rel=“canonical”, <https://lms.example.edu/l?type_id=1&limit=2&from=4>; rel=“next”, <https://lms.example.edu/l?type_id=1&limit=2&from=5>; rel=“last”`},
			map[string]string{"first": "https://lms.example.edu/l?type_id=1&limit=2&from=0", "canonical": "https://lms.example.edu/l?type_id=1&limit=2&from=2",
				"next": "https://lms.example.edu/l?type_id=1&limit=2&from=4", "last": "https://lms.example.edu/l?type_id=1&limit=2&from=5"}},
		{"empty target is the page", []string{`<>; rel="self"`},
			map[string]string{"self": "https://lms.example.edu/api/lti/courses/1/names_and_roles?limit=50"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Links(tc.headers, base); !maps.Equal(got, tc.want) {
				t.Errorf("Links(%q) = %v, want %v", tc.headers, got, tc.want)
			}
		})
	}
}
