package mongo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

var base = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func message(t *testing.T, ch related.Channel, thread, addr, body string, at time.Time) related.RecordMessage {
	t.Helper()
	in, err := related.RecordMessage{
		Channel: ch, ThreadRef: thread, Direction: related.Inbound, Body: body, SentAt: at,
		Contact: related.ContactInput{Address: addr},
	}.Normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func mustRecord(t *testing.T, s *Store, tenant string, in related.RecordMessage) *store.RecordResult {
	t.Helper()
	r, err := s.RecordMessage(context.Background(), tenant, in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Every declared query shape has an index that serves it, and every
// declared index serves some shape (an index nothing uses is write cost
// for nothing; the unique ones are kept for the rule they enforce).
func TestIndexesServeQueryShapes(t *testing.T) {
	used := make([]bool, len(Indexes))
	for _, q := range QueryShapes {
		served := false
		for i, ix := range Indexes {
			if q.ServedBy(ix) {
				served, used[i] = true, true
			}
		}
		if !served {
			t.Errorf("no index serves %q on %s (equality %v, sort %v, range %v)", q.Name, q.Collection, q.Equality, q.Sort, q.Range)
		}
		if !slices.Contains(q.Equality, "tenant") && !slices.Contains(q.Filter, "tenant") && q.CrossTenant == "" {
			t.Errorf("shape %q does not filter by tenant", q.Name)
		}
	}
	names := map[string]bool{}
	for i, ix := range Indexes {
		if !used[i] && !ix.Unique {
			t.Errorf("index %s of %s serves no query shape", ix.Name(), ix.Collection)
		}
		key := ix.Collection + "." + ix.Name()
		if names[key] {
			t.Errorf("index %s declared twice", key)
		}
		names[key] = true
	}
}

func TestServedBy(t *testing.T) {
	ix := IndexSpec{Collection: "c", Keys: []IndexKey{{Field: "a"}, {Field: "b"}, {Field: "at", Desc: true}, {Field: "_id", Desc: true}}}
	for _, c := range []struct {
		q    QueryShape
		want bool
	}{
		{QueryShape{Collection: "c", Equality: []string{"b", "a"}}, true},
		{QueryShape{Collection: "c", Equality: []string{"a"}}, true},
		{QueryShape{Collection: "c", Equality: []string{"b"}}, false},
		{QueryShape{Collection: "x", Equality: []string{"a"}}, false},
		{QueryShape{Collection: "c", Equality: []string{"a", "b"}, Sort: []IndexKey{{Field: "at", Desc: true}, {Field: "_id", Desc: true}}}, true},
		{QueryShape{Collection: "c", Equality: []string{"a", "b"}, Sort: []IndexKey{{Field: "at"}, {Field: "_id"}}}, true}, // walked backwards
		{QueryShape{Collection: "c", Equality: []string{"a", "b"}, Sort: []IndexKey{{Field: "at"}, {Field: "_id", Desc: true}}}, false},
		{QueryShape{Collection: "c", Equality: []string{"a"}, Sort: []IndexKey{{Field: "at", Desc: true}}}, false},
		{QueryShape{Collection: "c", Equality: []string{"a", "b"}, Range: []string{"_id"}}, true},
		{QueryShape{Collection: "c", Equality: []string{"a", "b"}, Range: []string{"z"}}, false},
		{QueryShape{Collection: "c", Equality: []string{"a", "b", "at", "_id", "z"}}, false},
	} {
		if got := c.q.ServedBy(ix); got != c.want {
			t.Errorf("%+v served = %v, want %v", c.q, got, c.want)
		}
	}
}

// Open sends the index commands, the migrations' check and the
// recovery's three finds, and only the gateway's commands are counted: no
// handshake, heartbeat or session clean-up.
func TestOpenCommands(t *testing.T) {
	d := newTestDB(t)
	snap := d.cmds.Snapshot()
	created := 0
	for _, ix := range Indexes {
		if !ix.Builtin {
			created++
		}
	}
	// A new database: is the migration done, are there contacts to
	// migrate (no: it is marked done), then the recovery's finds of dirty
	// contacts, values and unfinished erasures.
	if snap["createIndexes"] != int64(created) || snap["listIndexes"] == 0 || snap["find"] != 5 || snap["update"] != 1 || len(snap) != 4 {
		t.Fatalf("Open sent %v, want %d createIndexes, the listIndexes that check them, 5 finds and the migration's mark", snap, created)
	}
	snap = d.cmds.Snapshot()
	d.reopen(t)
	if got := d.cmds.Snapshot(); got["find"]-snap["find"] != 4 || got["update"] != snap["update"] {
		t.Fatalf("a second Open sent %d finds and %d updates, want 4 finds (the migration is done) and no update",
			got["find"]-snap["find"], got["update"]-snap["update"])
	}
	before := d.cmds.Total()
	if err := d.cur.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.cur.Commands() != d.cmds {
		t.Fatal("Commands() is not the counter Open was given")
	}
	for _, n := range d.cmds.Names() {
		if handshake[n] {
			t.Errorf("handshake command %q counted", n)
		}
	}
	if d.cmds.Total() == before {
		t.Error("Ping sent no command")
	}
}

// Ping is a ready check: it fails while an index is missing, and a restart
// (Open) puts the index back.
func TestPingNeedsIndexes(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	if err := d.cur.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	name := Indexes[0].Name()
	if err := d.cur.interactions.Indexes().DropOne(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := d.cur.Ping(ctx); err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("Ping without %s = %v, want an error naming it", name, err)
	}
	if err := d.reopen(t).Ping(ctx); err != nil {
		t.Fatalf("Ping after reopen = %v", err)
	}
}

// An index of a declared name that lacks the declared uniqueness makes
// Open fail: running on it would let a thread open two interactions.
func TestOpenRefusesWrongIndex(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	ix := Indexes[0]
	if !ix.Unique {
		t.Fatal("Indexes[0] is expected to be the unique open-key index")
	}
	if err := d.cur.interactions.Indexes().DropOne(ctx, ix.Name()); err != nil {
		t.Fatal(err)
	}
	m := ix.model()
	m.Options = options.Index().SetName(ix.Name()) // not unique
	if _, err := d.cur.interactions.Indexes().CreateOne(ctx, m); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Options{URI: server.uri, Database: d.name, Logger: testLogger()})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open accepted a non-unique open-key index")
	}
	if !strings.Contains(err.Error(), ix.Name()) {
		t.Fatalf("error %q does not name the index", err)
	}
}

// The round trips of RecordMessage, so a change that adds one is seen. A
// returning customer whose values did not change costs the message's own
// commands and nothing for linking: the contact's claims digest is
// unchanged (the fast path of link.go).
func TestRecordCommandBudget(t *testing.T) {
	d := newTestDB(t)
	for _, c := range []struct {
		name string
		in   related.RecordMessage
		want map[string]int64
	}{
		// The tenant's settings and rules (read once, then cached), the
		// contact (a new one, marked dirty) and the interaction, the
		// message and the append to the events collection (events.go);
		// then the contact's first linking (TestLinkCommandBudget).
		{"first message", message(t, related.ChannelEmail, "th", "a@x.io", "1", base),
			map[string]int64{"aggregate": 1, "delete": 1, "find": 15, "findAndModify": 2, "insert": 5, "update": 5}},
		// The interaction, the contact (unchanged), the message, the
		// lastMessage update and the events.
		{"same thread", message(t, related.ChannelEmail, "th", "a@x.io", "2", base.Add(time.Minute)),
			map[string]int64{"findAndModify": 3, "insert": 2}},
		// A new interaction instead of the lastMessage update, with its
		// contact's profile; the contact read again after the insert, in
		// case it moved meanwhile (follow).
		{"new thread", message(t, related.ChannelEmail, "th2", "a@x.io", "3", base.Add(2*time.Minute)),
			map[string]int64{"find": 1, "findAndModify": 2, "insert": 2}},
		// An attribute no rule reads is one more findAndModify, and
		// links nothing.
		{"new attribute", func() related.RecordMessage {
			in := message(t, related.ChannelEmail, "th", "a@x.io", "4", base.Add(3*time.Minute))
			in.Contact.Attributes = []related.Attribute{{Key: "k", Value: "v"}}
			return in
		}(), map[string]int64{"findAndModify": 4, "insert": 2}},
		// A queue is one upsert.
		{"queue", func() related.RecordMessage {
			in := message(t, related.ChannelEmail, "th", "a@x.io", "5", base.Add(4*time.Minute))
			in.Queue = "Q"
			return in
		}(), map[string]int64{"findAndModify": 3, "insert": 2, "update": 1}},
	} {
		got := d.cost(t, func() { mustRecord(t, d.cur, "t1", c.in) })
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s cost %v, want %v", c.name, got, c.want)
		}
	}
}

// PROFILE scope: the same paging over the interactions of every contact
// of a profile. Profiles are written by identity linking; here the test
// sets profileId directly.
func TestRelatedProfileScope(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	var all []string // newest first
	for i := range 5 {
		ch := related.ChannelEmail
		addr := "p@x.io"
		if i%2 == 1 {
			ch, addr = related.ChannelSMS, "+15550123"
		}
		r := mustRecord(t, d.cur, "t1", message(t, ch, fmt.Sprint("th", i), addr, "hi", base.Add(time.Duration(i)*time.Minute)))
		all = append([]string{r.Interaction.ID}, all...)
	}
	mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "other", "q@x.io", "not linked", base.Add(time.Hour)))
	if _, err := d.cur.interactions.UpdateMany(ctx, bson.D{{Key: "tenant", Value: "t1"}, {Key: "_id", Value: bson.D{{Key: "$in", Value: all}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: "prof-1"}}}}); err != nil {
		t.Fatal(err)
	}
	q := store.RelatedQuery{ProfileID: "prof-1", Exclude: all[2]}
	want := []string{all[0], all[1], all[3], all[4]}
	var got []string
	p := store.Page{First: 3}
	for {
		page, err := d.cur.ListRelated(ctx, "t1", q, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			got = append(got, it.ID)
			if it.ProfileID != "prof-1" {
				t.Fatalf("item %s has profile %q", it.ID, it.ProfileID)
			}
		}
		if !page.HasNextPage {
			break
		}
		c := store.InteractionCursor(page.Items[len(page.Items)-1])
		p = store.Page{First: 3, After: &c}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("profile scope = %v, want %v", got, want)
	}
	if n, err := d.cur.CountRelated(ctx, "t1", q); err != nil || n != 4 {
		t.Fatalf("CountRelated = %d, %v; want 4", n, err)
	}
	if n, err := d.cur.CountRelated(ctx, "t2", q); err != nil || n != 0 {
		t.Fatalf("CountRelated in another tenant = %d, %v; want 0", n, err)
	}
	for _, bad := range []store.RelatedQuery{{}, {ContactID: "c", ProfileID: "p"}} {
		_, err := d.cur.ListRelated(ctx, "t1", bad, store.Page{First: 1})
		if e, ok := related.AsError(err); !ok || e.Code != related.CodeInvalid {
			t.Errorf("ListRelated(%+v) = %v, want INVALID", bad, err)
		}
		_, err = d.cur.CountRelated(ctx, "t1", bad)
		if e, ok := related.AsError(err); !ok || e.Code != related.CodeInvalid {
			t.Errorf("CountRelated(%+v) = %v, want INVALID", bad, err)
		}
	}
}

// Concurrent first messages race on every upsert: the contact's and
// queue's derived _id and the thread's open key. Unique-index inserts
// have one winner on FerretDB too, so this runs on both backends: the
// losers must take the winner's documents, not fail or duplicate them.
func TestConcurrentFirstMessages(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	const writers = 8
	results := make([]*store.RecordResult, writers)
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			in := message(t, related.ChannelSMS, "race", "+15550199", fmt.Sprint("w", w), base.Add(time.Duration(w)*time.Second))
			in.Queue = "Racing"
			<-start
			results[w], errs[w] = d.cur.RecordMessage(ctx, "t1", in)
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for w := range writers {
		if errs[w] != nil {
			t.Fatalf("writer %d: %v", w, errs[w])
		}
		r := results[w]
		if r.Created {
			created++
		}
		if r.Interaction.ID != results[0].Interaction.ID || r.Contact.ID != results[0].Contact.ID || r.Interaction.QueueID != results[0].Interaction.QueueID {
			t.Fatalf("writer %d got interaction %s contact %s queue %s; writer 0 got %s %s %s", w,
				r.Interaction.ID, r.Contact.ID, r.Interaction.QueueID, results[0].Interaction.ID, results[0].Contact.ID, results[0].Interaction.QueueID)
		}
	}
	if created != 1 {
		t.Fatalf("%d writers report creating the interaction, want 1", created)
	}
	for coll, want := range map[*mongodriver.Collection]int64{d.cur.interactions: 1, d.cur.contacts: 1, d.cur.queues: 1, d.cur.messages: writers} {
		if n, err := coll.CountDocuments(ctx, bson.D{{Key: "tenant", Value: "t1"}}); err != nil || n != want {
			t.Fatalf("%s holds %d documents, %v; want %d", coll.Name(), n, err, want)
		}
	}
}

// Concurrent repeats of one clientMutationId store one message: the
// message's derived _id is a unique-index insert.
func TestConcurrentRepeats(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	const writers = 8
	in := message(t, related.ChannelEmail, "th", "r@x.io", "once", base)
	in.ClientMutationID = "cm-race"
	results := make([]*store.RecordResult, writers)
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			results[w], errs[w] = d.cur.RecordMessage(ctx, "t1", in)
		})
	}
	close(start)
	wg.Wait()
	fresh := 0
	for w := range writers {
		if errs[w] != nil {
			t.Fatalf("writer %d: %v", w, errs[w])
		}
		if !results[w].Duplicate {
			fresh++
		}
		if results[w].Message.ID != results[0].Message.ID {
			t.Fatalf("writer %d got message %s, writer 0 %s", w, results[w].Message.ID, results[0].Message.ID)
		}
	}
	if fresh != 1 {
		t.Fatalf("%d writers stored the message, want 1", fresh)
	}
	if n, err := d.cur.CountMessages(ctx, "t1", results[0].Interaction.ID); err != nil || n != 1 {
		t.Fatalf("CountMessages = %d, %v; want 1", n, err)
	}
}

// A late message with a queue moves the queue but not lastMessage.
func TestLateMessageMovesQueue(t *testing.T) {
	d := newTestDB(t)
	r := mustRecord(t, d.cur, "t1", message(t, related.ChannelEmail, "th", "l@x.io", "newest", base.Add(time.Hour)))
	in := message(t, related.ChannelEmail, "th", "l@x.io", "late", base)
	in.Queue = "Escalations"
	late := mustRecord(t, d.cur, "t1", in)
	if late.Interaction.ID != r.Interaction.ID || late.Interaction.QueueName != "Escalations" || late.Interaction.LastMessage.Body != "newest" {
		t.Fatalf("after a late message with a queue: %+v, last %q", late.Interaction, late.Interaction.LastMessage.Body)
	}
	got, err := d.cur.Interactions(context.Background(), "t1", []string{r.Interaction.ID})
	if err != nil || got[0].QueueName != "Escalations" || !got[0].LastMessage.SentAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("stored = %+v, %v", got, err)
	}
}

// Options are checked, and a server that does not answer fails Open
// within its context rather than hanging.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Options{Database: "x"}); err == nil {
		t.Error("Open without a URI succeeded")
	}
	if _, err := Open(ctx, Options{URI: server.uri}); err == nil {
		t.Error("Open without a database succeeded")
	}
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if s, err := Open(ctx, Options{URI: "mongodb://127.0.0.1:1/?connectTimeoutMS=100", Database: "x", Logger: testLogger()}); err == nil {
		_ = s.Close()
		t.Error("Open of a closed port succeeded")
	}
}
