package sqlite_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
	"github.com/relatedhq/related/store/storetest"
)

func TestConformance(t *testing.T) { storetest.Run(t, opener) }

func TestProfiles(t *testing.T) { storetest.RunProfiles(t, opener) }

func TestCanonical(t *testing.T) { storetest.RunCanonical(t, opener) }

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
		env := &storetest.Env{Store: open(t), Commands: cmds, Atomic: true, Events: rec.Events}
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
