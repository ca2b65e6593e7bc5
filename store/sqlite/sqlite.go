// Package sqlite is the embedded default store: the gateway's documents in
// one SQLite database file (pure Go, no cgo), in WAL mode with one writer
// and a pool of readers. Every query shape has an index, and every write is
// one transaction, so it serves a single node with millions of
// interactions without a database server.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/relatedhq/related/store"
)

// FileName is the database file's name inside the data directory.
const FileName = "related.db"

// Options configure Open.
type Options struct {
	// Dir is the data directory; it is created if missing.
	Dir string
	// Publisher receives events after each committed write (nil: dropped).
	Publisher store.Publisher
	// Commands counts executed statements (nil: a new counter).
	Commands *store.Commands
	// Logger logs the store's own notices (nil: slog.Default()).
	Logger *slog.Logger
}

// Store is the SQLite adapter of store.Store.
type Store struct {
	w   *sql.DB // the single writer connection: SQLite serializes writers anyway
	r   *sql.DB // readers, concurrent with the writer thanks to WAL
	pub store.Publisher
	cmd *store.Commands
	log *slog.Logger
	now func() time.Time

	ruleCache ruleCache
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database in opts.Dir and brings its
// schema up to date.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("sqlite: no data directory")
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create data directory: %w", err)
	}
	s := &Store{pub: opts.Publisher, cmd: opts.Commands, log: opts.Logger, now: time.Now}
	if s.pub == nil {
		s.pub = store.Discard
	}
	if s.cmd == nil {
		s.cmd = new(store.Commands)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	path := filepath.Join(opts.Dir, FileName)
	// busy_timeout covers the moments a checkpoint holds the lock;
	// synchronous=NORMAL is durable across process crashes in WAL mode (a
	// power loss may lose the last transactions, never corrupt the file).
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(0)"
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
	var err error
	if s.w, err = sql.Open("sqlite", dsn+"&_txlock=immediate"); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, err
	}
	if s.r, err = sql.Open("sqlite", dsn+"&_pragma=query_only(1)"); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	return s, nil
}

// Commands returns the statement counter.
func (s *Store) Commands() *store.Commands { return s.cmd }

// migrate applies the migrations the database has not seen yet, each in
// its own transaction, so a crash mid-way leaves a consistent version.
func (s *Store) migrate(ctx context.Context) error {
	var version int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("sqlite: database schema version %d is newer than this binary's %d", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlite: migrate to %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migrate to %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migrate to %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite: migrate to %d: %w", v+1, err)
		}
		s.log.Info("sqlite schema migrated", "version", v+1)
	}
	return nil
}

// Ping reports whether the database answers and its schema is current.
func (s *Store) Ping(ctx context.Context) error {
	var version int
	if err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if version != len(migrations) {
		return fmt.Errorf("sqlite: schema version %d, want %d", version, len(migrations))
	}
	return nil
}

// Close closes the database, checkpointing the WAL into the main file.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// count records one statement under its verb ("select", "insert", ...).
func (s *Store) count(query string) {
	q := strings.TrimSpace(query)
	verb, _, _ := strings.Cut(q, " ")
	s.cmd.Add(strings.ToLower(verb))
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	s.count(query)
	return q.ExecContext(ctx, query, args...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	s.count(query)
	return q.QueryContext(ctx, query, args...)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	s.count(query)
	return q.QueryRowContext(ctx, query, args...)
}

// write runs fn in a write transaction and publishes the events fn
// returns once the transaction has committed.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) ([]store.Event, error)) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	events, err := fn(tx)
	if err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("sqlite: rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if len(events) > 0 {
		s.pub.Publish(ctx, events)
	}
	return nil
}

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	var e *sqlite3.Error
	return errors.As(err, &e) && (e.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// ms converts a time to the stored milliseconds; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS converts stored milliseconds back; 0 is the zero time.
func fromMS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// placeholders returns "?,?,...,?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
