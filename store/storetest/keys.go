package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// KeyOpener opens a fresh, empty KeyStore for one test.
type KeyOpener func(t *testing.T) store.KeyStore

// RunKeys runs the conformance suite of store.KeyStore.
func RunKeys(t *testing.T, open KeyOpener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ks store.KeyStore)
	}{
		{"CreateAndFind", testKeyCreateFind},
		{"DuplicateIsConflict", testKeyDuplicate},
		{"ListByTenant", testKeyList},
		{"Revoke", testKeyRevoke},
		{"RevokeIsTenantScoped", testKeyRevokeTenant},
		{"Touch", testKeyTouch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// newKey makes and stores a key.
func newKey(t *testing.T, ks store.KeyStore, tenant, role, name string, at time.Time) (string, *store.Key) {
	t.Helper()
	secret, k, err := store.NewKey(tenant, role, name, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return secret, k
}

func testKeyCreateFind(t *testing.T, ks store.KeyStore) {
	ctx := context.Background()
	secret, k := newKey(t, ks, "t1", related.RoleAgent, "desk 4", base)
	got, err := ks.KeyByHash(ctx, store.HashKey(secret))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.Tenant != "t1" || got.Role != related.RoleAgent || got.Name != "desk 4" ||
		!got.CreatedAt.Equal(base) || got.Revoked() || !got.LastUsedAt.IsZero() || !got.Matches(secret) {
		t.Fatalf("KeyByHash = %+v, want %+v", got, k)
	}
	if got.Matches(secret + "x") {
		t.Fatal("a key matched another secret")
	}
	// A forged key of the right shape names nothing.
	forged, _, _ := store.NewKey("t1", related.RoleAdmin, "", base)
	_, err = ks.KeyByHash(ctx, store.HashKey(forged))
	wantCode(t, err, related.CodeNotFound)
}

func testKeyDuplicate(t *testing.T, ks store.KeyStore) {
	_, k := newKey(t, ks, "t1", related.RoleAdmin, "", base)
	again := *k
	again.ID = "key_other"
	wantCode(t, ks.CreateKey(context.Background(), &again), related.CodeConflict)
	_, other, _ := store.NewKey("t1", related.RoleAdmin, "", base)
	other.ID = k.ID
	wantCode(t, ks.CreateKey(context.Background(), other), related.CodeConflict)
}

func testKeyList(t *testing.T, ks store.KeyStore) {
	ctx := context.Background()
	_, a := newKey(t, ks, "t1", related.RoleAdmin, "a", base)
	_, b := newKey(t, ks, "t1", related.RolePartner, "b", base.Add(time.Second))
	_, c := newKey(t, ks, "t2", related.RoleAgent, "c", base.Add(2*time.Second))
	ids := func(ks []*store.Key) []string {
		var out []string
		for _, k := range ks {
			out = append(out, k.ID)
		}
		return out
	}
	for tenant, want := range map[string][]string{"t1": {a.ID, b.ID}, "t2": {c.ID}, "t3": nil} {
		got, err := ks.ListKeys(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), want) {
			t.Fatalf("ListKeys(%s) = %v, want %v", tenant, ids(got), want)
		}
	}
	all, err := ks.ListKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := ids(all)
	slices.Sort(got)
	want := []string{a.ID, b.ID, c.ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ListKeys(all) = %v, want %v", got, want)
	}
}

func testKeyRevoke(t *testing.T, ks store.KeyStore) {
	ctx := context.Background()
	secret, k := newKey(t, ks, "t1", related.RoleAgent, "", base)
	at := base.Add(time.Hour)
	r, err := ks.RevokeKey(ctx, "t1", k.ID, at)
	if err != nil {
		t.Fatal(err)
	}
	if !r.RevokedAt.Equal(at) {
		t.Fatalf("revokedAt = %v, want %v", r.RevokedAt, at)
	}
	// Revoking again keeps the first time.
	if r, err = ks.RevokeKey(ctx, "t1", k.ID, at.Add(time.Hour)); err != nil || !r.RevokedAt.Equal(at) {
		t.Fatalf("second revoke = %+v, %v", r, err)
	}
	got, err := ks.KeyByHash(ctx, store.HashKey(secret))
	if err != nil || !got.Revoked() {
		t.Fatalf("revoked key reads back as %+v, %v", got, err)
	}
	_, err = ks.RevokeKey(ctx, "t1", "key_missing", at)
	wantCode(t, err, related.CodeNotFound)
}

func testKeyRevokeTenant(t *testing.T, ks store.KeyStore) {
	ctx := context.Background()
	secret, k := newKey(t, ks, "t1", related.RoleAdmin, "", base)
	_, err := ks.RevokeKey(ctx, "t2", k.ID, base)
	wantCode(t, err, related.CodeNotFound)
	if got, err := ks.KeyByHash(ctx, store.HashKey(secret)); err != nil || got.Revoked() {
		t.Fatalf("another tenant revoked the key: %+v, %v", got, err)
	}
	// Touching from another tenant changes nothing either.
	if err := ks.TouchKey(ctx, "t2", k.ID, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := ks.KeyByHash(ctx, store.HashKey(secret)); !got.LastUsedAt.IsZero() {
		t.Fatalf("another tenant touched the key: %+v", got)
	}
}

func testKeyTouch(t *testing.T, ks store.KeyStore) {
	ctx := context.Background()
	secret, k := newKey(t, ks, "t1", related.RoleAgent, "", base)
	at := base.Add(time.Minute)
	if err := ks.TouchKey(ctx, "t1", k.ID, at); err != nil {
		t.Fatal(err)
	}
	got, err := ks.KeyByHash(ctx, store.HashKey(secret))
	if err != nil || !got.LastUsedAt.Equal(at) {
		t.Fatalf("after touch: %+v, %v", got, err)
	}
}
