package sqlite_test

import (
	"context"
	"testing"

	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
	"github.com/relatedhq/related/store/storetest"
)

func TestKeys(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) store.KeyStore {
		s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
