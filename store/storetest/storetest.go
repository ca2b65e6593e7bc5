// Package storetest is the conformance suite of the store contract. Every
// adapter runs it against its real database: store/sqlite always,
// store/mongo against an in-test FerretDB server and, when MONGODB_URI is
// set, against that MongoDB. A behaviour belongs here when a client could
// tell two adapters apart by it.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// Env is one adapter on one fresh, empty database.
type Env struct {
	Store store.Store
	// Commands counts the adapter's database commands.
	Commands *store.Commands
	// Reopen closes Store and opens the same database again, as a server
	// restart does.
	Reopen func(t *testing.T) store.Store
	// Atomic reports whether the database applies concurrent updates to one
	// document atomically. FerretDB does not (DESIGN.md section 2), so the
	// concurrency tests run only where this is true.
	Atomic bool
	// Events returns the events the store published so far.
	Events func() []store.Event
	// Slow asks the randomized tests to run smaller: the database scans
	// for every query (FerretDB), or the suite runs for another purpose
	// (the SQLite plan test collects statements).
	Slow bool
	// Search, when set, looks for needle in everything the database
	// stores (its files, or every collection) and says where it is found,
	// "" if nowhere: the erasure tests' proof that nothing remains.
	Search func(t *testing.T, needle string) string
}

// TenantChecked lists every Store method with the test that proves it
// never reads or writes across tenants, so a new method cannot be added
// without one (store's TestEveryMethodIsTenantChecked holds the list to
// the interface).
var TenantChecked = map[string]string{
	"RecordMessage": "TenantIsolation", "CloseInteraction": "TenantIsolation", "ReopenInteraction": "TenantIsolation",
	"SetContactAttributes": "TenantIsolation", "Interactions": "TenantIsolation", "Messages": "TenantIsolation",
	"Contacts": "TenantIsolation", "Queues": "TenantIsolation", "ListInteractions": "TenantIsolation",
	"CountInteractions": "TenantIsolation", "ListMessages": "TenantIsolation", "CountMessages": "TenantIsolation",
	"ListRelated": "TenantIsolation", "CountRelated": "TenantIsolation",
	"Preferences": "Preferences", "SetPreferences": "Preferences",
	"ProfileRules": "ProfileTenantIsolation", "SaveProfileRule": "ProfileTenantIsolation",
	"DeleteProfileRule": "ProfileTenantIsolation", "RuleEvaluation": "ProfileTenantIsolation",
	"EvaluateRules": "RuleChangeReevaluates (one tenant's contacts, by tenant filter)",
	"Profiles":      "ProfileTenantIsolation", "ProfileByIdentifier": "ProfileTenantIsolation",
	"ProfileContacts": "ProfileTenantIsolation", "ProfileLinks": "ProfileTenantIsolation",
	"ProfilePairs": "ProfileTenantIsolation", "ProfilePair": "ProfileTenantIsolation",
	"ProfileHistory": "ProfileTenantIsolation", "HubValues": "ProfileTenantIsolation",
	"TenantFacts": "ProfileTenantIsolation", "PreviewRules": "ProfileTenantIsolation",
	"EraseProfile": "EraseProfileLeavesNoTrace", "EraseContact": "EraseProfileLeavesNoTrace (t2 lists none of t1's)",
	"Erasures": "EraseProfileLeavesNoTrace", "ConfirmPair": "ProfileTenantIsolation",
	"DismissPair": "ProfileTenantIsolation", "SetValueQuarantine": "ProfileTenantIsolation",
	"LinkContact":   "ProfileTenantIsolation",
	"UnlinkContact": "ProfileTenantIsolation", "MergeProfiles": "ProfileTenantIsolation",
	"RenameProfile":  "ProfileTenantIsolation",
	"ContactAliases": "RegionChangeMergesContacts (t2 sees none of t1's)",
	"TenantSettings": "RegionChangeMergesContacts", "SetTenantSettings": "RegionChangeMergesContacts",
	"Canonicalization": "RegionChangeMergesContacts", "CanonicalizeContacts": "RegionChangeMergesContacts",
	"PendingCanonicalizations": "none: it lists the tenants that have work",
	// Not per tenant by nature:
	"PendingEvaluations": "none: it lists the tenants that have work",
	"Ping":               "none: no data",
	"Close":              "none: no data",
}

// Opener opens a fresh Env for one test.
type Opener func(t *testing.T) *Env

// Run runs the whole suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"RecordCreatesContactAndInteraction", testRecordCreates},
		{"RecordSameThreadAppends", testRecordAppends},
		{"ClosedThreadOpensNewInteraction", testClosedThreadOpensNew},
		{"CloseAndReopen", testCloseReopen},
		{"ReopenConflicts", testReopenConflict},
		{"ClientMutationIDIsIdempotent", testIdempotent},
		{"LastMessageIsNewestBySentTime", testOutOfOrder},
		{"LongLastMessageKeptInPart", testLongBody},
		{"QueueKeptCurrent", testQueue},
		{"BatchGetters", testBatchGetters},
		{"ListMessages", testListMessages},
		{"RelatedChannelScope", testRelated},
		{"RelatedPagingBothWays", testRelatedPaging},
		{"RelatedPagingUnderInserts", testRelatedPagingUnderInserts},
		{"OpenReaderMatchesPanelReader", testOpenReader},
		{"ListInteractions", testListInteractions},
		{"ContactAttributes", testContactAttributes},
		{"Preferences", testPreferences},
		{"TenantIsolation", testTenantIsolation},
		{"SurvivesRestart", testRestart},
		{"BatchIsOneCommand", testBatchOneCommand},
		{"ConcurrentRecordsOnOneThread", testConcurrentThread},
		{"PublishesEvents", testEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// base is the time the suite's messages are sent at, far enough in the
// past that a store's "now" never sorts between them.
var base = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// msg builds a normalized RecordMessage.
func msg(t *testing.T, ch related.Channel, thread, addr, body string, at time.Time) related.RecordMessage {
	t.Helper()
	in, err := related.RecordMessage{
		Channel: ch, ThreadRef: thread, Direction: related.Inbound, Body: body, SentAt: at,
		Contact: related.ContactInput{Address: addr, Name: "Name of " + addr},
	}.Normalize(time.Now())
	if err != nil {
		t.Fatalf("normalize: %v", err)
	}
	return in
}

func record(t *testing.T, s store.Store, tenant string, in related.RecordMessage) *store.RecordResult {
	t.Helper()
	res, err := s.RecordMessage(context.Background(), tenant, in)
	if err != nil {
		t.Fatalf("RecordMessage(%s/%s): %v", in.Channel, in.ThreadRef, err)
	}
	return res
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := related.AsError(err)
	if !ok || e.Code != code {
		t.Fatalf("error = %v, want a %s *related.Error", err, code)
	}
}

func ids(items []*related.Interaction) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testRecordCreates(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	in := msg(t, related.ChannelEmail, "thread-1", "Ann@Example.com", "Hello,\n  my order is late.", base)
	in.Queue = "Billing"
	in.Contact.Attributes = []related.Attribute{{Key: "customerId", Value: "C-1"}}
	res := record(t, e.Store, "t1", in)
	if !res.Created || res.Duplicate {
		t.Fatalf("Created=%v Duplicate=%v, want a new interaction", res.Created, res.Duplicate)
	}
	it := res.Interaction
	if it.ID == "" || it.Tenant != "t1" || it.Channel != related.ChannelEmail || it.ThreadRef != "thread-1" || it.Status != related.StatusOpen {
		t.Fatalf("interaction = %+v", it)
	}
	if it.ContactID != res.Contact.ID || res.Contact.Address != "ann@example.com" || res.Contact.Name != "Name of Ann@Example.com" {
		t.Fatalf("contact = %+v, interaction contact %q", res.Contact, it.ContactID)
	}
	if it.QueueID == "" || it.QueueName != "Billing" {
		t.Fatalf("queue = %q %q, want Billing", it.QueueID, it.QueueName)
	}
	got, err := e.Store.Interactions(ctx, "t1", []string{it.ID})
	if err != nil || len(got) != 1 {
		t.Fatalf("Interactions = %v, %v", got, err)
	}
	lm := got[0].LastMessage
	if lm == nil || lm.ID != res.Message.ID || lm.Body != in.Body || !lm.SentAt.Equal(base) || lm.Direction != related.Inbound {
		t.Fatalf("lastMessage = %+v, want the message", lm)
	}
	if !got[0].CreatedAt.Equal(it.CreatedAt) || got[0].QueueName != "Billing" {
		t.Fatalf("stored interaction %+v differs from returned %+v", got[0], it)
	}
	cs, err := e.Store.Contacts(ctx, "t1", []string{res.Contact.ID})
	if err != nil || len(cs) != 1 {
		t.Fatalf("Contacts = %v, %v", cs, err)
	}
	if len(cs[0].Attributes) != 1 || !cs[0].Attributes[0].SameFact(related.Attribute{Key: "customerId", Value: "C-1"}) ||
		cs[0].Attributes[0].InteractionID != it.ID || cs[0].Attributes[0].At.IsZero() {
		t.Fatalf("attributes = %+v", cs[0].Attributes)
	}
	qs, err := e.Store.Queues(ctx, "t1", []string{it.QueueID})
	if err != nil || len(qs) != 1 || qs[0].Name != "Billing" {
		t.Fatalf("Queues = %+v, %v", qs, err)
	}
	ms, err := e.Store.Messages(ctx, "t1", []string{res.Message.ID})
	if err != nil || len(ms) != 1 || ms[0].InteractionID != it.ID || ms[0].Body != in.Body {
		t.Fatalf("Messages = %+v, %v", ms, err)
	}
}

func testRecordAppends(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	first := record(t, e.Store, "t1", msg(t, related.ChannelSMS, "th", "+44 7700 900001", "one", base))
	in := msg(t, related.ChannelSMS, "th", "+447700900001", "two", base.Add(time.Minute))
	in.Direction = related.Outbound
	in.Author = "agent-7"
	in.Contact.Name = ""
	second := record(t, e.Store, "t1", in)
	if second.Created || second.Interaction.ID != first.Interaction.ID {
		t.Fatalf("second message opened %q (created=%v), want %q", second.Interaction.ID, second.Created, first.Interaction.ID)
	}
	if second.Contact.ID != first.Contact.ID {
		t.Fatalf("contact %q, want %q: addresses normalize to the same", second.Contact.ID, first.Contact.ID)
	}
	if second.Contact.Name != first.Contact.Name {
		t.Fatalf("contact name = %q, a message without a name must keep %q", second.Contact.Name, first.Contact.Name)
	}
	got, _ := e.Store.Interactions(ctx, "t1", []string{first.Interaction.ID})
	lm := got[0].LastMessage
	if lm.Body != "two" || lm.Direction != related.Outbound || lm.Author != "agent-7" {
		t.Fatalf("lastMessage = %+v, want the second", lm)
	}
	n, err := e.Store.CountMessages(ctx, "t1", first.Interaction.ID)
	if err != nil || n != 2 {
		t.Fatalf("CountMessages = %d, %v; want 2", n, err)
	}
}

func testClosedThreadOpensNew(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	first := record(t, e.Store, "t1", msg(t, related.ChannelWhatsApp, "wa-1", "+15550001", "hi", base))
	closed, err := e.Store.CloseInteraction(ctx, "t1", first.Interaction.ID, related.ClosedStateClosed, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if closed.Status != related.StatusClosed || closed.ClosedState != related.ClosedStateClosed || !closed.ClosedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("closed = %+v", closed)
	}
	next := record(t, e.Store, "t1", msg(t, related.ChannelWhatsApp, "wa-1", "+15550001", "again", base.Add(2*time.Hour)))
	if !next.Created || next.Interaction.ID == first.Interaction.ID {
		t.Fatalf("a message on a closed thread must open a new interaction, got %q created=%v", next.Interaction.ID, next.Created)
	}
	old, _ := e.Store.Interactions(ctx, "t1", []string{first.Interaction.ID})
	if old[0].Status != related.StatusClosed || old[0].LastMessage.Body != "hi" {
		t.Fatalf("old interaction = %+v, want closed and untouched", old[0])
	}
	// The new interaction is the old one's related item.
	page, err := e.Store.ListRelated(ctx, "t1", store.RelatedQuery{ContactID: next.Contact.ID, Exclude: next.Interaction.ID}, store.Page{First: 10})
	if err != nil || !equal(ids(page.Items), []string{first.Interaction.ID}) {
		t.Fatalf("related = %v, %v", ids(page.Items), err)
	}
}

func testCloseReopen(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	r := record(t, e.Store, "t1", msg(t, related.ChannelWebChat, "chat-1", "visitor-1", "hi", base))
	for _, st := range []related.ClosedState{related.ClosedStateIgnored, related.ClosedStateSpam, related.ClosedStateClosed} {
		it, err := e.Store.CloseInteraction(ctx, "t1", r.Interaction.ID, st, base.Add(time.Hour))
		if err != nil || it.ClosedState != st || it.Status != related.StatusClosed {
			t.Fatalf("close %s = %+v, %v", st, it, err)
		}
		got, _ := e.Store.Interactions(ctx, "t1", []string{r.Interaction.ID})
		if got[0].ClosedState != st {
			t.Fatalf("stored closedState = %q, want %q", got[0].ClosedState, st)
		}
	}
	it, err := e.Store.ReopenInteraction(ctx, "t1", r.Interaction.ID)
	if err != nil || it.Status != related.StatusOpen || it.ClosedState != "" || !it.ClosedAt.IsZero() {
		t.Fatalf("reopen = %+v, %v", it, err)
	}
	// Reopened, it is the thread's open interaction again.
	again := record(t, e.Store, "t1", msg(t, related.ChannelWebChat, "chat-1", "visitor-1", "back", base.Add(2*time.Hour)))
	if again.Interaction.ID != r.Interaction.ID {
		t.Fatalf("message after reopen went to %q, want %q", again.Interaction.ID, r.Interaction.ID)
	}
	_, err = e.Store.CloseInteraction(ctx, "t1", "nope", related.ClosedStateClosed, base)
	wantCode(t, err, related.CodeNotFound)
	_, err = e.Store.ReopenInteraction(ctx, "t1", "nope")
	wantCode(t, err, related.CodeNotFound)
}

func testReopenConflict(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	first := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "a@x.io", "1", base))
	if _, err := e.Store.CloseInteraction(ctx, "t1", first.Interaction.ID, related.ClosedStateClosed, base); err != nil {
		t.Fatal(err)
	}
	second := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "a@x.io", "2", base.Add(time.Minute)))
	_, err := e.Store.ReopenInteraction(ctx, "t1", first.Interaction.ID)
	wantCode(t, err, related.CodeConflict)
	got, _ := e.Store.Interactions(ctx, "t1", []string{first.Interaction.ID, second.Interaction.ID})
	for _, it := range got {
		want := related.StatusClosed
		if it.ID == second.Interaction.ID {
			want = related.StatusOpen
		}
		if it.Status != want {
			t.Fatalf("%s status = %s, want %s: a refused reopen changes nothing", it.ID, it.Status, want)
		}
	}
	// Reopening an open interaction is a no-op.
	it, err := e.Store.ReopenInteraction(ctx, "t1", second.Interaction.ID)
	if err != nil || it.Status != related.StatusOpen {
		t.Fatalf("reopen open = %+v, %v", it, err)
	}
}

func testIdempotent(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	in := msg(t, related.ChannelEmail, "th", "b@x.io", "once", base)
	in.ClientMutationID = "cm-1"
	first := record(t, e.Store, "t1", in)
	again := record(t, e.Store, "t1", in)
	if !again.Duplicate || again.Message.ID != first.Message.ID || again.Interaction.ID != first.Interaction.ID {
		t.Fatalf("repeat = %+v, want the first message back, marked Duplicate", again)
	}
	n, _ := e.Store.CountMessages(ctx, "t1", first.Interaction.ID)
	if n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	// The same clientMutationId in another tenant is another message.
	other := record(t, e.Store, "t2", in)
	if other.Duplicate || other.Message.ID == first.Message.ID {
		t.Fatalf("tenant t2 saw t1's clientMutationId: %+v", other)
	}
}

func testOutOfOrder(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	r := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "c@x.io", "newer", base.Add(time.Hour)))
	record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "c@x.io", "older, delivered late", base))
	got, _ := e.Store.Interactions(ctx, "t1", []string{r.Interaction.ID})
	if got[0].LastMessage.Body != "newer" {
		t.Fatalf("lastMessage = %q, want the newest by sent time", got[0].LastMessage.Body)
	}
	page, err := e.Store.ListMessages(ctx, "t1", r.Interaction.ID, store.Page{First: 10}, true)
	if err != nil || len(page.Items) != 2 || page.Items[0].Body != "older, delivered late" {
		t.Fatalf("messages = %+v, %v; want oldest first", page, err)
	}
	// A backfilled thread began when its first message was sent.
	if !got[0].CreatedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("createdAt = %s, want the first message's time %s", got[0].CreatedAt, base.Add(time.Hour))
	}
}

func testLongBody(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	long := strings.Repeat("A long email line. ", related.InlineBodyLength/10)
	r := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "long@x.io", long, base))
	got, _ := e.Store.Interactions(ctx, "t1", []string{r.Interaction.ID})
	lm := got[0].LastMessage
	if !lm.Partial || len(lm.Body) > related.InlineBodyLength || !strings.HasPrefix(long, lm.Body) || lm.ID != r.Message.ID {
		t.Fatalf("kept copy: partial=%v, %d bytes; want the first %d bytes, marked partial", lm.Partial, len(lm.Body), related.InlineBodyLength)
	}
	ms, err := e.Store.Messages(ctx, "t1", []string{lm.ID})
	if err != nil || len(ms) != 1 || ms[0].Body != long || ms[0].Partial {
		t.Fatalf("the message itself must keep its whole body: %v", err)
	}
	// A short reply replaces it whole.
	record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "long@x.io", "thanks", base.Add(time.Minute)))
	got, _ = e.Store.Interactions(ctx, "t1", []string{r.Interaction.ID})
	if got[0].LastMessage.Partial || got[0].LastMessage.Body != "thanks" {
		t.Fatalf("after a short reply: %+v", got[0].LastMessage)
	}
}

func testQueue(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	in := msg(t, related.ChannelEmail, "th", "d@x.io", "1", base)
	in.Queue = "Sales"
	r := record(t, e.Store, "t1", in)
	in = msg(t, related.ChannelEmail, "th", "d@x.io", "2", base.Add(time.Minute))
	r2 := record(t, e.Store, "t1", in)
	if r2.Interaction.QueueName != "Sales" || r2.Interaction.QueueID != r.Interaction.QueueID {
		t.Fatalf("queue = %q, a message without a queue keeps the interaction's", r2.Interaction.QueueName)
	}
	in = msg(t, related.ChannelEmail, "th", "d@x.io", "3", base.Add(2*time.Minute))
	in.Queue = "Support"
	r3 := record(t, e.Store, "t1", in)
	if r3.Interaction.QueueName != "Support" || r3.Interaction.QueueID == r.Interaction.QueueID {
		t.Fatalf("queue = %q, want Support", r3.Interaction.QueueName)
	}
	// Another interaction in "Sales" shares the queue.
	in = msg(t, related.ChannelEmail, "th2", "d@x.io", "4", base)
	in.Queue = "Sales"
	r4 := record(t, e.Store, "t1", in)
	if r4.Interaction.QueueID != r.Interaction.QueueID {
		t.Fatalf("queue id %q, want the existing Sales queue %q", r4.Interaction.QueueID, r.Interaction.QueueID)
	}
	got, _ := e.Store.Interactions(ctx, "t1", []string{r.Interaction.ID})
	if got[0].QueueName != "Support" {
		t.Fatalf("stored queue = %q", got[0].QueueName)
	}
}

func testBatchGetters(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	var want []string
	for i := range 5 {
		r := record(t, e.Store, "t1", msg(t, related.ChannelEmail, fmt.Sprint("th", i), fmt.Sprintf("u%d@x.io", i), "hi", base))
		want = append(want, r.Interaction.ID)
	}
	got, err := e.Store.Interactions(ctx, "t1", append([]string{"missing"}, want...))
	if err != nil || len(got) != 5 {
		t.Fatalf("Interactions = %d items, %v; want 5 (missing ids left out)", len(got), err)
	}
	for _, f := range []func() (int, error){
		func() (int, error) { r, err := e.Store.Interactions(ctx, "t1", nil); return len(r), err },
		func() (int, error) { r, err := e.Store.Contacts(ctx, "t1", nil); return len(r), err },
		func() (int, error) { r, err := e.Store.Messages(ctx, "t1", nil); return len(r), err },
		func() (int, error) { r, err := e.Store.Queues(ctx, "t1", nil); return len(r), err },
	} {
		if n, err := f(); n != 0 || err != nil {
			t.Fatalf("batch of no ids = %d, %v", n, err)
		}
	}
}

func testListMessages(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	var first *store.RecordResult
	var want []string
	for i := range 7 {
		r := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "m@x.io", fmt.Sprint("m", i), base.Add(time.Duration(i)*time.Minute)))
		if first == nil {
			first = r
		}
		want = append(want, r.Message.ID)
	}
	// Two messages in the same millisecond are ordered by id.
	r := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "m@x.io", "same time", base.Add(6*time.Minute)))
	want = append(want, r.Message.ID)
	if r.Message.ID < want[6] {
		want[6], want[7] = want[7], want[6]
	}
	iid := first.Interaction.ID
	var got []string
	p := store.Page{First: 3}
	for pages := 0; ; pages++ {
		page, err := e.Store.ListMessages(ctx, "t1", iid, p, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Items {
			got = append(got, m.ID)
		}
		if pages > 0 && !page.HasPreviousPage {
			t.Fatalf("page %d after a cursor has no previous page", pages)
		}
		if !page.HasNextPage {
			break
		}
		c := store.MessageCursor(page.Items[len(page.Items)-1])
		p = store.Page{First: 3, After: &c}
	}
	if !equal(got, want) {
		t.Fatalf("forward = %v, want %v", got, want)
	}
	// Backward from the end.
	got = nil
	p = store.Page{Last: 3}
	for {
		page, err := e.Store.ListMessages(ctx, "t1", iid, p, true)
		if err != nil {
			t.Fatal(err)
		}
		var chunk []string
		for _, m := range page.Items {
			chunk = append(chunk, m.ID)
		}
		got = append(chunk, got...)
		if !page.HasPreviousPage {
			break
		}
		c := store.MessageCursor(page.Items[0])
		p = store.Page{Last: 3, Before: &c}
	}
	if !equal(got, want) {
		t.Fatalf("backward = %v, want %v", got, want)
	}
	if n, _ := e.Store.CountMessages(ctx, "t1", iid); n != 8 {
		t.Fatalf("CountMessages = %d, want 8", n)
	}
	page, err := e.Store.ListMessages(ctx, "t1", "missing", store.Page{First: 3}, true)
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("messages of a missing interaction = %+v, %v", page, err)
	}
	// Without bodies: the same page, every other field the same, no text.
	with, err := e.Store.ListMessages(ctx, "t1", iid, store.Page{First: 10}, true)
	if err != nil {
		t.Fatal(err)
	}
	without, err := e.Store.ListMessages(ctx, "t1", iid, store.Page{First: 10}, false)
	if err != nil || len(without.Items) != len(with.Items) || without.HasNextPage != with.HasNextPage {
		t.Fatalf("without bodies = %+v, %v; with = %+v", without, err, with)
	}
	for i, m := range without.Items {
		w := *with.Items[i]
		if w.Body == "" || m.Body != "" {
			t.Fatalf("message %d: body %q with bodies, %q without", i, w.Body, m.Body)
		}
		w.Body = ""
		if *m != w {
			t.Fatalf("message %d without its body = %+v, want %+v", i, *m, w)
		}
	}
}

// seedRelated records n interactions of one contact on one channel, the
// i-th with its last message at base+i minutes, and returns their ids
// newest first (the panel's order) and the contact's id.
func seedRelated(t *testing.T, s store.Store, tenant string, n int) ([]string, string) {
	t.Helper()
	var out []string
	var contact string
	for i := range n {
		r := record(t, s, tenant, msg(t, related.ChannelEmail, fmt.Sprint("rel-", i), "p@x.io", fmt.Sprint("body ", i), base.Add(time.Duration(i)*time.Minute)))
		out = append([]string{r.Interaction.ID}, out...)
		contact = r.Contact.ID
	}
	return out, contact
}

func testRelated(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	all, contact := seedRelated(t, e.Store, "t1", 5)
	// Noise: the same address on another channel, another contact.
	record(t, e.Store, "t1", msg(t, related.ChannelWebChat, "w", "p@x.io", "other channel", base.Add(time.Hour)))
	record(t, e.Store, "t1", msg(t, related.ChannelEmail, "q", "q@x.io", "other contact", base.Add(time.Hour)))
	self := all[2]
	q := store.RelatedQuery{ContactID: contact, Exclude: self}
	page, err := e.Store.ListRelated(ctx, "t1", q, store.Page{First: 20})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{all[0], all[1], all[3], all[4]}
	if !equal(ids(page.Items), want) || page.HasNextPage || page.HasPreviousPage {
		t.Fatalf("related = %v next=%v prev=%v, want %v", ids(page.Items), page.HasNextPage, page.HasPreviousPage, want)
	}
	n, err := e.Store.CountRelated(ctx, "t1", q)
	if err != nil || n != 4 {
		t.Fatalf("CountRelated = %d, %v; want 4", n, err)
	}
	// Closing one keeps it in the panel with its state.
	if _, err := e.Store.CloseInteraction(ctx, "t1", all[0], related.ClosedStateSpam, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	page, _ = e.Store.ListRelated(ctx, "t1", q, store.Page{First: 1})
	if len(page.Items) != 1 || page.Items[0].ClosedState != related.ClosedStateSpam || !page.HasNextPage {
		t.Fatalf("first item = %+v next=%v, want the closed one, more to come", page.Items, page.HasNextPage)
	}
	page, _ = e.Store.ListRelated(ctx, "t1", q, store.Page{First: 0})
	if len(page.Items) != 0 || !page.HasNextPage {
		t.Fatalf("first: 0 = %v next=%v, want no items and a next page", ids(page.Items), page.HasNextPage)
	}
}

func testRelatedPaging(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	all, contact := seedRelated(t, e.Store, "t1", 11)
	q := store.RelatedQuery{ContactID: contact, Exclude: "none"}
	for _, size := range []int{1, 3, 4, 11, 20} {
		var got []string
		p := store.Page{First: size}
		for {
			page, err := e.Store.ListRelated(ctx, "t1", q, p)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids(page.Items)...)
			if !page.HasNextPage {
				break
			}
			c := store.InteractionCursor(page.Items[len(page.Items)-1])
			p = store.Page{First: size, After: &c}
		}
		if !equal(got, all) {
			t.Fatalf("forward by %d = %v, want %v", size, got, all)
		}
		got = nil
		p = store.Page{Last: size}
		for {
			page, err := e.Store.ListRelated(ctx, "t1", q, p)
			if err != nil {
				t.Fatal(err)
			}
			got = append(ids(page.Items), got...)
			if !page.HasPreviousPage {
				break
			}
			c := store.InteractionCursor(page.Items[0])
			p = store.Page{Last: size, Before: &c}
		}
		if !equal(got, all) {
			t.Fatalf("backward by %d = %v, want %v", size, got, all)
		}
	}
	// A window between two cursors.
	after, before := store.Cursor{At: base.Add(9 * time.Minute), ID: all[1]}, store.Cursor{At: base.Add(5 * time.Minute), ID: all[5]}
	page, err := e.Store.ListRelated(ctx, "t1", q, store.Page{First: 20, After: &after, Before: &before})
	if err != nil || !equal(ids(page.Items), all[2:5]) {
		t.Fatalf("window = %v, %v; want %v", ids(page.Items), err, all[2:5])
	}
}

func testRelatedPagingUnderInserts(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	all, contact := seedRelated(t, e.Store, "t1", 9)
	q := store.RelatedQuery{ContactID: contact}
	var got []string
	p := store.Page{First: 2}
	for round := 0; ; round++ {
		page, err := e.Store.ListRelated(ctx, "t1", q, p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(page.Items)...)
		if !page.HasNextPage {
			break
		}
		// New interactions arrive while the agent pages: they are newer
		// than everything, so they belong before the pages already read
		// and must neither shift the next page nor show up in it.
		record(t, e.Store, "t1", msg(t, related.ChannelEmail, fmt.Sprint("late-", round), "p@x.io", "late", base.Add(time.Duration(100+round)*time.Minute)))
		c := store.InteractionCursor(page.Items[len(page.Items)-1])
		p = store.Page{First: 2, After: &c}
	}
	if !equal(got, all) {
		t.Fatalf("paging under inserts = %v, want %v (no item skipped or repeated)", got, all)
	}
	// 9 seeded plus one per page turn: the count is exact.
	n, _ := e.Store.CountRelated(ctx, "t1", q)
	if n != 9+4 {
		t.Fatalf("CountRelated = %d, want 13", n)
	}
}

func testListInteractions(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	var all []string // newest first
	for i := range 6 {
		r := record(t, e.Store, "t1", msg(t, related.ChannelEmail, fmt.Sprint("th", i), fmt.Sprintf("l%d@x.io", i%2), "hi", base.Add(time.Duration(i)*time.Minute)))
		all = append([]string{r.Interaction.ID}, all...)
	}
	record(t, e.Store, "t2", msg(t, related.ChannelEmail, "other", "l0@x.io", "other tenant", base.Add(time.Hour)))
	for _, id := range []string{all[1], all[4]} {
		if _, err := e.Store.CloseInteraction(ctx, "t1", id, related.ClosedStateClosed, base); err != nil {
			t.Fatal(err)
		}
	}
	page, err := e.Store.ListInteractions(ctx, "t1", store.InteractionFilter{}, store.Page{First: 4})
	if err != nil || !equal(ids(page.Items), all[:4]) || !page.HasNextPage {
		t.Fatalf("recent = %v next=%v, %v; want %v", ids(page.Items), page.HasNextPage, err, all[:4])
	}
	c := store.InteractionCursor(page.Items[3])
	page, err = e.Store.ListInteractions(ctx, "t1", store.InteractionFilter{}, store.Page{First: 4, After: &c})
	if err != nil || !equal(ids(page.Items), all[4:]) || page.HasNextPage {
		t.Fatalf("recent page 2 = %v, %v; want %v", ids(page.Items), err, all[4:])
	}
	page, err = e.Store.ListInteractions(ctx, "t1", store.InteractionFilter{Status: related.StatusOpen}, store.Page{First: 10})
	want := []string{all[0], all[2], all[3], all[5]}
	if err != nil || !equal(ids(page.Items), want) {
		t.Fatalf("open = %v, %v; want %v", ids(page.Items), err, want)
	}
	for f, want := range map[related.Status]int{"": 6, related.StatusOpen: 4, related.StatusClosed: 2} {
		if n, err := e.Store.CountInteractions(ctx, "t1", store.InteractionFilter{Status: f}); err != nil || n != want {
			t.Fatalf("count %q = %d, %v; want %d", f, n, err, want)
		}
	}
	page, err = e.Store.ListInteractions(ctx, "t1", store.InteractionFilter{Status: related.StatusClosed}, store.Page{Last: 1})
	if err != nil || !equal(ids(page.Items), []string{all[4]}) || !page.HasPreviousPage {
		t.Fatalf("closed, last 1 = %v prev=%v, %v; want %v", ids(page.Items), page.HasPreviousPage, err, all[4])
	}
}

func testContactAttributes(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	in := msg(t, related.ChannelEmail, "th", "e@x.io", "hi", base)
	in.Contact.Attributes = []related.Attribute{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}
	r := record(t, e.Store, "t1", in)
	c, err := e.Store.SetContactAttributes(ctx, "t1", r.Contact.ID, []related.Attribute{{Key: "b", Value: ""}, {Key: "c", Value: "3"}, {Key: "a", Value: "9"}}, agent)
	if err != nil {
		t.Fatal(err)
	}
	want := []related.Attribute{{Key: "a", Value: "9"}, {Key: "c", Value: "3"}}
	cs, _ := e.Store.Contacts(ctx, "t1", []string{r.Contact.ID})
	for _, got := range [][]related.Attribute{c.Attributes, cs[0].Attributes} {
		if !slices.EqualFunc(got, want, related.Attribute.SameFact) {
			t.Fatalf("attributes = %v, want %v", got, want)
		}
	}
	// A later message's attributes merge the same way.
	in = msg(t, related.ChannelEmail, "th", "e@x.io", "again", base.Add(time.Minute))
	in.Contact.Attributes = []related.Attribute{{Key: "d", Value: "4"}}
	r = record(t, e.Store, "t1", in)
	if !slices.EqualFunc(r.Contact.Attributes, append(want, related.Attribute{Key: "d", Value: "4"}), related.Attribute.SameFact) {
		t.Fatalf("attributes after message = %v", r.Contact.Attributes)
	}
	_, err = e.Store.SetContactAttributes(ctx, "t1", "missing", want, agent)
	wantCode(t, err, related.CodeNotFound)
}

func testPreferences(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	p, err := e.Store.Preferences(ctx, "t1", "agent-a")
	if err != nil || p != related.DefaultPreferences {
		t.Fatalf("defaults = %+v, %v", p, err)
	}
	if err := e.Store.SetPreferences(ctx, "t1", "agent-a", related.Preferences{ShowRelated: false}); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.SetPreferences(ctx, "t1", "agent-a", related.Preferences{ShowRelated: false}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tenant, who string
		want        bool
	}{{"t1", "agent-a", false}, {"t1", "agent-b", true}, {"t2", "agent-a", true}} {
		p, err := e.Store.Preferences(ctx, c.tenant, c.who)
		if err != nil || p.ShowRelated != c.want {
			t.Fatalf("%s/%s showRelated = %v, %v; want %v", c.tenant, c.who, p.ShowRelated, err, c.want)
		}
	}
}

func testTenantIsolation(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	in := msg(t, related.ChannelEmail, "th", "f@x.io", "t1 secret", base)
	in.Queue = "Q"
	a := record(t, e.Store, "t1", in)
	b := record(t, e.Store, "t2", in)
	if a.Interaction.ID == b.Interaction.ID || a.Contact.ID == b.Contact.ID {
		t.Fatalf("two tenants share documents: %+v %+v", a, b)
	}
	check := func(what string, n int, err error) {
		t.Helper()
		if err != nil || n != 0 {
			t.Fatalf("%s across tenants = %d items, %v; want none", what, n, err)
		}
	}
	is, err := e.Store.Interactions(ctx, "t2", []string{a.Interaction.ID})
	check("Interactions", len(is), err)
	cs, err := e.Store.Contacts(ctx, "t2", []string{a.Contact.ID})
	check("Contacts", len(cs), err)
	ms, err := e.Store.Messages(ctx, "t2", []string{a.Message.ID})
	check("Messages", len(ms), err)
	if a.Interaction.QueueID != b.Interaction.QueueID {
		qs, err := e.Store.Queues(ctx, "t2", []string{a.Interaction.QueueID})
		check("Queues", len(qs), err)
	}
	lp, err := e.Store.ListInteractions(ctx, "t3", store.InteractionFilter{}, store.Page{First: 10})
	check("ListInteractions", len(lp.Items), err)
	n, err := e.Store.CountInteractions(ctx, "t3", store.InteractionFilter{})
	check("CountInteractions", n, err)
	mp, err := e.Store.ListMessages(ctx, "t2", a.Interaction.ID, store.Page{First: 10}, true)
	check("ListMessages", len(mp.Items), err)
	n, err = e.Store.CountMessages(ctx, "t2", a.Interaction.ID)
	check("CountMessages", n, err)
	rp, err := e.Store.ListRelated(ctx, "t2", store.RelatedQuery{ContactID: a.Contact.ID}, store.Page{First: 10})
	check("ListRelated", len(rp.Items), err)
	n, err = e.Store.CountRelated(ctx, "t2", store.RelatedQuery{ContactID: a.Contact.ID})
	check("CountRelated", n, err)
	_, err = e.Store.CloseInteraction(ctx, "t2", a.Interaction.ID, related.ClosedStateSpam, base)
	wantCode(t, err, related.CodeNotFound)
	_, err = e.Store.ReopenInteraction(ctx, "t2", a.Interaction.ID)
	wantCode(t, err, related.CodeNotFound)
	_, err = e.Store.SetContactAttributes(ctx, "t2", a.Contact.ID, []related.Attribute{{Key: "k", Value: "v"}}, agent)
	wantCode(t, err, related.CodeNotFound)
	// t1's documents are untouched by t2's attempts.
	got, _ := e.Store.Interactions(ctx, "t1", []string{a.Interaction.ID})
	if got[0].Status != related.StatusOpen {
		t.Fatalf("t2 closed t1's interaction")
	}
	c, _ := e.Store.Contacts(ctx, "t1", []string{a.Contact.ID})
	if len(c[0].Attributes) != 0 {
		t.Fatalf("t2 changed t1's contact: %+v", c[0])
	}
}

func testRestart(t *testing.T, open Opener) {
	e := open(t)
	r := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "g@x.io", "kept", base))
	if err := e.Store.SetPreferences(context.Background(), "t1", "agent", related.Preferences{}); err != nil {
		t.Fatal(err)
	}
	s := e.Reopen(t)
	got, err := s.Interactions(context.Background(), "t1", []string{r.Interaction.ID})
	if err != nil || len(got) != 1 || got[0].LastMessage.Body != "kept" {
		t.Fatalf("after restart = %+v, %v", got, err)
	}
	p, _ := s.Preferences(context.Background(), "t1", "agent")
	if p.ShowRelated {
		t.Fatalf("preferences lost across restart")
	}
	// The schema set-up is idempotent: recording works as before.
	again := record(t, s, "t1", msg(t, related.ChannelEmail, "th", "g@x.io", "more", base.Add(time.Minute)))
	if again.Interaction.ID != r.Interaction.ID {
		t.Fatalf("after restart the thread opened %q, want %q", again.Interaction.ID, r.Interaction.ID)
	}
}

func testBatchOneCommand(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	var iids, cids, mids, qids []string
	for i := range 30 {
		in := msg(t, related.ChannelEmail, fmt.Sprint("th", i), fmt.Sprintf("b%d@x.io", i), "hi", base)
		in.Queue = fmt.Sprint("queue ", i%7)
		r := record(t, e.Store, "t1", in)
		iids, cids, mids, qids = append(iids, r.Interaction.ID), append(cids, r.Contact.ID), append(mids, r.Message.ID), append(qids, r.Interaction.QueueID)
	}
	for _, c := range []struct {
		name string
		fn   func() error
	}{
		{"Interactions", func() error { _, err := e.Store.Interactions(ctx, "t1", iids); return err }},
		{"Contacts", func() error { _, err := e.Store.Contacts(ctx, "t1", cids); return err }},
		{"Messages", func() error { _, err := e.Store.Messages(ctx, "t1", mids); return err }},
		{"Queues", func() error { _, err := e.Store.Queues(ctx, "t1", qids); return err }},
		{"ListRelated", func() error {
			_, err := e.Store.ListRelated(ctx, "t1", store.RelatedQuery{ContactID: cids[0]}, store.Page{First: 100})
			return err
		}},
		{"CountRelated", func() error {
			_, err := e.Store.CountRelated(ctx, "t1", store.RelatedQuery{ContactID: cids[0]})
			return err
		}},
	} {
		before := e.Commands.Total()
		if err := c.fn(); err != nil {
			t.Fatal(err)
		}
		if n := e.Commands.Total() - before; n != 1 {
			t.Errorf("%s of 30 ids cost %d commands, want 1", c.name, n)
		}
	}
}

func testConcurrentThread(t *testing.T, open Opener) {
	e := open(t)
	if !e.Atomic {
		t.Skip("the database does not apply concurrent updates to one document atomically (FerretDB, DESIGN.md section 2); runs on SQLite and on a real MongoDB via MONGODB_URI")
	}
	ctx := context.Background()
	const writers, each = 8, 10
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				in := msg(t, related.ChannelSMS, "busy", "+15550100", fmt.Sprintf("w%d-%d", w, i), base.Add(time.Duration(w*each+i)*time.Second))
				if _, err := e.Store.RecordMessage(ctx, "t1", in); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	r := record(t, e.Store, "t1", msg(t, related.ChannelSMS, "busy", "+15550100", "final", base.Add(time.Hour)))
	page, err := e.Store.ListRelated(ctx, "t1", store.RelatedQuery{ContactID: r.Contact.ID, Exclude: r.Interaction.ID}, store.Page{First: 10})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("concurrent messages on one thread opened %d extra interactions", len(page.Items))
	}
	n, _ := e.Store.CountMessages(ctx, "t1", r.Interaction.ID)
	if n != writers*each+1 {
		t.Fatalf("%d messages stored, want %d", n, writers*each+1)
	}
	got, _ := e.Store.Interactions(ctx, "t1", []string{r.Interaction.ID})
	if got[0].LastMessage.Body != "final" {
		t.Fatalf("lastMessage = %q, want final", got[0].LastMessage.Body)
	}
}

func testEvents(t *testing.T, open Opener) {
	e := open(t)
	if e.Events == nil {
		t.Fatal("the adapter's Env must expose its published events")
	}
	ctx := context.Background()
	r := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "h@x.io", "hi", base))
	record(t, e.Store, "t1", msg(t, related.ChannelEmail, "th", "h@x.io", "more", base.Add(time.Minute)))
	if _, err := e.Store.CloseInteraction(ctx, "t1", r.Interaction.ID, related.ClosedStateClosed, base); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.ReopenInteraction(ctx, "t1", r.Interaction.ID); err != nil {
		t.Fatal(err)
	}
	var kinds []store.EventKind
	seen := map[string]bool{}
	for _, ev := range e.Events() {
		if ev.Kind == store.ProfileChanged {
			continue // profile events have their own tests
		}
		if ev.Tenant != "t1" || ev.InteractionID != r.Interaction.ID || ev.ContactID != r.Contact.ID || ev.ID == "" || seen[ev.ID] {
			t.Fatalf("event = %+v", ev)
		}
		seen[ev.ID] = true
		kinds = append(kinds, ev.Kind)
	}
	want := []store.EventKind{store.InteractionCreated, store.InteractionUpdated, store.InteractionUpdated, store.InteractionUpdated}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("events = %v, want %v", kinds, want)
	}
}
