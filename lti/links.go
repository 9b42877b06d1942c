package lti

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// LinkStatus is where a registration link stands.
type LinkStatus string

// The statuses of a registration link: usable; being used by an attempt
// in progress; used by a registration; past its expiry unused; revoked by
// a tenant admin before use; spent by MaxRegistrationAttempts failures.
const (
	LinkActive  LinkStatus = "active"
	LinkInUse   LinkStatus = "in_use"
	LinkUsed    LinkStatus = "used"
	LinkExpired LinkStatus = "expired"
	LinkRevoked LinkStatus = "revoked"
	LinkSpent   LinkStatus = "spent"
)

// RegistrationLinkInfo is a registration link as listed: never its token,
// which the hub does not keep.
type RegistrationLinkInfo struct {
	ID             uuid.UUID  `db:"id" json:"id"`
	Status         LinkStatus `db:"-" json:"status"`
	CreatedAt      time.Time  `db:"created_at" json:"created_at"`
	ExpiresAt      time.Time  `db:"expires_at" json:"expires_at"`
	UsedAt         *time.Time `db:"used_at" json:"used_at"`
	RevokedAt      *time.Time `db:"revoked_at" json:"revoked_at"`
	RegistrationID *uuid.UUID `db:"registration_id" json:"registration_id"`
	// FailedAttempts counts registrations through the link that failed.
	FailedAttempts int `db:"failed_attempts" json:"failed_attempts"`
}

func (l *RegistrationLinkInfo) setStatus(now time.Time) {
	switch {
	case l.RevokedAt != nil:
		l.Status = LinkRevoked
	case l.FailedAttempts >= MaxRegistrationAttempts:
		l.Status = LinkSpent
	case l.UsedAt != nil && l.RegistrationID == nil && now.Sub(*l.UsedAt) < linkAttemptWindow:
		l.Status = LinkInUse // (a used link whose registration was deleted since is "used")
	case l.UsedAt != nil:
		l.Status = LinkUsed
	case !now.Before(l.ExpiresAt):
		l.Status = LinkExpired
	default:
		l.Status = LinkActive
	}
}

// linkAttemptWindow is how long a claimed link without a registration is
// taken to be in use by an attempt: longer than any attempt runs.
const linkAttemptWindow = 10 * time.Minute

const linkColumns = `id, created_at, expires_at, used_at, revoked_at, registration_id, failed_attempts`

// ListRegistrationLinks returns a page of tenant's registration links,
// oldest first.
func (t *Tool) ListRegistrationLinks(ctx context.Context, tenant uuid.UUID, page pg.Page) ([]RegistrationLinkInfo, *pg.Cursor, error) {
	var ls []RegistrationLinkInfo
	err := pg.InTenant(ctx, t.db, tenant, func(tx *sqlx.Tx) error {
		q, args := `WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2`, []any{tenant, page.Limit + 1}
		if page.After != nil {
			q = `WHERE tenant_id = $1 AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $2`
			args = append(args, page.After.At, page.After.ID)
		}
		return tx.SelectContext(ctx, &ls, `SELECT `+linkColumns+` FROM lti_registration_links `+q, args...)
	})
	if err != nil {
		return nil, nil, pg.MapError(fmt.Errorf("lti: list registration links: %w", err))
	}
	now := t.Now()
	for i := range ls {
		ls[i].setStatus(now)
	}
	return pg.TrimPage(ls, page.Limit, func(l RegistrationLinkInfo) pg.Cursor { return pg.Cursor{At: l.CreatedAt, ID: l.ID} })
}

// RevokeRegistrationLink makes one of tenant's unused links unusable,
// audited in the same transaction. Revoking a revoked link changes
// nothing; one that made a registration answers Conflict. A link in use by
// an attempt this moment is revoked: the attempt then stores nothing.
func (t *Tool) RevokeRegistrationLink(ctx context.Context, by audit.Actor, tenant, id uuid.UUID) (RegistrationLinkInfo, error) {
	var l RegistrationLinkInfo
	err := pg.InTenant(ctx, t.db, tenant, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &l, `SELECT `+linkColumns+` FROM lti_registration_links WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, id)
		switch {
		case pg.IsNoRows(err):
			return apperr.New(apperr.NotFound, "registration link %q not found", id)
		case err != nil:
			return pg.MapError(fmt.Errorf("lti: read registration link: %w", err))
		case l.RevokedAt != nil:
			return nil
		case l.UsedAt != nil && l.RegistrationID != nil:
			return apperr.New(apperr.Conflict, "the registration link was used")
		}
		now := t.Now().Truncate(time.Microsecond)
		if _, err := tx.ExecContext(ctx, `UPDATE lti_registration_links SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2`,
			tenant, id, now); err != nil {
			return pg.MapError(fmt.Errorf("lti: revoke registration link: %w", err))
		}
		l.RevokedAt = &now
		_, err = t.registrations.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "lti_registration_link.revoked",
			TargetType: "lti_registration_link", TargetID: id.String()}, t.Now())
		return err
	})
	l.setStatus(t.Now())
	return l, err
}
