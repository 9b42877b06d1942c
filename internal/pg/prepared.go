package pg

import (
	"context"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"
)

// Prepared caches prepared statements by their text, for the hot path:
// PostgreSQL then parses and plans each query once per connection instead
// of on every call. database/sql keeps one prepared copy per connection and
// reuses it inside transactions on that connection.
type Prepared struct {
	db    *sqlx.DB
	mu    sync.Mutex
	stmts map[string]*sqlx.Stmt
}

// NewPrepared returns an empty cache on db.
func NewPrepared(db *sqlx.DB) *Prepared {
	return &Prepared{db: db, stmts: map[string]*sqlx.Stmt{}}
}

// In returns query prepared for use in tx.
func (p *Prepared) In(ctx context.Context, tx *sqlx.Tx, query string) (*sqlx.Stmt, error) {
	p.mu.Lock()
	stmt, ok := p.stmts[query]
	p.mu.Unlock()
	if !ok {
		var err error
		if stmt, err = p.db.PreparexContext(ctx, query); err != nil {
			return nil, MapError(fmt.Errorf("pg: prepare: %w", err))
		}
		p.mu.Lock()
		if existing, raced := p.stmts[query]; raced {
			stmt.Close()
			stmt = existing
		} else {
			p.stmts[query] = stmt
		}
		p.mu.Unlock()
	}
	return tx.StmtxContext(ctx, stmt), nil
}
