// Package mongo is the production adapter of store.Store: the gateway's
// documents in MongoDB, through the official Go driver (v2).
//
// It uses only what MongoDB and FerretDB v1 both honour (DESIGN.md section
// 2): equality, $in, $or and range filters, sort and limit, findAndModify
// and updates with $set/$inc/$unset/$setOnInsert/$addToSet/$pull, bulk
// writes, unique-index inserts and countDocuments. There are no
// transactions: every decision that must have one winner is a unique index
// (a thread's open interaction, a contact's address, a queue's name, a
// message's clientMutationId, a contact's lease while its cluster is
// recomputed), and every multi-document write is ordered so that a crash
// between its steps leaves nothing a reader would misread and is finished
// later (link.go). The conformance suite runs against an in-test FerretDB and, when
// MONGODB_URI is set, against that MongoDB.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// Options configure Open.
type Options struct {
	// URI is the MongoDB connection string, such as MONGODB_URI.
	URI string
	// Database is the database the collections live in.
	Database string
	// Publisher receives the events of committed writes; nil drops them
	// (store.Discard).
	Publisher store.Publisher
	// Commands counts the database commands the adapter sends; nil makes
	// a new counter (see Store.Commands).
	Commands *store.Commands
	// Logger receives the adapter's diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Store is the MongoDB implementation of store.Store. It is safe for
// concurrent use; the driver pools connections underneath.
type Store struct {
	client       *mongodriver.Client
	db           *mongodriver.Database
	interactions *mongodriver.Collection
	messages     *mongodriver.Collection
	contacts     *mongodriver.Collection
	queues       *mongodriver.Collection
	preferences  *mongodriver.Collection
	pub          store.Publisher
	cmds         *store.Commands
	log          *slog.Logger

	// cache holds tenants' rules and settings for the fast path of writes.
	cache caches
	// leaseTTL is how long a lease on a contact lasts (leases.go); tests
	// shorten it.
	leaseTTL time.Duration
	// eraseCrash, when set (by tests), runs once an erasure has deleted a
	// chunk's messages; an error stops the erasure there, as a crash
	// would.
	eraseCrash func() error
}

var _ store.Store = (*Store)(nil)

// handshake lists the commands the driver sends on its own behalf:
// connection handshakes, authentication, session clean-up and the
// readiness probe. They are left out of the counts so "database round
// trips" means the gateway's own work.
var handshake = map[string]bool{
	"hello":           true,
	"isMaster":        true,
	"ismaster":        true,
	"ping":            true,
	"endSessions":     true,
	"saslStart":       true,
	"saslContinue":    true,
	"authenticate":    true,
	"buildInfo":       true,
	"buildinfo":       true,
	"getLastError":    true,
	"getlasterror":    true,
	"killAllSessions": true,
}

// Open connects to the database, creates the indexes it needs (idempotent,
// so every start may do it), checks they are in place and returns the
// store. It fails when the server does not answer within ctx, refuses an
// index, or holds an index of a declared name with other options.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.URI == "" {
		return nil, errors.New("mongo: no connection URI")
	}
	if opts.Database == "" {
		return nil, errors.New("mongo: no database name")
	}
	s := &Store{pub: opts.Publisher, cmds: opts.Commands, log: opts.Logger, leaseTTL: defaultLeaseTTL,
		cache: caches{rules: map[string]cached[[]identity.Rule]{}, settings: map[string]cached[related.TenantSettings]{}}}
	if s.pub == nil {
		s.pub = store.Discard
	}
	if s.cmds == nil {
		s.cmds = &store.Commands{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	// pending holds the end funcs of observed commands in flight, by the
	// driver's request id, until their Succeeded or Failed event.
	var pending sync.Map
	finish := func(id int64, err error) {
		if end, ok := pending.LoadAndDelete(id); ok {
			end.(func(error))(err)
		}
	}
	monitor := &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			if handshake[e.CommandName] {
				return
			}
			if !s.cmds.Observed() {
				s.cmds.Add(e.CommandName)
				return
			}
			pending.Store(e.RequestID, s.cmds.Start(ctx, e.CommandName))
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { finish(e.RequestID, nil) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { finish(e.RequestID, e.Failure) },
	}
	client, err := mongodriver.Connect(options.Client().ApplyURI(opts.URI).SetMonitor(monitor).SetAppName("related"))
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	s.client = client
	s.db = client.Database(opts.Database)
	s.interactions = s.db.Collection(collInteractions)
	s.messages = s.db.Collection(collMessages)
	s.contacts = s.db.Collection(collContacts)
	s.queues = s.db.Collection(collQueues)
	s.preferences = s.db.Collection(collPreferences)
	// Check what was created too: FerretDB takes an existing index with
	// the same name and keys as identical whatever its options, so only
	// this check notices a same-named index that is not unique.
	err = s.ensureIndexes(ctx)
	if err == nil {
		err = s.checkIndexes(ctx)
	}
	if err == nil {
		err = s.migrate(ctx)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mongo: open %s: %w", opts.Database, err), s.disconnect())
	}
	// What a crash left unlinked is relinked now; what a live replica is
	// still working on is left to it (recover only takes markers older
	// than a lease).
	if err := s.recover(ctx); err != nil {
		s.log.WarnContext(ctx, "mongo: recovery at start failed; the background worker retries", "err", err)
	}
	return s, nil
}

// Commands returns the counter of the commands the store sends.
func (s *Store) Commands() *store.Commands { return s.cmds }

// Ping reports whether the server answers and every declared index exists:
// a ready check, so a gateway whose database lost an index (or was never
// set up) is taken out of rotation instead of scanning collections.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.checkIndexes(ctx); err != nil {
		return fmt.Errorf("mongo: ping: %w", err)
	}
	return nil
}

// Close disconnects from the server, waiting up to ten seconds for
// operations in flight.
func (s *Store) Close() error {
	if err := s.disconnect(); err != nil {
		return fmt.Errorf("mongo: close: %w", err)
	}
	return nil
}

func (s *Store) disconnect() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

// isDuplicate reports whether err is a duplicate-key error (E11000).
// MongoDB returns it for every unique-index violation; FerretDB for one
// caused by an insert, which includes the insert of an upsert (measured:
// racing upserts on one _id or one openKey all get E11000).
func isDuplicate(err error) bool { return mongodriver.IsDuplicateKeyError(err) }

// maybeDuplicate reports whether err may be a unique-index violation
// caused by an update: E11000, or the InternalError (code 1, "UNIQUE
// constraint failed") FerretDB answers instead (DESIGN.md section 2).
// Callers confirm with a read before acting on it, so another internal
// error is reported rather than mistaken for a conflict.
func maybeDuplicate(err error) bool {
	if isDuplicate(err) {
		return true
	}
	var se mongodriver.ServerError
	return errors.As(err, &se) && se.HasErrorCode(1)
}

// notFound reports whether err says a single-document read or
// findAndModify matched nothing.
func notFound(err error) bool { return errors.Is(err, mongodriver.ErrNoDocuments) }

// now is the time writes are stamped with, at the millisecond precision
// BSON dates keep, so what RecordMessage returns equals what a read gets.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// unavailableCodes are server error codes that mean the deployment cannot
// serve the command for now: out of disk, shutting down, stepping down,
// no primary, network trouble between members.
var unavailableCodes = []int{
	6,     // HostUnreachable
	7,     // HostNotFound
	89,    // NetworkTimeout
	91,    // ShutdownInProgress
	189,   // PrimarySteppedDown
	9001,  // SocketException
	10107, // NotWritablePrimary
	11600, // InterruptedAtShutdown
	11602, // InterruptedDueToReplStateChange
	13435, // NotPrimaryNoSecondaryOk
	13436, // NotPrimaryOrSecondary
	14031, // OutOfDiskSpace
}

// Unavailable implements store.AvailabilityReporter: the deployment is
// unreachable (no server selected, network errors), out of disk space, or
// between primaries.
func (s *Store) Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if mongodriver.IsNetworkError(err) || errors.Is(err, mongodriver.ErrClientDisconnected) {
		return true
	}
	var sel topology.ServerSelectionError
	if errors.As(err, &sel) {
		return true
	}
	var se mongodriver.ServerError
	if errors.As(err, &se) {
		if se.HasErrorLabel("RetryableWriteError") {
			return true
		}
		for _, c := range unavailableCodes {
			if se.HasErrorCode(c) {
				return true
			}
		}
	}
	return false
}
