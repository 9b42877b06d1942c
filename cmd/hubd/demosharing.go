package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
	"github.com/klasterina/hub/tenants/destinations"
)

// What the demo sets up so that results travel: an app key for the
// learning-app stand-in, a webhook destination at the demo's receiver,
// and an active agreement that lets scores, completion and progress go
// to the LMS gradebook and to that webhook. Each is found or made again
// on every run, as the tenant and its registration are.

const (
	demoAppKeyName  = "demo learning app"
	demoWebhookName = "demo webhook receiver"
)

// demoCategories are what the demo's agreement and webhook take.
var demoCategories = []agreements.Category{agreements.CategoryScores, agreements.CategoryCompletion, agreements.CategoryProgress}

// demoSharing is what seedSharing set up: the stand-in's app key (its
// token, kept in this process) and the webhook's signing secrets.
type demoSharing struct {
	AppKey         string
	WebhookID      uuid.UUID
	WebhookSecrets []string
}

// seedSharing issues a fresh app key (revoking earlier runs'), points the
// demo webhook at receiverURL, and makes sure the tenant's active
// agreement allows what the demo sends.
func (h *hub) seedSharing(ctx context.Context, t tenants.Tenant, receiverURL string) (demoSharing, error) {
	by := audit.System("demo seed")
	var s demoSharing
	var err error
	if s.AppKey, err = h.seedAppKey(ctx, by); err != nil {
		return s, fmt.Errorf("app key: %w", err)
	}
	if s.WebhookID, s.WebhookSecrets, err = h.seedWebhook(ctx, by, t, receiverURL); err != nil {
		return s, fmt.Errorf("webhook destination: %w", err)
	}
	if err := h.seedAgreement(ctx, by, t, s.WebhookID); err != nil {
		return s, fmt.Errorf("agreement: %w", err)
	}
	return s, nil
}

// seedAppKey revokes the app keys earlier runs issued to the stand-in
// and issues a new one: its token lives only in this process.
func (h *hub) seedAppKey(ctx context.Context, by audit.Actor) (string, error) {
	page := pg.Page{Limit: 200}
	for {
		keys, next, err := h.deps.Results.ListAppKeys(ctx, page)
		if err != nil {
			return "", err
		}
		for _, k := range keys {
			if k.Name == demoAppKeyName && k.RevokedAt == nil {
				if _, err := h.deps.Results.RevokeAppKey(ctx, by, k.ID); err != nil {
					return "", err
				}
			}
		}
		if next == nil {
			break
		}
		page.After = next
	}
	_, token, err := h.deps.Results.CreateAppKey(ctx, by, demoAppKeyName)
	return token, err
}

// seedWebhook finds the demo webhook (by name) and points it at url,
// subscribed to the demo's categories and enabled, or creates it; it
// answers the destination's id and its signing secrets.
func (h *hub) seedWebhook(ctx context.Context, by audit.Actor, t tenants.Tenant, url string) (uuid.UUID, []string, error) {
	d, err := h.findDestination(ctx, t.ID, demoWebhookName)
	if err != nil {
		return uuid.Nil, nil, err
	}
	events := make([]destinations.EventType, len(demoCategories))
	for i, c := range demoCategories {
		events[i] = destinations.EventType(c)
	}
	if d == nil {
		created, err := h.deps.Destinations.Create(ctx, by, t.ID, destinations.New{Kind: destinations.KindWebhook,
			Name: demoWebhookName, URL: url, EventTypes: events})
		if err != nil {
			return uuid.Nil, nil, err
		}
		return created.ID, []string{created.Secret}, nil
	}
	if d.URL != url || !d.Enabled || d.DryRun || !slices.Equal(d.EventTypes, events) {
		on, off := true, false
		if _, err := h.deps.Destinations.Update(ctx, by, t.ID, d.ID, destinations.Patch{URL: &url, Enabled: &on, DryRun: &off,
			EventTypes: &events}); err != nil {
			return uuid.Nil, nil, err
		}
	}
	_, creds, err := h.deps.Destinations.Credentials(ctx, t.ID, d.ID)
	return d.ID, creds.Secrets, err
}

func (h *hub) findDestination(ctx context.Context, tenant uuid.UUID, name string) (*destinations.Destination, error) {
	page := pg.Page{Limit: 200}
	for {
		list, next, err := h.deps.Destinations.List(ctx, tenant, destinations.KindWebhook, page)
		if err != nil {
			return nil, err
		}
		for _, d := range list {
			if d.Name == name {
				return &d, nil
			}
		}
		if next == nil {
			return nil, nil
		}
		page.After = next
	}
}

// seedAgreement keeps the tenant's active agreement when it already lets
// the demo's categories go to the LMS and the webhook without asking the
// learner; otherwise it activates a new version that does, superseding
// the one active until now.
func (h *hub) seedAgreement(ctx context.Context, by audit.Actor, t tenants.Tenant, webhook uuid.UUID) error {
	active, err := h.deps.Agreements.Active(ctx, t.ID)
	if err != nil {
		return err
	}
	if active != nil && demoAllows(*active, webhook) {
		return nil
	}
	now := time.Now()
	a, err := h.deps.Agreements.Create(ctx, by, t.ID, demoTerms(now, webhook))
	if err != nil {
		return err
	}
	_, err = h.deps.Agreements.Activate(ctx, by, t.ID, a.ID, agreements.Signatures{
		Institution: &agreements.Signatory{Name: "Demo University registrar", Title: "Registrar", SignedAt: now},
		Provider:    &agreements.Signatory{Name: "Learning app operator", Title: "Data protection officer", SignedAt: now},
	})
	if apperr.Is(err, apperr.Conflict) { // another run activated it meanwhile
		return nil
	}
	return err
}

func demoTerms(now time.Time, webhook uuid.UUID) agreements.Terms {
	return agreements.Terms{
		EffectiveFrom: now.Add(-time.Minute),
		Purposes: []agreements.Purpose{
			{Code: agreements.PurposeGradebook, Description: "Scores into the course gradebook of the demo LMS."},
			{Code: agreements.PurposeProgress, Description: "Completion and progress to the demo webhook receiver."},
		},
		Categories:              demoCategories,
		Destinations:            []agreements.Destination{{Kind: agreements.DestinationLMS}, {Kind: agreements.DestinationWebhook, ID: &webhook}},
		Consent:                 agreements.ConsentNotRequired,
		DisclosureRetentionDays: 365,
		CopyRetentionDays:       365,
		OnEnd:                   agreements.OnEndDelete,
	}
}

// demoAllows reports whether a lets the demo's categories go to the LMS
// and to webhook, now, without the learner's consent.
func demoAllows(a agreements.Agreement, webhook uuid.UUID) bool {
	now := time.Now()
	if a.Consent != agreements.ConsentNotRequired || a.EffectiveFrom.After(now) || (a.EffectiveUntil != nil && !a.EffectiveUntil.After(now)) {
		return false
	}
	for _, c := range demoCategories {
		if !slices.Contains(a.Categories, c) {
			return false
		}
	}
	lms := slices.ContainsFunc(a.Destinations, func(d agreements.Destination) bool { return d.Kind == agreements.DestinationLMS })
	hook := slices.ContainsFunc(a.Destinations, func(d agreements.Destination) bool {
		return d.Kind == agreements.DestinationWebhook && d.ID != nil && *d.ID == webhook
	})
	return lms && hook
}
