package api_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/sso/ssotest"
)

// browser is another browser of s: the same network, a cookie jar of its
// own.
func (s *ssoHub) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: s.client.Transport, CheckRedirect: s.client.CheckRedirect, Jar: jar}
}

// authorizeIn is authorize in browser b: the provider's redirect to the
// callback, b holding the state cookie.
func (s *ssoHub) authorizeIn(b *http.Client, start string) string {
	s.t.Helper()
	u := s.url + start
	for range 2 {
		res, err := b.Get(u)
		if err != nil {
			s.t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusFound {
			s.t.Fatalf("%s: %d", u, res.StatusCode)
		}
		u = res.Header.Get("Location")
	}
	return u
}

// TestSSOConcurrentFirstSignIns: a new employee whose first sign-in runs
// twice at once (two tabs, a double submit at the provider) is still one
// hub user: the second sign-in finds the identity the first linked,
// rather than creating a user of its own that no identity names.
func TestSSOConcurrentFirstSignIns(t *testing.T) {
	s := newSSOHub(t, nil)
	s.op.AddUser(ssotest.User{Subject: "zed", Email: "zed@acme.example", EmailVerified: &yes, Name: "Zed New"})
	s.op.SignInAs("zed")
	a, b := s.browser(), s.browser()
	cbs := []string{s.authorizeIn(a, "/sso/start?email=zed@acme.example"), s.authorizeIn(b, "/sso/start?email=zed@acme.example")}
	before := s.counts()

	// Both sign-ins are held just before they would create a user, so
	// that each has looked for the person before the other links them.
	lock := pgtest.Connect(t, s.dbt.URL)
	hold, err := lock.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := hold.Exec(`LOCK TABLE users IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i, browser := range []*http.Client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := browser.Get(cbs[i])
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	waitForLockWaits(t, lock, 2)
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if statuses[0] != 200 || statuses[1] != 200 {
		t.Fatalf("callbacks answered %v", statuses)
	}
	if got := s.counts(); got.Users != before.Users+1 || got.Identities != before.Identities+1 || got.Sessions != before.Sessions+2 {
		t.Fatalf("two first sign-ins of one person wrote %+v after %+v: want one user, one identity, two sessions", got, before)
	}
	var users int
	s.inTenant("acme", func(tx *sqlx.Tx) error {
		return tx.Get(&users, `SELECT count(DISTINCT s.user_id) FROM sso_sessions s
			JOIN sso_identities i ON i.user_id = s.user_id AND i.subject = 'zed'`)
	})
	if users != 1 {
		t.Fatalf("the sessions are of %d users the identity names, want 1", users)
	}
}

// waitForLockWaits waits until n lock requests of the database wait.
func waitForLockWaits(t *testing.T, db *sqlx.DB, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		var waiting int
		if err := db.GetContext(ctx, &waiting, `SELECT count(*) FROM pg_locks WHERE NOT granted AND database = (
				SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d lock waits, want %d", waiting, n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestSSOEmailVerifiedIsTheEmailClaims: email_verified vouches for the
// email claim (OpenID Connect Core 1.0 §5.1), not for another claim the
// connection maps as the email: a provider whose users can set such a
// claim themselves must not let one of them claim a colleague's user.
func TestSSOEmailVerifiedIsTheEmailClaims(t *testing.T) {
	s := newSSOHub(t, map[string]any{"require_email_verified": false,
		"claims": map[string]string{"employee_id": "employee_id", "email": "mail"}})
	victim := s.newLearner("acme")
	s.inTenant("acme", func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`UPDATE users SET email = 'vic@acme.example', provisioned_at = now() WHERE id = $1`, victim)
		return err
	})
	s.op.AddUser(ssotest.User{Subject: "mallory", Email: "mallory@acme.example", EmailVerified: &yes,
		Claims: map[string]any{"mail": "vic@acme.example"}})
	s.op.SignInAs("mallory")
	if c := s.handedOff(s.signIn("/sso/start?email=mallory@acme.example")); c["sub"] == victim {
		t.Fatal("signed in as the user whose email another claim named, vouched for by the email claim's email_verified")
	}
	t.Run("required, it refuses", func(t *testing.T) {
		s.expect(s.do("PATCH", connectionsPath("acme")+"/"+s.conn.ID, s.key, map[string]any{"require_email_verified": true}), 200)
		before := s.counts()
		s.refused(s.signIn("/sso/start?email=mallory@acme.example"), 403, "email_unverified")
		if s.counts() != before {
			t.Fatal("wrote")
		}
	})
}

// TestSSOBackchannelLogoutOfADisabledConnection: a connection switched off
// starts no sign-ins, but the sessions it opened live on: the provider's
// back-channel logout must still end them.
func TestSSOBackchannelLogoutOfADisabledConnection(t *testing.T) {
	s := newSSOHub(t, nil)
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
	s.expect(s.do("PATCH", connectionsPath("acme")+"/"+s.conn.ID, s.key, map[string]any{"enabled": false}), 200)
	if r := s.get(s.url + "/sso/session"); r.status != 200 || !strings.Contains(string(r.body), "You are signed in") {
		t.Fatalf("the session ended with its connection: %s", r.body)
	}
	status, err := s.op.BackChannelLogout(context.Background(), "hub", "ana", "")
	if err != nil || status != 200 {
		t.Fatalf("back-channel logout answered %d %v", status, err)
	}
	if live := s.sessions(s.key, "?live=true"); len(live) != 0 {
		t.Fatalf("%d live sessions after the provider's logout", len(live))
	}
}

// TestSSODeletedConnectionsSessionsEnd: once a connection is deleted its
// provider's back-channel logout has nowhere to go, so the sessions it
// opened end with it rather than living on past any logout.
func TestSSODeletedConnectionsSessionsEnd(t *testing.T) {
	s := newSSOHub(t, nil)
	s.handedOff(s.signIn("/sso/start?email=ana@acme.example"))
	s.expect(s.do("DELETE", connectionsPath("acme")+"/"+s.conn.ID, s.key, nil), 204)
	if r := s.get(s.url + "/sso/session"); !strings.Contains(string(r.body), "not signed in") {
		t.Fatalf("signed in through a deleted connection: %s", r.body)
	}
	if live := s.sessions(s.key, "?live=true"); len(live) != 0 {
		t.Fatalf("%d live sessions of a deleted connection", len(live))
	}
	if a := s.auditActions("acme"); !slices.Contains(a, "sso.sessions_ended") {
		t.Fatalf("not audited: %v", a)
	}
}

// TestSSODeprovisionedIsNotReborn: an employee the directory deleted, whom
// the provider still signs in, is refused; with JIT on they were made a
// new user, and so had the access the directory took away. A re-hire
// signs in once the directory lists them again (TestSSOOnePersonOneUser).
func TestSSODeprovisionedIsNotReborn(t *testing.T) {
	s := newSSOHub(t, nil)
	for _, tc := range []struct{ name, subject, employeeID string }{
		{"signed in before", "kim", "E-900"},
		{"never signed in", "lee", "E-901"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := s.newLearner("acme")
			email := tc.subject + "@acme.example"
			s.inTenant("acme", func(tx *sqlx.Tx) error {
				_, err := tx.Exec(`UPDATE users SET user_name = $2, external_id = $3, email = $2, provisioned_at = now() WHERE id = $1`,
					id, email, tc.employeeID)
				return err
			})
			s.op.AddUser(ssotest.User{Subject: tc.subject, Email: email, EmailVerified: &yes, Claims: map[string]any{"employee_id": tc.employeeID}})
			s.op.SignInAs(tc.subject)
			if tc.subject == "kim" {
				if c := s.handedOff(s.signIn("/sso/start?email=" + email)); c["sub"] != id {
					t.Fatalf("signed in as %v, want %s", c["sub"], id)
				}
			}
			// The directory deletes them, as SCIM's DELETE does.
			s.inTenant("acme", func(tx *sqlx.Tx) error {
				_, err := tx.Exec(`UPDATE users SET active = false, deactivated_at = now(), deprovisioned_at = now(),
					user_name = NULL, external_id = NULL WHERE id = $1`, id)
				return err
			})
			before := s.counts()
			s.refused(s.signIn("/sso/start?email="+email), 403, "deactivated")
			if s.counts() != before {
				t.Fatalf("wrote %+v after %+v", s.counts(), before)
			}
		})
	}
}
