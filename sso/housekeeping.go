package sso

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
)

// SessionRetention is how long a session is kept once it ended or
// expired: long enough for a tenant admin to see who was signed in
// lately, not so long that the hub keeps a log of every sign-in (the audit
// log records those).
const SessionRetention = 30 * 24 * time.Hour

// Purge deletes, in every tenant, sign-ins abandoned at the provider and
// logout token ids past their lifetime, and sessions SessionRetention
// after they ended or expired. It answers how many rows went.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	var n int64
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &n, `SELECT hub_purge_sso($1, make_interval(secs => $2))`, s.Now(), SessionRetention.Seconds())
	})
	if err != nil {
		return 0, fmt.Errorf("sso: purge: %w", pg.MapError(err))
	}
	return n, nil
}

// RunHousekeeping purges every interval until ctx ends.
func (s *Store) RunHousekeeping(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := s.Purge(ctx); err != nil && !apperr.Is(err, apperr.Unavailable) {
				s.log.ErrorContext(ctx, "purge sso sign-ins and sessions", "err", err)
			}
		}
	}
}
