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
	"sync"
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
	// MaxBytes bounds the database file (0: the disk is the limit). Past
	// it, writes fail as a full disk does (store.Unavailable) and reads go
	// on: a quota that keeps the database from filling a disk it shares.
	MaxBytes int64
	// MapBytes is how much of the database file each reader connection
	// reads through a memory map: 0 means DefaultMapBytes, a negative
	// value none (every page through a read system call into the
	// connection's own cache). See DefaultMapBytes.
	MapBytes int64
}

// Store is the SQLite adapter of store.Store.
type Store struct {
	w   *sql.DB // the single writer connection: SQLite serializes writers anyway
	r   *sql.DB // readers, concurrent with the writer thanks to WAL
	pub store.Publisher
	cmd *store.Commands
	log *slog.Logger
	now func() time.Time

	ruleCache     ruleCache
	settingsCache settingsCache
	queues        sync.Map  // ids of queues known to be stored
	rstmts        stmtCache // prepared on the readers

	// wmu serializes writes: SQLite has one writer anyway, and publishing
	// each write's events before the next write commits keeps events in
	// commit order.
	wmu sync.Mutex
	tx  txStmts

	// observe, when set (by tests), sees every statement the store runs.
	observe func(query string, args []any)
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
	if opts.MaxBytes > 0 {
		// SQLite's pages are 4 KiB unless the file says otherwise; a
		// larger page size only makes the quota looser.
		pragmas += fmt.Sprintf("&_pragma=max_page_count(%d)", max(1, opts.MaxBytes/4096))
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
	var err error
	// The writer overwrites what it deletes (secure_delete), so an erased
	// person's data does not linger in free pages of the file.
	if s.w, err = sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma=secure_delete(1)"); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, err
	}
	if err := s.rebuildAfterCrash(ctx); err != nil {
		s.w.Close()
		return nil, err
	}
	if s.r, err = sql.Open("sqlite", dsn+"&_pragma=query_only(1)"+mapPragma(opts.MapBytes)); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	s.rstmts.db = s.r
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
		if data, ok := dataMigrations[v+1]; ok {
			if err := data(ctx, s, tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("sqlite: migrate data to %d: %w", v+1, err)
			}
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
	return errors.Join(s.rstmts.close(), s.r.Close(), s.w.Close())
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// count records one statement under its verb ("select", "insert", ...)
// and returns the func to call when it has run (store.Commands.Start).
func (s *Store) count(ctx context.Context, query string, args []any) func(error) {
	end := s.cmd.Start(ctx, verbOf(query))
	if s.observe != nil {
		s.observe(query, args)
	}
	return end
}

// verbOf is a statement's first word in lower case: its command name.
// The common verbs are constants, so counting allocates nothing.
func verbOf(query string) string {
	verb, _, _ := strings.Cut(strings.TrimSpace(query), " ")
	switch verb {
	case "SELECT":
		return "select"
	case "INSERT":
		return "insert"
	case "UPDATE":
		return "update"
	case "DELETE":
		return "delete"
	}
	return strings.ToLower(verb)
}

// The durations observed are those of running the statement; reading a
// query's further rows is the caller's.

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (res sql.Result, err error) {
	end := s.count(ctx, query, args)
	defer func() { end(err) }()
	if st := s.prepared(ctx, q, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, query, args...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (rows *sql.Rows, err error) {
	end := s.count(ctx, query, args)
	defer func() { end(err) }()
	if st := s.prepared(ctx, q, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.QueryContext(ctx, query, args...)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) (row *sql.Row) {
	end := s.count(ctx, query, args)
	defer func() { end(row.Err()) }()
	if st := s.prepared(ctx, q, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, query, args...)
}

// prepared returns query as a prepared statement for q, or nil to run it
// unprepared. Parsing and planning a statement costs more than running
// most of ours, so reader statements are prepared once and reused, and a
// transaction prepares each of its statements once (a bulk transaction
// runs the same few statements thousands of times).
func (s *Store) prepared(ctx context.Context, q querier, query string) *sql.Stmt {
	switch x := q.(type) {
	case *sql.Tx:
		if x != s.tx.tx {
			return nil
		}
		if st, ok := s.tx.stmts[query]; ok {
			return st
		}
		st, err := x.PrepareContext(ctx, query)
		if err != nil {
			return nil // run unprepared: the error shows there
		}
		s.tx.stmts[query] = st
		return st
	case *sql.DB:
		if x == s.r {
			return s.rstmts.get(ctx, query)
		}
	}
	return nil
}

// txStmts are the statements prepared in the writer's open transaction.
// Only the holder of wmu touches them.
type txStmts struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// begin starts a write transaction; the caller holds wmu.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	s.tx = txStmts{tx: tx, stmts: map[string]*sql.Stmt{}}
	return tx, nil
}

// done forgets the transaction's statements; committing or rolling back
// closed them.
func (s *Store) done() { s.tx = txStmts{} }

// maxPrepared bounds each statement cache: queries whose text varies (IN
// lists of different lengths) must not grow it without end.
const maxPrepared = 512

// stmtCache holds the prepared statements of one database handle.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// get returns the prepared statement of query, preparing it on first use;
// nil when the cache is full or preparing fails (the caller then runs the
// query unprepared and sees the same error there).
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if c.db == nil || len(c.m) >= maxPrepared {
		return nil
	}
	st, err := c.db.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}

// write runs fn in a write transaction and publishes the events fn
// returns once the transaction has committed.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) ([]store.Event, error)) error {
	if b, ok := ctx.Value(bulkKey{}).(*bulk); ok && b.store == s {
		return b.write(ctx, fn)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer s.done()
	events, err := fn(tx)
	if err != nil {
		if rerr := tx.Rollback(); rerr != nil && !alreadyRolledBack(rerr) {
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

// alreadyRolledBack reports whether a rollback failed only because there
// was nothing left to roll back: SQLite rolls a transaction back itself
// after some errors (a full disk, an I/O error), and database/sql may have
// ended it already.
func alreadyRolledBack(err error) bool {
	return errors.Is(err, sql.ErrTxDone) || strings.Contains(err.Error(), "no transaction is active")
}

type bulkKey struct{}

// bulk is a transaction that many writes share (see Bulk).
type bulk struct {
	store  *Store
	tx     *sql.Tx
	events []store.Event
}

// write runs one write inside the shared transaction, under a savepoint,
// so a write that fails is undone alone, as it would be on its own.
func (b *bulk) write(ctx context.Context, fn func(tx *sql.Tx) ([]store.Event, error)) error {
	if _, err := b.tx.ExecContext(ctx, "SAVEPOINT write"); err != nil {
		return fmt.Errorf("sqlite: savepoint: %w", err)
	}
	events, err := fn(b.tx)
	if err != nil {
		_, rerr := b.tx.ExecContext(ctx, "ROLLBACK TO write")
		if rerr == nil {
			_, rerr = b.tx.ExecContext(ctx, "RELEASE write")
		}
		if rerr != nil {
			return errors.Join(err, fmt.Errorf("sqlite: roll back to savepoint: %w", rerr))
		}
		return err
	}
	if _, err := b.tx.ExecContext(ctx, "RELEASE write"); err != nil {
		return fmt.Errorf("sqlite: release savepoint: %w", err)
	}
	b.events = append(b.events, events...)
	return nil
}

// Bulk implements store.Bulker: the writes fn makes through ctx share one
// transaction, committed when fn returns nil. Loading a data set this way
// pays one commit per batch instead of one per message.
func (s *Store) Bulk(ctx context.Context, fn func(ctx context.Context) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer s.done()
	b := &bulk{store: s, tx: tx}
	if err := fn(context.WithValue(ctx, bulkKey{}, b)); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !alreadyRolledBack(rerr) {
			return errors.Join(err, fmt.Errorf("sqlite: rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if len(b.events) > 0 {
		s.pub.Publish(ctx, b.events)
	}
	return nil
}

// Unavailable implements store.AvailabilityReporter: the disk is full (or
// the database at its MaxBytes), the file cannot be read, written or
// opened, or the lock stayed busy past the busy timeout. A write that fails
// so was rolled back whole; reads go on working.
func (s *Store) Unavailable(err error) bool {
	var e *sqlite3.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff { // the primary code, without the extended bits
	case sqlite3lib.SQLITE_FULL, sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED,
		sqlite3lib.SQLITE_CANTOPEN, sqlite3lib.SQLITE_READONLY, sqlite3lib.SQLITE_NOMEM, sqlite3lib.SQLITE_PROTOCOL:
		return true
	}
	return false
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

// DefaultMapBytes is SQLite's largest memory map, 2 GiB: the reader
// connections read the database file through it rather than a read
// system call per page their own cache lacks. Opening an interaction costs
// 10% less CPU on 100k interactions (BENCHMARKS.md). The mapped pages are
// the kernel's page cache, shared and reclaimable, but the resident size
// the kernel reports counts them once per reader connection that touched
// them (up to GOMAXPROCS*2 connections): a 200 MB database can show as
// 800 MB of RSS that is 200 MB of memory (the proportional size, Pss,
// counts it once). The writer keeps reading through its cache.
const DefaultMapBytes = 2147418112

// mapPragma is the readers' mmap_size pragma for Options.MapBytes.
func mapPragma(n int64) string {
	switch {
	case n == 0:
		n = DefaultMapBytes
	case n < 0:
		n = 0
	}
	return fmt.Sprintf("&_pragma=mmap_size(%d)", n)
}
