package seed_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/seed"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

func open(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSeedIsDeterministicAndRealistic: the same seed writes the same data,
// and the data has the shape the generator promises.
func TestSeedIsDeterministicAndRealistic(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var stats []seed.Stats
	var stores []*sqlite.Store
	for range 2 {
		s := open(t)
		st, err := seed.Run(ctx, s, seed.Options{Tenant: "demo", Customers: 200, Seed: 7, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		stats, stores = append(stats, st), append(stores, s)
	}
	a, b := stats[0], stats[1]
	if a.Customers != 200 || a.Interactions != b.Interactions || a.Messages != b.Messages || a.Contacts != b.Contacts {
		t.Fatalf("two runs of one seed differ: %+v vs %+v", a, b)
	}
	if a.Interactions < 200 || a.Interactions > 200*40 {
		t.Fatalf("%d interactions for 200 customers, want 1-40 each", a.Interactions)
	}
	// States: some open, mostly closed, a few ignored or spam.
	count := func(st related.Status) int {
		n, err := stores[0].CountInteractions(ctx, "demo", store.InteractionFilter{Status: st})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	open, closed := count(related.StatusOpen), count(related.StatusClosed)
	if open == 0 || closed < open || open+closed != a.Interactions {
		t.Fatalf("open %d, closed %d of %d", open, closed, a.Interactions)
	}
	// Customers on several channels are linked: some profile spans more than one.
	page, err := stores[0].ListInteractions(ctx, "demo", store.InteractionFilter{}, store.Page{First: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range page.Items {
		if it.ProfileID != "" {
			ids = append(ids, it.ProfileID)
		}
	}
	ps, err := stores[0].Profiles(ctx, "demo", ids)
	if err != nil {
		t.Fatal(err)
	}
	multi := false
	for _, p := range ps {
		multi = multi || len(p.Channels) > 1
	}
	if !multi {
		t.Fatal("no profile spans two channels: the sample links nothing across channels")
	}
	// The reported counts are the stored ones: a household's shared line
	// is one contact, counted once.
	facts, err := stores[0].TenantFacts(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if len(facts.Contacts) != a.Contacts {
		t.Fatalf("seed reported %d contacts, the store holds %d", a.Contacts, len(facts.Contacts))
	}
	// Interactions began when their first message was sent, not when they
	// were loaded.
	all, err := stores[0].ListInteractions(ctx, "demo", store.InteractionFilter{}, store.Page{First: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range all.Items {
		ms, err := stores[0].ListMessages(ctx, "demo", it.ID, store.Page{First: 1}, true)
		if err != nil || len(ms.Items) == 0 {
			t.Fatalf("messages of %s: %v", it.ID, err)
		}
		if it.CreatedAt.After(ms.Items[0].SentAt) {
			t.Fatalf("interaction %s created %s, after its first message (%s)", it.ID, it.CreatedAt, ms.Items[0].SentAt)
		}
	}
}
