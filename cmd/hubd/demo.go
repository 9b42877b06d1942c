package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

const demoSlug = "demo-university"

// demo seeds a demo tenant with a fresh API key, prints how to try the hub,
// and serves. Seeding is idempotent: a rerun keeps the tenant and issues a
// new key.
func demo(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	h, err := openHub(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer h.db.Close()
	t, token, err := h.seedDemo(ctx)
	if err != nil {
		return fmt.Errorf("seed demo tenant: %w", err)
	}
	return h.serve(ctx, func(h *hub, addr net.Addr) {
		printWelcome(stdout, h, t, token, addr)
	})
}

func (h *hub) seedDemo(ctx context.Context) (tenants.Tenant, string, error) {
	by := audit.System("demo seed")
	t, err := h.tenants.BySlug(ctx, demoSlug)
	if apperr.Is(err, apperr.NotFound) {
		t, err = h.tenants.Create(ctx, by, tenants.NewTenant{Slug: demoSlug, DisplayName: "Demo University", Kind: tenants.Institution})
	}
	if err != nil {
		return t, "", err
	}
	_, token, err := h.tenants.CreateKey(ctx, by, t.ID, tenants.NewKey{
		Name: "demo key", Scopes: []tenants.Scope{tenants.ScopeRead, tenants.ScopeWrite}})
	return t, token, err
}

func printWelcome(w io.Writer, h *hub, t tenants.Tenant, token string, addr net.Addr) {
	base := "http://localhost:" + portOf(addr)
	fmt.Fprintf(w, `
The hub is running at %[1]s

  operator token:  %[2]s
  demo tenant:     %[3]s (%[4]s)
  demo API key:    %[5]s   (shown once; read and write)

Try:

  curl -s %[1]s/readyz

  curl -s -H 'Authorization: Bearer %[5]s' %[1]s/api/v1/tenants/%[3]s

  curl -s -X POST -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
       -d '{"slug":"acme","display_name":"Acme Corp","kind":"employer"}' %[1]s/api/v1/tenants

The API is described at %[1]s/api/v1/openapi.json. Press Ctrl-C to stop.

`, base, h.cfg.AdminToken, t.Slug, t.DisplayName, token)
}

func portOf(addr net.Addr) string {
	s := addr.String()
	return s[strings.LastIndex(s, ":")+1:]
}
