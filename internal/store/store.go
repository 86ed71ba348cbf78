// Package store keeps the application's state in PostgreSQL through pgx.
//
// It owns the connection pool, the migration runner and every SQL statement.
// Public methods run in their own transaction; driver errors are translated
// into the package's own (ErrNotFound, ErrConflict, ErrUnavailable) in one
// place, so callers never see pgx types.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is a pool of PostgreSQL connections and the queries the application runs.
type DB struct {
	pool *pgxpool.Pool
}

// Options tune Open. The zero value is usable.
type Options struct {
	// MaxConns caps the pool (0 keeps pgx's default, or pool_max_conns from
	// the URL).
	MaxConns int32
	// StatementTimeout, when positive, bounds every statement server-side, so
	// a slow database answers with an error instead of holding a connection.
	StatementTimeout time.Duration
}

// Open is New followed by a Ping within ctx. It does not migrate.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	db, err := New(url, opts)
	if err != nil {
		return nil, err
	}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// New parses url and creates a pool that connects on first use.
func New(url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may echo the URL, password included.
		return nil, errors.New("parse database url: invalid connection string")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", interpret(err))
	}
	return &DB{pool: pool}, nil
}

// Close waits for borrowed connections to return and closes the pool.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", interpret(err))
	}
	return nil
}

// Pool exposes the pool for the migration runner and benchmarks.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// inTx runs fn in a transaction, committing when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", interpret(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", interpret(err))
	}
	return nil
}
