package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/token"
	"github.com/klasterina/hub/sso"
	"github.com/klasterina/hub/sso/scim"
	"github.com/klasterina/hub/sso/ssotest"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

const (
	employerSlug = "demo-employer"
	// employerDomain routes sign-ins to the employer: an address there
	// typed on /sso/start goes to its provider. .example is reserved for
	// examples (RFC 2606), so it is no one's real mail domain.
	employerDomain = "demo-employer.example"
	// employerIdPAddr keeps the demo provider's issuer the same across
	// restarts, so the connection is reused.
	employerIdPAddr   = "127.0.0.1:8092"
	employerConn      = "Demo employer SSO"
	employerClientID  = "demo-hub"
	employerTokenName = "demo directory"
)

// demoEmployer is what the demo seeds for an employer: its tenant, its
// OpenID provider (an ssotest one), and a SCIM token shown once.
type demoEmployer struct {
	Tenant    tenants.Tenant
	IdP       *ssotest.Provider
	SCIMToken string
}

// demoStaff are the employer's people at its provider. Ann is not in the
// directory: her first sign-in creates her hub user. Ben was provisioned
// by SCIM before he ever signed in: his sign-in finds that user by his
// employee id. Cy was provisioned and then deactivated: his sign-in is
// refused.
var demoStaff = []struct {
	ssotest.User
	Provisioned, Active bool
}{
	{User: staff("ann", "Ann Archer", "Ann", "Archer", "E1001"), Provisioned: false, Active: true},
	{User: staff("ben", "Ben Baker", "Ben", "Baker", "E1002"), Provisioned: true, Active: true},
	{User: staff("cy", "Cy Cooper", "Cy", "Cooper", "E1003"), Provisioned: true, Active: false},
}

func staff(login, name, given, family, employeeID string) ssotest.User {
	verified := true
	return ssotest.User{Subject: "idp-" + login, Email: login + "@" + employerDomain, EmailVerified: &verified,
		Name: name, GivenName: given, FamilyName: family, Claims: map[string]any{"employee_id": employeeID}}
}

// seedEmployer creates (or finds) the employer tenant, starts its provider,
// connects the two, assigns the domain, provisions the directory's staff
// through SCIM and issues a fresh SCIM token (revoking earlier runs').
func (h *hub) seedEmployer(ctx context.Context) (demoEmployer, error) {
	var e demoEmployer
	by := audit.System("demo seed")
	t, err := h.deps.Tenants.BySlug(ctx, employerSlug)
	if apperr.Is(err, apperr.NotFound) {
		t, err = h.deps.Tenants.Create(ctx, by, tenants.NewTenant{Slug: employerSlug, DisplayName: "Demo Employer Ltd", Kind: tenants.Employer})
	}
	if err != nil {
		return e, err
	}
	e.Tenant = t
	if e.IdP, err = startEmployerIdP(); err != nil {
		return e, err
	}
	conn, err := h.connectEmployer(ctx, by, t, e.IdP)
	if err == nil {
		_, _, err = h.deps.SSO.AssignDomain(ctx, by, t.ID, employerDomain, &conn.ID)
	}
	if err == nil {
		err = h.provisionStaff(ctx, t)
	}
	if err == nil {
		e.SCIMToken, err = h.issueDemoSCIMToken(ctx, by, t)
	}
	if err != nil {
		e.IdP.Close()
	}
	return e, err
}

func startEmployerIdP() (*ssotest.Provider, error) {
	ln, err := net.Listen("tcp", employerIdPAddr)
	if err != nil { // taken: a port of its own, and the connection follows it
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("demo identity provider: %w", err)
		}
	}
	idp := ssotest.New(ssotest.WithListener(ln))
	for _, s := range demoStaff {
		idp.AddUser(s.User)
	}
	return idp, nil
}

// connectEmployer creates the tenant's connection to idp, or points the
// existing one at it with a new client secret (the provider forgets its
// clients when the demo stops), and registers the hub with idp.
func (h *hub) connectEmployer(ctx context.Context, by audit.Actor, t tenants.Tenant, idp *ssotest.Provider) (sso.Connection, error) {
	secret := token.Random(24)
	claims := sso.DefaultClaims
	claims.EmployeeID = "employee_id"
	conn, err := h.findConnection(ctx, t)
	switch {
	case apperr.Is(err, apperr.NotFound):
		conn, err = h.deps.SSO.CreateConnection(ctx, by, t.ID, sso.NewConnection{Name: employerConn, Issuer: idp.Issuer(),
			ClientID: employerClientID, ClientSecret: secret, Claims: &claims})
	case err == nil:
		issuer := idp.Issuer()
		conn, err = h.deps.SSO.UpdateConnection(ctx, by, t.ID, conn.ID, sso.ConnectionPatch{Issuer: &issuer, ClientSecret: &secret})
	}
	if err != nil {
		return conn, err
	}
	base := h.cfg.PublicURL.String()
	idp.AddClient(ssotest.Client{ID: employerClientID, Secret: secret, RedirectURIs: []string{conn.RedirectURI},
		BackChannelLogoutURI:   base + "/sso/backchannel-logout/" + conn.ID.String(),
		PostLogoutRedirectURIs: []string{base + "/sso/signed-out"}})
	return conn, nil
}

func (h *hub) findConnection(ctx context.Context, t tenants.Tenant) (sso.Connection, error) {
	conns, _, err := h.deps.SSO.ListConnections(ctx, t.ID, pg.Page{Limit: 100})
	if err != nil {
		return sso.Connection{}, err
	}
	for _, c := range conns {
		if c.Name == employerConn {
			return c, nil
		}
	}
	return sso.Connection{}, apperr.New(apperr.NotFound, "no demo connection")
}

// provisionStaff pushes the directory's staff as an identity provider
// would: a SCIM create of each, then a SCIM deactivation of those no
// longer active. A rerun finds them provisioned (409) and leaves them.
func (h *hub) provisionStaff(ctx context.Context, t tenants.Tenant) error {
	by := audit.System("demo directory")
	base := h.cfg.PublicURL.String() + "/scim/v2/" + t.Slug
	for _, s := range demoStaff {
		if !s.Provisioned {
			continue
		}
		body, err := json.Marshal(map[string]any{
			"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			"userName":    s.Email,
			"externalId":  s.Claims["employee_id"],
			"name":        map[string]string{"givenName": s.GivenName, "familyName": s.FamilyName},
			"displayName": s.Name,
			"emails":      []map[string]any{{"value": s.Email, "type": "work", "primary": true}},
			"active":      true,
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{
				"employeeNumber": s.Claims["employee_id"], "department": "Operations"},
		})
		if err != nil {
			return err
		}
		u, err := h.deps.Directory.CreateUser(ctx, by, t.ID, base, body)
		var refused *scim.Error
		if errors.As(err, &refused) && refused.Status == http.StatusConflict {
			continue // provisioned by an earlier run
		}
		if err != nil {
			return fmt.Errorf("provision %s: %w", s.Email, err)
		}
		if !s.Active {
			off, err := scim.ParsePatch([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"replace","value":{"active":false}}]}`))
			if err == nil {
				_, err = h.deps.Directory.PatchUser(ctx, by, t.ID, base, u.Body["id"].(string), "", off)
			}
			if err != nil {
				return fmt.Errorf("deactivate %s: %w", s.Email, err)
			}
		}
	}
	return nil
}

// issueDemoSCIMToken revokes the demo SCIM tokens earlier runs printed
// and issues a new one.
func (h *hub) issueDemoSCIMToken(ctx context.Context, by audit.Actor, t tenants.Tenant) (string, error) {
	page := pg.Page{Limit: 200}
	for {
		toks, next, err := h.deps.SCIMTokens.List(ctx, t.ID, page)
		if err != nil {
			return "", err
		}
		for _, k := range toks {
			if k.Name == employerTokenName && k.RevokedAt == nil {
				if _, err := h.deps.SCIMTokens.Revoke(ctx, by, t.ID, k.ID); err != nil && !apperr.Is(err, apperr.NotFound) {
					return "", err
				}
			}
		}
		if next == nil {
			break
		}
		page.After = next
	}
	_, tok, err := h.deps.SCIMTokens.Create(ctx, by, t.ID, scim.NewToken{Name: employerTokenName})
	return tok, err
}
