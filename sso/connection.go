package sso

import (
	"encoding/json"
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

// Bounds of a connection, documented in the OpenAPI document.
const (
	MaxName         = 200
	MaxURLLength    = 2048
	MaxClientID     = 512
	MaxClientSecret = 1024
	MaxScopes       = 20
	MaxScope        = 100
	MaxClaimName    = 100
)

// DefaultScopes are a connection's scopes when the admin names none
// (OpenID Connect Core 1.0 §5.4).
var DefaultScopes = []string{"openid", "email", "profile"}

// Claims maps the provider's claim names to what the hub reads of a
// signing-in employee. EmployeeID "" reads none.
type Claims struct {
	Subject    string `json:"subject"`
	Email      string `json:"email"`
	Name       string `json:"name"`
	Groups     string `json:"groups"`
	EmployeeID string `json:"employee_id"`
}

// DefaultClaims are the standard claims of OpenID Connect Core 1.0 §5.1.
var DefaultClaims = Claims{Subject: "sub", Email: "email", Name: "name", Groups: "groups"}

func (c Claims) withDefaults() Claims {
	set := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	set(&c.Subject, DefaultClaims.Subject)
	set(&c.Email, DefaultClaims.Email)
	set(&c.Name, DefaultClaims.Name)
	set(&c.Groups, DefaultClaims.Groups)
	return c
}

// Connection is a tenant's OpenID provider, without its client secret.
type Connection struct {
	ID       uuid.UUID `json:"id"`
	TenantID uuid.UUID `json:"-"`
	Name     string    `json:"name"`
	// Issuer is where discovery is read (Issuer + /.well-known/openid-configuration).
	Issuer string `json:"issuer"`
	// ExpectedIssuer, when set, is the iss the tokens carry: a provider
	// whose discovery names another (Microsoft Entra's multi-tenant
	// endpoints) is verified against this one.
	ExpectedIssuer       string     `json:"expected_issuer,omitempty"`
	ClientID             string     `json:"client_id"`
	HasClientSecret      bool       `json:"has_client_secret"`
	SecretSetAt          *time.Time `json:"secret_set_at"`
	Scopes               []string   `json:"scopes"`
	Claims               Claims     `json:"claims"`
	RequireEmailVerified bool       `json:"require_email_verified"`
	JIT                  bool       `json:"jit"`
	Enabled              bool       `json:"enabled"`
	// RedirectURI is the connection's own callback, to register with the
	// provider: HUB_PUBLIC_URL/sso/callback/{id}.
	RedirectURI string    `json:"redirect_uri"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// TokenIssuer is the iss the connection's tokens must carry.
func (c Connection) TokenIssuer() string {
	if c.ExpectedIssuer != "" {
		return c.ExpectedIssuer
	}
	return c.Issuer
}

// NewConnection is a connection as a tenant admin asks for it.
type NewConnection struct {
	Name                 string   `json:"name"`
	Issuer               string   `json:"issuer"`
	ExpectedIssuer       string   `json:"expected_issuer"`
	ClientID             string   `json:"client_id"`
	ClientSecret         string   `json:"client_secret"`
	Scopes               []string `json:"scopes"`
	Claims               *Claims  `json:"claims"`
	RequireEmailVerified *bool    `json:"require_email_verified"` // default true
	JIT                  *bool    `json:"jit"`                    // default true
	Enabled              *bool    `json:"enabled"`                // default true
}

// ConnectionPatch changes some of a connection's settings; nil leaves one
// as it is. A ClientSecret rotates the secret; "" removes it (a public
// client, which PKCE alone protects).
type ConnectionPatch struct {
	Name                 *string   `json:"name"`
	Issuer               *string   `json:"issuer"`
	ExpectedIssuer       *string   `json:"expected_issuer"`
	ClientID             *string   `json:"client_id"`
	ClientSecret         *string   `json:"client_secret"`
	Scopes               *[]string `json:"scopes"`
	Claims               *Claims   `json:"claims"`
	RequireEmailVerified *bool     `json:"require_email_verified"`
	JIT                  *bool     `json:"jit"`
	Enabled              *bool     `json:"enabled"`
}

// fields names the settings p changes, for the audit log.
func (p ConnectionPatch) fields() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"name", p.Name != nil}, {"issuer", p.Issuer != nil}, {"expected_issuer", p.ExpectedIssuer != nil},
		{"client_id", p.ClientID != nil}, {"client_secret", p.ClientSecret != nil}, {"scopes", p.Scopes != nil},
		{"claims", p.Claims != nil}, {"require_email_verified", p.RequireEmailVerified != nil}, {"jit", p.JIT != nil},
		{"enabled", p.Enabled != nil}} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// Secret is an opened client secret: it prints as redacted.
type Secret string

func (Secret) String() string                 { return "redacted" }
func (s Secret) GoString() string             { return s.String() }
func (Secret) LogValue() slog.Value           { return slog.StringValue("redacted") }
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal("redacted") }

func (n NewConnection) validate(allowHTTP bool) error {
	var v apperr.Validator
	v.CheckName("name", n.Name, MaxName)
	checkIssuer(&v, "issuer", n.Issuer, allowHTTP)
	if n.ExpectedIssuer != "" {
		checkIssuer(&v, "expected_issuer", n.ExpectedIssuer, allowHTTP)
	}
	v.CheckText("client_id", n.ClientID, 1, MaxClientID)
	v.CheckText("client_secret", n.ClientSecret, 0, MaxClientSecret)
	if n.Scopes != nil {
		checkScopes(&v, n.Scopes)
	}
	if n.Claims != nil {
		checkClaims(&v, *n.Claims)
	}
	return v.Err()
}

func (p ConnectionPatch) validate(allowHTTP bool) error {
	var v apperr.Validator
	v.Check(len(p.fields()) > 0, "body", "must change at least one setting")
	if p.Name != nil {
		v.CheckName("name", *p.Name, MaxName)
	}
	if p.Issuer != nil {
		checkIssuer(&v, "issuer", *p.Issuer, allowHTTP)
	}
	if p.ExpectedIssuer != nil && *p.ExpectedIssuer != "" {
		checkIssuer(&v, "expected_issuer", *p.ExpectedIssuer, allowHTTP)
	}
	if p.ClientID != nil {
		v.CheckText("client_id", *p.ClientID, 1, MaxClientID)
	}
	if p.ClientSecret != nil {
		v.CheckText("client_secret", *p.ClientSecret, 0, MaxClientSecret)
	}
	if p.Scopes != nil {
		checkScopes(&v, *p.Scopes)
	}
	if p.Claims != nil {
		checkClaims(&v, *p.Claims)
	}
	return v.Err()
}

func checkScopes(v *apperr.Validator, scopes []string) {
	v.Check(slices.Contains(scopes, "openid"), "scopes", `must include "openid" (OpenID Connect Core 1.0 §3.1.2.1)`)
	v.Check(len(scopes) <= MaxScopes, "scopes", fmt.Sprintf("must name at most %d scopes", MaxScopes))
	for i, s := range scopes {
		// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
		ok := s != "" && len(s) <= MaxScope && strings.IndexFunc(s, func(r rune) bool {
			return r < 0x21 || r == 0x22 || r == 0x5c || r > 0x7e
		}) < 0
		v.Check(ok, fmt.Sprintf("scopes[%d]", i), fmt.Sprintf("must be a scope token (RFC 6749 §3.3) of at most %d characters", MaxScope))
		v.Check(!slices.Contains(scopes[:i], s), fmt.Sprintf("scopes[%d]", i), "is listed twice")
	}
}

func checkClaims(v *apperr.Validator, c Claims) {
	for _, f := range []struct{ name, value string }{{"claims.subject", c.Subject}, {"claims.email", c.Email},
		{"claims.name", c.Name}, {"claims.groups", c.Groups}, {"claims.employee_id", c.EmployeeID}} {
		v.CheckText(f.name, f.value, 0, MaxClaimName)
	}
}

// checkIssuer refuses an issuer the hub would never call: anything but an
// absolute https URL without query, fragment or credentials (OpenID
// Connect Discovery 1.0 §3), or plain http to a loopback address when
// allowHTTP (HUB_OUTBOUND_ALLOW_PRIVATE: tests and the demo).
func checkIssuer(v *apperr.Validator, field, s string, allowHTTP bool) {
	v.Check(isIssuer(s, allowHTTP), field, issuerMessage(allowHTTP))
}

func isIssuer(s string, allowHTTP bool) bool {
	if len(s) > MaxURLLength*utf8.UTFMax || utf8.RuneCountInString(s) > MaxURLLength || !apperr.IsText(s) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP && isLoopback(u.Hostname()):
	default:
		return false
	}
	return httpx.CheckHost(u.Host, allowHTTP) == nil
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

func issuerMessage(allowHTTP bool) string {
	if allowHTTP {
		return fmt.Sprintf("must be an absolute https URL (or http on loopback) of at most %d characters, without query, fragment or credentials", MaxURLLength)
	}
	return fmt.Sprintf("must be an absolute https URL of at most %d characters, without query, fragment or credentials, to a public address", MaxURLLength)
}
