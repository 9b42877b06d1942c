package keys_test

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg/pgtest"
	"github.com/klasterina/hub/internal/secrets"
)

// jwksQuery is the text of the one query that reads the published keyset.
const jwksQuery = "SELECT public_jwk FROM tool_keys"

// watchedDB sits between the store and PostgreSQL at the driver: it counts
// the keyset queries sent and can hold them (a frozen database) or fail
// them (a database gone).
type watchedDB struct {
	reads  atomic.Int32
	mu     sync.Mutex
	frozen chan struct{} // non-nil: keyset queries wait until it is closed
	down   bool
}

func (w *watchedDB) freeze() {
	w.mu.Lock()
	w.frozen = make(chan struct{})
	w.mu.Unlock()
}

func (w *watchedDB) thaw() {
	w.mu.Lock()
	close(w.frozen)
	w.frozen = nil
	w.mu.Unlock()
}

func (w *watchedDB) setDown(down bool) {
	w.mu.Lock()
	w.down = down
	w.mu.Unlock()
}

// gate is passed by every keyset query before it reaches PostgreSQL.
func (w *watchedDB) gate(ctx context.Context) error {
	w.reads.Add(1)
	w.mu.Lock()
	frozen, down := w.frozen, w.down
	w.mu.Unlock()
	if down {
		return errors.New("connection refused")
	}
	if frozen != nil {
		select {
		case <-frozen:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

type watchedConnector struct {
	driver.Connector
	w *watchedDB
}

func (c watchedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return watchedConn{conn, c.w}, nil
}

// watchedConn passes everything on to lib/pq's connection.
type watchedConn struct {
	driver.Conn
	w *watchedDB
}

func (c watchedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if strings.Contains(query, jwksQuery) {
		if err := c.w.gate(ctx); err != nil {
			return nil, err
		}
	}
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c watchedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c watchedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

// newWatchedStore is a store on a fresh database seen through a watchedDB,
// with a clock the test moves.
func newWatchedStore(t *testing.T) (*keys.Store, *watchedDB, *atomic.Int64) {
	t.Helper()
	connector, err := pq.NewConnector(pgtest.New(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	w := &watchedDB{}
	db := sqlx.NewDb(sql.OpenDB(watchedConnector{connector, w}), "postgres")
	t.Cleanup(func() { db.Close() })
	sealer, _ := secrets.New(bytes.Repeat([]byte{3}, 32))
	s := keys.NewStore(db, sealer, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	s.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return s, w, &clock
}

// burst asks for the keyset n times at once and checks every answer.
func burst(t *testing.T, s *keys.Store, n int) []keys.JWKS {
	t.Helper()
	out := make([]keys.JWKS, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			j, err := s.PublishedJWKS(ctx)
			if err != nil || !bytes.HasPrefix(j.Body, []byte(`{"keys":[`)) {
				t.Errorf("keyset %q, %v", j.Body, err)
			}
			out[i] = j
		})
	}
	wg.Wait()
	return out
}

func TestPublishedJWKSReadsTheDatabaseOncePerInterval(t *testing.T) {
	s, w, clock := newWatchedStore(t)
	for interval := int32(1); interval <= 3; interval++ {
		for _, j := range burst(t, s, 200) {
			if j.MaxAge <= 0 || j.MaxAge > s.JWKSTTL {
				t.Fatalf("max age %v, want within (0, %v]", j.MaxAge, s.JWKSTTL)
			}
		}
		if n := w.reads.Load(); n != interval {
			t.Fatalf("interval %d: %d keyset reads, want %d", interval, n, interval)
		}
		clock.Add(int64(s.JWKSTTL / 2))
		burst(t, s, 50)
		clock.Add(int64(s.JWKSTTL/2 + time.Second))
	}
}

func TestPublishedJWKSShowsARotationAtOnce(t *testing.T) {
	s, w, _ := newWatchedStore(t)
	before, _ := s.PublishedJWKS(ctx)
	if _, err := s.Rotate(ctx, keys.LTI, nil); err != nil {
		t.Fatal(err)
	}
	after := burst(t, s, 50)[0]
	if bytes.Equal(before.Body, after.Body) || bytes.Count(after.Body, []byte(`"kid"`)) != 5 {
		t.Fatalf("keyset after the rotation:\n%s\nbefore:\n%s", after.Body, before.Body)
	}
	if n := w.reads.Load(); n != 2 {
		t.Fatalf("%d keyset reads, want 2 (one before, one after the rotation)", n)
	}
}

func TestPublishedJWKSSurvivesTheDatabase(t *testing.T) {
	s, w, clock := newWatchedStore(t)
	s.JWKSWait = 20 * time.Millisecond
	warm, _ := s.PublishedJWKS(ctx)

	t.Run("frozen", func(t *testing.T) {
		w.freeze()
		clock.Add(int64(s.JWKSTTL + time.Second))
		reads := w.reads.Load()
		start := time.Now()
		for _, j := range burst(t, s, 100) {
			if !bytes.Equal(j.Body, warm.Body) || j.MaxAge != 0 {
				t.Fatalf("frozen database: served %q max age %v, want the last copy, not to be cached", j.Body, j.MaxAge)
			}
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("answers took %v with the database frozen", took)
		}
		if n := w.reads.Load() - reads; n != 1 {
			t.Fatalf("%d keyset reads while frozen, want the one under way", n)
		}
		w.thaw()
		s.JWKSWait = time.Minute // wait for the read under way
		if j, err := s.PublishedJWKS(ctx); err != nil || j.MaxAge <= 0 {
			t.Fatalf("after the thaw: max age %v, %v", j.MaxAge, err)
		}
		s.JWKSWait = 20 * time.Millisecond
	})
	t.Run("down", func(t *testing.T) {
		w.setDown(true)
		defer w.setDown(false)
		clock.Add(int64(s.JWKSTTL + time.Second))
		reads := w.reads.Load()
		for range 3 {
			for _, j := range burst(t, s, 50) {
				if !bytes.Equal(j.Body, warm.Body) {
					t.Fatalf("database down: served %q", j.Body)
				}
			}
		}
		if n := w.reads.Load() - reads; n != 1 {
			t.Fatalf("%d keyset reads with the database down, want 1 until the retry", n)
		}
	})
	t.Run("down with no copy", func(t *testing.T) {
		fresh, w, _ := newWatchedStore(t)
		w.setDown(true)
		if _, err := fresh.PublishedJWKS(ctx); err == nil {
			t.Fatal("no keyset and no database, yet no error")
		}
	})
}
