package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/klasterina/hub/internal/config"
	"github.com/klasterina/hub/internal/handoff"
	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/audit"
)

// Assemble wires the domain packages from the configuration into Deps, the
// one place main and the tests build the hub the same way. It makes sure the
// hub's signing keys exist.
func Assemble(ctx context.Context, db *sqlx.DB, cfg *config.Config, log *slog.Logger) (Deps, error) {
	m, err := pg.NewMigrator(db, log)
	if err != nil {
		return Deps{}, err
	}
	sealer, err := secrets.New(cfg.SecretKey, cfg.PreviousSecretKeys...)
	if err != nil {
		return Deps{}, err
	}
	chain, err := audit.NewKeyring(cfg.SecretKey, cfg.PreviousSecretKeys...)
	if err != nil {
		return Deps{}, err
	}
	registry := prometheus.NewRegistry()
	d := Deps{DB: db, Migrator: m, Tenants: tenants.NewStore(db, chain, log), Audit: audit.NewLog(db, chain, log),
		Keys: keys.NewStore(db, sealer, log), LTIRegs: lti.NewRegistrations(db, chain, log),
		AdminToken: cfg.AdminToken, TrustedProxies: cfg.TrustedProxies, Log: log, Registry: registry}
	if err := d.Keys.Ensure(ctx); err != nil {
		if errors.Is(err, secrets.ErrOpen) {
			return Deps{}, fmt.Errorf("signing keys were sealed under another HUB_SECRET_KEY: set HUB_SECRET_KEY_PREVIOUS to the old key: %w", err)
		}
		return Deps{}, fmt.Errorf("signing keys: %w", err)
	}
	client := httpx.New(cfg.OutboundAllowPrivate)
	d.LTIRegs.AllowHTTP = cfg.OutboundAllowPrivate
	d.Keysets = keys.NewCache(client)
	d.Keysets.Log = log
	d.LTI = lti.NewTool(db, d.LTIRegs, d.Keysets, sealer, cfg.PublicURL, lti.NewMetrics(registry), log)
	d.LTI.Catalog, d.LTI.Signer, d.LTI.Client = lti.NewCatalog(db, chain, log), d.Keys, client
	d.LTI.Leeway = cfg.LTILeeway
	d.Catalog = d.LTI.Catalog
	if cfg.AppURL != nil {
		d.LTI.Handoff = handoff.NewSigner(d.Keys, cfg.PublicURL.String(), cfg.AppURL.String())
	}
	return d, nil
}
