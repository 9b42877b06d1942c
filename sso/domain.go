package sso

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"golang.org/x/net/idna"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// consumerDomains are mail providers anyone can sign up with: such a
// domain says nothing of an employer, so no tenant may claim it (one that
// did would receive the sign-ins of strangers). The one list of them.
var consumerDomains = map[string]bool{
	"gmail.com": true, "googlemail.com": true, "outlook.com": true, "hotmail.com": true, "hotmail.co.uk": true,
	"hotmail.fr": true, "live.com": true, "live.co.uk": true, "msn.com": true, "yahoo.com": true, "yahoo.co.uk": true,
	"yahoo.fr": true, "yahoo.de": true, "yahoo.co.jp": true, "ymail.com": true, "rocketmail.com": true, "aol.com": true,
	"icloud.com": true, "me.com": true, "mac.com": true, "proton.me": true, "protonmail.com": true, "pm.me": true,
	"gmx.com": true, "gmx.de": true, "gmx.net": true, "web.de": true, "mail.com": true, "yandex.ru": true,
	"yandex.com": true, "mail.ru": true, "qq.com": true, "163.com": true, "126.com": true, "sina.com": true,
	"naver.com": true, "daum.net": true, "zoho.com": true, "tutanota.com": true, "fastmail.com": true,
	"hey.com": true, "orange.fr": true, "free.fr": true, "laposte.net": true, "libero.it": true, "t-online.de": true,
	"comcast.net": true, "verizon.net": true, "att.net": true, "rediffmail.com": true, "seznam.cz": true,
}

// IsConsumerDomain reports a domain (normalised) of a public mail
// provider.
func IsConsumerDomain(domain string) bool { return consumerDomains[domain] }

// MaxDomain is the longest domain name (RFC 1035 §2.3.4).
const MaxDomain = 253

var domainProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.ValidateLabels(true),
	idna.StrictDomainName(true), idna.VerifyDNSLength(true), idna.Transitional(false))

// ErrDomain marks text that is not a domain name an employer can own.
var ErrDomain = errors.New("sso: not a domain name")

// NormalizeDomain is domain as the hub stores and compares it: lower
// case, internationalised labels in punycode (IDNA 2008, UTS #46 lookup
// mapping), one trailing dot dropped. It refuses anything but a hostname of
// at least two labels (RFC 1123 §2.1): an address, a single label, a
// wildcard, a label starting or ending with a hyphen, over 253 characters.
func NormalizeDomain(domain string) (string, error) {
	if len(domain) == 0 || len(domain) > 4*MaxDomain || !utf8.ValidString(domain) {
		return "", fmt.Errorf("%w: empty, too long or not UTF-8", ErrDomain)
	}
	d := strings.TrimSuffix(domain, ".")
	if _, err := netip.ParseAddr(strings.Trim(d, "[]")); err == nil {
		return "", fmt.Errorf("%w: an address", ErrDomain)
	}
	ascii, err := domainProfile.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDomain, err)
	}
	ascii = strings.ToLower(ascii)
	if _, err := domainProfile.ToUnicode(ascii); err != nil {
		return "", fmt.Errorf("%w: %w", ErrDomain, err)
	}
	labels := strings.Split(ascii, ".")
	if len(ascii) > MaxDomain || len(labels) < 2 {
		return "", fmt.Errorf("%w: needs at least two labels", ErrDomain)
	}
	for _, l := range labels {
		if !isLDHLabel(l) {
			return "", fmt.Errorf("%w: label %q", ErrDomain, l)
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", fmt.Errorf("%w: a numeric top-level label", ErrDomain)
	}
	return ascii, nil
}

func isLDHLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// DomainOfEmail is the normalised domain of an email address.
func DomainOfEmail(email string) (string, error) {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "", fmt.Errorf("%w: not an email address", ErrDomain)
	}
	return NormalizeDomain(email[at+1:])
}

// Domain is an email domain assigned to a tenant: sign-ins from it use
// Connection, or the tenant's only enabled connection when none is named.
type Domain struct {
	Domain       string     `db:"domain" json:"domain"`
	TenantID     uuid.UUID  `db:"tenant_id" json:"-"`
	ConnectionID *uuid.UUID `db:"connection_id" json:"connection"`
	CreatedAt    time.Time  `db:"created_at" json:"created_at"`
}

// AssignDomain gives domain to tenant, signing in with connection (nil:
// the tenant's only enabled one). The operator's alone. Invalid for a
// malformed domain, Refused for a public mail provider's, Conflict when
// another tenant has it, NotFound for a connection not the tenant's. A
// domain already the tenant's is reassigned to connection.
func (s *Store) AssignDomain(ctx context.Context, by audit.Actor, tenant uuid.UUID, domain string, connection *uuid.UUID) (Domain, bool, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return Domain{}, false, apperr.InvalidFields(apperr.FieldError{Field: "domain",
			Message: "must be a domain name of at least two labels, such as example.com"})
	}
	if IsConsumerDomain(d) {
		return Domain{}, false, apperr.New(apperr.Refused, "%s is a public mail provider's domain: anyone can have an address there, so it cannot route sign-ins to one organisation", d)
	}
	var out Domain
	created := false
	err = pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if connection != nil {
			if _, err := getConn(ctx, tx, tenant, *connection, ""); err != nil {
				return apperr.InvalidFields(apperr.FieldError{Field: "connection", Message: "is not one of the tenant's connections"})
			}
		}
		err := tx.GetContext(ctx, &out, `INSERT INTO tenant_domains (domain, tenant_id, connection_id, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (domain) DO NOTHING RETURNING domain, tenant_id, connection_id, created_at`,
			d, tenant, connection, s.Now())
		created = err == nil
		if pg.IsNoRows(err) {
			err = tx.GetContext(ctx, &out, `UPDATE tenant_domains SET connection_id = $3 WHERE domain = $1 AND tenant_id = $2
				RETURNING domain, tenant_id, connection_id, created_at`, d, tenant, connection)
			if pg.IsNoRows(err) {
				return apperr.New(apperr.Conflict, "%s is assigned to another tenant", d)
			}
		}
		if err != nil {
			return err
		}
		return s.auditDomain(ctx, tx, tenant, by, "domain.assigned", out)
	})
	return out, created, pg.MapError(err)
}

// ListDomains is the tenant's domains, in order.
func (s *Store) ListDomains(ctx context.Context, tenant uuid.UUID) ([]Domain, error) {
	list := []Domain{}
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &list, `SELECT domain, tenant_id, connection_id, created_at FROM tenant_domains
			WHERE tenant_id = $1 ORDER BY domain`, tenant)
	})
	return list, pg.MapError(err)
}

// RemoveDomain takes domain from tenant; NotFound when it is not theirs.
func (s *Store) RemoveDomain(ctx context.Context, by audit.Actor, tenant uuid.UUID, domain string) error {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return apperr.New(apperr.NotFound, "no such domain")
	}
	err = pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var gone Domain
		err := tx.GetContext(ctx, &gone, `DELETE FROM tenant_domains WHERE domain = $1 AND tenant_id = $2
			RETURNING domain, tenant_id, connection_id, created_at`, d, tenant)
		if pg.IsNoRows(err) {
			return apperr.New(apperr.NotFound, "no such domain")
		}
		if err != nil {
			return err
		}
		return s.auditDomain(ctx, tx, tenant, by, "domain.removed", gone)
	})
	return pg.MapError(err)
}

func (s *Store) auditDomain(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, by audit.Actor, action string, d Domain) error {
	details := map[string]string{}
	if d.ConnectionID != nil {
		details["connection"] = d.ConnectionID.String()
	}
	_, err := s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: action, TargetType: "domain", TargetID: d.Domain,
		Details: details}, s.Now())
	return err
}

// domainRoute is where a domain signs in: a tenant, and its connection
// when the operator named one.
type domainRoute struct {
	Tenant     uuid.UUID  `db:"tenant_id"`
	Connection *uuid.UUID `db:"connection_id"`
}

// routeDomain asks the one cross-tenant lookup home-realm discovery needs
// (hub_sso_domain_route: ids only). ok is false for a domain no tenant has.
func (s *Store) routeDomain(ctx context.Context, domain string) (domainRoute, bool, error) {
	var routes []domainRoute
	err := pg.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &routes, `SELECT * FROM hub_sso_domain_route($1)`, domain)
	})
	if err != nil || len(routes) == 0 {
		return domainRoute{}, false, pg.MapError(err)
	}
	return routes[0], true, nil
}
