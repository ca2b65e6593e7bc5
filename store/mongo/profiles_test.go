package mongo

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/storetest"
)

func TestProfiles(t *testing.T) { storetest.RunProfiles(t, opener) }

// cost runs fn and returns the commands it sent, by name.
func (d *testDB) cost(t *testing.T, fn func()) map[string]int64 {
	t.Helper()
	before := d.cmds.Snapshot()
	fn()
	out := map[string]int64{}
	for k, v := range d.cmds.Snapshot() {
		if n := v - before[k]; n != 0 {
			out[k] = n
		}
	}
	return out
}

func total(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// The round trips of RecordMessage with linking. The common case, a
// contact whose identifiers are all linked already, adds nothing to the
// message's own commands but, on a new thread, one read of the contact
// (the interaction must follow a contact that moved meanwhile).
func TestLinkCommandBudget(t *testing.T) {
	d := newTestDB(t)
	// A first write of the tenant reads its rules and looks for merges a
	// crash left unfinished; the budgets below are those of later writes.
	mustRecord(t, d.cur, "t1", message(t, related.ChannelSMS, "warm", "+15550000", "warm up", base))
	withEmail := message(t, related.ChannelWebChat, "chat", "visitor-1", "hi", base.Add(3*time.Minute))
	withEmail.Contact.Attributes = []related.Attribute{{Key: "email", Value: "a@x.io"}}
	for _, c := range []struct {
		name string
		in   related.RecordMessage
		want map[string]int64
	}{
		// the message's four commands; the owners of the address (none);
		// the new profile, its claim and the link; the contact, its
		// interactions, the profile's version
		{"first message makes a profile", message(t, related.ChannelEmail, "th", "a@x.io", "1", base),
			map[string]int64{"find": 1, "findAndModify": 4, "insert": 5, "update": 1}},
		// the message's five commands, nothing else
		{"same thread, linked contact", message(t, related.ChannelEmail, "th", "a@x.io", "2", base.Add(time.Minute)),
			map[string]int64{"findAndModify": 3, "insert": 2}},
		// the message's four commands and the contact read again
		{"new thread, linked contact", message(t, related.ChannelEmail, "th2", "a@x.io", "3", base.Add(2*time.Minute)),
			map[string]int64{"find": 1, "findAndModify": 2, "insert": 2}},
		// a new contact joins: owners, profiles, link, contact,
		// interactions, the profile's members and summary
		{"second channel joins", withEmail,
			map[string]int64{"find": 3, "findAndModify": 4, "insert": 3, "update": 1}},
	} {
		got := d.cost(t, func() { mustRecord(t, d.cur, "t1", c.in) })
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s cost %v, want %v", c.name, got, c.want)
		}
		if total(got) > 8 && c.want["insert"] == 2 {
			t.Errorf("%s: the common case costs %d commands, want at most 8", c.name, total(got))
		}
	}
	// Setting attributes that change nothing links nothing.
	cs, _ := d.cur.Contacts(context.Background(), "t1", []string{related.DerivedID("t1", "contact", string(related.ChannelWebChat), "visitor-1")})
	got := d.cost(t, func() {
		if _, err := d.cur.SetContactAttributes(context.Background(), "t1", cs[0].ID, []related.Attribute{{Key: "email", Value: "A@x.io"}}); err != nil {
			t.Fatal(err)
		}
	})
	// read, the attribute's new spelling, nothing to link, the event
	if fmt.Sprint(got) != fmt.Sprint(map[string]int64{"find": 1, "findAndModify": 1, "insert": 1}) {
		t.Errorf("re-spelt attribute cost %v", got)
	}
}

// twoProfiles records a@x.io and b@x.io: two profiles, a's the older,
// and returns the two results.
func twoProfiles(t *testing.T, s *Store) (a, b *store.RecordResult) {
	t.Helper()
	a = mustRecord(t, s, "t1", message(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	b = mustRecord(t, s, "t1", message(t, related.ChannelEmail, "b", "b@x.io", "b", base.Add(time.Minute)))
	if a.Interaction.ProfileID == "" || b.Interaction.ProfileID == "" || a.Interaction.ProfileID == b.Interaction.ProfileID {
		t.Fatalf("profiles %q %q", a.Interaction.ProfileID, b.Interaction.ProfileID)
	}
	return a, b
}

// checkMerged holds the state after b's profile merged into a's.
func checkMerged(t *testing.T, s *Store, a, b *store.RecordResult) {
	t.Helper()
	ctx := context.Background()
	pa, pb := a.Interaction.ProfileID, b.Interaction.ProfileID
	cs, err := s.Contacts(ctx, "t1", []string{a.Contact.ID, b.Contact.ID})
	if err != nil || len(cs) != 2 || cs[0].ProfileID != pa || cs[1].ProfileID != pa {
		t.Fatalf("contacts after the merge: %+v, %v", cs, err)
	}
	its, _ := s.Interactions(ctx, "t1", []string{a.Interaction.ID, b.Interaction.ID})
	for _, it := range its {
		if it.ProfileID != pa {
			t.Fatalf("interaction %s is in %q, want %q", it.ID, it.ProfileID, pa)
		}
	}
	if p, _ := s.ProfileByIdentifier(ctx, "t1", related.Identifier{Key: "email", Value: "b@x.io"}); p == nil || p.ID != pa {
		t.Fatalf("b's email is held by %+v", p)
	}
	var id identifierDoc
	if err := s.coll(collIdentifiers).FindOne(ctx, byID("t1", identifierID("t1", related.Identifier{Key: "email", Value: "b@x.io"}))).Decode(&id); err != nil || id.ProfileID != pa {
		t.Fatalf("b's identifier document = %+v, %v", id, err)
	}
	ps, _ := s.Profiles(ctx, "t1", []string{pa, pb})
	if len(ps) != 2 || ps[0].MergedInto != "" || ps[1].MergedInto != pa || ps[0].ContactCount != 2 || len(ps[0].Identifiers) != 2 {
		t.Fatalf("profiles after the merge: %+v %+v", ps[0], ps[1])
	}
	links, _ := s.ProfileLinks(ctx, "t1", pa)
	if len(links) != 2 {
		t.Fatalf("links after the merge: %d", len(links))
	}
	var m mergeDoc
	if err := s.coll(collMerges).FindOne(ctx, byID("t1", mergeID("t1", pb))).Decode(&m); err != nil || !m.Done || m.Winner != pa {
		t.Fatalf("merges document = %+v, %v", m, err)
	}
}

// A merge a crash left half-done is finished on the next start: by the
// background worker's first call (PendingEvaluations), or by the first
// write of the tenant.
func TestMergeFinishedAfterCrash(t *testing.T) {
	for _, c := range []struct {
		name string
		// crash leaves the merge of pb into pa as a crash at some step
		// would.
		crash func(t *testing.T, s *Store, pa, pb string)
		// start is what happens first after the restart.
		start func(t *testing.T, s *Store)
	}{
		{"recorded only; worker", func(t *testing.T, s *Store, pa, pb string) {
			insertMerge(t, s, pa, pb)
		}, func(t *testing.T, s *Store) {
			if _, err := s.PendingEvaluations(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
		{"pointer set, contacts moved; first write", func(t *testing.T, s *Store, pa, pb string) {
			insertMerge(t, s, pa, pb)
			ctx := context.Background()
			if _, err := s.coll(collProfiles).UpdateOne(ctx, byID("t1", pb), bson.D{{Key: "$set", Value: bson.D{{Key: "mergedInto", Value: pa}}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.contacts.UpdateMany(ctx, bson.D{{Key: "tenant", Value: "t1"}, {Key: "profileId", Value: pb}}, bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: pa}}}}); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, s *Store) {
			mustRecord(t, s, "t1", message(t, related.ChannelSMS, "other", "+15550001", "after the restart", base.Add(time.Hour)))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newTestDB(t)
			a, b := twoProfiles(t, d.cur)
			c.crash(t, d.cur, a.Interaction.ProfileID, b.Interaction.ProfileID)
			s := d.reopen(t)
			before := len(d.rec.Events())
			c.start(t, s)
			checkMerged(t, s, a, b)
			moved := false
			for _, e := range d.rec.Events()[before:] {
				if e.Kind == store.ProfileChanged && e.InteractionID == b.Interaction.ID && e.FromProfileID == b.Interaction.ProfileID && e.ProfileID == a.Interaction.ProfileID {
					moved = true
				}
			}
			if !moved {
				t.Fatalf("no ProfileChanged event for b's interaction: %+v", d.rec.Events()[before:])
			}
		})
	}
}

func insertMerge(t *testing.T, s *Store, winner, loser string) {
	t.Helper()
	doc := &mergeDoc{ID: mergeID("t1", loser), Tenant: "t1", Loser: loser, Winner: winner, By: "rule", At: base}
	if _, err := s.coll(collMerges).InsertOne(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
}

// A merge found half-done by a linking write is finished by that write
// before it plans: here the contact of the merged-away profile brings a
// new identifier.
func TestLinkingHelpsHalfDoneMerge(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	if _, err := d.cur.SaveProfileRule(ctx, "t1", identity.Rule{Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	a, b := twoProfiles(t, d.cur)
	pa, pb := a.Interaction.ProfileID, b.Interaction.ProfileID
	insertMerge(t, d.cur, pa, pb)
	if _, err := d.cur.coll(collProfiles).UpdateOne(ctx, byID("t1", pb), bson.D{{Key: "$set", Value: bson.D{{Key: "mergedInto", Value: pa}}}}); err != nil {
		t.Fatal(err)
	}
	c, err := d.cur.SetContactAttributes(ctx, "t1", b.Contact.ID, []related.Attribute{{Key: "orderNumber", Value: "77"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.ProfileID != pa {
		t.Fatalf("contact in %q, want %q", c.ProfileID, pa)
	}
	if p, _ := d.cur.ProfileByIdentifier(ctx, "t1", related.Identifier{Key: "orderNumber", Value: "77"}); p == nil || p.ID != pa || len(p.Identifiers) != 3 {
		t.Fatalf("profile by the new identifier = %+v", p)
	}
	its, _ := d.cur.Interactions(ctx, "t1", []string{b.Interaction.ID})
	if its[0].ProfileID != pa {
		t.Fatalf("b's interaction in %q", its[0].ProfileID)
	}
}

// Concurrent first messages of many contacts sharing an identifier end in
// one profile. Every writer makes a profile and claims the identifier; the
// claim is a unique-index insert, single-winner on FerretDB too, and the
// losers drop their empty profile and join the winner's, each moving only
// its own contact: so this runs on both backends. With a second, unique
// identifier each, every writer's profile holds something, and they merge
// into one: merges write the same profile documents concurrently (a
// loser's mergedInto beside its summary refresh), which FerretDB does not
// apply atomically (DESIGN.md section 2), so that half runs on a real
// MongoDB only, as does the check of the profile summary.
func TestConcurrentLinking(t *testing.T) {
	for _, unique := range []bool{false, true} {
		t.Run(fmt.Sprint("unique identifier each: ", unique), func(t *testing.T) {
			if unique && !server.atomic {
				t.Skip("concurrent merges write one profile document concurrently, which FerretDB does not apply atomically (DESIGN.md section 2); runs on a real MongoDB via MONGODB_URI")
			}
			d := newTestDB(t)
			ctx := context.Background()
			if _, err := d.cur.SaveProfileRule(ctx, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true}); err != nil {
				t.Fatal(err)
			}
			const writers = 8
			results := make([]*store.RecordResult, writers)
			errs := make([]error, writers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					in := message(t, related.ChannelWebChat, fmt.Sprint("chat-", w), fmt.Sprint("visitor-", w), "hi", base.Add(time.Duration(w)*time.Second))
					in.Contact.Attributes = []related.Attribute{{Key: "customerId", Value: "C-1"}}
					if unique {
						in.Contact.Attributes = append(in.Contact.Attributes, related.Attribute{Key: "email", Value: fmt.Sprintf("w%d@x.io", w)})
					}
					<-start
					results[w], errs[w] = d.cur.RecordMessage(ctx, "t1", in)
				})
			}
			close(start)
			wg.Wait()
			var ids []string
			for w := range writers {
				if errs[w] != nil {
					t.Fatalf("writer %d: %v", w, errs[w])
				}
				ids = append(ids, results[w].Contact.ID)
			}
			p, err := d.cur.ProfileByIdentifier(ctx, "t1", related.Identifier{Key: "customerId", Value: "C-1"})
			if err != nil || p == nil {
				t.Fatalf("profile of the shared identifier = %v, %v", p, err)
			}
			cs, _ := d.cur.Contacts(ctx, "t1", ids)
			for _, c := range cs {
				if c.ProfileID != p.ID {
					t.Fatalf("contact %s in %q, want %q", c.Address, c.ProfileID, p.ID)
				}
			}
			members, _ := d.cur.ProfileContacts(ctx, "t1", []string{p.ID})
			if len(members) != writers {
				t.Fatalf("the profile lists %d contacts, want %d", len(members), writers)
			}
			page, _ := d.cur.ListRelated(ctx, "t1", store.RelatedQuery{ProfileID: p.ID}, store.Page{First: 20})
			if len(page.Items) != writers {
				t.Fatalf("the profile's panel has %d interactions, want %d", len(page.Items), writers)
			}
			if unique {
				for w := range writers {
					q, _ := d.cur.ProfileByIdentifier(ctx, "t1", related.Identifier{Key: "email", Value: fmt.Sprintf("w%d@x.io", w)})
					if q == nil || q.ID != p.ID {
						t.Fatalf("w%d's email is held by %+v", w, q)
					}
				}
			}
			if server.atomic {
				if p.ContactCount != writers || len(p.Channels) != 1 {
					t.Fatalf("profile summary = %+v", p)
				}
			}
		})
	}
}

// A RecordMessage that stopped during its linking (a crash) is finished
// by its retry with the same clientMutationId: before its claim, or after
// the contact moved but before its interactions followed.
func TestRetryFinishesLinking(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		crash func(t *testing.T, s *Store, r *store.RecordResult)
	}{
		{"before the claim", func(t *testing.T, s *Store, r *store.RecordResult) {
			for coll, filter := range map[string]bson.D{
				collProfiles:     {{Key: "tenant", Value: "t1"}},
				collIdentifiers:  {{Key: "tenant", Value: "t1"}},
				collProfileLinks: {{Key: "tenant", Value: "t1"}},
			} {
				if _, err := s.coll(coll).DeleteMany(ctx, filter); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.contacts.UpdateOne(ctx, byID("t1", r.Contact.ID), bson.D{{Key: "$unset", Value: bson.D{{Key: "profileId", Value: ""}, {Key: "identifiers", Value: ""}}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.interactions.UpdateOne(ctx, byID("t1", r.Interaction.ID), bson.D{{Key: "$unset", Value: bson.D{{Key: "profileId", Value: ""}}}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"before the interactions followed", func(t *testing.T, s *Store, r *store.RecordResult) {
			if _, err := s.interactions.UpdateOne(ctx, byID("t1", r.Interaction.ID), bson.D{{Key: "$unset", Value: bson.D{{Key: "profileId", Value: ""}}}}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newTestDB(t)
			in := message(t, related.ChannelEmail, "th", "r@x.io", "once", base)
			in.ClientMutationID = "cm-1"
			first := mustRecord(t, d.cur, "t1", in)
			c.crash(t, d.cur, first)
			again := mustRecord(t, d.reopen(t), "t1", in)
			if !again.Duplicate || again.Contact.ProfileID == "" || again.Interaction.ProfileID != again.Contact.ProfileID {
				t.Fatalf("retry = duplicate %v, contact in %q, interaction in %q", again.Duplicate, again.Contact.ProfileID, again.Interaction.ProfileID)
			}
			its, _ := d.cur.Interactions(ctx, "t1", []string{first.Interaction.ID})
			if its[0].ProfileID != again.Contact.ProfileID {
				t.Fatalf("stored interaction in %q, want %q", its[0].ProfileID, again.Contact.ProfileID)
			}
			if p, _ := d.cur.ProfileByIdentifier(ctx, "t1", related.Identifier{Key: "email", Value: "r@x.io"}); p == nil || p.ID != again.Contact.ProfileID || p.ContactCount != 1 {
				t.Fatalf("profile of the address = %+v", p)
			}
		})
	}
}

// MergeProfiles keeps the older profile (merge pointers only point at an
// older profile, so they never cycle), with the name of the profile the
// admin merged into.
func TestMergeProfilesKeepsOlder(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	a, b := twoProfiles(t, d.cur)
	pa, pb := a.Interaction.ProfileID, b.Interaction.ProfileID
	if _, err := d.cur.RenameProfile(ctx, "t1", pb, "Bea"); err != nil {
		t.Fatal(err)
	}
	p, err := d.cur.MergeProfiles(ctx, "t1", pb, pa, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != pa || p.Name != "Bea" || p.ContactCount != 2 || p.MergedInto != "" {
		t.Fatalf("merged = %+v, want the older %s named Bea", p, pa)
	}
	checkMerged(t, d.cur, a, b)
	// Merging again, either way round, changes nothing.
	for _, ids := range [][2]string{{pa, pb}, {pb, pa}} {
		again, err := d.cur.MergeProfiles(ctx, "t1", ids[0], ids[1], "admin")
		if err != nil || again.ID != pa {
			t.Fatalf("merge %v again = %+v, %v", ids, again, err)
		}
	}
}
