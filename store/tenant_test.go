package store_test

import (
	"reflect"
	"testing"

	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/storetest"
)

// TestEveryMethodIsTenantChecked: every method of the Store contract names
// the conformance test that proves it keeps tenants apart, and no name is
// left over from a method that is gone.
func TestEveryMethodIsTenantChecked(t *testing.T) {
	typ := reflect.TypeFor[store.Store]()
	seen := map[string]bool{}
	for i := range typ.NumMethod() {
		m := typ.Method(i).Name
		seen[m] = true
		if storetest.TenantChecked[m] == "" {
			t.Errorf("Store.%s has no tenant isolation test: add one and list it in storetest.TenantChecked", m)
		}
	}
	for m := range storetest.TenantChecked {
		if !seen[m] {
			t.Errorf("storetest.TenantChecked lists %s, which Store no longer has", m)
		}
	}
}
