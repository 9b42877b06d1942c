package destinations

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/httpx"
)

// Kind is how records reach a destination.
type Kind string

// Destination kinds, as agreements name them.
const (
	KindWebhook Kind = "webhook" // a signed JSON POST (Standard Webhooks)
	KindXAPI    Kind = "xapi"    // xAPI 1.0.3 statements to a Learning Record Store
)

// EventType is a kind of record a destination subscribes to: the data
// categories of agreements (agreements.Categories), spelt the same.
type EventType string

// Event types.
const (
	EventScores       EventType = "scores"
	EventCompletion   EventType = "completion"
	EventProgress     EventType = "progress"
	EventTimeSpent    EventType = "time_spent"
	EventCertificates EventType = "certificates"
)

// EventTypes lists every event type, in the agreements' order.
var EventTypes = []EventType{EventScores, EventCompletion, EventProgress, EventTimeSpent, EventCertificates}

// Bounds of a destination, documented in the OpenAPI document.
const (
	MaxName       = 200
	MaxURLLength  = 2048
	MaxCredential = 255 // an LRS's username and password, each
)

// RotationWindow is how long a rotated webhook secret keeps signing beside
// the new one when the admin does not finish the rotation sooner.
const RotationWindow = 7 * 24 * time.Hour

// Destination is one of a tenant's destinations, without its secrets.
type Destination struct {
	ID         uuid.UUID   `json:"id"`
	TenantID   uuid.UUID   `json:"-"`
	Kind       Kind        `json:"kind"`
	Name       string      `json:"name"`
	URL        string      `json:"url"`
	Enabled    bool        `json:"enabled"`
	DryRun     bool        `json:"dry_run"`
	EventTypes []EventType `json:"event_types"`
	// PreviousSecretExpiresAt is set while a webhook's rotation is in
	// progress: until then its previous secret signs too.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// Subscribes reports whether d takes records of type e.
func (d Destination) Subscribes(e EventType) bool { return slices.Contains(d.EventTypes, e) }

// New is a destination as a tenant admin asks for it.
type New struct {
	Kind       Kind        `json:"kind"`
	Name       string      `json:"name"`
	URL        string      `json:"url"`
	Enabled    *bool       `json:"enabled"` // default true
	DryRun     bool        `json:"dry_run"`
	EventTypes []EventType `json:"event_types"`
	// Username and Password are an LRS's HTTP Basic credentials (xapi only).
	Username string `json:"username"`
	Password string `json:"password"`
}

// Created is a new destination with its webhook secret, which is shown
// here and in a rotation's answer only.
type Created struct {
	Destination
	Secret string `json:"secret,omitempty"`
}

// Patch changes some of a destination's settings; nil leaves one as it is.
// The kind never changes.
type Patch struct {
	Name       *string      `json:"name"`
	URL        *string      `json:"url"`
	Enabled    *bool        `json:"enabled"`
	DryRun     *bool        `json:"dry_run"`
	EventTypes *[]EventType `json:"event_types"`
	Username   *string      `json:"username"`
	Password   *string      `json:"password"`
}

// fields names the settings p changes, for the audit log.
func (p Patch) fields() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"name", p.Name != nil}, {"url", p.URL != nil}, {"enabled", p.Enabled != nil}, {"dry_run", p.DryRun != nil},
		{"event_types", p.EventTypes != nil}, {"username", p.Username != nil}, {"password", p.Password != nil}} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// Credentials are what a sender needs besides the destination: opened
// secrets. They never leave the process except in the request they sign
// or authenticate, and print as redacted.
type Credentials struct {
	// Secrets are a webhook's signing secrets (whsec_…): the current one
	// first, then the previous one while its rotation lasts.
	Secrets []string
	// Username and Password are an LRS's Basic credentials.
	Username, Password string
}

// String keeps credentials out of fmt output.
func (Credentials) String() string { return "destinations.Credentials{redacted}" }

// GoString keeps credentials out of %#v.
func (c Credentials) GoString() string { return c.String() }

// LogValue keeps credentials out of logs.
func (Credentials) LogValue() slog.Value { return slog.StringValue("redacted") }

func (n New) validate(allowHTTP bool) error {
	var v apperr.Validator
	v.Check(n.Kind == KindWebhook || n.Kind == KindXAPI, "kind", "must be webhook or xapi")
	v.CheckName("name", n.Name, MaxName)
	checkURL(&v, n.URL, allowHTTP)
	checkEventTypes(&v, n.EventTypes)
	switch n.Kind {
	case KindXAPI:
		checkUsername(&v, n.Username)
		checkPassword(&v, n.Password)
	case KindWebhook:
		v.Check(n.Username == "", "username", "a webhook takes no username: the hub signs its requests with a secret of its own")
		v.Check(n.Password == "", "password", "a webhook takes no password: the hub signs its requests with a secret of its own")
	}
	return v.Err()
}

func (p Patch) validate(kind Kind, allowHTTP bool) error {
	var v apperr.Validator
	v.Check(len(p.fields()) > 0, "body", "must change at least one of name, url, enabled, dry_run, event_types, username, password")
	if p.Name != nil {
		v.CheckName("name", *p.Name, MaxName)
	}
	if p.URL != nil {
		checkURL(&v, *p.URL, allowHTTP)
	}
	if p.EventTypes != nil {
		checkEventTypes(&v, *p.EventTypes)
	}
	if kind == KindXAPI {
		if p.Username != nil {
			checkUsername(&v, *p.Username)
		}
		if p.Password != nil {
			checkPassword(&v, *p.Password)
		}
	} else {
		v.Check(p.Username == nil, "username", "a webhook takes no username")
		v.Check(p.Password == nil, "password", "a webhook takes no password")
	}
	return v.Err()
}

func checkEventTypes(v *apperr.Validator, types []EventType) {
	v.Check(len(types) >= 1, "event_types", fmt.Sprintf("must name at least one of %v", EventTypes))
	for i, e := range types {
		field := fmt.Sprintf("event_types[%d]", i)
		v.Check(slices.Contains(EventTypes, e), field, fmt.Sprintf("must be one of %v", EventTypes))
		v.Check(!slices.Contains(types[:i], e), field, "is listed twice")
	}
}

// A Basic username may not hold a colon (RFC 7617 §2): the LRS would
// split it there.
func checkUsername(v *apperr.Validator, s string) {
	v.CheckText("username", s, 1, MaxCredential)
	v.Check(!strings.Contains(s, ":"), "username", "must not contain a colon (HTTP Basic)")
}

func checkPassword(v *apperr.Validator, s string) {
	v.CheckText("password", s, 1, MaxCredential)
}

// checkURL refuses what the hub would never call, so an admin learns it
// now rather than at the first delivery: anything but an absolute https
// URL (http too when allowHTTP, which follows HUB_OUTBOUND_ALLOW_PRIVATE),
// credentials or a fragment in it, a port out of range, an address with a
// zone, and unless allowHTTP a literal loopback, private or link-local
// address. A name is judged at delivery, by the address it resolves to.
func checkURL(v *apperr.Validator, s string, allowHTTP bool) {
	v.Check(isDestinationURL(s, allowHTTP), "url", urlMessage(allowHTTP))
}

func isDestinationURL(s string, allowHTTP bool) bool {
	if len(s) > MaxURLLength*utf8.UTFMax || utf8.RuneCountInString(s) > MaxURLLength || !apperr.IsText(s) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(s, "#") {
		return false
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !allowHTTP) {
		return false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return httpx.CheckHost(u.Host, allowHTTP) == nil
}

func urlMessage(allowHTTP bool) string {
	if allowHTTP {
		return fmt.Sprintf("must be an absolute https or http URL of at most %d characters, without credentials or fragment", MaxURLLength)
	}
	return fmt.Sprintf("must be an absolute https URL of at most %d characters, without credentials or fragment, to a public address", MaxURLLength)
}
