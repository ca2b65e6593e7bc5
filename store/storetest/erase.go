package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/export"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// RunErasure runs the suite of the right to erasure (issue 12).
func RunErasure(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"EraseProfileLeavesNoTrace", testEraseProfile},
		{"EraseContactKeepsTheRest", testEraseContact},
		{"ExportRoundTripsEveryMessage", testExport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// person records a customer on three channels, with attributes, a merge,
// a suggestion with someone else and history, and returns one of its
// interactions' results per channel.
func person(t *testing.T, s store.Store) (email, sms, chat *store.RecordResult) {
	t.Helper()
	ctx := context.Background()
	saveRule(t, s, "t1", identity.Rule{Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, DefaultRegion: "GB"})
	email = record(t, s, "t1", msg(t, related.ChannelEmail, "zed-1", "zed.quill@example.com", "Zed's secret-text-email about order 4242", base))
	in := withAttested(msg(t, related.ChannelSMS, "zed-2", "+447400987654", "Zed's secret-text-sms", base.Add(time.Minute)), "email", "zed.quill@example.com")
	in.Contact.Name = "Zed Quillfeather"
	sms = record(t, s, "t1", in)
	chat = record(t, s, "t1", withAttrs(msg(t, related.ChannelWebChat, "zed-3", "visitor-zed", "Zed's secret-text-chat", base.Add(2*time.Minute)),
		"email", "zed.quill@example.com", "favouriteColour", "zed-secret-colour"))
	if _, err := s.RenameProfile(ctx, "t1", pid(t, s, "t1", email), "Zed Q. (VIP)", admin); err != nil {
		t.Fatal(err)
	}
	if pid(t, s, "t1", sms) != pid(t, s, "t1", email) || pid(t, s, "t1", chat) == pid(t, s, "t1", email) {
		t.Fatal("setup: the attested channels are one profile, the claimed chat another")
	}
	return email, sms, chat
}

func testEraseProfile(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	email, sms, chat := person(t, e.Store)
	// Someone else, who merely suggests Zed (a claimed email).
	other := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "amy", "amy@example.com", "Amy's own message", base), "note", "x"))
	zed := pid(t, e.Store, "t1", email)
	// The chat is linked by hand, so erasing the profile takes it too.
	if _, err := e.Store.LinkContact(ctx, "t1", zed, chat.Contact.ID, admin); err != nil {
		t.Fatal(err)
	}
	// An admin turned the email rule off and on: the runs' samples name
	// Zed's contacts, and go with Zed too.
	rules, _ := e.Store.ProfileRules(ctx, "t1")
	for _, r := range rules {
		if r.Attribute == "email" {
			for _, on := range []bool{false, true} {
				r.Enabled = on
				saveRule(t, e.Store, "t1", r)
				drain(t, e.Store, "t1")
			}
		}
	}
	if ev, err := e.Store.RuleEvaluation(ctx, "t1"); err != nil || ev == nil || len(ev.Summary.Samples) == 0 {
		t.Fatalf("setup: the email rule's run has no samples: %+v, %v", ev, err)
	}
	// An admin blocked Zed's number: a value only Zed holds, which goes
	// with Zed whatever its state.
	for _, r := range rules {
		if r.Attribute == "phone" {
			if _, err := e.Store.SetValueQuarantine(ctx, "t1", r.ID, "+447400987654", identity.QuarantineBlocked, admin); err != nil {
				t.Fatal(err)
			}
		}
	}
	if e.Search != nil && !e.Slow {
		// Enough others after Zed that the pages holding Zed's rows and
		// index entries split and move: the copies that leaves behind in
		// free space must go too.
		for i := range 400 {
			record(t, e.Store, "t1", msg(t, related.ChannelSMS, fmt.Sprintf("o-%d", i), fmt.Sprintf("+4474009%05d", i*7), "someone else", base.Add(time.Duration(i)*time.Second)))
		}
	}
	er, err := e.Store.EraseProfile(ctx, "t1", zed, "GDPR request 17", admin)
	if err != nil {
		t.Fatal(err)
	}
	if er.Contacts != 3 || er.Interactions != 3 || er.Messages != 3 || er.Subject != related.ErasureProfile || er.Reason != "GDPR request 17" || er.By != admin {
		t.Fatalf("erasure = %+v", er)
	}
	// Every erased id reads as not found.
	if cs, _ := e.Store.Contacts(ctx, "t1", []string{email.Contact.ID, sms.Contact.ID, chat.Contact.ID}); len(cs) != 0 {
		t.Fatalf("erased contacts still read: %+v", cs)
	}
	if its, _ := e.Store.Interactions(ctx, "t1", []string{email.Interaction.ID, sms.Interaction.ID, chat.Interaction.ID}); len(its) != 0 {
		t.Fatalf("erased interactions still read: %+v", its)
	}
	if ms, _ := e.Store.Messages(ctx, "t1", []string{email.Message.ID, sms.Message.ID, chat.Message.ID}); len(ms) != 0 {
		t.Fatalf("erased messages still read: %+v", ms)
	}
	if ps, _ := e.Store.Profiles(ctx, "t1", []string{zed}); len(ps) != 0 {
		t.Fatalf("the erased profile still reads: %+v", ps)
	}
	if p, _ := e.Store.ProfileByIdentifier(ctx, "t1", related.Identifier{Key: "email", Value: "zed.quill@example.com"}); p != nil {
		t.Fatalf("the erased email still finds %+v", p)
	}
	if hubs, err := e.Store.HubValues(ctx, "t1", store.Page{First: 100}); err != nil || len(hubs.Items) != 0 {
		t.Fatalf("hub values after the erasure = %+v, %v; want Zed's blocked number gone", hubs, err)
	}
	if _, err := e.Store.EraseProfile(ctx, "t1", zed, "again", admin); !related.IsNotFound(err) {
		t.Fatalf("erasing again: %v, want NOT_FOUND", err)
	}
	// The others are untouched.
	if c := contactOf(t, e.Store, "t1", other.Contact.ID); c.Name == "" {
		t.Fatalf("the other customer = %+v", c)
	}
	page, err := e.Store.Erasures(ctx, "t1", store.Page{First: 10})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != er.ID {
		t.Fatalf("erasures = %+v, %v", page, err)
	}
	if other, _ := e.Store.Erasures(ctx, "t2", store.Page{First: 10}); len(other.Items) != 0 {
		t.Fatalf("t2 lists t1's erasures")
	}
	// No trace anywhere: addresses, name, attribute values, message text.
	if e.Search == nil {
		t.Skip("the adapter cannot search its stored bytes")
	}
	for _, needle := range []string{"zed.quill", "Quillfeather", "+447400987654", "visitor-zed", "secret-text", "zed-secret-colour", "Zed Q. (VIP)"} {
		if where := e.Search(t, needle); where != "" {
			t.Errorf("%q is still stored: %s", needle, where)
		}
	}
}

func testEraseContact(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	email, sms, _ := person(t, e.Store)
	zed := pid(t, e.Store, "t1", email)
	er, err := e.Store.EraseContact(ctx, "t1", sms.Contact.ID, "the number was reassigned", admin)
	if err != nil || er.Contacts != 1 || er.Interactions != 1 || er.Messages != 1 || er.Subject != related.ErasureContact {
		t.Fatalf("erasure = %+v, %v", er, err)
	}
	if cs, _ := e.Store.Contacts(ctx, "t1", []string{sms.Contact.ID}); len(cs) != 0 {
		t.Fatal("the erased contact still reads")
	}
	p := profileOf(t, e.Store, "t1", pid(t, e.Store, "t1", email))
	if p.ContactCount != 1 || len(p.Channels) != 1 || p.Channels[0] != related.ChannelEmail {
		t.Fatalf("the rest of the profile = %+v (was %s)", p, zed)
	}
	for _, id := range p.Identifiers {
		if id.Value == "+447400987654" {
			t.Fatalf("the erased number is still an identifier: %+v", p.Identifiers)
		}
	}
	_, err = e.Store.EraseContact(ctx, "t1", sms.Contact.ID, "again", admin)
	wantCode(t, err, related.CodeNotFound)
	if e.Search != nil {
		for _, needle := range []string{"+447400987654", "secret-text-sms"} {
			if where := e.Search(t, needle); where != "" {
				t.Errorf("%q is still stored: %s", needle, where)
			}
		}
		if where := e.Search(t, "secret-text-email"); where == "" {
			t.Error("the rest of the profile's messages are gone")
		}
	}
}

func testExport(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	email, sms, _ := person(t, e.Store)
	// A long thread: more messages than one page.
	want := map[string]string{email.Message.ID: email.Message.Body, sms.Message.ID: sms.Message.Body}
	n := 130
	if e.Slow {
		n = 105
	}
	for i := range n {
		r := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "zed-1", "zed.quill@example.com", fmt.Sprintf("line %d of a long thread", i), base.Add(time.Duration(i+10)*time.Second)))
		want[r.Message.ID] = r.Message.Body
	}
	var buf bytes.Buffer
	if err := export.Profile(ctx, e.Store, "t1", related.GlobalID(related.NodeProfile, pid(t, e.Store, "t1", email)), time.Now(), &buf); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	got := map[string]string{}
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var rec struct {
			Type, ID, Body string
			Attributes     []struct{ Key, Value, Source string }
		}
		if err := dec.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		types[rec.Type]++
		if rec.Type == "message" {
			_, id, err := related.ParseGlobalID(rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			got[id] = rec.Body
		}
	}
	if types["profile"] != 1 || types["contact"] != 2 || types["interaction"] != 2 {
		t.Fatalf("records = %v, want one profile, its two contacts and their two interactions", types)
	}
	if len(got) != len(want) {
		t.Fatalf("exported %d messages, want %d", len(got), len(want))
	}
	for id, body := range want {
		if got[id] != body {
			t.Fatalf("message %s exported as %q, want %q", id, got[id], body)
		}
	}
	if err := export.Profile(ctx, e.Store, "t2", pid(t, e.Store, "t1", email), time.Now(), io.Discard); !related.IsNotFound(err) {
		t.Fatalf("t2 exported t1's profile: %v", err)
	}
}
