package main

import (
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The webhook receiver of the demo: an endpoint standing in for an
// organisation's, which the demo tenant's webhook destination points at.
// It verifies each POST's Standard Webhooks signature with the
// destination's secret, keeps the last events in memory, and lists them
// on a page.

// maxReceived is how many events the receiver keeps, newest first.
const maxReceived = 50

// maxEventBody bounds the body the receiver reads.
const maxEventBody = 1 << 20

// receivedEvent is one POST the receiver got.
type receivedEvent struct {
	ID         string // webhook-id
	Type       string // the payload's type
	Verified   bool
	Payload    string // indented JSON, or the body as it came
	ReceivedAt time.Time
}

// demoReceiver is the webhook receiver.
type demoReceiver struct {
	secrets []string // the destination's signing secrets (whsec_…)

	mu     sync.Mutex
	events []receivedEvent // newest first
}

func newDemoReceiver(secrets []string) *demoReceiver { return &demoReceiver{secrets: secrets} }

// receive verifies and keeps one event: 204 when its signature verifies
// with one of the secrets, 400 when it does not (kept all the same, to
// show).
func (d *demoReceiver) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEventBody))
	if err != nil {
		http.Error(w, "could not read the body", http.StatusBadRequest)
		return
	}
	ev := receivedEvent{ID: r.Header.Get(standardwebhooks.HeaderWebhookID), Verified: d.verify(body, r.Header),
		Payload: indentJSON(body), ReceivedAt: time.Now()}
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(body, &p) == nil {
		ev.Type = p.Type
	}
	d.keep(ev)
	if !ev.Verified {
		http.Error(w, "the signature does not verify", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// verify checks the signature and the timestamp's tolerance with the
// reference library, against each secret.
func (d *demoReceiver) verify(body []byte, h http.Header) bool {
	for _, secret := range d.secrets {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err == nil && wh.Verify(body, h) == nil {
			return true
		}
	}
	return false
}

func (d *demoReceiver) keep(ev receivedEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = slices.Insert(d.events, 0, ev)
	if len(d.events) > maxReceived {
		d.events = d.events[:maxReceived]
	}
}

// list is the page of events received, newest first.
func (d *demoReceiver) list(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	events := slices.Clone(d.events)
	d.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = receiverPage.Execute(w, map[string]any{"Events": events, "Max": maxReceived})
}

var receiverPage = template.Must(template.New("receiver").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>Demo webhook receiver</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;font-size:.9rem;width:100%}th,td{text-align:left;vertical-align:top;padding:.3rem .6rem;border-bottom:1px solid #ddd}
pre{margin:0;white-space:pre-wrap}</style></head>
<body><h1>Demo webhook receiver</h1>
<p>The demo tenant's webhook destination posts here. Each event's Standard Webhooks signature is checked with the destination's secret;
the last {{.Max}} events are kept in memory, newest first. This page reloads every 5 seconds.</p>
{{if .Events}}<table><tr><th>Received</th><th>Id</th><th>Type</th><th>Verified</th><th>Payload</th></tr>
{{range .Events}}<tr class="event"><td>{{.ReceivedAt.Format "15:04:05"}}</td><td><code>{{.ID}}</code></td><td class="type">{{.Type}}</td>
<td class="verified">{{if .Verified}}yes{{else}}no{{end}}</td><td><pre>{{.Payload}}</pre></td></tr>
{{end}}</table>{{else}}<p>Nothing received yet: report a result from the demo learning app.</p>{{end}}
</body></html>`))
