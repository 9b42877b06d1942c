package sso

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// MaxClaim bounds a claim value the hub stores (a name, an email, an
// employee id); a longer one is cut.
const MaxClaim = 256

// profile is what a sign-in says of the person, by the connection's
// mapping: kept minimal (name, email, employee id).
type profile struct {
	Issuer  string
	Subject string // by the mapping: the identity's
	// Sub and SID are the id_token's own sub and sid, which a back-channel
	// logout token names.
	Sub           string
	SID           string
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	Locale        string
	EmployeeID    string
	Groups        []string
}

// profileOf reads the mapped claims. Email verification is required when
// the connection says so and an email is there to match on; only the
// standard email claim can be verified.
func profileOf(claims map[string]any, c Connection) (profile, error) {
	str := func(name string) string {
		if name == "" {
			return ""
		}
		v, _ := claims[name].(string)
		return cut(v)
	}
	p := profile{Issuer: str("iss"), Subject: str(c.Claims.Subject), Sub: str("sub"), SID: str("sid"), Email: str(c.Claims.Email),
		Name: str(c.Claims.Name), GivenName: str("given_name"), FamilyName: str("family_name"), Locale: str("locale"),
		EmployeeID: str(c.Claims.EmployeeID), Groups: groupsOf(claims[c.Claims.Groups])}
	if c.Claims.EmployeeID != "" && p.EmployeeID == "" {
		if n, ok := claims[c.Claims.EmployeeID].(float64); ok {
			p.EmployeeID = fmt.Sprint(int64(n))
		}
	}
	// email_verified vouches for the email claim alone (OpenID Connect
	// Core 1.0 §5.1): another claim mapped as the email is unverified.
	switch v := claims["email_verified"].(type) {
	case bool:
		p.EmailVerified = v && c.Claims.Email == "email"
	case string: // some providers send "true"
		p.EmailVerified = v == "true" && c.Claims.Email == "email"
	}
	if p.Subject == "" {
		return p, fail(ReasonSubjectMissing, "claim %q absent", c.Claims.Subject)
	}
	if p.Email != "" && c.RequireEmailVerified && !p.EmailVerified {
		return p, fail(ReasonEmailUnverified, "email_verified is not true")
	}
	return p, nil
}

func cut(s string) string {
	s = apperr.CleanText(strings.TrimSpace(s))
	if r := []rune(s); len(r) > MaxClaim {
		return string(r[:MaxClaim])
	}
	return s
}

// groupsOf reads a groups claim: a list of strings, or one string.
func groupsOf(v any) []string {
	var out []string
	switch g := v.(type) {
	case string:
		if g != "" {
			out = append(out, cut(g))
		}
	case []any:
		for _, e := range g {
			if s, ok := e.(string); ok && s != "" && len(out) < 100 {
				out = append(out, cut(s))
			}
		}
	}
	return out
}

// User is the hub user a sign-in reached.
type User struct {
	ID            uuid.UUID  `db:"id"`
	Name          *string    `db:"name"`
	GivenName     *string    `db:"given_name"`
	FamilyName    *string    `db:"family_name"`
	Email         *string    `db:"email"`
	Locale        *string    `db:"locale"`
	Active        bool       `db:"active"`
	ProvisionedAt *time.Time `db:"provisioned_at"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// signIn links the identity to one user, records the sign-in and opens a
// session, in one transaction: a refusal leaves nothing behind.
func (s *Service) signIn(ctx context.Context, tg target, c Connection, p profile, idToken, requestID string) (SignedIn, error) {
	out := SignedIn{Tenant: tg.TenantID, TenantSlug: tg.TenantSlug, TenantName: tg.TenantName, Connection: c.ID, Groups: p.Groups}
	err := pg.RetryInTenant(ctx, s.db, tg.TenantID, func(tx *sqlx.Tx) error {
		// One identity's sign-ins take turns: two first sign-ins at once
		// would each find no one and create a user, the identity then
		// naming only the first.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sso identity ' || $1::text || ' ' || $2 || ' ' || $3, 0))`,
			tg.TenantID, p.Issuer, p.Subject); err != nil {
			return err
		}
		now := s.Now()
		u, by, err := s.match(ctx, tx, c, p, now)
		if err != nil {
			return err
		}
		out.User, out.MatchedBy, out.Created = u, by, by == "jit"
		if _, err := tx.ExecContext(ctx, `INSERT INTO sso_identities (tenant_id, issuer, subject, connection_id, user_id, created_at, last_sign_in_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (tenant_id, issuer, subject)
			DO UPDATE SET last_sign_in_at = excluded.last_sign_in_at, connection_id = excluded.connection_id, user_id = excluded.user_id`,
			tg.TenantID, p.Issuer, p.Subject, c.ID, u.ID, now); err != nil {
			return err
		}
		out.Session, out.Expires, err = s.openSession(ctx, tx, tg.TenantID, u.ID, c.ID, p, idToken, now)
		if err != nil {
			return err
		}
		who := audit.Actor{Type: audit.ActorLearner, ID: u.ID.String(), RequestID: requestID}
		_, err = s.chain.Append(ctx, tx, &tg.TenantID, who, audit.Event{Action: "sso.signed_in", TargetType: "user",
			TargetID: u.ID.String(), Details: map[string]string{"connection": c.ID.String(), "matched_by": by}}, now)
		return err
	})
	if err != nil {
		return SignedIn{}, mapError(err)
	}
	return out, nil
}

// userColumns read a user for the handoff. A user the directory made may
// have no formatted name (Okta sends given and family names only): the
// display name, else the given and family names, stand in for it.
const userColumns = `id, coalesce(name, display_name, nullif(concat_ws(' ', given_name, family_name), '')) AS name,
	given_name, family_name, email, locale, active, provisioned_at`

// match finds the one hub user of the person (OpenID Connect identity,
// then the directory's employee id, then a verified email, then a new
// user when the connection allows it) and refuses one the directory
// deactivated or deprovisioned, or never listed when the connection does
// not create users.
func (s *Service) match(ctx context.Context, tx *sqlx.Tx, c Connection, p profile, now time.Time) (User, string, error) {
	u, by, err := s.find(ctx, tx, c.TenantID, p)
	if err != nil {
		return User{}, "", err
	}
	if by == "" {
		if !c.JIT {
			return User{}, "", fail(ReasonNotProvisioned, "no user matches and the connection creates none")
		}
		if err := s.refuseDeprovisioned(ctx, tx, c.TenantID, p); err != nil {
			return User{}, "", err
		}
		u, err = s.createUser(ctx, tx, c.TenantID, p, now)
		return u, "jit", err
	}
	if !u.Active {
		return User{}, "", fail(ReasonDeactivated, "user %s is deactivated", u.ID)
	}
	if !c.JIT && u.ProvisionedAt == nil {
		return User{}, "", fail(ReasonNotProvisioned, "user %s was never provisioned and the connection creates none", u.ID)
	}
	return u, by, nil
}

func (s *Service) find(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, p profile) (User, string, error) {
	// A user the directory deprovisioned is no one's any more: a re-hired
	// person signs in as the directory's new user (and their identity
	// moves to it), never as the old row that kept their email.
	q := `SELECT ` + userColumns + ` FROM users WHERE tenant_id = $1 AND erased_at IS NULL AND deprovisioned_at IS NULL AND `
	tries := []struct {
		by, where string
		skip      bool
		args      []any
	}{
		{"identity", `id = (SELECT user_id FROM sso_identities WHERE tenant_id = $1 AND issuer = $2 AND subject = $3)`,
			false, []any{p.Issuer, p.Subject}},
		// An active user first, by the directory's externalId, then its
		// employeeNumber.
		{"employee_id", `(external_id = $2 OR employee_number = $2) ORDER BY active DESC, (external_id = $2) DESC, created_at`,
			p.EmployeeID == "", []any{p.EmployeeID}},
		// A verified email only: an active user first, then the one the
		// directory provisioned first.
		{"email", `lower(email) = lower($2) ORDER BY active DESC, provisioned_at IS NULL, created_at`,
			p.Email == "" || !p.EmailVerified, []any{p.Email}},
	}
	for _, t := range tries {
		if t.skip {
			continue
		}
		var found []User
		if err := tx.SelectContext(ctx, &found, q+t.where+` LIMIT 1 FOR UPDATE`, append([]any{tenant}, t.args...)...); err != nil {
			return User{}, "", fmt.Errorf("sso: match by %s: %w", t.by, err)
		}
		if len(found) > 0 {
			return found[0], t.by, nil
		}
	}
	return User{}, "", nil
}

// refuseDeprovisioned refuses to create a user for a person the
// directory deleted: the identity, or the verified email, of a
// deprovisioned user. JIT is for people the directory never listed; one
// it listed again (a re-hire) matched its new user before this.
func (s *Service) refuseDeprovisioned(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, p profile) error {
	email := ""
	if p.EmailVerified {
		email = p.Email
	}
	var gone []uuid.UUID
	err := tx.SelectContext(ctx, &gone, `SELECT id FROM users WHERE tenant_id = $1 AND erased_at IS NULL AND deprovisioned_at IS NOT NULL
		AND (id = (SELECT user_id FROM sso_identities WHERE tenant_id = $1 AND issuer = $2 AND subject = $3)
			OR ($4 <> '' AND lower(email) = lower($4))) LIMIT 1`, tenant, p.Issuer, p.Subject, email)
	if err != nil {
		return fmt.Errorf("sso: match deprovisioned: %w", err)
	}
	if len(gone) > 0 {
		return fail(ReasonDeactivated, "user %s was deprovisioned by the directory", gone[0])
	}
	return nil
}

func (s *Service) createUser(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, p profile, now time.Time) (User, error) {
	email := ""
	if p.EmailVerified {
		email = p.Email
	}
	var u User
	err := tx.GetContext(ctx, &u, `INSERT INTO users (id, tenant_id, name, given_name, family_name, email, locale, created_at, updated_at)
		VALUES ($1, $2, nullif($3, ''), nullif($4, ''), nullif($5, ''), nullif($6, ''), nullif($7, ''), $8, $8) RETURNING `+userColumns,
		uuid.New(), tenant, p.Name, p.GivenName, p.FamilyName, email, p.Locale, now)
	return u, err
}
