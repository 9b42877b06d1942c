package web

import "github.com/klasterina/hub/internal/page"

// The browser-facing pages. They are small on purpose: they run inside an
// LMS iframe, and must work without the hub's own assets.
var pages = page.Parse(`
{{define "error"}}{{template "head" .Heading}}
<h1>{{.Heading}}</h1>
<p>{{.Message}}</p>
{{with .LoginURL}}<p>LMS administrator: set the tool's login initiation URL to your registration's own,
<code>{{.}}</code>, shown as <code>login_url</code> in the hub's tool configuration of your registration.</p>{{end}}
<p>If this keeps happening, give {{.Contact}} this reference:</p>
<p>reason <code>{{.Reason}}</code>, reference <code>{{.RequestID}}</code></p>
</body></html>{{end}}

{{define "landing"}}{{template "head" "Launched"}}
<h1>Welcome{{if .Name}}, {{.Name}}{{end}}</h1>
<dl>
<dt>Organisation</dt><dd>{{.Tenant}}</dd>
{{if .Course}}<dt>Course</dt><dd>{{.Course}}</dd>{{end}}
{{if .Activity}}<dt>Activity</dt><dd>{{.Activity}}</dd>{{end}}
<dt>Roles</dt><dd>{{range $i, $r := .Roles}}{{if $i}}, {{end}}{{$r}}{{else}}none{{end}}</dd>
<dt>Hub user</dt><dd><code>{{.UserID}}</code></dd>
</dl>
<p>No learning app is configured (<code>HUB_APP_URL</code>), so the hub shows this page instead of handing you over.</p>
</body></html>{{end}}

{{/* agreement describes an agreement in the learner's words (consentPage). */}}
{{define "agreement"}}<h2>{{.Text.what}}</h2>
<ul>{{range .What}}<li>{{.}}</li>{{end}}</ul>
<p>{{.Fields}}</p>
<h2>{{.Text.with}}</h2>
<ul>{{range .With}}<li>{{.}}</li>{{end}}</ul>
{{if .Why}}<h2>{{.Text.why}}</h2><ul>{{range .Why}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>{{.Text.how_long}}</h2>
<p>{{.HowLong}}</p>{{end}}

{{define "consent"}}{{with .Page}}{{template "text-head" .Text}}
<h1>{{.Text.title}}</h1>
<p>{{.Intro}}</p>
{{template "agreement" .}}
<p>{{.Text.withdraw}}</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="continue" value="{{.Continue}}">
<button name="answer" value="allow">{{.Text.allow}}</button>
<button name="answer" value="deny">{{.Text.deny}}</button>
</form>{{end}}
</body></html>{{end}}

{{define "consent-notice"}}{{with .Page}}{{template "text-head" .Text}}
<h1>{{.Text.notice_title}}</h1>
<p>{{.Intro}}</p>
{{template "agreement" .}}
<p>{{.Text.object_any_time}}</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="continue" value="{{.Continue}}">
<button name="answer" value="continue">{{.Text.continue}}</button>
<button name="answer" value="object">{{.Text.object}}</button>
</form>{{end}}
</body></html>{{end}}

{{define "consent-choices"}}{{with .Page}}{{template "text-head" .Text}}
<h1>{{.Text.choices_title}}</h1>
{{with .Saved}}<p role="status"><strong>{{.}}</strong></p>{{end}}
{{if .Described}}<p>{{.Intro}}</p>
{{template "agreement" .}}
<h2>{{.Text.your_choice}}</h2>
<p>{{.Standing}}</p>
{{if .Answerable}}<form method="post" action="{{.Action}}">
<button name="answer" value="allow">{{.Text.allow}}</button>
<button name="answer" value="stop">{{.Text.stop}}</button>
</form>{{end}}{{else}}<p>{{.Standing}}</p>{{end}}{{end}}
</body></html>{{end}}

{{define "handoff"}}{{template "head" "Continuing…"}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="hub_token" value="{{.Token}}">
<noscript><button>Continue</button></noscript>
</form>
<script nonce="{{.Nonce}}">document.forms[0].submit()</script>
</body></html>{{end}}

{{define "storage-frame"}}
  // The LMS's frame that answers platform storage: the parent frame, or,
  // in a tab the LMS opened, the opener (a tab is its own parent).
  function storageFrame(target) {
    var host = window.parent !== window ? window.parent : window.opener;
    if (!host || target === "_parent") return host;
    try { return host.frames[target] || host; } catch (err) { return host; }
  }
{{end}}

{{define "store-state"}}{{template "head" "Signing in…"}}
<p>Signing in…</p>
<script nonce="{{.Nonce}}">
{{template "storage-frame"}}
(function () {
  var next = {{.Next}}, origin = {{.Origin}}, target = {{.Target}};
  var frame = storageFrame(target);
  var id = "put-" + Math.random().toString(36).slice(2);
  var done = false;
  function go() { if (!done) { done = true; window.location.replace(next); } }
  window.addEventListener("message", function (e) {
    if (e.origin === origin && e.data && e.data.subject === "lti.put_data.response" && e.data.message_id === id) go();
  });
  try {
    frame.postMessage({subject: "lti.put_data", message_id: id, key: {{.Key}}, value: {{.Value}}}, origin);
  } catch (err) { go(); }
  setTimeout(go, 3000);
})();
</script>
</body></html>{{end}}

{{define "fetch-state"}}{{template "head" "Signing in…"}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="id_token" value="{{.IDToken}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="lti_storage_secret" value="">
</form>
<p id="slow" hidden>Your browser blocked what this launch needs inside the LMS.
Go back to the LMS and launch the activity again, in a new window if the LMS offers one.</p>
<script nonce="{{.Nonce}}">
{{template "storage-frame"}}
(function () {
  var origin = {{.Origin}}, target = {{.Target}};
  var frame = storageFrame(target);
  var id = "get-" + Math.random().toString(36).slice(2);
  window.addEventListener("message", function (e) {
    if (e.origin !== origin || !e.data || e.data.subject !== "lti.get_data.response" || e.data.message_id !== id) return;
    if (!e.data.value) { document.getElementById("slow").hidden = false; return; }
    document.forms[0].elements.lti_storage_secret.value = e.data.value;
    document.forms[0].submit();
  });
  try {
    frame.postMessage({subject: "lti.get_data", message_id: id, key: {{.Key}}}, origin);
  } catch (err) { document.getElementById("slow").hidden = false; }
  setTimeout(function () { document.getElementById("slow").hidden = false; }, 3000);
})();
</script>
</body></html>{{end}}

{{define "picker"}}{{template "head" "Add an activity"}}
<h1>{{if .Title}}{{.Title}}{{else}}Add an activity{{end}}</h1>
<form method="post" action="{{.Action}}">
<input type="hidden" name="session" value="{{.Session}}">
{{if .Notice}}<p role="alert"><strong>{{.Notice}}</strong></p>{{end}}
{{if .LinksOK}}{{range .Activities}}
<p><label><input type="{{if $.Multiple}}checkbox{{else}}radio{{end}}" name="activity" value="{{.ID}}"> <strong>{{.Title}}</strong>
{{if .Gradable}}(graded, out of {{.MaxScore}}){{end}}</label><br>{{.Description}}</p>
{{else}}<p>The catalog is empty.</p>{{end}}
{{else}}<p>Your LMS accepts no kind of link the hub offers here.</p>{{end}}
<p>{{if and .LinksOK .Activities}}<button>Add</button> {{end}}<button name="cancel" value="1">Cancel</button></p>
</form>
</body></html>{{end}}

{{define "deep-link-return"}}{{template "head" "Returning to the LMS…"}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="JWT" value="{{.JWT}}">
<noscript><button>Continue</button></noscript>
</form>
<script nonce="{{.Nonce}}">document.forms[0].submit()</script>
</body></html>{{end}}

{{define "registered"}}{{template "head" "Registered"}}
<h1>The hub is registered</h1>
<p>Registered with {{.Platform}}. You can close this window.</p>
<script nonce="{{.Nonce}}">(window.opener || window.parent).postMessage({subject: "org.imsglobal.lti.close"}, "*");</script>
</body></html>{{end}}

{{define "new-window"}}{{template "head" "Open in a new window"}}
<h1>Open this activity in a new window</h1>
<p>Your browser blocks the cookies this launch needs while it runs inside the LMS.</p>
<p>Go back to the LMS and launch the activity again, in a new window if the LMS offers one.</p>
<p>reference <code>{{.RequestID}}</code></p>
</body></html>{{end}}

{{define "check-binding"}}{{template "head" "Signing in…"}}
<p id="wait">Signing in…</p>
<div id="window" hidden>
<p>Your browser blocks the cookies this launch needs while it runs inside the LMS.</p>
<form method="post" action="{{.Window}}" target="_blank">
<input type="hidden" name="ticket" value="{{.Ticket}}">
<button>Open it in a new window</button>
</form>
</div>
<noscript><style>#window{display:block!important}#wait{display:none}</style></noscript>
<script nonce="{{.Nonce}}">
(function () {
  var next = {{.Next}}, probe = {{.Probe}};
  function offerWindow() { document.getElementById("window").hidden = false; }
  fetch(probe, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
    if (r.ok) window.location.replace(next); else offerWindow();
  }, offerWindow);
})();
</script>
</body></html>{{end}}
`)
