package api_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/sso"
)

// TestSSOHousekeeping: sessions go SessionRetention after they ended or
// expired, live ones and recently ended ones stay; abandoned sign-ins and
// spent logout token ids go once expired.
func TestSSOHousekeeping(t *testing.T) {
	s := newSSOHub(t, nil)
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example")) // live
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example")) // ends the first: recently ended
	s.get(s.url + "/sso/start?email=ana@acme.example")         // abandoned at the provider
	old := s.insertEndedSession(time.Now().Add(-sso.SessionRetention - time.Hour))
	recent := s.insertEndedSession(time.Now().Add(-sso.SessionRetention + time.Hour))
	s.inTenant("acme", func(tx *sqlx.Tx) error {
		if _, err := tx.Exec(`UPDATE sso_sign_ins SET expires_at = now() - interval '1 second'`); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO sso_logout_tokens (tenant_id, connection_id, jti, expires_at)
			SELECT tenant_id, id, 'spent', now() - interval '1 second' FROM sso_connections`)
		return err
	})
	before := s.ssoRows()
	n, err := s.deps.SSO.Purge(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	after := s.ssoRows()
	if n != 3 || after.SignIns != 0 || after.LogoutTokens != 0 || after.Sessions != before.Sessions-1 {
		t.Fatalf("purged %d: %+v before, %+v after", n, before, after)
	}
	var left []string
	s.inTenant("acme", func(tx *sqlx.Tx) error { return tx.Select(&left, `SELECT id::text FROM sso_sessions`) })
	for _, id := range left {
		if id == old {
			t.Fatal("a session ended longer ago than the retention is still there")
		}
	}
	if r := s.get(s.url + "/sso/session"); r.status != http.StatusOK || !slices.Contains(left, recent) {
		t.Fatalf("the live or the recently ended session went: %d %v", r.status, left)
	}
}

type ssoRows struct{ Sessions, SignIns, LogoutTokens int }

func (s *ssoHub) ssoRows() ssoRows {
	s.t.Helper()
	var c ssoRows
	s.inTenant("acme", func(tx *sqlx.Tx) error {
		return tx.Get(&c, `SELECT (SELECT count(*) FROM sso_sessions) AS sessions, (SELECT count(*) FROM sso_sign_ins) AS signins,
			(SELECT count(*) FROM sso_logout_tokens) AS logouttokens`)
	})
	return c
}

// insertEndedSession adds a session of the tenant's first user that
// ended at ended.
func (s *ssoHub) insertEndedSession(ended time.Time) string {
	s.t.Helper()
	var id string
	s.inTenant("acme", func(tx *sqlx.Tx) error {
		return tx.Get(&id, `INSERT INTO sso_sessions (id, tenant_id, user_id, token_hash, subject, created_at, last_seen_at,
				idle_expires_at, expires_at, ended_at, end_reason)
			SELECT gen_random_uuid(), tenant_id, id, sha256(gen_random_uuid()::text::bytea), 'ana', $1, $1, $1, $1, $1, 'logout'
			FROM users ORDER BY created_at LIMIT 1 RETURNING id::text`, ended)
	})
	return id
}
