package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// RunCanonical runs the suite of canonical addresses (issue 10): one
// customer on one channel is one contact, whatever form the address takes.
func RunCanonical(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"AddressVariantsAreOneContact", testAddressVariants},
		{"UnparseableAddressKeptAndWarned", testUnparseable},
		{"RegionChangeMergesContacts", testRegionChange},
		{"RandomVariantsOneContactPerChannel", testRandomVariants},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// raw builds a RecordMessage with the address exactly as a channel sent it.
func raw(t *testing.T, ch related.Channel, thread, addr, name string, at time.Time) related.RecordMessage {
	t.Helper()
	in, err := related.RecordMessage{
		Channel: ch, ThreadRef: thread, Direction: related.Inbound, Body: "message on " + thread, SentAt: at,
		Contact: related.ContactInput{Address: addr, Name: name},
	}.Normalize(time.Now())
	if err != nil {
		t.Fatalf("normalize %q: %v", addr, err)
	}
	return in
}

func setRegion(t *testing.T, s store.Store, tenant, region string) {
	t.Helper()
	if _, err := s.SetTenantSettings(context.Background(), tenant, related.TenantSettings{DefaultRegion: region}); err != nil {
		t.Fatal(err)
	}
	drainCanonical(t, s, tenant)
	drain(t, s, tenant)
}

func drainCanonical(t *testing.T, s store.Store, tenant string) {
	t.Helper()
	for range 1000 {
		done, err := s.CanonicalizeContacts(context.Background(), tenant, 5)
		if err != nil {
			t.Fatalf("canonicalize: %v", err)
		}
		if done {
			return
		}
	}
	t.Fatal("canonicalization never finished")
}

// oneContact records each variant on its own thread and checks they all
// reached one contact whose CHANNEL panel lists the other threads.
func oneContact(t *testing.T, s store.Store, tenant string, ch related.Channel, want string, variants []string) *related.Contact {
	t.Helper()
	var ids []string
	var last *store.RecordResult
	for i, v := range variants {
		last = record(t, s, tenant, raw(t, ch, fmt.Sprintf("%s-%d", want, i), v, "", base.Add(time.Duration(i)*time.Minute)))
		ids = append(ids, last.Contact.ID)
		if last.Contact.Address != want || len(last.Warnings) != 0 {
			t.Fatalf("%s %q: address %q, warnings %v; want %q", ch, v, last.Contact.Address, last.Warnings, want)
		}
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("%s variants of %s made contacts %v", ch, want, ids)
		}
	}
	page, err := s.ListRelated(context.Background(), tenant, store.RelatedQuery{ContactID: ids[0], Exclude: last.Interaction.ID}, store.Page{First: 50})
	if err != nil || len(page.Items) != len(variants)-1 {
		t.Fatalf("CHANNEL panel of %s lists %d of the %d other threads (%v)", want, len(page.Items), len(variants)-1, err)
	}
	return contactOf(t, s, tenant, ids[0])
}

func testAddressVariants(t *testing.T, open Opener) {
	e := open(t)
	setRegion(t, e.Store, "t1", "GB")
	phones := []string{
		"07400 123456", "447400123456", "+447400123456", "+44 7400 123456", "0044 7400 123456",
		"(07400) 123-456", "07400.123.456", "+44 (0) 7400 123456", "07400 123456 ext. 12", "\u200b+447400123456\u200d",
	}
	for _, ch := range []related.Channel{related.ChannelSMS, related.ChannelWhatsApp, related.ChannelVoice} {
		oneContact(t, e.Store, "t1", ch, "+447400123456", phones)
	}
	// Numbers of other regions keep their country.
	oneContact(t, e.Store, "t1", related.ChannelSMS, "+12025550143", []string{"+1 (202) 555-0143", "001 202 555 0143", "+1.202.555.0143"})
	c := oneContact(t, e.Store, "t1", related.ChannelEmail, "ann.lee@example.com", []string{
		"Ann Lee <ann.lee@example.com>", "mailto:ann.lee@example.com", "ANN.LEE@Example.COM", "<ann.lee@example.com>",
		" ann.lee@example.com\u200b", "\ufeffann.lee@exam\u00adple.com", "\"Lee, Ann\" <Ann.Lee@example.com>", "MAILTO:ann.lee@example.com?subject=hi",
	})
	if c.Name != "Ann Lee" {
		t.Fatalf("name = %q, want the sender's display name", c.Name)
	}
	// Without rules the profile is the email's alone; the name is the
	// person's.
	if p := profileOf(t, e.Store, "t1", c.ProfileID); p.Name != "Ann Lee" || p.Identifiers[0].Value != "ann.lee@example.com" {
		t.Fatalf("profile = %+v, want the person's name and the canonical address", p)
	}
	// Opaque ids are kept exactly, trimmed.
	oneContact(t, e.Store, "t1", related.ChannelWebChat, "Visitor-ABC", []string{"Visitor-ABC", " Visitor-ABC ", "\u200bVisitor-ABC"})
	w := record(t, e.Store, "t1", raw(t, related.ChannelTwitter, "tw", "@AnnLee", "", base))
	if w.Contact.Address != "@AnnLee" {
		t.Fatalf("twitter id = %q, want it exactly", w.Contact.Address)
	}
}

func testUnparseable(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	for _, c := range []struct {
		ch   related.Channel
		addr string
	}{{related.ChannelEmail, "bob @example.com"}, {related.ChannelSMS, "call me maybe"}, {related.ChannelVoice, "07400 123456"}} {
		r := record(t, e.Store, "t1", raw(t, c.ch, "u-"+c.addr, c.addr, "", base))
		if len(r.Warnings) != 1 || r.Warnings[0].Code != related.WarnUnparseableAddress || strings.Join(r.Warnings[0].Field, ".") != "contact.address" {
			t.Fatalf("%q: warnings %+v", c.addr, r.Warnings)
		}
		got := contactOf(t, e.Store, "t1", r.Contact.ID)
		if got.AddressStatus != related.AddressUnparseable || got.ProfileID != "" {
			t.Fatalf("%q: contact %+v, want UNPARSEABLE and in no profile", c.addr, got)
		}
		if ms, err := e.Store.ListMessages(ctx, "t1", r.Interaction.ID, store.Page{First: 10}, true); err != nil || len(ms.Items) != 1 {
			t.Fatalf("%q: the message was not kept: %v, %v", c.addr, ms, err)
		}
		// The same bad address again is the same contact.
		if again := record(t, e.Store, "t1", raw(t, c.ch, "u2-"+c.addr, c.addr, "", base)); again.Contact.ID != r.Contact.ID {
			t.Fatalf("%q: a second contact for the same unparseable address", c.addr)
		}
	}
}

func testRegionChange(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	if s, err := e.Store.TenantSettings(ctx, "t1"); err != nil || s.DefaultRegion != "" {
		t.Fatalf("a new tenant's settings = %+v, %v; want no region", s, err)
	}
	national := record(t, e.Store, "t1", raw(t, related.ChannelSMS, "a", "07400 123456", "Ann", base))
	intl := record(t, e.Store, "t1", raw(t, related.ChannelSMS, "b", "+44 7400 123456", "", base.Add(time.Minute)))
	other := record(t, e.Store, "t1", raw(t, related.ChannelSMS, "c", "07400 999999", "", base.Add(2*time.Minute)))
	if national.Contact.ID == intl.Contact.ID || national.Contact.AddressStatus != related.AddressUnparseable {
		t.Fatalf("without a region: %+v and %+v", national.Contact, intl.Contact)
	}
	if _, err := e.Store.SetTenantSettings(ctx, "t1", related.TenantSettings{DefaultRegion: "GB"}); err != nil {
		t.Fatal(err)
	}
	// Contacts written after the run started count in its total.
	record(t, e.Store, "t1", raw(t, related.ChannelSMS, "e", "+44 7400 555555", "", base.Add(3*time.Minute)))
	drainCanonical(t, e.Store, "t1")
	drain(t, e.Store, "t1")
	if s, _ := e.Store.TenantSettings(ctx, "t1"); s.DefaultRegion != "GB" {
		t.Fatalf("settings = %+v", s)
	}
	cz, err := e.Store.Canonicalization(ctx, "t1")
	if err != nil || cz == nil || cz.State != "DONE" || cz.Merged != 1 || cz.Processed < 4 || cz.Total != cz.Processed {
		t.Fatalf("canonicalization = %+v, %v", cz, err)
	}
	want := related.ContactID("t1", related.ChannelSMS, "+447400123456")
	cs, _ := e.Store.Contacts(ctx, "t1", []string{national.Contact.ID, intl.Contact.ID, want})
	if len(cs) != 1 || cs[0].ID != want || cs[0].Name != "Ann" || cs[0].AddressStatus != related.AddressValid {
		t.Fatalf("contacts after the region = %+v, want one, %s, named Ann", cs, want)
	}
	// The merged-away id leads to the contact it became, in its tenant only.
	if m, err := e.Store.ContactAliases(ctx, "t1", []string{national.Contact.ID, intl.Contact.ID, want}); err != nil ||
		len(m) != 1 || m[national.Contact.ID] != want {
		t.Fatalf("ContactAliases = %v, %v; want %s -> %s only", m, err, national.Contact.ID, want)
	}
	if m, err := e.Store.ContactAliases(ctx, "t2", []string{national.Contact.ID}); err != nil || len(m) != 0 {
		t.Fatalf("t2 ContactAliases = %v, %v; want none", m, err)
	}
	its, _ := e.Store.Interactions(ctx, "t1", []string{national.Interaction.ID, intl.Interaction.ID})
	for _, i := range its {
		if i.ContactID != want {
			t.Fatalf("interaction %s is on contact %s, want %s", i.ID, i.ContactID, want)
		}
	}
	for _, id := range []string{national.Interaction.ID, intl.Interaction.ID} {
		if ms, _ := e.Store.ListMessages(ctx, "t1", id, store.Page{First: 10}, true); len(ms.Items) != 1 {
			t.Fatalf("messages of %s = %d, want 1 (none lost, none doubled)", id, len(ms.Items))
		}
	}
	if o := contactOf(t, e.Store, "t1", related.ContactID("t1", related.ChannelSMS, "+447400999999")); o.AddressStatus != related.AddressValid {
		t.Fatalf("the other number = %+v", o)
	}
	_ = other
	// Another tenant's settings and contacts are its own.
	if s, _ := e.Store.TenantSettings(ctx, "t2"); s.DefaultRegion != "" {
		t.Fatalf("t2 settings = %+v", s)
	}
	if c, _ := e.Store.Canonicalization(ctx, "t2"); c != nil {
		t.Fatalf("t2 sees t1's canonicalization: %+v", c)
	}
	if done, err := e.Store.CanonicalizeContacts(ctx, "t2", 10); !done || err != nil {
		t.Fatalf("t2 canonicalization = %v, %v", done, err)
	}
	// A new message in national form finds the merged contact.
	if r := record(t, e.Store, "t1", raw(t, related.ChannelSMS, "d", "07400 123456", "", base.Add(time.Hour))); r.Contact.ID != want {
		t.Fatalf("a national number after the region went to %s", r.Contact.ID)
	}
	// Idempotent: running again changes nothing.
	if _, err := e.Store.SetTenantSettings(ctx, "t1", related.TenantSettings{DefaultRegion: "GB"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.Store.CountInteractions(ctx, "t1", store.InteractionFilter{}); n != 5 {
		t.Fatalf("interactions = %d, want 5", n)
	}
}

// testRandomVariants records the same people's messages under random
// variants of one address per channel and expects one contact per
// (channel, person), with every message kept.
func testRandomVariants(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	setRegion(t, e.Store, "t1", "GB")
	rng := rand.New(rand.NewPCG(3, 5))
	people, msgs := 12, 120
	if e.Slow {
		people, msgs = 6, 40
	}
	phoneVariant := func(p int) string {
		n := fmt.Sprintf("7400%06d", 100000+p)
		forms := []string{"0" + n, "+44" + n, "0044" + n, "44" + n, "+44 " + n[:4] + " " + n[4:], "0" + n[:4] + "-" + n[4:], "(0" + n[:4] + ") " + n[4:]}
		return forms[rng.IntN(len(forms))]
	}
	emailVariant := func(p int) string {
		a := fmt.Sprintf("person.%d@example.com", p)
		forms := []string{a, strings.ToUpper(a), "Person " + fmt.Sprint(p) + " <" + a + ">", "mailto:" + a, " " + a + "\u200b", "<" + a + ">"}
		return forms[rng.IntN(len(forms))]
	}
	contacts := map[string]map[string]bool{} // channel/person -> contact ids
	for i := range msgs {
		p := rng.IntN(people)
		ch := []related.Channel{related.ChannelSMS, related.ChannelWhatsApp, related.ChannelEmail}[rng.IntN(3)]
		addr := phoneVariant(p)
		if ch == related.ChannelEmail {
			addr = emailVariant(p)
		}
		r := record(t, e.Store, "t1", raw(t, ch, fmt.Sprint("th-", i), addr, "", base.Add(time.Duration(i)*time.Second)))
		key := fmt.Sprint(ch, "/", p)
		if contacts[key] == nil {
			contacts[key] = map[string]bool{}
		}
		contacts[key][r.Contact.ID] = true
	}
	for k, ids := range contacts {
		if len(ids) != 1 {
			t.Fatalf("%s made %d contacts", k, len(ids))
		}
	}
	if n, _ := e.Store.CountInteractions(ctx, "t1", store.InteractionFilter{}); n != msgs {
		t.Fatalf("interactions = %d, want %d", n, msgs)
	}
}
