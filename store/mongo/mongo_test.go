package mongo

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/mongo/mongotest"
	"github.com/relatedhq/related/store/storetest"
)

// server is the database the tests run against: MONGODB_URI when set,
// else one FerretDB started by TestMain for the whole test binary.
var server struct {
	uri string
	// atomic: a real MongoDB applies concurrent updates to one document
	// atomically; FerretDB does not (DESIGN.md section 2).
	atomic bool
	// real: MONGODB_URI names a real MongoDB.
	real bool
}

func TestMain(m *testing.M) {
	flag.Parse() // testing.Verbose needs the flags before m.Run parses them
	os.Exit(run(m))
}

func run(m *testing.M) int {
	goroutines := runtime.NumGoroutine()
	srv, err := mongotest.Start(testLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	server.uri, server.atomic, server.real = srv.URI, srv.Atomic, srv.Real
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		code = 1
	}
	if code == 0 && !srv.Real && !settled(goroutines) {
		fmt.Fprintln(os.Stderr, "goroutines left behind:")
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		code = 1
	}
	return code
}

// settled waits a little for the goroutines of stopped servers and
// disconnected clients to exit, and reports whether no more than n remain.
func settled(n int) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if runtime.NumGoroutine() <= n {
			return true
		}
	}
	return false
}

// testLogger shows the adapter's and FerretDB's logs only under -v.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// openStore opens a Store on db and closes it, and drops db, at cleanup.
// Reopening (env.Reopen) swaps the store that cleanup closes.
type testDB struct {
	name string
	rec  *storetest.Recorder
	cmds *store.Commands
	cur  *Store
}

func newTestDB(t *testing.T) *testDB {
	t.Helper()
	d := &testDB{name: mongotest.FreshDB(), rec: &storetest.Recorder{}, cmds: &store.Commands{}}
	d.cur = d.open(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.cur.db.Drop(ctx); err != nil {
			t.Errorf("drop %s: %v", d.name, err)
		}
		if err := d.cur.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

func (d *testDB) open(t *testing.T) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{URI: server.uri, Database: d.name, Publisher: d.rec, Commands: d.cmds, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (d *testDB) reopen(t *testing.T) *Store {
	t.Helper()
	if err := d.cur.Close(); err != nil {
		t.Fatal(err)
	}
	d.cur = d.open(t)
	return d.cur
}

func opener(t *testing.T) *storetest.Env {
	d := newTestDB(t)
	return &storetest.Env{
		Store:    d.cur,
		Commands: d.cmds,
		Reopen:   func(t *testing.T) store.Store { return d.reopen(t) },
		Atomic:   server.atomic,
		Events:   d.rec.Events,
		// FerretDB scans every collection for every query.
		Slow:   !server.real,
		Search: d.search,
	}
}

// search looks for needle in every document of every collection of the
// test's database: what the erasure tests hold to having nothing left.
// (The server's own files may keep freed bytes until it reuses them:
// that is the storage engine's, not the adapter's, to scrub.)
func (d *testDB) search(t *testing.T, needle string) string {
	t.Helper()
	ctx := context.Background()
	names, err := d.cur.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		cur, err := d.cur.db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			if bytes.Contains(cur.Current, []byte(needle)) {
				id := cur.Current.Lookup("_id").String()
				cur.Close(ctx)
				return name + " document " + id
			}
		}
		if err := cur.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return ""
}

func TestErasure(t *testing.T) { storetest.RunErasure(t, opener) }

func TestConformance(t *testing.T) {
	storetest.Run(t, opener)
}
