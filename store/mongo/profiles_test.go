package mongo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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

func TestCanonical(t *testing.T) { storetest.RunCanonical(t, opener) }

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

var (
	admin       = related.Actor{Name: "Ada", Role: related.RoleAdmin}
	integration = related.Actor{Name: "crm-sync", Role: related.RoleIntegration}
)

// attestedEmail is a message from a web chat whose login an integration
// verified: the email attribute is attested.
func attestedEmail(t *testing.T, thread, visitor, email string, at time.Time) related.RecordMessage {
	in := message(t, related.ChannelWebChat, thread, visitor, "hi", at)
	in.Contact.Attributes = []related.Attribute{{Key: "email", Value: email, Attested: true, By: integration.Name, Role: integration.Role}}
	in.By = integration
	return in
}

func profileOfContact(t *testing.T, s *Store, id string) string {
	t.Helper()
	cs, err := s.Contacts(context.Background(), "t1", []string{id})
	if err != nil || len(cs) != 1 {
		t.Fatalf("contact %s: %v, %v", id, cs, err)
	}
	return cs[0].ProfileID
}

func rawContact(t *testing.T, s *Store, id string) contactDoc {
	t.Helper()
	var c contactDoc
	if err := s.contacts.FindOne(context.Background(), byID("t1", id)).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// The round trips of linking (link.go). A returning customer whose values
// did not change costs nothing for linking (TestRecordCommandBudget); a
// contact joining a profile pays for its values, their count, two gathers
// of the cluster (before and after leasing it) and the plan's writes.
func TestLinkCommandBudget(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	// Eleven holders of one email would make it a hub under the default
	// threshold of 10.
	rules, err := d.cur.ProfileRules(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	rules[0].MaxContactsPerValue = 100
	if _, err := d.cur.SaveProfileRule(ctx, "t1", rules[0]); err != nil {
		t.Fatal(err)
	}
	mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "a", "a@x.io", "first", base))
	for i := range 9 {
		mustRecord(t, d.cur, "t1", attestedEmail(t, fmt.Sprint("c", i), fmt.Sprint("v", i), "a@x.io", base))
	}
	// An eleventh contact joins the profile of ten: rules and settings
	// read under the lease (2 finds), the contact and its stored values
	// (2), the value's count (find, aggregate, compare-and-set), the
	// lease, a gather of the cluster (9 finds: the joiner's own facts come
	// from what it just synced), the leases of the other ten, a gather
	// again (9), the profile written (find, update), the contacts and
	// interactions moved (find, two updates), the history, the claims
	// digest and the release; besides the message's own four.
	// (A joiner whose id sorts first becomes the profile's anchor: the
	// profile's id changes, which deletes the old document, one command
	// more. This one does not.)
	anchor := profileOfContact(t, d.cur, related.ContactID("t1", related.ChannelEmail, "a@x.io"))
	visitor := ""
	for i := 10; visitor == ""; i++ {
		if v := fmt.Sprint("v", i); related.ProfileIDFor(related.ContactID("t1", related.ChannelWebChat, v)) > anchor {
			visitor = v
		}
	}
	in := attestedEmail(t, "c10", visitor, "a@x.io", base)
	got := d.cost(t, func() { mustRecord(t, d.cur, "t1", in) })
	want := map[string]int64{"aggregate": 1, "delete": 1, "find": 25, "findAndModify": 2, "insert": 5, "update": 6}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("joining a profile of ten cost %v (%d), want %v", got, total(got), want)
	}
	p := profileOfContact(t, d.cur, related.ContactID("t1", related.ChannelWebChat, visitor))
	if ps, _ := d.cur.Profiles(ctx, "t1", []string{p}); len(ps) != 1 || ps[0].ContactCount != 11 {
		t.Fatalf("profile after the eleventh contact = %+v", ps)
	}
	// The same customer again: the message's commands only.
	in.Body = "again"
	got = d.cost(t, func() { mustRecord(t, d.cur, "t1", in) })
	if want := map[string]int64{"findAndModify": 3, "insert": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the returning customer cost %v, want %v", got, want)
	}
	// Setting attributes that change no claim links nothing: the read,
	// the write, the event.
	id := related.ContactID("t1", related.ChannelWebChat, visitor)
	got = d.cost(t, func() {
		if _, err := d.cur.SetContactAttributes(ctx, "t1", id, []related.Attribute{{Key: "note", Value: "VIP"}}, integration); err != nil {
			t.Fatal(err)
		}
	})
	if want := map[string]int64{"find": 1, "findAndModify": 1, "insert": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("an attribute no rule reads cost %v, want %v", got, want)
	}
}

// A crash between writing a contact's facts and recomputing its cluster
// leaves the contact marked dirty; the next start (for a marker older than
// a lease) or the background worker (once it is) relinks it and removes
// the marker.
func TestCrashBeforeRecomputeRepaired(t *testing.T) {
	for _, c := range []struct {
		name string
		age  time.Duration
	}{{"old marker, repaired at start", time.Hour}, {"fresh marker, repaired by the worker", 0}} {
		t.Run(c.name, func(t *testing.T) {
			d := newTestDB(t)
			ctx := context.Background()
			a := mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "a", "ann@x.io", "a", base))
			v := mustRecord(t, d.cur, "t1", message(t, related.ChannelWebChat, "v", "visitor", "v", base))
			// The write that gives the visitor Ann's attested email stops
			// after its contact write: the attribute and the marker are
			// stored, nothing else.
			marker := markerAt(time.Now().Add(-c.age)) + "crashed"
			attrs := attributeDocs([]related.Attribute{{Key: "email", Value: "ann@x.io", Attested: true, By: integration.Name, Role: integration.Role, At: base}})
			if _, err := d.cur.contacts.UpdateOne(ctx, byID("t1", v.Contact.ID), bson.D{
				{Key: "$set", Value: bson.D{{Key: "attributes", Value: attrs}}},
				{Key: "$push", Value: bson.D{{Key: "dirty", Value: marker}}},
			}); err != nil {
				t.Fatal(err)
			}
			s := d.reopen(t)
			if c.age == 0 {
				// A live writer could still be at it: the start leaves it.
				if got := profileOfContact(t, s, v.Contact.ID); got != "" {
					t.Fatalf("a fresh marker was taken over at start: the visitor is in %q", got)
				}
				s.leaseTTL = time.Millisecond
				time.Sleep(5 * time.Millisecond)
				if _, err := s.PendingEvaluations(ctx); err != nil {
					t.Fatal(err)
				}
			}
			pa := profileOfContact(t, s, a.Contact.ID)
			if got := profileOfContact(t, s, v.Contact.ID); got != pa || pa == "" {
				t.Fatalf("after recovery the visitor is in %q, Ann in %q", got, pa)
			}
			raw := rawContact(t, s, v.Contact.ID)
			if len(raw.Dirty) != 0 || raw.ClaimsSig == "" {
				t.Fatalf("after recovery the contact is %+v, want no marker and its claims digest", raw)
			}
			if p, _ := s.ProfileByIdentifier(ctx, "t1", related.Identifier{Key: "email", Value: "ann@x.io"}); p == nil || p.ContactCount != 2 {
				t.Fatalf("the profile = %+v", p)
			}
		})
	}
}

// A change of a value's quarantine a crash interrupted (the count or the
// admin's state stored and the value marked, its holders not recomputed)
// is finished at the next start.
func TestFlipRepairedAfterCrash(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	a := mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "a", "desk@x.io", "a", base))
	b := mustRecord(t, d.cur, "t1", attestedEmail(t, "b", "v", "desk@x.io", base))
	if pa := profileOfContact(t, d.cur, a.Contact.ID); pa == "" || pa != profileOfContact(t, d.cur, b.Contact.ID) {
		t.Fatal("setup: the two holders are not linked")
	}
	id := related.Identifier{Key: "email", Value: "desk@x.io"}
	if _, err := d.cur.coll(collValueStats).UpdateOne(ctx, byID("t1", statID("t1", id)), bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: string(identity.QuarantineBlocked)}, {Key: "quarantined", Value: true}, {Key: "listed", Value: true},
		{Key: "flip", Value: markerAt(time.Now().Add(-time.Hour)) + "crashed"},
	}}}); err != nil {
		t.Fatal(err)
	}
	s := d.reopen(t)
	if pa, pb := profileOfContact(t, s, a.Contact.ID), profileOfContact(t, s, b.Contact.ID); pa != "" || pb != "" {
		t.Fatalf("a blocked value still links after recovery: %q %q", pa, pb)
	}
	var st statDoc
	if err := s.coll(collValueStats).FindOne(ctx, byID("t1", statID("t1", id))).Decode(&st); err != nil || st.Flip != "" {
		t.Fatalf("value stats after recovery = %+v, %v", st, err)
	}
}

// A lease whose holder's time ran out (a crashed writer) is taken over; a
// live one is waited for, and a write that waits longer than twice the
// lease time fails, leaving its contact marked for the recovery.
func TestExpiredLeaseTakenOver(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "a", "ann@x.io", "a", base))
	hold := func(visitor string, expires time.Time) string {
		id := related.ContactID("t1", related.ChannelWebChat, visitor)
		if _, err := d.cur.coll(collLeases).InsertOne(ctx, &leaseDoc{ID: leaseID("t1", id), Tenant: "t1", ContactID: id, Token: "another writer", Expires: expires}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	leases := func() int64 {
		n, err := d.cur.coll(collLeases).CountDocuments(ctx, bson.D{{Key: "tenant", Value: "t1"}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Expired: taken over at once.
	hold("v1", time.Now().Add(-time.Minute))
	r := mustRecord(t, d.cur, "t1", attestedEmail(t, "c1", "v1", "ann@x.io", base))
	if r.Contact.ProfileID == "" || leases() != 0 {
		t.Fatalf("past an expired lease: contact in %q, %d leases left", r.Contact.ProfileID, leases())
	}
	// Live, expiring soon: waited for.
	d.cur.leaseTTL = 500 * time.Millisecond
	hold("v2", time.Now().Add(50*time.Millisecond))
	r = mustRecord(t, d.cur, "t1", attestedEmail(t, "c2", "v2", "ann@x.io", base))
	if r.Contact.ProfileID == "" || leases() != 0 {
		t.Fatalf("past a live lease: contact in %q, %d leases left", r.Contact.ProfileID, leases())
	}
	// Held for good (a holder that renews and never finishes): the write
	// gives up after twice the lease time, and leaves its marker.
	v3 := hold("v3", time.Now().Add(time.Hour))
	_, err := d.cur.RecordMessage(ctx, "t1", attestedEmail(t, "c3", "v3", "ann@x.io", base))
	if err == nil || !strings.Contains(err.Error(), "leased by other writers") {
		t.Fatalf("a write past a lease held for good = %v, want it to give up", err)
	}
	if raw := rawContact(t, d.cur, v3); len(raw.Dirty) != 1 {
		t.Fatalf("the contact the write gave up on = %+v, want its marker kept", raw)
	}
}

// A RecordMessage whose linking a crash cut short is finished by its
// retry with the same clientMutationId, as by the recovery.
func TestRetryFinishesLinking(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	in := message(t, related.ChannelEmail, "th", "r@x.io", "once", base)
	in.ClientMutationID = "cm-1"
	first := mustRecord(t, d.cur, "t1", in)
	// As if the first call stopped after its contact write.
	for coll, filter := range map[string]bson.D{
		collProfiles: {{Key: "tenant", Value: "t1"}}, collValues: {{Key: "tenant", Value: "t1"}}, collValueStats: {{Key: "tenant", Value: "t1"}},
	} {
		if _, err := d.cur.coll(coll).DeleteMany(ctx, filter); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.cur.contacts.UpdateOne(ctx, byID("t1", first.Contact.ID), bson.D{
		{Key: "$unset", Value: bson.D{{Key: "profileId", Value: ""}, {Key: "claimsSig", Value: ""}}},
		{Key: "$set", Value: bson.D{{Key: "dirty", Value: []string{markerAt(time.Now().Add(-time.Hour)) + "crashed"}}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.cur.interactions.UpdateOne(ctx, byID("t1", first.Interaction.ID), bson.D{{Key: "$unset", Value: bson.D{{Key: "profileId", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	again := mustRecord(t, d.cur, "t1", in)
	if !again.Duplicate || again.Contact.ProfileID == "" || again.Interaction.ProfileID != again.Contact.ProfileID {
		t.Fatalf("retry = duplicate %v, contact in %q, interaction in %q", again.Duplicate, again.Contact.ProfileID, again.Interaction.ProfileID)
	}
	its, _ := d.cur.Interactions(ctx, "t1", []string{first.Interaction.ID})
	if its[0].ProfileID != again.Contact.ProfileID {
		t.Fatalf("stored interaction in %q, want %q", its[0].ProfileID, again.Contact.ProfileID)
	}
	if raw := rawContact(t, d.cur, first.Contact.ID); len(raw.Dirty) != 0 {
		t.Fatalf("the crashed write's marker is still there: %v", raw.Dirty)
	}
}

// Concurrent writers on a real MongoDB: contacts of overlapping clusters
// gain and change values (a customer id shared by a few, emails, a value
// that turns into a hub) from many goroutines, so recomputes of one
// cluster race; the stored profiles must be those identity.Partition
// decides from the final facts, as one writer would have left them.
func TestConcurrentRecomputes(t *testing.T) {
	if !server.atomic {
		t.Skip("concurrent writers update the same documents (contacts, value counts), which FerretDB does not apply atomically (DESIGN.md section 2); runs on a real MongoDB via MONGODB_URI")
	}
	d := newTestDB(t)
	ctx := context.Background()
	rule, err := identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true, Priority: 200,
		MaxPerProfile: 1, MaxContactsPerValue: 6}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.cur.SaveProfileRule(ctx, "t1", rule); err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		if done, err = d.cur.EvaluateRules(ctx, "t1", 100); err != nil {
			t.Fatal(err)
		}
	}
	const writers, each, people = 12, 25, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range each {
				p := rng.IntN(people)
				var in related.RecordMessage
				switch rng.IntN(3) {
				case 0:
					in = message(t, related.ChannelEmail, fmt.Sprint("e", p), fmt.Sprintf("p%d@x.io", p), "hi", base.Add(time.Duration(i)*time.Second))
				default:
					in = message(t, related.ChannelWebChat, fmt.Sprint("w", w, "-", p), fmt.Sprintf("v%d-%d", w, p), "hi", base.Add(time.Duration(i)*time.Second))
				}
				attrs := []related.Attribute{{Key: "customerId", Value: fmt.Sprint("C-", p/3), Attested: true, By: integration.Name, Role: integration.Role}}
				if rng.IntN(2) == 0 {
					attrs = append(attrs, related.Attribute{Key: "email", Value: fmt.Sprintf("p%d@x.io", (p+rng.IntN(2))%people), Attested: true, By: integration.Name, Role: integration.Role})
				}
				in.Contact.Attributes, in.By = attrs, integration
				if _, err := d.cur.RecordMessage(ctx, "t1", in); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	facts, err := d.cur.TenantFacts(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	whole := identity.Partition(facts)
	for _, c := range facts.Contacts {
		if c.Profile != whole.Assignment[c.ID] {
			t.Errorf("contact %s is in %q; Partition over the final facts says %q", c.ID, c.Profile, whole.Assignment[c.ID])
		}
	}
	var ids []string
	for _, p := range whole.Profiles {
		ids = append(ids, p.ID)
	}
	stored, err := d.cur.Profiles(ctx, "t1", ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range whole.Profiles {
		i := slices.IndexFunc(stored, func(x *related.Profile) bool { return x.ID == p.ID })
		if i < 0 || stored[i].ContactCount != len(p.Contacts) || stored[i].Name != p.Name() || fmt.Sprint(stored[i].Identifiers) != fmt.Sprint(p.Identifiers) {
			t.Errorf("profile %s: stored %+v, Partition says %+v", p.ID, stored, p)
		}
	}
	// Every count is the number of holders.
	for id, f := range facts.Values {
		hs, err := d.cur.holders(ctx, "t1", []related.Identifier{id})
		if err != nil || len(hs) != f.Contacts {
			t.Errorf("value %v: count %d, %d holders (%v)", id, f.Contacts, len(hs), err)
		}
	}
	if n, _ := d.cur.coll(collLeases).CountDocuments(ctx, bson.D{}); n != 0 {
		t.Errorf("%d leases left behind", n)
	}
	var dirty []contactDoc
	if dirty, err = findEvery[contactDoc](ctx, d.cur.contacts, bson.D{{Key: "dirty", Value: bson.D{{Key: "$exists", Value: true}, {Key: "$ne", Value: bson.A{}}}}}, nil); err != nil || len(dirty) != 0 {
		t.Errorf("%d contacts left dirty (%v)", len(dirty), err)
	}
}

// An existing MongoDB database of the version before (profiles with
// random ids, identifiers claimed by profiles, manual links, do-not-link
// records and merges) is migrated at start: what admins did becomes
// decisions and names, old profile ids keep leading to their profiles,
// and once the background jobs ran, every profile is recomputed from the
// facts. A second start changes nothing.
func TestMigrationFromLinkedProfiles(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	id := func(ch related.Channel, addr string) string { return related.ContactID("t1", ch, addr) }
	ann, chat, bob, carol, xavi, yves := id(related.ChannelEmail, "ann@x.io"), id(related.ChannelWebChat, "v1"),
		id(related.ChannelEmail, "bob@x.io"), id(related.ChannelEmail, "carol@x.io"), id(related.ChannelEmail, "xavi@x.io"), id(related.ChannelWebChat, "v2")
	ts := base
	contact := func(cid string, ch related.Channel, addr, profile string) bson.D {
		d := bson.D{{Key: "_id", Value: cid}, {Key: "tenant", Value: "t1"}, {Key: "channel", Value: string(ch)}, {Key: "address", Value: addr},
			{Key: "attributes", Value: bson.A{}}, {Key: "identifiers", Value: bson.A{}}, {Key: "version", Value: int64(1)},
			{Key: "createdAt", Value: ts}, {Key: "updatedAt", Value: ts}}
		if profile != "" {
			d = append(d, bson.E{Key: "profileId", Value: profile})
		}
		return d
	}
	old := map[string][]any{
		collContacts: {
			contact(ann, related.ChannelEmail, "ann@x.io", "old-p1"), contact(chat, related.ChannelWebChat, "v1", "old-p1"),
			contact(bob, related.ChannelEmail, "bob@x.io", "old-p2"), contact(carol, related.ChannelEmail, "carol@x.io", "old-p2"),
			contact(xavi, related.ChannelEmail, "xavi@x.io", "old-p4"), append(contact(yves, related.ChannelWebChat, "v2", ""), bson.E{Key: "unlinked", Value: true}),
		},
		collProfiles: {
			bson.D{{Key: "_id", Value: "old-p1"}, {Key: "tenant", Value: "t1"}, {Key: "customName", Value: "Ann VIP"}, {Key: "version", Value: int64(3)}, {Key: "createdAt", Value: ts}},
			bson.D{{Key: "_id", Value: "old-p2"}, {Key: "tenant", Value: "t1"}, {Key: "version", Value: int64(3)}, {Key: "createdAt", Value: ts}},
			bson.D{{Key: "_id", Value: "old-p3"}, {Key: "tenant", Value: "t1"}, {Key: "mergedInto", Value: "old-p2"}, {Key: "createdAt", Value: ts}},
			bson.D{{Key: "_id", Value: "old-p4"}, {Key: "tenant", Value: "t1"}, {Key: "createdAt", Value: ts}},
		},
		oldIdentifiers: {bson.D{{Key: "_id", Value: "i1"}, {Key: "tenant", Value: "t1"}, {Key: "key", Value: "email"}, {Key: "value", Value: "ann@x.io"}, {Key: "profileId", Value: "old-p1"}}},
		oldProfileLinks: {bson.D{{Key: "_id", Value: "l1"}, {Key: "tenant", Value: "t1"}, {Key: "profileId", Value: "old-p1"}, {Key: "contactId", Value: chat},
			{Key: "reason", Value: "MANUAL"}, {Key: "by", Value: "admin-key"}, {Key: "linkedAt", Value: ts}}},
		oldMerges: {bson.D{{Key: "_id", Value: "m1"}, {Key: "tenant", Value: "t1"}, {Key: "loser", Value: "old-p3"}, {Key: "winner", Value: "old-p2"},
			{Key: "by", Value: "admin-key"}, {Key: "done", Value: true}}},
		oldDoNotLink: {bson.D{{Key: "_id", Value: "n1"}, {Key: "tenant", Value: "t1"}, {Key: "contactId", Value: yves}, {Key: "profileId", Value: "old-p4"}}},
		oldConflicts: {bson.D{{Key: "_id", Value: "x1"}, {Key: "tenant", Value: "t1"}}},
	}
	for coll, docs := range old {
		if _, err := d.cur.coll(coll).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.cur.coll(collMigrations).DeleteMany(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	s := d.reopen(t)
	for _, tenant := range []string{"t1"} {
		for done := false; !done; {
			var err error
			if done, err = s.CanonicalizeContacts(ctx, tenant, 2); err != nil {
				t.Fatal(err)
			}
		}
		for done := false; !done; {
			var err error
			if done, err = s.EvaluateRules(ctx, tenant, 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(s *Store) {
		t.Helper()
		pAnn := profileOfContact(t, s, ann)
		if pAnn == "" || profileOfContact(t, s, chat) != pAnn {
			t.Fatalf("the manual link was lost: ann in %q, the chat in %q", pAnn, profileOfContact(t, s, chat))
		}
		ps, err := s.Profiles(ctx, "t1", []string{pAnn, "old-p1", "old-p3"})
		if err != nil || len(ps) != 3 {
			t.Fatalf("profiles = %+v, %v", ps, err)
		}
		for _, p := range ps {
			switch p.ID {
			case pAnn:
				if p.Name != "Ann VIP" || p.ContactCount != 2 {
					t.Fatalf("Ann's profile = %+v, want its custom name and two contacts", p)
				}
			case "old-p1":
				if p.MergedInto != pAnn {
					t.Fatalf("the old id of Ann's profile = %+v, want a pointer to %s", p, pAnn)
				}
			case "old-p3":
				if pBob := profileOfContact(t, s, bob); p.MergedInto != pBob || pBob == "" || profileOfContact(t, s, carol) != pBob {
					t.Fatalf("the admin's merge was lost: bob in %q, carol in %q, old-p3 -> %q", pBob, profileOfContact(t, s, carol), p.MergedInto)
				}
			}
		}
		ds, err := s.decisions(ctx, "t1", []string{yves})
		if err != nil || len(ds) != 1 || ds[0].Kind != identity.KeepApart || !slices.Contains([]string{ds[0].A, ds[0].B}, xavi) {
			t.Fatalf("the unlink became %+v, %v; want yves kept apart from xavi", ds, err)
		}
		names, _ := s.db.ListCollectionNames(ctx, bson.D{})
		for _, c := range []string{oldIdentifiers, oldProfileLinks, oldDoNotLink, oldMerges, oldConflicts} {
			if slices.Contains(names, c) {
				t.Fatalf("the old collection %s is still there", c)
			}
		}
		if raw := rawContact(t, s, ann); raw.ClaimsSig == "" {
			t.Fatalf("ann's values were never synced: %+v", raw)
		}
		n, _ := s.contacts.CountDocuments(ctx, bson.D{{Key: "identifiers", Value: bson.D{{Key: "$exists", Value: true}}}})
		if n != 0 {
			t.Fatalf("%d contacts keep their old identifiers", n)
		}
	}
	check(s)
	// A second start finds the migration done and changes nothing.
	before := d.cmds.Snapshot()
	s = d.reopen(t)
	if got := d.cmds.Snapshot(); got["update"] != before["update"] || got["insert"] != before["insert"] {
		t.Fatalf("a second start wrote: %v -> %v", before, got)
	}
	check(s)
}

// Manual decisions and the hub list read back what they wrote: the
// adapter's documents, beyond the suite's observable behaviour.
func TestManualDecisionsAreFacts(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	a := mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	b := mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "b", "b@x.io", "b", base))
	pa, pb := a.Contact.ProfileID, b.Contact.ProfileID
	p, err := d.cur.MergeProfiles(ctx, "t1", pb, pa, admin)
	if err != nil || p.ID != pb {
		t.Fatalf("merge = %+v, %v", p, err)
	}
	ds, err := d.cur.decisions(ctx, "t1", []string{a.Contact.ID})
	if err != nil || len(ds) != 1 || ds[0].Kind != identity.KeepTogether || ds[0].Into != b.Contact.ID || ds[0].By != admin {
		t.Fatalf("decisions = %+v, %v", ds, err)
	}
	for _, id := range []string{a.Contact.ID, b.Contact.ID} {
		if raw := rawContact(t, d.cur, id); len(raw.Dirty) != 0 {
			t.Fatalf("contact %s keeps the merge's marker: %v", id, raw.Dirty)
		}
	}
	if n, _ := d.cur.coll(collLeases).CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("%d leases left behind", n)
	}
	h, err := d.cur.ProfileHistory(ctx, "t1", pb, store.Page{First: 10})
	if err != nil || len(h.Items) == 0 || h.Items[0].Kind != identity.EventMerged || h.Items[0].By != admin {
		t.Fatalf("history = %+v, %v", h, err)
	}
}

// A holder renews its leases once it has held them for a third of their
// time, and learns it lost one that expired and was taken over, so it
// does not apply what it read under it.
func TestLeaseRenewal(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	d.cur.leaseTTL = 60 * time.Millisecond
	l := d.cur.newLeases("t1")
	if err := l.try(ctx, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	var first, doc leaseDoc
	if err := d.cur.coll(collLeases).FindOne(ctx, byID("t1", leaseID("t1", "a"))).Decode(&first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := l.renew(ctx); err != nil {
		t.Fatalf("renew = %v", err)
	}
	if err := d.cur.coll(collLeases).FindOne(ctx, byID("t1", leaseID("t1", "a"))).Decode(&doc); err != nil || !doc.Expires.After(first.Expires) {
		t.Fatalf("lease after renewal = %+v (was %+v), %v", doc, first, err)
	}
	// Another writer takes b over once it expires.
	time.Sleep(80 * time.Millisecond)
	other := d.cur.newLeases("t1")
	if err := other.try(ctx, []string{"b"}); err != nil {
		t.Fatalf("taking over an expired lease = %v", err)
	}
	if err := l.renew(ctx); err != errLeaseLost {
		t.Fatalf("renewing a lease taken over = %v, want errLeaseLost", err)
	}
	// Releasing leaves the other writer's lease alone.
	l.release(ctx)
	if err := d.cur.coll(collLeases).FindOne(ctx, byID("t1", leaseID("t1", "b"))).Decode(&doc); err != nil || doc.Token != other.token {
		t.Fatalf("the other writer's lease = %+v, %v", doc, err)
	}
	other.release(ctx)
}

// A contact merge a crash interrupted (recorded, part done) is finished by
// the canonicalization's next batch.
func TestContactMergeResumed(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	raw := func(thread, addr string) related.RecordMessage {
		in, err := related.RecordMessage{Channel: related.ChannelSMS, ThreadRef: thread, Direction: related.Inbound, Body: "hi " + addr, SentAt: base,
			Contact: related.ContactInput{Address: addr}}.Normalize(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	national := mustRecord(t, d.cur, "t1", raw("a", "07400 123456"))
	intl := mustRecord(t, d.cur, "t1", raw("b", "+447400123456"))
	if _, err := d.cur.SetTenantSettings(ctx, "t1", related.TenantSettings{DefaultRegion: "GB"}); err != nil {
		t.Fatal(err)
	}
	// The merge of the national contact was recorded, and its interaction
	// moved, when the process stopped.
	src := rawContact(t, d.cur, national.Contact.ID)
	md := &contactMergeDoc{ID: contactMergeID("t1", src.ID), Tenant: "t1", Src: src, Target: intl.Contact.ID, Address: "+447400123456",
		Status: string(related.AddressValid), Marker: newMarker(), CreatedAt: base}
	if _, err := d.cur.coll(collContactMerges).InsertOne(ctx, md); err != nil {
		t.Fatal(err)
	}
	if _, err := d.cur.interactions.UpdateOne(ctx, byID("t1", national.Interaction.ID), bson.D{{Key: "$set", Value: bson.D{{Key: "contactId", Value: intl.Contact.ID}}}}); err != nil {
		t.Fatal(err)
	}
	s := d.reopen(t)
	for done := false; !done; {
		var err error
		if done, err = s.CanonicalizeContacts(ctx, "t1", 10); err != nil {
			t.Fatal(err)
		}
	}
	if cs, _ := s.Contacts(ctx, "t1", []string{national.Contact.ID, intl.Contact.ID}); len(cs) != 1 || cs[0].ID != intl.Contact.ID {
		t.Fatalf("contacts after the resumed merge = %+v", cs)
	}
	its, _ := s.Interactions(ctx, "t1", []string{national.Interaction.ID, intl.Interaction.ID})
	for _, it := range its {
		if it.ContactID != intl.Contact.ID {
			t.Fatalf("interaction %s is on %s", it.ID, it.ContactID)
		}
	}
	if n, _ := s.coll(collContactMerges).CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("%d contact merges left", n)
	}
	if cz, _ := s.Canonicalization(ctx, "t1"); cz == nil || cz.State != related.JobDone {
		t.Fatalf("canonicalization = %+v", cz)
	}
	var alias aliasDoc
	if err := s.coll(collAliases).FindOne(ctx, byID("t1", aliasID("t1", "contact", national.Contact.ID))).Decode(&alias); err != nil || alias.ContactID != intl.Contact.ID {
		t.Fatalf("alias of the merged contact = %+v, %v", alias, err)
	}
}

// TestEvaluationOfAnOlderVersionFinishes stops a rule evaluation part of
// the way and makes its document one of the version before phases (no
// phase, scope, mark or covered contacts): the run goes on bringing the
// values of the contacts it has not reached up to date, then decides every
// contact's cluster, its progress never past its total.
func TestEvaluationOfAnOlderVersionFinishes(t *testing.T) {
	d := newTestDB(t)
	s := d.cur
	ctx := context.Background()
	var contacts []string
	for i := range 6 {
		in := message(t, related.ChannelEmail, fmt.Sprint("t", i), fmt.Sprintf("c%d@x.io", i), "hi", time.Now())
		in.Contact.Attributes = []related.Attribute{{Key: "customerId", Value: fmt.Sprint("C-", i/2), Attested: true, By: integration.Name, Role: integration.Role}}
		contacts = append(contacts, mustRecord(t, s, "t1", in).Contact.ID)
	}
	rule, err := identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true,
		MaxContactsPerValue: identity.DefaultMaxContactsPerValue}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveProfileRule(ctx, "t1", rule); err != nil {
		t.Fatal(err)
	}
	if done, err := s.EvaluateRules(ctx, "t1", 2); err != nil || done {
		t.Fatalf("first batch: done %v, %v", done, err)
	}
	if _, err := s.coll(collEvaluations).UpdateOne(ctx, byID("t1", evaluationID("t1")), bson.D{
		{Key: "$set", Value: bson.D{{Key: "processed", Value: 2}, {Key: "total", Value: 6}}},
		{Key: "$unset", Value: bson.D{{Key: "phase", Value: ""}, {Key: "scoped", Value: ""}, {Key: "scopeKeys", Value: ""},
			{Key: "mark", Value: ""}, {Key: "covered", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	s = d.reopen(t)
	for done := false; !done; {
		if done, err = s.EvaluateRules(ctx, "t1", 2); err != nil {
			t.Fatal(err)
		}
		if ev, _ := s.RuleEvaluation(ctx, "t1"); ev.Processed > ev.Total {
			t.Fatalf("progress %d of %d", ev.Processed, ev.Total)
		}
	}
	ev, err := s.RuleEvaluation(ctx, "t1")
	if err != nil || ev.State != related.JobDone || ev.Processed != 12 || ev.Total != 12 || ev.Summary.Merged != 3 {
		t.Fatalf("finished = %+v, %v; want 12 steps (six contacts, twice) and the three pairs merged", ev, err)
	}
	for i := 0; i < 6; i += 2 {
		a, b := profileOfContact(t, s, contacts[i]), profileOfContact(t, s, contacts[i+1])
		if a == "" || a != b || i > 0 && a == profileOfContact(t, s, contacts[0]) {
			t.Fatalf("contacts %d and %d in %q and %q; want each pair one profile of its own", i, i+1, a, b)
		}
	}
}
