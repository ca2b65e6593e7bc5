package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/mongo"
	"github.com/relatedhq/related/store/mongo/mongotest"
)

// mongoURI is the test binary's MongoDB wire-protocol server, for tests
// that open a store of their own (with a publisher and an events feed).
var mongoURI string

// TestMain starts one MongoDB wire-protocol server for the test binary (a
// FerretDB unless MONGODB_URI names a real MongoDB), so every end-to-end
// test also runs on the MongoDB adapter.
func TestMain(m *testing.M) {
	srv, err := mongotest.Start(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mongoURI = srv.URI
	backends = append(backends, backend{"mongo", func(t *testing.T) (store.Store, *store.Commands) {
		cmds := new(store.Commands)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := mongo.Open(ctx, mongo.Options{URI: srv.URI, Database: mongotest.FreshDB(), Commands: cmds})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, cmds
	}})
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}
