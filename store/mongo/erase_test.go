package mongo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// TestErasureFinishedAfterCrash: an erasure that dies half way (the
// messages of its contacts deleted, nothing else) is finished by the next
// start's recovery, so nobody stays half-erased; the tombstone then counts
// the contacts and forgets their ids.
func TestErasureFinishedAfterCrash(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	a := mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "a", "kim@x.io", "kim's secret message", base))
	b := mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "b", "kim@x.io", "another", base.Add(time.Minute)))
	crash := errors.New("killed")
	d.cur.eraseCrash = func() error { return crash }
	if _, err := d.cur.EraseContact(ctx, "t1", a.Contact.ID, "request 5", related.System); !errors.Is(err, crash) {
		t.Fatalf("the crashed erasure returned %v", err)
	}
	if cs, _ := d.cur.Contacts(ctx, "t1", []string{a.Contact.ID}); len(cs) != 1 {
		t.Fatal("setup: the crash came before the contact's deletion")
	}
	s := d.reopen(t)
	s.leaseTTL = time.Millisecond // the crashed erasure's leases have expired
	time.Sleep(5 * time.Millisecond)
	if _, err := s.PendingEvaluations(ctx); err != nil { // the background worker's round
		t.Fatal(err)
	}
	if cs, _ := s.Contacts(ctx, "t1", []string{a.Contact.ID}); len(cs) != 0 {
		t.Fatal("the erasure was not finished after the crash")
	}
	if its, _ := s.Interactions(ctx, "t1", []string{a.Interaction.ID, b.Interaction.ID}); len(its) != 0 {
		t.Fatalf("%d interactions of the erased contact remain", len(its))
	}
	page, err := s.Erasures(ctx, "t1", store.Page{First: 10})
	if err != nil || len(page.Items) != 1 || page.Items[0].Contacts != 1 || page.Items[0].Reason != "request 5" {
		t.Fatalf("erasures = %+v, %v", page, err)
	}
	var raw erasureDoc
	if err := s.coll(collErasures).FindOne(ctx, byID("t1", page.Items[0].ID)).Decode(&raw); err != nil || raw.State != "" || len(raw.Pending) != 0 {
		t.Fatalf("the tombstone = %+v, %v; want it finished, naming no contact", raw, err)
	}
}
