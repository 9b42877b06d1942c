package pg

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// Limits keep a slow or silent database from hanging the hub. The server
// ends statements and idle transactions itself (statement_timeout,
// idle_in_transaction_session_timeout); a database that does not answer at
// all is noticed by the connection: its calls end when their context does,
// and no read waits longer than ReadTimeout.
type Limits struct {
	StatementTimeout time.Duration // server side; 0: none (migrations)
	IdleInTxTimeout  time.Duration // server side; 0: none
	ReadTimeout      time.Duration // longest silence on a read; 0: none
	// TextParameters sends query parameters as text, in a separate prepare
	// round trip. The job engine needs it: lib/pq's binary_parameters sends
	// []byte arguments in binary, which PostgreSQL's jsonb input refuses.
	TextParameters bool
}

// TxTimeout is the deadline of every InTenant and InTx transaction, from
// its start to its commit, unless the caller's context ends sooner.
const TxTimeout = 5 * time.Second

// ServeLimits are hubd's: a request's queries take milliseconds, so five
// seconds is a fault, and the answer is 503 rather than a hung request.
var ServeLimits = Limits{
	StatementTimeout: 5 * time.Second,
	IdleInTxTimeout:  15 * time.Second,
	ReadTimeout:      7 * time.Second,
}

// JobLimits are the job engine's pool's: River passes its job arguments
// as jsonb, so parameters go as text; a job's statements may take longer
// than a request's (River's maintenance deletes in batches), but not
// forever.
var JobLimits = Limits{
	StatementTimeout: 30 * time.Second,
	IdleInTxTimeout:  60 * time.Second,
	ReadTimeout:      35 * time.Second,
	TextParameters:   true,
}

// MigrateLimits are the owner's: a migration may rewrite a large table,
// so only the kernel's keepalives watch the connection.
var MigrateLimits = Limits{}

// keepAlive and userTimeout let the kernel notice a peer that vanished
// without closing the connection.
const (
	keepAlive   = 15 * time.Second
	userTimeout = 20 * time.Second
)

// guardedConnector opens lib/pq connections through guardedDialer and
// wraps them so that a cancelled context interrupts a call blocked on the
// network. lib/pq alone cancels by sending a CancelRequest on a new
// connection and keeps waiting for the answer, which never comes when the
// path to the database is frozen.
type guardedConnector struct {
	cfg    pq.Config
	limits Limits
}

func (c *guardedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	d := &guardedDialer{readTimeout: c.limits.ReadTimeout}
	pc, err := pq.NewConnectorConfig(c.cfg)
	if err != nil {
		return nil, err
	}
	pc.Dialer(d)
	// The startup exchange reads too: a context that ends during it
	// interrupts the new connection.
	stop := context.AfterFunc(ctx, func() {
		if nc := d.conn.Load(); nc != nil {
			nc.interrupt()
		}
	})
	conn, err := pc.Connect(ctx)
	if !stop() && err == nil {
		conn.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return &guardedConn{conn: conn, net: d.conn.Load()}, nil
}

func (c *guardedConnector) Driver() driver.Driver { return &pq.Driver{} }

// guardedDialer dials with TCP keepalives and a user timeout, and keeps the
// connection it made so its owner can interrupt it.
type guardedDialer struct {
	readTimeout time.Duration
	conn        atomic.Pointer[deadlineConn]
}

func (d *guardedDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d *guardedDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

func (d *guardedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	nd := net.Dialer{KeepAlive: keepAlive, Control: setUserTimeout}
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	dc := &deadlineConn{Conn: c, readTimeout: d.readTimeout}
	// lib/pq may dial more than once while connecting (another host, a
	// retry without SSL): the last dial is the session. Dials after Connect
	// returned send cancel requests; guardedConn holds its own.
	d.conn.Store(dc)
	return dc, nil
}

// deadlineConn gives every read a deadline, so no read outlives a
// database that stopped answering by more than readTimeout.
type deadlineConn struct {
	net.Conn
	readTimeout time.Duration
	interrupted atomic.Bool
}

// errInterrupted ends reads on a connection whose caller gave up.
var errInterrupted = errors.New("pg: connection interrupted: the caller's deadline passed")

func (c *deadlineConn) Read(b []byte) (int, error) {
	if c.interrupted.Load() {
		return 0, errInterrupted
	}
	if c.readTimeout > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.readTimeout))
	}
	if c.interrupted.Load() { // interrupted while the deadline was set: keep it so
		return 0, errInterrupted
	}
	return c.Conn.Read(b)
}

// interrupt makes a blocked read or write fail now, and every later read;
// lib/pq then marks the connection bad and the pool discards it.
func (c *deadlineConn) interrupt() {
	c.interrupted.Store(true)
	_ = c.Conn.SetDeadline(time.Now())
}

// guardedConn forwards to lib/pq's connection, interrupting the network
// when a call's context ends before the call does.
type guardedConn struct {
	conn driver.Conn
	net  *deadlineConn
}

// watch interrupts the connection if ctx ends before the returned stop is
// called.
func (c *guardedConn) watch(ctx context.Context) (stop func() bool) {
	if c.net == nil || ctx.Done() == nil {
		return func() bool { return false }
	}
	return context.AfterFunc(ctx, c.net.interrupt)
}

func (c *guardedConn) Prepare(q string) (driver.Stmt, error) { return c.conn.Prepare(q) }
func (c *guardedConn) Close() error                          { return c.conn.Close() }

//lint:ignore SA1019 driver.Conn requires Begin; database/sql calls BeginTx.
func (c *guardedConn) Begin() (driver.Tx, error) { return c.conn.Begin() }

func (c *guardedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	defer c.watch(ctx)()
	if bs, ok := ctx.Value(beginSettingKey{}).(*beginSetting); ok && opts == (driver.TxOptions{}) {
		return c.beginSetting(ctx, bs)
	}
	return c.conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

// beginSetting carries a transaction-local setting (SET LOCAL) that the
// connection sets in the same round trip as BEGIN, so that a transaction
// with its tenant set costs one round trip to start, not two. done
// reports that it was set; a connection that cannot leaves it to the
// caller.
type beginSetting struct {
	name, value string
	done        bool
}

type beginSettingKey struct{}

// beginSetting sends BEGIN and set_config as one simple query: PostgreSQL
// runs its statements in order, so the setting holds before any statement
// of the transaction. lib/pq's connection is its own driver.Tx and follows
// the transaction status the server reports, so committing works as after
// its own BEGIN. If the query fails, the transaction is rolled back, or the
// connection is marked bad when its state is in doubt.
func (c *guardedConn) beginSetting(ctx context.Context, bs *beginSetting) (driver.Tx, error) {
	tx, ok := c.conn.(driver.Tx)
	if !ok {
		return c.conn.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{})
	}
	q := "BEGIN READ WRITE; SELECT set_config(" + pq.QuoteLiteral(bs.name) + ", " + pq.QuoteLiteral(bs.value) + ", true)"
	if _, err := c.conn.(driver.ExecerContext).ExecContext(ctx, q, nil); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	bs.done = true
	return tx, nil
}

func (c *guardedConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	defer c.watch(ctx)()
	return c.conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c *guardedConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	defer c.watch(ctx)()
	return c.conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *guardedConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	defer c.watch(ctx)()
	return c.conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *guardedConn) Ping(ctx context.Context) error {
	defer c.watch(ctx)()
	return c.conn.(driver.Pinger).Ping(ctx)
}

func (c *guardedConn) ResetSession(ctx context.Context) error {
	return c.conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *guardedConn) IsValid() bool { return c.conn.(driver.Validator).IsValid() }

func (c *guardedConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}
