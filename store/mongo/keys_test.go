package mongo

import (
	"testing"

	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/storetest"
)

func TestKeys(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) store.KeyStore { return newTestDB(t).cur })
}
