package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/apperr"
)

// Open connects to url as hubd serves: with ServeLimits, so a slow or
// silent database answers errors (mapped to Unavailable) instead of hanging
// requests. The pool is sized for a two-core replica; PostgreSQL, not the
// pool, is where the hub scales out.
func Open(ctx context.Context, url string) (*sqlx.DB, error) {
	return OpenWith(ctx, url, ServeLimits)
}

// OpenWith connects to url with limits; MigrateLimits for the owner.
func OpenWith(ctx context.Context, url string, limits Limits) (*sqlx.DB, error) {
	cfg, err := pq.NewConfig(withSettings(url, limits))
	if err != nil {
		return nil, fmt.Errorf("pg: open: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(&guardedConnector{cfg: cfg, limits: limits}), "postgres")
	db.SetMaxOpenConns(MaxConns)
	db.SetMaxIdleConns(MaxConns) // as many as open: a closed idle connection costs PostgreSQL a new backend
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("pg: connect: %w", err)
	}
	return db, nil
}

// MaxConns is the pool's size per replica.
const MaxConns = 20

// withSettings adds to url what the hub needs unless the operator set it:
// one round trip per parameterized query (bind and execute with the parse,
// instead of a separate prepare first: half the round trips on every
// request), and the server-side timeouts of limits, sent as run-time
// parameters.
func withSettings(raw string, limits Limits) string {
	u, err := neturl.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw
	}
	q := u.Query()
	set := func(k, v string) {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	if !limits.TextParameters {
		set("binary_parameters", "yes")
	}
	if limits.StatementTimeout > 0 {
		set("statement_timeout", fmt.Sprint(limits.StatementTimeout.Milliseconds()))
	}
	if limits.IdleInTxTimeout > 0 {
		set("idle_in_transaction_session_timeout", fmt.Sprint(limits.IdleInTxTimeout.Milliseconds()))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// InTenant runs fn in a transaction whose row-level security admits only
// tenant's rows. fn's error rolls the transaction back. The transaction
// ends within TxTimeout, and waits its turn when the tenant already holds
// its TenantShare of the pool; either failing is Unavailable.
func InTenant(ctx context.Context, db *sqlx.DB, tenant uuid.UUID, fn func(*sqlx.Tx) error) error {
	if tenant == uuid.Nil {
		return errors.New("pg: InTenant with no tenant")
	}
	ctx, cancel := withTxDeadline(ctx)
	defer cancel()
	release, err := acquireShare(ctx, db, tenant)
	if err != nil {
		return err
	}
	defer release()
	return inTx(ctx, db, "hub.tenant_id", tenant.String(), fn)
}

// InTenantFor is InTenant for a background job that holds its
// transaction across a call to another system, so the transaction's
// locks span the call (a delivery holds the learner's row while it
// sends, so an erasure waits for it): the transaction ends within
// timeout instead of TxTimeout. db must be a pool whose server-side
// limits allow that long (the job engine's, JobLimits); job concurrency
// is bounded by the job engine, so no tenant share is taken.
func InTenantFor(ctx context.Context, db *sqlx.DB, tenant uuid.UUID, timeout time.Duration, fn func(*sqlx.Tx) error) error {
	if tenant == uuid.Nil {
		return errors.New("pg: InTenantFor with no tenant")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return inTxUntil(ctx, db, "hub.tenant_id", tenant.String(), fn)
}

// retryTries is how often RetryInTenant runs a transaction that loses to
// another before giving up.
const retryTries = 3

// RetryInTenant is InTenant for a transaction that may lose to a
// concurrent one (a deadlock, or a serialization failure such as a
// trigger's refusal to link an identity to a learner erased meanwhile):
// fn runs again, from the start, up to three times in all. fn must do
// nothing outside the transaction that a second run would repeat.
func RetryInTenant(ctx context.Context, db *sqlx.DB, tenant uuid.UUID, fn func(*sqlx.Tx) error) error {
	for try := 1; ; try++ {
		err := InTenant(ctx, db, tenant, fn)
		if try == retryTries || !LostToAnother(err) {
			return err
		}
	}
}

// LostToAnother reports a deadlock or serialization failure: a
// transaction worth running again from the start.
func LostToAnother(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code == codeSerialization || pqErr.Code == codeDeadlock)
}

// withTxDeadline gives ctx a deadline TxTimeout from now, unless it
// already ends sooner (InTenant's, when it calls inTx).
func withTxDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= TxTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, TxTimeout)
}

// ErrNoTenant is returned by InFoundTenant when the lookup finds none.
var ErrNoTenant = errors.New("pg: the lookup found no tenant")

// InFoundTenant runs fn in one transaction whose tenant is the one lookup
// finds for arg. lookup names a SECURITY DEFINER function of one argument
// returning a tenant id (hub_api_key_tenant, hub_registration_link_tenant);
// it must be a constant of the caller's, never input. Finding the tenant and
// setting it is one statement, so a hot path such as authentication pays no
// extra round trip for the lookup. ErrNoTenant when it finds none.
func InFoundTenant(ctx context.Context, db *sqlx.DB, lookup string, arg any, fn func(*sqlx.Tx, uuid.UUID) error) error {
	q := fmt.Sprintf(`SELECT set_config('hub.tenant_id', coalesce(%s($1)::text, ''), true)`, pq.QuoteIdentifier(lookup))
	return inTx(ctx, db, "", "", func(tx *sqlx.Tx) error {
		var found string
		if err := tx.GetContext(ctx, &found, q, arg); err != nil {
			return MapError(fmt.Errorf("pg: %s: %w", lookup, err))
		}
		tenant, err := uuid.Parse(found)
		if err != nil {
			return ErrNoTenant
		}
		return fn(tx, tenant)
	})
}

func inTx(ctx context.Context, db *sqlx.DB, setting, value string, fn func(*sqlx.Tx) error) (err error) {
	ctx, cancel := withTxDeadline(ctx)
	defer cancel()
	return inTxUntil(ctx, db, setting, value, fn)
}

// inTxUntil is inTx within ctx's own deadline.
func inTxUntil(ctx context.Context, db *sqlx.DB, setting, value string, fn func(*sqlx.Tx) error) (err error) {
	var bs *beginSetting
	if setting != "" {
		bs = &beginSetting{name: setting, value: value}
		ctx = context.WithValue(ctx, beginSettingKey{}, bs)
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return MapError(fmt.Errorf("pg: begin: %w", err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// set_config(..., true) is SET LOCAL: it ends with the transaction.
	// The hub's own connections set it with BEGIN (guardedConn); others
	// need a statement of its own.
	if bs != nil && !bs.done {
		if _, err = tx.ExecContext(ctx, `SELECT set_config($1, $2, true)`, setting, value); err != nil {
			return MapError(fmt.Errorf("pg: set %s: %w", setting, err))
		}
	}
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return MapError(fmt.Errorf("pg: commit: %w", err))
	}
	return nil
}

// PostgreSQL error codes the hub maps to its own vocabulary.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
	codeLockNotAvailable    = "55P03"
)

// MapError classifies database errors at the store boundary: constraint
// violations become apperr codes, a lost connection becomes Unavailable,
// and anything else passes through as an internal error.
func MapError(err error) error {
	if err == nil || apperr.CodeOf(err) != "" {
		return err
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case codeUniqueViolation:
			return apperr.Wrap(apperr.Conflict, err, "an object with the same unique value already exists")
		case codeForeignKeyViolation:
			return apperr.Wrap(apperr.NotFound, err, "a referenced object does not exist")
		case codeCheckViolation:
			return apperr.Wrap(apperr.Invalid, err, "a value is out of range")
		}
		// 08: connection, 57: cancelled (statement_timeout) or shutting
		// down, 53: out of resources, 25P03: idle-in-transaction timeout,
		// 55P03: lock not available in time; 40001 and 40P01: a
		// transaction that lost to another (after RetryInTenant's tries).
		switch {
		case pqErr.Code.Class() == "08", pqErr.Code.Class() == "57", pqErr.Code.Class() == "53",
			pqErr.Code == "25P03", pqErr.Code == "55P03", pqErr.Code == codeSerialization, pqErr.Code == codeDeadlock:
			return apperr.Wrap(apperr.Unavailable, err, "the database is unavailable")
		}
		return err
	}
	if isConnectionError(err) {
		return apperr.Wrap(apperr.Unavailable, err, "the database is unavailable")
	}
	if isTimeout(err) {
		return apperr.Wrap(apperr.Unavailable, err, "the database did not answer in time")
	}
	return err
}

// isTimeout reports a deadline that ended the work: the transaction's or
// request's context, or a transaction database/sql rolled back because of
// one.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrTxDone)
}

// IsNoRows reports a query that found nothing.
func IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// IsLockNotAvailable reports whether err is a NOWAIT lock that another
// transaction holds.
func IsLockNotAvailable(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == codeLockNotAvailable
}

// InTx runs fn in a transaction with no tenant set: for hub-wide tables
// that belong to no tenant (the hub's signing keys, the activity catalog,
// the operator's audit chain) and for the SECURITY DEFINER lookups that
// find a tenant before one is known (hub_api_key_tenant, hub_tenant_by_slug,
// hub_lti_route, ...). No tenant's rows are visible in it.
func InTx(ctx context.Context, db *sqlx.DB, fn func(*sqlx.Tx) error) error {
	return inTx(ctx, db, "", "", fn)
}

// Values is the placeholders of a multi-row VALUES list: rows rows of
// cols parameters each, numbered from $1 — "($1, $2), ($3, $4)" — for
// writing a batch in one statement.
func Values(rows, cols int) string {
	var b strings.Builder
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", i*cols+c+1)
		}
		b.WriteString(")")
	}
	return b.String()
}
