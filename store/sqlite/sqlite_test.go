package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
	"github.com/relatedhq/related/store/storetest"
)

func TestConformance(t *testing.T) { storetest.Run(t, opener) }

func TestProfiles(t *testing.T) { storetest.RunProfiles(t, opener) }

func TestCanonical(t *testing.T) { storetest.RunCanonical(t, opener) }

func TestErasure(t *testing.T) { storetest.RunErasure(t, opener) }

func opener(t *testing.T) *storetest.Env {
	{
		dir := t.TempDir()
		rec := new(storetest.Recorder)
		cmds := new(store.Commands)
		open := func(t *testing.T) store.Store {
			s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir, Publisher: rec, Commands: cmds, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		env := &storetest.Env{Store: open(t), Commands: cmds, Atomic: true, Events: rec.Events, Search: searchFiles(dir)}
		env.Reopen = func(t *testing.T) store.Store {
			if err := env.Store.Close(); err != nil {
				t.Fatal(err)
			}
			env.Store = open(t)
			return env.Store
		}
		t.Cleanup(func() { env.Store.Close() })
		return env
	}
}

// searchFiles looks for needle in the bytes of the database's files (the
// database, its WAL and shared memory): what a forensic read of the disk
// would see.
func searchFiles(dir string) func(t *testing.T, needle string) string {
	return func(t *testing.T, needle string) string {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if i := bytes.Index(b, []byte(needle)); i >= 0 {
				return fmt.Sprintf("%s at byte %d", e.Name(), i)
			}
		}
		return ""
	}
}
