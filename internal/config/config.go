// Package config loads the hub's settings from HUB_* environment variables
// once, in main, and validates them so that a bad value stops the process
// with one line naming the variable instead of failing later.
package config

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is every operator-facing setting of hubd.
type Config struct {
	DatabaseURL          string // the application role: serves, owns nothing
	MigrateDatabaseURL   string // the owner role: migrates, owns the schema
	Addr                 string
	PublicURL            *url.URL
	AdminToken           string
	SecretKey            []byte
	PreviousSecretKeys   [][]byte // still open what they sealed, after a rotation
	AutoMigrate          bool
	AppURL               *url.URL // nil: the hub's own landing page
	LogLevel             slog.Level
	OutboundAllowPrivate bool
	LTILeeway            time.Duration // clock skew allowed on id_token exp, iat and nbf
	TrustedProxies       []*net.IPNet  // whose X-Forwarded-For names the client
	// JobsRescueAfter is how long a background job may run before the job
	// engine takes it for stuck (its process died) and runs it again.
	JobsRescueAfter time.Duration
	// DisclosureRetentionDays keeps the record of a decision made under no
	// agreement while the tenant has no active agreement either.
	DisclosureRetentionDays int
	// RetentionInterval is how often every active tenant's retention runs.
	RetentionInterval time.Duration
	// DeliveryMaxAttempts is how many failed attempts a delivery gets
	// before it is dead (throttled ones do not count).
	DeliveryMaxAttempts int
	// SSOSessionIdle ends a hub session unused this long; SSOSessionMax
	// ends it this long after sign-in whatever happens.
	SSOSessionIdle, SSOSessionMax time.Duration
}

// Error names the variable at fault.
type Error struct {
	Var    string
	Reason string
}

func (e *Error) Error() string { return e.Var + " " + e.Reason }

// MinAdminTokenLength keeps the operator token out of brute-force reach.
const MinAdminTokenLength = 32

// Need says which settings the running command cannot do without.
type Need int

const (
	NeedDatabase Need = iota // migrate status: the database only
	NeedMigrate              // migrate: the owner's connection too
	NeedServe                // serve: database, admin token, secret key
)

// Load reads and validates the environment through getenv.
func Load(getenv func(string) string, need Need) (*Config, error) {
	c := &Config{Addr: ":8080", LogLevel: slog.LevelInfo, LTILeeway: 30 * time.Second, JobsRescueAfter: 3 * time.Minute,
		DisclosureRetentionDays: DefaultDisclosureRetentionDays, RetentionInterval: DefaultRetentionInterval,
		DeliveryMaxAttempts: DefaultDeliveryMaxAttempts, SSOSessionIdle: DefaultSSOSessionIdle, SSOSessionMax: DefaultSSOSessionMax}
	steps := []func(func(string) string, Need) error{
		c.loadDatabaseURL, c.loadAddr, c.loadPublicURL, c.loadAdminToken,
		c.loadSecretKey, c.loadPreviousSecretKeys, c.loadFlags, c.loadMigrateDatabaseURL, c.loadAppURL, c.loadLogLevel, c.loadLTILeeway, c.loadTrustedProxies,
		c.loadJobsRescueAfter, c.loadDisclosureRetentionDays, c.loadRetentionInterval, c.loadDeliveryMaxAttempts,
		c.loadSSOSessions,
	}
	for _, step := range steps {
		if err := step(getenv, need); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Config) loadDatabaseURL(getenv func(string) string, _ Need) error {
	v := getenv("HUB_DATABASE_URL")
	if v == "" {
		return &Error{"HUB_DATABASE_URL", "is required (a PostgreSQL URL such as postgres://hub@127.0.0.1:5432/hub)"}
	}
	if !isPostgresURL(v) {
		return &Error{"HUB_DATABASE_URL", "must be a postgres:// URL with a host"}
	}
	c.DatabaseURL = v
	return nil
}

// loadMigrateDatabaseURL reads HUB_MIGRATE_DATABASE_URL, the schema
// owner's connection. Migrating needs it: the application role must own
// nothing, or it could switch row-level security off.
func (c *Config) loadMigrateDatabaseURL(getenv func(string) string, need Need) error {
	v := getenv("HUB_MIGRATE_DATABASE_URL")
	if v == "" {
		if need == NeedMigrate || (need == NeedServe && c.AutoMigrate) {
			return &Error{"HUB_MIGRATE_DATABASE_URL", "is required to migrate (the schema owner's PostgreSQL URL, a different role from HUB_DATABASE_URL's)"}
		}
		return nil
	}
	if !isPostgresURL(v) {
		return &Error{"HUB_MIGRATE_DATABASE_URL", "must be a postgres:// URL with a host"}
	}
	c.MigrateDatabaseURL = v
	return nil
}

func isPostgresURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.Host != ""
}

func (c *Config) loadAddr(getenv func(string) string, _ Need) error {
	v := getenv("HUB_ADDR")
	if v == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return &Error{"HUB_ADDR", "must be a listen address such as :8080 or 127.0.0.1:8080"}
	}
	c.Addr = v
	return nil
}

func (c *Config) loadPublicURL(getenv func(string) string, _ Need) error {
	v := getenv("HUB_PUBLIC_URL")
	if v == "" {
		v = "http://localhost" + portSuffix(c.Addr)
	}
	u, err := parseHTTPURL(v)
	if err != nil {
		return &Error{"HUB_PUBLIC_URL", err.Error()}
	}
	c.PublicURL = u
	return nil
}

func portSuffix(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return ":" + port
}

func (c *Config) loadAdminToken(getenv func(string) string, need Need) error {
	v := getenv("HUB_ADMIN_TOKEN")
	if v == "" && need != NeedServe {
		return nil
	}
	if len(v) < MinAdminTokenLength {
		return &Error{"HUB_ADMIN_TOKEN", fmt.Sprintf("must be at least %d characters (got %d)", MinAdminTokenLength, len(v))}
	}
	c.AdminToken = v
	return nil
}

func (c *Config) loadSecretKey(getenv func(string) string, need Need) error {
	v := getenv("HUB_SECRET_KEY")
	if v == "" && need != NeedServe {
		return nil
	}
	if v == "" {
		return &Error{"HUB_SECRET_KEY", "is required (base64 of 32 random bytes, e.g. from: openssl rand -base64 32)"}
	}
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return &Error{"HUB_SECRET_KEY", "must be standard base64 of 32 bytes"}
	}
	if len(key) != 32 {
		return &Error{"HUB_SECRET_KEY", fmt.Sprintf("must decode to exactly 32 bytes (got %d)", len(key))}
	}
	c.SecretKey = key
	return nil
}

// loadPreviousSecretKeys reads HUB_SECRET_KEY_PREVIOUS: comma-separated
// keys that sealed values before the current HUB_SECRET_KEY, kept until
// everything is resealed.
func (c *Config) loadPreviousSecretKeys(getenv func(string) string, _ Need) error {
	v := getenv("HUB_SECRET_KEY_PREVIOUS")
	if v == "" {
		return nil
	}
	for i, part := range strings.Split(v, ",") {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(part))
		if err != nil || len(key) != 32 {
			return &Error{"HUB_SECRET_KEY_PREVIOUS", fmt.Sprintf("key %d must be standard base64 of exactly 32 bytes", i+1)}
		}
		c.PreviousSecretKeys = append(c.PreviousSecretKeys, key)
	}
	return nil
}

func (c *Config) loadFlags(getenv func(string) string, _ Need) error {
	var err error
	if c.AutoMigrate, err = parseBool(getenv, "HUB_AUTO_MIGRATE"); err != nil {
		return err
	}
	c.OutboundAllowPrivate, err = parseBool(getenv, "HUB_OUTBOUND_ALLOW_PRIVATE")
	return err
}

func parseBool(getenv func(string) string, name string) (bool, error) {
	v := getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &Error{name, "must be true or false"}
	}
	return b, nil
}

func (c *Config) loadAppURL(getenv func(string) string, _ Need) error {
	v := getenv("HUB_APP_URL")
	if v == "" {
		return nil
	}
	u, err := parseHTTPURL(v)
	if err != nil {
		return &Error{"HUB_APP_URL", err.Error()}
	}
	c.AppURL = u
	return nil
}

func (c *Config) loadLogLevel(getenv func(string) string, _ Need) error {
	v := getenv("HUB_LOG_LEVEL")
	if v == "" {
		return nil
	}
	if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
		return &Error{"HUB_LOG_LEVEL", "must be one of debug, info, warn, error"}
	}
	return nil
}

// maxLTILeeway bounds the skew: beyond a few minutes an expired token is
// simply expired.
const maxLTILeeway = 5 * time.Minute

func (c *Config) loadLTILeeway(getenv func(string) string, _ Need) error {
	v := getenv("HUB_LTI_LEEWAY")
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxLTILeeway {
		return &Error{"HUB_LTI_LEEWAY", "must be a duration from 0s to 5m, such as 30s"}
	}
	c.LTILeeway = d
	return nil
}

// loadJobsRescueAfter reads HUB_JOBS_RESCUE_AFTER: from 30 seconds (a
// job then has 20 to finish or snooze) to an hour (River's own default).
func (c *Config) loadJobsRescueAfter(getenv func(string) string, _ Need) error {
	v := getenv("HUB_JOBS_RESCUE_AFTER")
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 30*time.Second || d > time.Hour {
		return &Error{"HUB_JOBS_RESCUE_AFTER", "must be a duration from 30s to 1h, such as 3m"}
	}
	c.JobsRescueAfter = d
	return nil
}

// Retention's defaults and bounds. The days match what an agreement may
// set (1 to 3,650); the default is about seven years, the longest record
// keeping FERPA and most employers' training records ask for.
const (
	DefaultDisclosureRetentionDays = 2555
	maxRetentionDays               = 3650
	DefaultRetentionInterval       = 24 * time.Hour
	minRetentionInterval           = time.Minute
	maxRetentionInterval           = 7 * 24 * time.Hour
)

// loadDisclosureRetentionDays reads HUB_DISCLOSURE_RETENTION_DAYS: how
// long the record of a decision made under no agreement is kept while its
// tenant has no active agreement to say.
func (c *Config) loadDisclosureRetentionDays(getenv func(string) string, _ Need) error {
	v := getenv("HUB_DISCLOSURE_RETENTION_DAYS")
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxRetentionDays {
		return &Error{"HUB_DISCLOSURE_RETENTION_DAYS", fmt.Sprintf("must be a whole number of days from 1 to %d, such as 2555", maxRetentionDays)}
	}
	c.DisclosureRetentionDays = n
	return nil
}

// DefaultDeliveryMaxAttempts and maxDeliveryAttempts bound
// HUB_DELIVERY_MAX_ATTEMPTS: twelve attempts wait about a day in all.
const (
	DefaultDeliveryMaxAttempts = 12
	maxDeliveryAttempts        = 100
)

// loadDeliveryMaxAttempts reads HUB_DELIVERY_MAX_ATTEMPTS: how many
// failed attempts a delivery gets before it is dead.
func (c *Config) loadDeliveryMaxAttempts(getenv func(string) string, _ Need) error {
	v := getenv("HUB_DELIVERY_MAX_ATTEMPTS")
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxDeliveryAttempts {
		return &Error{"HUB_DELIVERY_MAX_ATTEMPTS", fmt.Sprintf("must be a whole number from 1 to %d, such as 12", maxDeliveryAttempts)}
	}
	c.DeliveryMaxAttempts = n
	return nil
}

// loadRetentionInterval reads HUB_RETENTION_INTERVAL: how often every
// tenant's retention runs, from a minute to a week.
func (c *Config) loadRetentionInterval(getenv func(string) string, _ Need) error {
	v := getenv("HUB_RETENTION_INTERVAL")
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minRetentionInterval || d > maxRetentionInterval {
		return &Error{"HUB_RETENTION_INTERVAL", "must be a duration from 1m to 168h, such as 24h"}
	}
	c.RetentionInterval = d
	return nil
}

// loadTrustedProxies reads HUB_TRUSTED_PROXIES: comma-separated CIDRs of
// the load balancers in front of the hub. Only their X-Forwarded-For is
// believed; without it the peer address is the client.
func (c *Config) loadTrustedProxies(getenv func(string) string, _ Need) error {
	v := getenv("HUB_TRUSTED_PROXIES")
	if v == "" {
		return nil
	}
	for _, part := range strings.Split(v, ",") {
		_, ipNet, err := net.ParseCIDR(strings.TrimSpace(part))
		if err != nil {
			return &Error{"HUB_TRUSTED_PROXIES", fmt.Sprintf("%q is not a CIDR such as 10.0.0.0/8", strings.TrimSpace(part))}
		}
		c.TrustedProxies = append(c.TrustedProxies, ipNet)
	}
	return nil
}

func parseHTTPURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("must be an absolute http(s) URL")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// LogValue prints the configuration with secrets masked.
func (c *Config) LogValue() slog.Value {
	app := ""
	if c.AppURL != nil {
		app = c.AppURL.String()
	}
	return slog.GroupValue(
		slog.String("database_url", maskURL(c.DatabaseURL)),
		slog.String("migrate_database_url", maskURL(c.MigrateDatabaseURL)),
		slog.String("addr", c.Addr),
		slog.String("public_url", c.PublicURL.String()),
		slog.String("admin_token", mask(c.AdminToken)),
		slog.String("secret_key", mask(string(c.SecretKey))),
		slog.Int("previous_secret_keys", len(c.PreviousSecretKeys)),
		slog.Bool("auto_migrate", c.AutoMigrate),
		slog.String("app_url", app),
		slog.String("log_level", c.LogLevel.String()),
		slog.Bool("outbound_allow_private", c.OutboundAllowPrivate),
		slog.Duration("lti_leeway", c.LTILeeway),
		slog.Int("trusted_proxies", len(c.TrustedProxies)),
		slog.Duration("jobs_rescue_after", c.JobsRescueAfter),
		slog.Int("disclosure_retention_days", c.DisclosureRetentionDays),
		slog.Duration("retention_interval", c.RetentionInterval),
		slog.Duration("sso_session_idle", c.SSOSessionIdle),
		slog.Duration("sso_session_max", c.SSOSessionMax),
	)
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return "[set]"
}

func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable]"
	}
	return u.Redacted()
}

// Hub sessions' defaults and bounds: a session unused for half an hour
// ends, and any ends twelve hours after sign-in (a working day).
const (
	DefaultSSOSessionIdle = 30 * time.Minute
	DefaultSSOSessionMax  = 12 * time.Hour
	minSSOSession         = time.Minute
	maxSSOSessionIdle     = 24 * time.Hour
	maxSSOSession         = 30 * 24 * time.Hour
)

// loadSSOSessions reads HUB_SSO_SESSION_IDLE (1m to 24h) and
// HUB_SSO_SESSION_MAX (1m to 720h), the idle one no longer than the other.
func (c *Config) loadSSOSessions(getenv func(string) string, _ Need) error {
	for _, s := range []struct {
		name    string
		to      *time.Duration
		max     time.Duration
		example string
	}{{"HUB_SSO_SESSION_IDLE", &c.SSOSessionIdle, maxSSOSessionIdle, "30m"}, {"HUB_SSO_SESSION_MAX", &c.SSOSessionMax, maxSSOSession, "12h"}} {
		v := getenv(s.name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < minSSOSession || d > s.max {
			return &Error{s.name, fmt.Sprintf("must be a duration from 1m to %s, such as %s", s.max, s.example)}
		}
		*s.to = d
	}
	if c.SSOSessionIdle > c.SSOSessionMax {
		return &Error{"HUB_SSO_SESSION_IDLE", "must not be longer than HUB_SSO_SESSION_MAX"}
	}
	return nil
}
