package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// RunProfiles runs the profile half of the suite.
func RunProfiles(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"DefaultEmailRuleLinksAcrossChannels", testDefaultRule},
		{"RulesValidateAndPersist", testRules},
		{"AttributesLinkAndMergeIntoOlder", testMerge},
		{"BlockedValuesLinkNothing", testBlocked},
		{"MaxPerProfileRecordsConflict", testMaxPerProfile},
		{"UnlinkSplitsAndSticks", testUnlink},
		{"ManualLinkAndRename", testManual},
		{"ExplicitMergeKeepsTheOlder", testExplicitMerge},
		{"RuleChangeReevaluates", testReevaluate},
		{"ProfileTenantIsolation", testProfileIsolation},
		{"RandomTrafficMatchesUnionFind", testUnionFind},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func withAttrs(in related.RecordMessage, kv ...string) related.RecordMessage {
	for i := 0; i < len(kv); i += 2 {
		in.Contact.Attributes = append(in.Contact.Attributes, related.Attribute{Key: kv[i], Value: kv[i+1]})
	}
	return in
}

func contactOf(t *testing.T, s store.Store, tenant, id string) *related.Contact {
	t.Helper()
	cs, err := s.Contacts(context.Background(), tenant, []string{id})
	if err != nil || len(cs) != 1 {
		t.Fatalf("contact %s: %v, %v", id, cs, err)
	}
	return cs[0]
}

func profileOf(t *testing.T, s store.Store, tenant, id string) *related.Profile {
	t.Helper()
	ps, err := s.Profiles(context.Background(), tenant, []string{id})
	if err != nil || len(ps) != 1 {
		t.Fatalf("profile %s: %v, %v", id, ps, err)
	}
	return ps[0]
}

func saveRule(t *testing.T, s store.Store, tenant string, r identity.Rule) identity.Rule {
	t.Helper()
	r, err := r.Validate()
	if err != nil {
		t.Fatal(err)
	}
	r, err = s.SaveProfileRule(context.Background(), tenant, r)
	if err != nil {
		t.Fatalf("save rule: %v", err)
	}
	drain(t, s, tenant)
	return r
}

// drain runs a tenant's rule re-evaluation to its end.
func drain(t *testing.T, s store.Store, tenant string) {
	t.Helper()
	for range 1000 {
		done, err := s.EvaluateRules(context.Background(), tenant, 7)
		if err != nil {
			t.Fatalf("evaluate rules: %v", err)
		}
		if done {
			return
		}
	}
	t.Fatal("rule evaluation never finished")
}

func testDefaultRule(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	rules, err := e.Store.ProfileRules(ctx, "t1")
	if err != nil || len(rules) != 1 || rules[0].Attribute != "email" || !rules[0].Enabled {
		t.Fatalf("a new tenant's rules = %+v, %v; want the email rule", rules, err)
	}
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "e1", "Ann@X.io", "by email", base))
	b := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "w1", "visitor-9", "by chat", base.Add(time.Minute)), "email", " ann@x.IO "))
	c := record(t, e.Store, "t1", msg(t, related.ChannelSMS, "s1", "+15550001", "no email", base.Add(2*time.Minute)))
	ca, cb := contactOf(t, e.Store, "t1", a.Contact.ID), contactOf(t, e.Store, "t1", b.Contact.ID)
	if ca.ProfileID == "" || ca.ProfileID != cb.ProfileID {
		t.Fatalf("profiles %q and %q: the same email on two channels must link", ca.ProfileID, cb.ProfileID)
	}
	if cc := contactOf(t, e.Store, "t1", c.Contact.ID); cc.ProfileID != "" {
		t.Fatalf("an SMS contact without email got profile %q (no phone rule exists)", cc.ProfileID)
	}
	p := profileOf(t, e.Store, "t1", ca.ProfileID)
	if p.Name != "ann@x.io" || fmt.Sprint(p.Channels) != "[WEBCHAT EMAIL]" || len(p.Identifiers) != 1 {
		t.Fatalf("profile bar = %+v", p)
	}
	// The interactions carry the profile: a PROFILE panel spans channels.
	page, err := e.Store.ListRelated(ctx, "t1", store.RelatedQuery{ProfileID: p.ID, Exclude: a.Interaction.ID}, store.Page{First: 10})
	if err != nil || !equal(ids(page.Items), []string{b.Interaction.ID}) {
		t.Fatalf("profile panel = %v, %v", ids(page.Items), err)
	}
	got, err := e.Store.ProfileByIdentifier(ctx, "t1", related.Identifier{Key: "email", Value: "ann@x.io"})
	if err != nil || got == nil || got.ID != p.ID {
		t.Fatalf("by identifier = %+v, %v", got, err)
	}
	links, err := e.Store.ProfileLinks(ctx, "t1", p.ID)
	if err != nil || len(links) != 2 {
		t.Fatalf("links = %+v, %v", links, err)
	}
	for _, l := range links {
		wantSource := "ATTESTED"
		if l.ContactID == b.Contact.ID {
			wantSource = "CLAIMED"
		}
		if l.Reason != related.LinkRule || l.Key != "email" || l.Value != "ann@x.io" || l.Source != wantSource || l.InteractionID == "" || l.LinkedAt.IsZero() {
			t.Fatalf("link = %+v", l)
		}
	}
}

func testRules(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	phone := saveRule(t, e.Store, "t1", identity.Rule{Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, Priority: 50, DefaultRegion: "us", MaxPerProfile: 3})
	if phone.ID == "" || phone.DefaultRegion != "US" {
		t.Fatalf("saved = %+v", phone)
	}
	r, _ := identity.Rule{Attribute: "phone", Normalizer: identity.NormalizeExact}.Validate()
	_, err := e.Store.SaveProfileRule(ctx, "t1", r)
	wantCode(t, err, related.CodeConflict)
	phone.Priority = 300
	saveRule(t, e.Store, "t1", phone)
	rules, err := e.Store.ProfileRules(ctx, "t1")
	if err != nil || len(rules) != 2 || rules[0].Attribute != "phone" || rules[0].Priority != 300 || rules[0].MaxPerProfile != 3 {
		t.Fatalf("rules = %+v, %v", rules, err)
	}
	// Deleting the default rule keeps it deleted.
	if err := e.Store.DeleteProfileRule(ctx, "t1", identity.DefaultRuleID("t1")); err != nil {
		t.Fatal(err)
	}
	rules, _ = e.Store.ProfileRules(ctx, "t1")
	if len(rules) != 1 || rules[0].Attribute != "phone" {
		t.Fatalf("after deleting the default: %+v", rules)
	}
	wantCode(t, e.Store.DeleteProfileRule(ctx, "t1", "missing"), related.CodeNotFound)
	// Another tenant still has its default.
	if other, _ := e.Store.ProfileRules(ctx, "t2"); len(other) != 1 || other[0].Attribute != "email" {
		t.Fatalf("t2 rules = %+v", other)
	}
	// A phone rule links SMS and WhatsApp by number, parsed in the region.
	a := record(t, e.Store, "t1", msg(t, related.ChannelSMS, "s", "+1 202 555 0143", "sms", base))
	b := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "w", "v-1", "chat", base), "phone", "(202) 555-0143"))
	if pa, pb := contactOf(t, e.Store, "t1", a.Contact.ID).ProfileID, contactOf(t, e.Store, "t1", b.Contact.ID).ProfileID; pa == "" || pa != pb {
		t.Fatalf("phone rule did not link: %q %q", pa, pb)
	}
	// An unparseable number is kept as an attribute but links nothing.
	c := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "w2", "v-2", "chat", base), "phone", "call me"))
	cc := contactOf(t, e.Store, "t1", c.Contact.ID)
	if cc.ProfileID != "" || len(cc.Attributes) != 1 {
		t.Fatalf("junk phone: %+v", cc)
	}
}

func testMerge(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: true})
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	b := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "b", "b@x.io", "b", base))
	pa, pb := contactOf(t, e.Store, "t1", a.Contact.ID).ProfileID, contactOf(t, e.Store, "t1", b.Contact.ID).ProfileID
	if pa == "" || pb == "" || pa == pb {
		t.Fatalf("two emails, two profiles: %q %q", pa, pb)
	}
	// Both mention order 1234: the profiles merge into the older (a's).
	if _, err := e.Store.SetContactAttributes(ctx, "t1", b.Contact.ID, []related.Attribute{{Key: "orderNumber", Value: "1234"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.SetContactAttributes(ctx, "t1", a.Contact.ID, []related.Attribute{{Key: "orderNumber", Value: " 1234 "}}); err != nil {
		t.Fatal(err)
	}
	ca, cb := contactOf(t, e.Store, "t1", a.Contact.ID), contactOf(t, e.Store, "t1", b.Contact.ID)
	if ca.ProfileID != pa || cb.ProfileID != pa {
		t.Fatalf("after the shared order: a in %q, b in %q; want both in the older %q", ca.ProfileID, cb.ProfileID, pa)
	}
	if loser := profileOf(t, e.Store, "t1", pb); loser.MergedInto != pa {
		t.Fatalf("merged-away profile = %+v, want a pointer to %s", loser, pa)
	}
	p := profileOf(t, e.Store, "t1", pa)
	if len(p.Identifiers) != 3 {
		t.Fatalf("merged identifiers = %v", p.Identifiers)
	}
	page, _ := e.Store.ListRelated(ctx, "t1", store.RelatedQuery{ProfileID: pa}, store.Page{First: 10})
	if len(page.Items) != 2 {
		t.Fatalf("merged profile's interactions = %v", ids(page.Items))
	}
	for _, it := range page.Items {
		if it.ProfileID != pa {
			t.Fatalf("interaction %s kept profile %q", it.ID, it.ProfileID)
		}
	}
}

func testBlocked(t *testing.T, open Opener) {
	e := open(t)
	rules, _ := e.Store.ProfileRules(context.Background(), "t1")
	email := rules[0]
	email.BlockedValues = []string{"noreply@*", "info@shop.com"}
	saveRule(t, e.Store, "t1", email)
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "NoReply@shop.com", "a", base))
	b := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "b", "v", "b", base), "email", "noreply@shop.com"))
	c := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "c", "info@shop.com", "c", base))
	for _, r := range []*store.RecordResult{a, b, c} {
		if p := contactOf(t, e.Store, "t1", r.Contact.ID).ProfileID; p != "" {
			t.Fatalf("a blocked value linked contact %s into %s", r.Contact.Address, p)
		}
	}
}

func testMaxPerProfile(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true, MaxPerProfile: 1})
	a := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "a", "a@x.io", "a", base), "customerId", "C-1"))
	b := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "b", "b@x.io", "b", base), "customerId", "C-2"))
	// A third contact claims both emails: merging would give one profile
	// two customer ids.
	c := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "c", "v", "c", base), "email", "a@x.io"))
	if _, err := e.Store.SetContactAttributes(ctx, "t1", c.Contact.ID, []related.Attribute{{Key: "email", Value: "b@x.io"}}); err != nil {
		t.Fatal(err)
	}
	pa, pb := contactOf(t, e.Store, "t1", a.Contact.ID).ProfileID, contactOf(t, e.Store, "t1", b.Contact.ID).ProfileID
	if pa == pb {
		t.Fatalf("the limit did not stop the merge")
	}
	conflicts, err := e.Store.ProfileConflicts(ctx, "t1", false, 10)
	if err != nil || len(conflicts) == 0 {
		t.Fatalf("conflicts = %v, %v", conflicts, err)
	}
	cf := conflicts[0]
	if cf.Reason != string(identity.ConflictMaxPerProfile) || !slices.Contains(cf.ProfileIDs, pb) {
		t.Fatalf("conflict = %+v", cf)
	}
	// An admin merges explicitly; the conflict is resolved.
	p, err := e.Store.MergeProfiles(ctx, "t1", pa, pb, "admin")
	if err != nil || p.ID != pa {
		t.Fatalf("merge = %+v, %v", p, err)
	}
	if pb2 := contactOf(t, e.Store, "t1", b.Contact.ID).ProfileID; pb2 != pa {
		t.Fatalf("after the explicit merge b is in %q", pb2)
	}
	open2, _ := e.Store.ProfileConflicts(ctx, "t1", false, 10)
	all, _ := e.Store.ProfileConflicts(ctx, "t1", true, 10)
	if len(open2) != 0 || len(all) != len(conflicts) {
		t.Fatalf("open conflicts after merge = %v (all %v)", open2, all)
	}
	_, err = e.Store.MergeProfiles(ctx, "t1", pa, "missing", "admin")
	wantCode(t, err, related.CodeNotFound)
}

func testUnlink(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: true})
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true})
	// a -- order 1 -- b -- customer X -- c: b holds the profile together.
	a := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "a", "a@x.io", "a", base), "orderNumber", "1"))
	b := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "b", "b@x.io", "b", base), "orderNumber", "1", "customerId", "X"))
	c := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "c", "c@x.io", "c", base), "customerId", "X"))
	p := contactOf(t, e.Store, "t1", a.Contact.ID).ProfileID
	for _, r := range []*store.RecordResult{b, c} {
		if got := contactOf(t, e.Store, "t1", r.Contact.ID).ProfileID; got != p {
			t.Fatalf("chain not linked: %q vs %q", got, p)
		}
	}
	// Unlinking b leaves a and c with nothing in common: the profile
	// splits.
	got, err := e.Store.UnlinkContact(ctx, "t1", b.Contact.ID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	pa, pb, pc := contactOf(t, e.Store, "t1", a.Contact.ID).ProfileID, contactOf(t, e.Store, "t1", b.Contact.ID).ProfileID, contactOf(t, e.Store, "t1", c.Contact.ID).ProfileID
	if pa != p || pb == p || pc == p || pc == "" || pb == pc || got.ProfileID != pb {
		t.Fatalf("after unlink: a %q b %q c %q (was %q)", pa, pb, pc, p)
	}
	// b left with its own email; the shared values stayed behind.
	bp := profileOf(t, e.Store, "t1", pb)
	if fmt.Sprint(bp.Identifiers) != "[{email b@x.io}]" {
		t.Fatalf("b's profile identifiers = %v", bp.Identifiers)
	}
	// The rules do not link b back: a new message naming order 1 again.
	record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "b2", "b@x.io", "again", base.Add(time.Hour)), "orderNumber", "1"))
	if again := contactOf(t, e.Store, "t1", b.Contact.ID).ProfileID; again == pa {
		t.Fatalf("the rules linked an unlinked contact back")
	}
	_, err = e.Store.UnlinkContact(ctx, "t1", "missing", "admin")
	wantCode(t, err, related.CodeNotFound)
}

func testManual(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	v := record(t, e.Store, "t1", msg(t, related.ChannelWebChat, "v", "visitor", "v", base))
	pa := contactOf(t, e.Store, "t1", a.Contact.ID).ProfileID
	p, err := e.Store.LinkContact(ctx, "t1", pa, v.Contact.ID, "admin-key")
	if err != nil || p.ID != pa || fmt.Sprint(p.Channels) != "[WEBCHAT EMAIL]" {
		t.Fatalf("link = %+v, %v", p, err)
	}
	if got := contactOf(t, e.Store, "t1", v.Contact.ID).ProfileID; got != pa {
		t.Fatalf("linked contact is in %q", got)
	}
	links, _ := e.Store.ProfileLinks(ctx, "t1", pa)
	var manual *related.ProfileLink
	for _, l := range links {
		if l.Reason == related.LinkManual {
			manual = l
		}
	}
	if manual == nil || manual.ContactID != v.Contact.ID || manual.By != "admin-key" {
		t.Fatalf("links = %+v, want a MANUAL link by admin-key", links)
	}
	its, _ := e.Store.Interactions(ctx, "t1", []string{v.Interaction.ID})
	if its[0].ProfileID != pa {
		t.Fatalf("the linked contact's interaction is in %q", its[0].ProfileID)
	}
	p, err = e.Store.RenameProfile(ctx, "t1", pa, "Ann (VIP)")
	if err != nil || p.Name != "Ann (VIP)" {
		t.Fatalf("rename = %+v, %v", p, err)
	}
	p, _ = e.Store.RenameProfile(ctx, "t1", pa, "")
	if p.Name != "a@x.io" {
		t.Fatalf("name after clearing = %q", p.Name)
	}
	_, err = e.Store.LinkContact(ctx, "t1", "missing", v.Contact.ID, "x")
	wantCode(t, err, related.CodeNotFound)
}

func testExplicitMerge(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "old@x.io", "a", base))
	b := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "b", "new@x.io", "b", base))
	older, newer := contactOf(t, e.Store, "t1", a.Contact.ID).ProfileID, contactOf(t, e.Store, "t1", b.Contact.ID).ProfileID
	if _, err := e.Store.RenameProfile(ctx, "t1", newer, "The newer one"); err != nil {
		t.Fatal(err)
	}
	// Merging the older into the newer keeps the older profile, with the
	// name the admin gave the one merged into.
	p, err := e.Store.MergeProfiles(ctx, "t1", newer, older, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != older || p.Name != "The newer one" || p.ContactCount != 2 {
		t.Fatalf("merged = %+v, want %s named after into with 2 contacts", p, older)
	}
	for _, c := range []string{a.Contact.ID, b.Contact.ID} {
		if got := contactOf(t, e.Store, "t1", c).ProfileID; got != older {
			t.Fatalf("contact %s in %s, want %s", c, got, older)
		}
	}
	if got := profileOf(t, e.Store, "t1", newer); got.MergedInto != older {
		t.Fatalf("the newer profile = %+v, want a pointer to %s", got, older)
	}
}

func testReevaluate(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	order := saveRule(t, e.Store, "t1", identity.Rule{Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: true})
	a := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "a", "a@x.io", "a", base), "orderNumber", "7"))
	b := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "b", "b@x.io", "b", base), "orderNumber", "7"))
	if contactOf(t, e.Store, "t1", a.Contact.ID).ProfileID != contactOf(t, e.Store, "t1", b.Contact.ID).ProfileID {
		t.Fatal("order rule did not link")
	}
	// Disabling the rule unlinks what only it linked.
	order.Enabled = false
	if _, err := e.Store.SaveProfileRule(ctx, "t1", order); err != nil {
		t.Fatal(err)
	}
	ev, err := e.Store.RuleEvaluation(ctx, "t1")
	if err != nil || ev == nil || ev.State != "RUNNING" || ev.Total < 2 {
		t.Fatalf("evaluation = %+v, %v", ev, err)
	}
	pending, _ := e.Store.PendingEvaluations(ctx)
	if !slices.Contains(pending, "t1") {
		t.Fatalf("pending = %v", pending)
	}
	// It resumes across a restart.
	s := e.Reopen(t)
	drain(t, s, "t1")
	ev, _ = s.RuleEvaluation(ctx, "t1")
	if ev.State != "DONE" || ev.Processed != ev.Total {
		t.Fatalf("evaluation = %+v", ev)
	}
	pa, pb := contactOf(t, s, "t1", a.Contact.ID).ProfileID, contactOf(t, s, "t1", b.Contact.ID).ProfileID
	if pa == "" || pb == "" || pa == pb {
		t.Fatalf("after disabling: a %q b %q, want two profiles (each keeps its email)", pa, pb)
	}
	// Enabling it again links them again.
	order.Enabled = true
	saveRule(t, s, "t1", order)
	if contactOf(t, s, "t1", a.Contact.ID).ProfileID != contactOf(t, s, "t1", b.Contact.ID).ProfileID {
		t.Fatal("re-enabling did not link again")
	}
}

func testProfileIsolation(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	b := record(t, e.Store, "t2", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	pa, pb := contactOf(t, e.Store, "t1", a.Contact.ID).ProfileID, contactOf(t, e.Store, "t2", b.Contact.ID).ProfileID
	if pa == pb {
		t.Fatal("two tenants share a profile")
	}
	if ps, _ := e.Store.Profiles(ctx, "t2", []string{pa}); len(ps) != 0 {
		t.Fatal("t2 read t1's profile")
	}
	if p, _ := e.Store.ProfileByIdentifier(ctx, "t3", related.Identifier{Key: "email", Value: "a@x.io"}); p != nil {
		t.Fatal("t3 found a profile by another tenant's identifier")
	}
	if cs, _ := e.Store.ProfileContacts(ctx, "t2", []string{pa}); len(cs) != 0 {
		t.Fatal("t2 read t1's profile contacts")
	}
	if ls, _ := e.Store.ProfileLinks(ctx, "t2", pa); len(ls) != 0 {
		t.Fatal("t2 read t1's links")
	}
	_, err := e.Store.MergeProfiles(ctx, "t2", pb, pa, "x")
	wantCode(t, err, related.CodeNotFound)
	// Rules, conflicts and re-evaluations are per tenant too.
	rule := saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true, MaxPerProfile: 1})
	record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelEmail, "c1", "c1@x.io", "c", base), "customerId", "A"))
	record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "c2", "v", "c", base), "customerId", "B", "email", "c1@x.io"))
	if cs, _ := e.Store.ProfileConflicts(ctx, "t1", true, 10); len(cs) == 0 {
		t.Fatal("the setup made no conflict in t1")
	}
	if cs, _ := e.Store.ProfileConflicts(ctx, "t2", true, 10); len(cs) != 0 {
		t.Fatalf("t2 lists t1's conflicts: %+v", cs)
	}
	wantCode(t, e.Store.DeleteProfileRule(ctx, "t2", rule.ID), related.CodeNotFound)
	_, err = e.Store.SaveProfileRule(ctx, "t2", rule)
	wantCode(t, err, related.CodeNotFound)
	if ev, _ := e.Store.RuleEvaluation(ctx, "t2"); ev != nil {
		t.Fatalf("t2 sees t1's rule evaluation: %+v", ev)
	}
	if rules, _ := e.Store.ProfileRules(ctx, "t2"); len(rules) != 1 || rules[0].Attribute != "email" {
		t.Fatalf("t2's rules = %+v, want only its default", rules)
	}
	_, err = e.Store.LinkContact(ctx, "t2", pb, a.Contact.ID, "x")
	wantCode(t, err, related.CodeNotFound)
	_, err = e.Store.RenameProfile(ctx, "t2", pa, "mine")
	wantCode(t, err, related.CodeNotFound)
	_, err = e.Store.UnlinkContact(ctx, "t2", a.Contact.ID, "x")
	wantCode(t, err, related.CodeNotFound)
}

// testUnionFind fires random recordMessage and setContactAttributes traffic
// with shared identifiers (concurrently where the database applies updates
// to one document atomically) and holds the resulting partition of
// contacts to a union-find oracle over the same values.
func testUnionFind(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true})
	const contacts, ops = 40, 400
	rng := rand.New(rand.NewPCG(42, 42))
	type op struct {
		contact int
		attrs   []related.Attribute
	}
	plan := make([]op, ops)
	for i := range plan {
		o := op{contact: rng.IntN(contacts)}
		for range rng.IntN(3) {
			if rng.IntN(2) == 0 {
				o.attrs = append(o.attrs, related.Attribute{Key: "customerId", Value: fmt.Sprintf("C%d", rng.IntN(60))})
			} else {
				o.attrs = append(o.attrs, related.Attribute{Key: "email", Value: fmt.Sprintf("u%d@x.io", rng.IntN(60))})
			}
		}
		plan[i] = o
	}
	// Contact i is a web chat visitor; each op records a message carrying
	// attrs, or sets them on the contact once it exists.
	addr := func(i int) string { return fmt.Sprintf("visitor-%d", i) }
	ids := make([]string, contacts)
	var mu sync.Mutex
	do := func(i int) error {
		o := plan[i]
		mu.Lock()
		cid := ids[o.contact]
		mu.Unlock()
		if cid != "" && i%2 == 0 {
			_, err := e.Store.SetContactAttributes(ctx, "t1", cid, o.attrs)
			return err
		}
		in := msg(t, related.ChannelWebChat, fmt.Sprint("chat-", o.contact), addr(o.contact), fmt.Sprint("op ", i), base.Add(time.Duration(i)*time.Second))
		in.Contact.Attributes = o.attrs
		r, err := e.Store.RecordMessage(ctx, "t1", in)
		if err == nil {
			mu.Lock()
			ids[o.contact] = r.Contact.ID
			mu.Unlock()
		}
		return err
	}
	workers := 1
	if e.Atomic {
		workers = 8
	}
	next := make(chan int)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for i := range next {
				if err := do(i); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for i := range plan {
		next <- i
	}
	close(next)
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The oracle: contacts are connected by any value they ever carried.
	parent := make([]int, contacts)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			i = parent[i]
		}
		return i
	}
	holder := map[string]int{}
	carries := make([]bool, contacts)
	for _, o := range plan {
		for _, a := range o.attrs {
			carries[o.contact] = true
			k := strings.ToLower(a.Key + "=" + a.Value)
			if h, ok := holder[k]; ok {
				parent[find(o.contact)] = find(h)
			} else {
				holder[k] = o.contact
			}
		}
	}
	want := map[int][]string{}
	got := map[string][]string{}
	for i := range contacts {
		if ids[i] == "" {
			continue
		}
		c := contactOf(t, e.Store, "t1", ids[i])
		if !carries[i] {
			if c.ProfileID != "" {
				t.Fatalf("contact %d carries nothing but is in %s", i, c.ProfileID)
			}
			continue
		}
		want[find(i)] = append(want[find(i)], ids[i])
		got[c.ProfileID] = append(got[c.ProfileID], ids[i])
	}
	norm := func(groups [][]string) []string {
		var out []string
		for _, g := range groups {
			sort.Strings(g)
			out = append(out, strings.Join(g, ","))
		}
		sort.Strings(out)
		return out
	}
	var wg, gg [][]string
	for _, g := range want {
		wg = append(wg, g)
	}
	for p, g := range got {
		if p == "" {
			t.Fatalf("contacts %v carry identifiers but have no profile", g)
		}
		gg = append(gg, g)
		// Every profile is a root and knows all of its contacts.
		if pr := profileOf(t, e.Store, "t1", p); pr.MergedInto != "" {
			t.Fatalf("contacts point at merged-away profile %s", p)
		}
		cs, err := e.Store.ProfileContacts(ctx, "t1", []string{p})
		if err != nil || len(cs) != len(g) {
			t.Fatalf("profile %s lists %d contacts, %d point at it (%v)", p, len(cs), len(g), err)
		}
	}
	if a, b := norm(wg), norm(gg); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("partition differs from the union-find oracle:\n got %v\nwant %v", b, a)
	}
}
