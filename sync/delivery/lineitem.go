package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ags"
)

// lineItemTag is the tag of the line items the hub creates, and the one
// it prefers among a resource link's line items (AGS 2.0 §3.2.8).
const lineItemTag = "grade"

// Reasons a score has no line item to go to.
const (
	ReasonNoLineItemService = "no_line_item_service" // the launch named neither a line item nor a container
)

// lineItemRef is the line item a score goes to, or why there is none.
type lineItemRef struct {
	url       string
	claimed   bool // the launch's endpoint.lineitem
	madeByHub bool
	recreated bool
	reason    string // when url is ""
	busy      bool   // another worker is finding or making it: come back
}

// lineItem is the line item of the gradebook's resource link: the
// launch's endpoint.lineitem, else the one the hub found or created
// before, else one found in the container by resource_link_id (tagged
// "grade" preferred), else one created with the activity's label and
// maximum. A line item on another host than the course's grade services
// is refused: the token goes only there.
func (s *Service) lineItem(ctx context.Context, tx *sqlx.Tx, d row, g gradebook, r reported, token string) (lineItemRef, error) {
	host := g.host()
	if g.ClaimLineItem != nil {
		if !onHost(*g.ClaimLineItem, host) {
			return lineItemRef{reason: ReasonOtherHost}, nil
		}
		return lineItemRef{url: *g.ClaimLineItem, claimed: true}, nil
	}
	if g.LineItemsURL == nil {
		return lineItemRef{reason: ReasonNoLineItemService}, nil
	}
	if ref, ok, err := knownLineItem(ctx, tx, d); err != nil || ok {
		return ref, err
	}
	// One worker at a time finds or creates a resource link's line item;
	// the others come back when it is known, rather than wait on its
	// requests to the platform.
	var mine bool
	if err := tx.GetContext(ctx, &mine, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`,
		"delivery-lineitem:"+d.ResourceLinkRef.String()); err != nil {
		return lineItemRef{}, fmt.Errorf("delivery: lock line item: %w", err)
	}
	if !mine {
		return lineItemRef{busy: true}, nil
	}
	if ref, ok, err := knownLineItem(ctx, tx, d); err != nil || ok {
		return ref, err
	}
	if !g.granted(lti.ScopeAGSLineItem) && !g.granted(lti.ScopeAGSLineItemRead) {
		return lineItemRef{reason: ReasonNoLineItemScope}, nil
	}
	items, err := s.ags.LineItems(ctx, *g.LineItemsURL, token, ags.Query{ResourceLinkID: g.ResourceLinkID})
	if err != nil {
		return lineItemRef{}, err
	}
	if found := pickLineItem(items, g.ResourceLinkID, host); found != "" {
		return lineItemRef{url: found}, saveLineItem(ctx, tx, d, found, false, false, s.Now())
	}
	return s.createLineItem(ctx, tx, d, g, r, token, false)
}

// pickLineItem is the resource link's line item among items, on host:
// the one tagged lineItemTag, else the first.
func pickLineItem(items []ags.LineItem, resourceLinkID, host string) string {
	var first string
	for _, li := range items {
		if li.ResourceLinkID != resourceLinkID || !onHost(li.ID, host) {
			continue
		}
		if li.Tag == lineItemTag {
			return li.ID
		}
		if first == "" {
			first = li.ID
		}
	}
	return first
}

// recreateLineItem makes again the line item the hub found or made and
// the platform deleted: once; a second deletion fails the delivery.
func (s *Service) recreateLineItem(ctx context.Context, tx *sqlx.Tx, d row, g gradebook, r reported, token string) (lineItemRef, error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		"delivery-lineitem:"+d.ResourceLinkRef.String()); err != nil {
		return lineItemRef{}, fmt.Errorf("delivery: lock line item: %w", err)
	}
	return s.createLineItem(ctx, tx, d, g, r, token, true)
}

func (s *Service) createLineItem(ctx context.Context, tx *sqlx.Tx, d row, g gradebook, r reported, token string, again bool) (lineItemRef, error) {
	if !g.granted(lti.ScopeAGSLineItem) {
		return lineItemRef{reason: ReasonNoLineItemScope}, nil
	}
	label := r.ActivityTitle
	if label == "" {
		label = g.Title
	}
	if label == "" {
		label = g.ResourceLinkID
	}
	created, err := s.ags.CreateLineItem(ctx, *g.LineItemsURL, token, ags.LineItem{Label: label, ScoreMaximum: *r.ScoreMaximum,
		ResourceID: r.ActivityID, ResourceLinkID: g.ResourceLinkID, Tag: lineItemTag})
	if err != nil {
		return lineItemRef{}, err
	}
	if !onHost(created.ID, g.host()) {
		return lineItemRef{reason: ReasonOtherHost}, nil
	}
	return lineItemRef{url: created.ID, madeByHub: true, recreated: again}, saveLineItem(ctx, tx, d, created.ID, true, again, s.Now())
}

// knownLineItem is the line item the hub found or made for the resource
// link before.
func knownLineItem(ctx context.Context, tx *sqlx.Tx, d row) (lineItemRef, bool, error) {
	var k struct {
		URL       string `db:"url"`
		MadeByHub bool   `db:"created_by_hub"`
		Recreated bool   `db:"recreated"`
	}
	err := tx.GetContext(ctx, &k, `SELECT url, created_by_hub, recreated FROM ags_line_items
		WHERE tenant_id = $1 AND resource_link_ref = $2`, d.TenantID, *d.ResourceLinkRef)
	if pg.IsNoRows(err) {
		return lineItemRef{}, false, nil
	}
	if err != nil {
		return lineItemRef{}, false, fmt.Errorf("delivery: read line item: %w", err)
	}
	return lineItemRef{url: k.URL, madeByHub: k.MadeByHub, recreated: k.Recreated}, true, nil
}

// saveLineItem remembers the resource link's line item.
func saveLineItem(ctx context.Context, tx *sqlx.Tx, d row, url string, madeByHub, recreated bool, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO ags_line_items (tenant_id, resource_link_ref, url, created_by_hub, recreated, found_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant_id, resource_link_ref) DO UPDATE SET url = excluded.url, created_by_hub = excluded.created_by_hub,
			recreated = excluded.recreated, found_at = excluded.found_at`,
		d.TenantID, *d.ResourceLinkRef, url, madeByHub, recreated, now)
	if err != nil {
		return fmt.Errorf("delivery: save line item: %w", err)
	}
	return nil
}
