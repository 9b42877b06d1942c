// Package page is the chrome of the hub's browser pages (LTI's, sign-in's,
// consent's): the templates every page opens with, and the writing of a
// page with a Content Security Policy that allows only its own inline
// script. The pages are small on purpose: they must work without the
// hub's own assets, some inside an LMS's frame.
package page

import (
	"bytes"
	"html/template"
	"net/http"

	"github.com/klasterina/hub/internal/token"
)

// Chrome defines "head" (a page titled by its argument), "text-head" (a
// page in the language of a text catalog: .lang and .title) and "meta";
// a page's own templates are parsed after it.
const Chrome = `
{{define "head"}}<!doctype html><html lang="en"><head>{{template "meta" .}}{{end}}

{{/* text-head opens a page in the language of a text catalog. */}}
{{define "text-head"}}<!doctype html><html lang="{{.lang}}"><head>{{template "meta" .title}}{{end}}

{{define "meta"}}<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:.1rem .3rem}dt{font-weight:600}dd{margin:0 0 .6rem}</style></head><body>{{end}}

{{define "info"}}{{template "head" .Heading}}
<h1>{{.Heading}}</h1>
<p>{{.Text}}</p>
</body></html>{{end}}
`

// Parse is the chrome with a page set's own templates.
func Parse(pages string) *template.Template {
	return template.Must(template.New("pages").Parse(Chrome + pages))
}

// Write renders template name of t with data, plus .Nonce for its inline
// script, under a Content Security Policy that allows that script only and
// lets frameAncestors frame the page ("*": any LMS; "'none'": none), and
// never cached.
func Write(w http.ResponseWriter, t *template.Template, status int, name string, data map[string]any, frameAncestors string) error {
	if data == nil {
		data = map[string]any{}
	}
	nonce := token.Random(16)
	data["Nonce"] = nonce
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-"+nonce+
		"'; connect-src 'self'; form-action *; frame-ancestors "+frameAncestors)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}
