package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
		{"DefaultEmailRuleLinksAttestedAcrossChannels", testDefaultRule},
		{"RulesValidateAndPersist", testRules},
		{"UnparseableAttributeRefusedWhole", testUnparseableAttribute},
		{"ClaimedValuesSuggest", testClaimedSuggests},
		{"SharedOrderNumbersNeverMerge", testOrderNumbers},
		{"AgentsNeverMerge", testAgentsNeverMerge},
		{"ClaimedNeverOutranksAttested", testClaimedNeverOutranks},
		{"AttributesLinkAndMerge", testMerge},
		{"BlockedValuesLinkNothing", testBlocked},
		{"HubValuesQuarantined", testHubValues},
		{"MaxPerProfileRecordsConflict", testMaxPerProfile},
		{"UnlinkSplitsAndSticks", testUnlink},
		{"ManualLinkAndRename", testManual},
		{"PersonNameNamesTheProfile", testPersonName},
		{"ExplicitMergeKeepsInto", testExplicitMerge},
		{"MergeKeepsAutomaticName", testMergeKeepsAutomaticName},
		{"ManualDecisionsSurviveRuleToggles", testDecisionsSurvive},
		{"HistoryExplainsDecisions", testHistory},
		{"RuleChangeReevaluates", testReevaluate},
		{"ProfileTenantIsolation", testProfileIsolation},
		{"RandomTrafficMatchesReference", testReference},
		{"PreviewIsWhatTheChangeDoes", testPreviewIsApply},
		{"EvaluationIsItsPreview", testEvaluationIsPreview},
		{"RuleChangeDuringEvaluation", testChangeDuringEvaluation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// The actors of the suite.
var (
	admin       = related.Actor{Name: "Ada", Role: related.RoleAdmin}
	agent       = related.Actor{Name: "Ann's desk", Role: related.RoleAgent}
	integration = related.Actor{Name: "crm-sync", Role: related.RoleIntegration}
)

// withAttrs adds claimed attributes, as a customer typed them.
func withAttrs(in related.RecordMessage, kv ...string) related.RecordMessage {
	for i := 0; i < len(kv); i += 2 {
		in.Contact.Attributes = append(in.Contact.Attributes, related.Attribute{Key: kv[i], Value: kv[i+1]})
	}
	return in
}

// withAttested adds attributes a trusted integration vouches for.
func withAttested(in related.RecordMessage, kv ...string) related.RecordMessage {
	for i := 0; i < len(kv); i += 2 {
		in.Contact.Attributes = append(in.Contact.Attributes, related.Attribute{Key: kv[i], Value: kv[i+1],
			Attested: true, By: integration.Name, Role: integration.Role})
	}
	return in
}

func attested(kv ...string) []related.Attribute {
	return withAttested(related.RecordMessage{}, kv...).Contact.Attributes
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

func pid(t *testing.T, s store.Store, tenant string, r *store.RecordResult) string {
	t.Helper()
	return contactOf(t, s, tenant, r.Contact.ID).ProfileID
}

func saveRule(t *testing.T, s store.Store, tenant string, r identity.Rule) identity.Rule {
	t.Helper()
	if r.MaxContactsPerValue == 0 {
		r.MaxContactsPerValue = identity.DefaultMaxContactsPerValue
	}
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

func pairs(t *testing.T, s store.Store, tenant string, kind identity.PairKind) []*store.PairRecord {
	t.Helper()
	page, err := s.ProfilePairs(context.Background(), tenant, kind, "", store.Page{First: 100})
	if err != nil {
		t.Fatalf("pairs: %v", err)
	}
	return page.Items
}

func testDefaultRule(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	rules, err := e.Store.ProfileRules(ctx, "t1")
	if err != nil || len(rules) != 1 || rules[0].Attribute != "email" || !rules[0].Enabled ||
		rules[0].AutoMerge != identity.AutoMergeAttested || rules[0].MaxContactsPerValue != identity.DefaultMaxContactsPerValue {
		t.Fatalf("a new tenant's rules = %+v, %v; want the email rule, merging attested values", rules, err)
	}
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "e1", "Ann@X.io", "by email", base))
	// A web chat whose login the website verified: the integration
	// attests the email.
	b := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelWebChat, "w1", "visitor-9", "by chat", base.Add(time.Minute)), "email", " ann@x.IO "))
	c := record(t, e.Store, "t1", msg(t, related.ChannelSMS, "s1", "+15550001", "no email", base.Add(2*time.Minute)))
	pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b)
	if pa == "" || pa != pb {
		t.Fatalf("profiles %q and %q: the same attested email on two channels must link", pa, pb)
	}
	if pc := pid(t, e.Store, "t1", c); pc != "" {
		t.Fatalf("an SMS contact without email got profile %q (no phone rule exists)", pc)
	}
	p := profileOf(t, e.Store, "t1", pa)
	if fmt.Sprint(p.Channels) != "[WEBCHAT EMAIL]" || len(p.Identifiers) != 1 || !p.Identifiers[0].Attested || p.ContactCount != 2 {
		t.Fatalf("profile bar = %+v", p)
	}
	// Named after the person, not the address.
	if p.Name != "Name of Ann@X.io" && p.Name != "Name of visitor-9" {
		t.Fatalf("name = %q, want a contact's person name", p.Name)
	}
	if want := related.ProfileIDFor(min(a.Contact.ID, b.Contact.ID)); p.ID != want {
		t.Fatalf("profile id = %s, want %s (anchored at its smallest contact id)", p.ID, want)
	}
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
		wantBy, wantIt := "channel EMAIL", a.Interaction.ID
		if l.ContactID == b.Contact.ID {
			wantBy, wantIt = integration.Name, b.Interaction.ID
		}
		if l.Reason != related.LinkRule || l.Key != "email" || l.Value != "ann@x.io" || l.Source != "ATTESTED" ||
			l.InteractionID != wantIt || l.By.Name != wantBy || l.RuleID != rules[0].ID || l.LinkedAt.IsZero() {
			t.Fatalf("link = %+v", l)
		}
	}
}

func testRules(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	phone := saveRule(t, e.Store, "t1", identity.Rule{Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, Priority: 50, DefaultRegion: "us", MaxPerProfile: 3})
	if phone.ID == "" || phone.DefaultRegion != "US" || phone.AutoMerge != identity.AutoMergeAttested {
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
	order := saveRule(t, e.Store, "t1", identity.Rule{Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: true})
	if order.AutoMerge != identity.AutoMergeNever {
		t.Fatalf("order rule policy = %s, want NEVER by default", order.AutoMerge)
	}
	// Deleting the default rule keeps it deleted.
	if err := e.Store.DeleteProfileRule(ctx, "t1", identity.DefaultRuleID("t1")); err != nil {
		t.Fatal(err)
	}
	rules, _ = e.Store.ProfileRules(ctx, "t1")
	if len(rules) != 2 || slices.ContainsFunc(rules, func(r identity.Rule) bool { return r.Attribute == "email" }) {
		t.Fatalf("after deleting the default: %+v", rules)
	}
	wantCode(t, e.Store.DeleteProfileRule(ctx, "t1", "missing"), related.CodeNotFound)
	if other, _ := e.Store.ProfileRules(ctx, "t2"); len(other) != 1 || other[0].Attribute != "email" {
		t.Fatalf("t2 rules = %+v", other)
	}
	// A phone rule links SMS and an attested web chat phone by number,
	// parsed in the region.
	a := record(t, e.Store, "t1", msg(t, related.ChannelSMS, "s", "+1 202 555 0143", "sms", base))
	b := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelWebChat, "w", "v-1", "chat", base), "phone", "(202) 555-0143"))
	if pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b); pa == "" || pa != pb {
		t.Fatalf("phone rule did not link: %q %q", pa, pb)
	}
}

func testUnparseableAttribute(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, DefaultRegion: "GB"})
	// Refused whole: no contact, no interaction, no message.
	in := withAttrs(msg(t, related.ChannelWebChat, "w", "v-1", "chat", base), "name", "x", "phone", "call me maybe")
	_, err := e.Store.RecordMessage(ctx, "t1", in)
	wantCode(t, err, related.CodeInvalid)
	if e, _ := related.AsError(err); strings.Join(e.Field, ".") != "contact.attributes.1.value" {
		t.Fatalf("error names %v, want contact.attributes.1.value", e.Field)
	}
	if n, _ := e.Store.CountInteractions(ctx, "t1", store.InteractionFilter{}); n != 0 {
		t.Fatalf("a refused message stored %d interactions", n)
	}
	r := record(t, e.Store, "t1", msg(t, related.ChannelWebChat, "w", "v-1", "chat", base))
	_, err = e.Store.SetContactAttributes(ctx, "t1", r.Contact.ID, []related.Attribute{{Key: "note", Value: "hi"}, {Key: "phone", Value: "call me maybe"}}, agent)
	wantCode(t, err, related.CodeInvalid)
	if e, _ := related.AsError(err); strings.Join(e.Field, ".") != "attributes.1.value" {
		t.Fatalf("error names %v, want attributes.1.value", e.Field)
	}
	if c := contactOf(t, e.Store, "t1", r.Contact.ID); len(c.Attributes) != 0 {
		t.Fatalf("a refused call stored %v", c.Attributes)
	}
}

func testClaimedSuggests(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "e1", "ann@x.io", "email", base))
	// Typed into a chat: anyone can type anyone's address.
	b := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "w1", "visitor-9", "chat", base), "email", "ann@x.io"))
	pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b)
	if pa == "" || pb == "" || pa == pb {
		t.Fatalf("a claimed email merged: %q %q", pa, pb)
	}
	sug := pairs(t, e.Store, "t1", identity.Suggestion)
	if len(sug) != 1 || sug[0].Key != "email" || sug[0].Value != "ann@x.io" || sug[0].Reason != identity.ReasonClaimed ||
		!equal([]string{sug[0].ProfileA, sug[0].ProfileB}, sortedPair(pa, pb)) {
		t.Fatalf("suggestions = %+v", sug)
	}
	for _, p := range []string{pa, pb} {
		page, err := e.Store.ProfilePairs(ctx, "t1", identity.Suggestion, p, store.Page{First: 10})
		if err != nil || len(page.Items) != 1 || page.Items[0].ID != sug[0].ID {
			t.Fatalf("suggestions of %s = %+v, %v", p, page, err)
		}
	}
	// Dismissed: kept apart for good, even after another chat.
	if err := e.Store.DismissPair(ctx, "t1", sug[0].ID, admin); err != nil {
		t.Fatal(err)
	}
	record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "w1", "visitor-9", "again", base.Add(time.Hour)), "email", "ann@x.io"))
	if got := pairs(t, e.Store, "t1", identity.Suggestion); len(got) != 0 {
		t.Fatalf("a dismissed suggestion came back: %+v", got)
	}
	_, err := e.Store.ProfilePair(ctx, "t1", sug[0].ID)
	wantCode(t, err, related.CodeNotFound)
	// Another chat claims the address: confirmed, it merges.
	// (The two chats claiming one address suggest each other too.)
	c := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "w2", "visitor-10", "chat", base), "email", "ann@x.io"))
	sug = pairs(t, e.Store, "t1", identity.Suggestion)
	i := slices.IndexFunc(sug, func(p *store.PairRecord) bool {
		return equal([]string{p.ProfileA, p.ProfileB}, sortedPair(pa, pid(t, e.Store, "t1", c)))
	})
	if len(sug) != 2 || i < 0 {
		t.Fatalf("suggestions = %+v", sug)
	}
	p, err := e.Store.ConfirmPair(ctx, "t1", sug[i].ID, admin)
	if err != nil {
		t.Fatal(err)
	}
	if pc := pid(t, e.Store, "t1", c); pc != p.ID || pid(t, e.Store, "t1", a) != p.ID {
		t.Fatalf("confirmed: a in %s, c in %s, want both in %s", pid(t, e.Store, "t1", a), pc, p.ID)
	}
	if pid(t, e.Store, "t1", b) == p.ID {
		t.Fatal("the dismissed chat joined through the confirmation")
	}
}

func sortedPair(a, b string) []string {
	if b < a {
		a, b = b, a
	}
	return []string{a, b}
}

func testOrderNumbers(t *testing.T, open Opener) {
	e := open(t)
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: true})
	buyer := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "b", "buyer@x.io", "where is my gift", base), "orderNumber", "A-1"))
	recipient := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "r", "rec@x.io", "thanks for the gift", base), "orderNumber", "A-1"))
	pb, pr := pid(t, e.Store, "t1", buyer), pid(t, e.Store, "t1", recipient)
	if pb == pr {
		t.Fatal("a shared order number merged a gift buyer and its recipient")
	}
	p := profileOf(t, e.Store, "t1", pr)
	if slices.ContainsFunc(p.Identifiers, func(id related.ProfileIdentifier) bool { return id.Value == "buyer@x.io" }) {
		t.Fatalf("the recipient's profile bar shows the buyer: %+v", p.Identifiers)
	}
	sug := pairs(t, e.Store, "t1", identity.Suggestion)
	if len(sug) != 1 || sug[0].Reason != identity.ReasonNeverMerges || sug[0].Key != "orderNumber" {
		t.Fatalf("suggestions = %+v", sug)
	}
}

func testAgentsNeverMerge(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true, Priority: 200})
	a := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "a", "a@x.io", "a", base), "customerId", "C-1"))
	b := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "b", "b@x.io", "b", base))
	// An agent types a's customer id and a's email onto b: no merge.
	agentAttrs := []related.Attribute{{Key: "customerId", Value: "c-1", By: agent.Name, Role: agent.Role}, {Key: "email", Value: "a@x.io", By: agent.Name, Role: agent.Role}}
	if _, err := e.Store.SetContactAttributes(ctx, "t1", b.Contact.ID, agentAttrs, agent); err != nil {
		t.Fatal(err)
	}
	if pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b); pa == pb {
		t.Fatal("an agent's attributes merged two profiles")
	}
	reasons := map[identity.PairReason]bool{}
	for _, p := range pairs(t, e.Store, "t1", identity.Suggestion) {
		reasons[p.Reason] = true
	}
	if !reasons[identity.ReasonAgentSet] {
		t.Fatalf("no AGENT_SET suggestion: %v", reasons)
	}
	// The same customer id from an integration merges (ANY policy).
	if _, err := e.Store.SetContactAttributes(ctx, "t1", b.Contact.ID, attested("customerId", "C-1"), integration); err != nil {
		t.Fatal(err)
	}
	if pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b); pa != pb {
		t.Fatalf("an integration's customer id did not merge: %s %s", pa, pb)
	}
}

func testClaimedNeverOutranks(t *testing.T, open Opener) {
	e := open(t)
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true, Priority: 200, MaxPerProfile: 1})
	ann := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "ann", "ann@x.io", "ann", base))
	bob := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "bob", "bob@x.io", "bob", base.Add(time.Hour)), "customerId", "B-2"))
	chat := record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "c", "v-1", "chat", base), "email", "ann@x.io", "customerId", "B-2"))
	if pid(t, e.Store, "t1", chat) != pid(t, e.Store, "t1", bob) || pid(t, e.Store, "t1", chat) == pid(t, e.Store, "t1", ann) {
		t.Fatalf("chat in %s, Ann %s, Bob %s: want the chat with Bob (customer id), not Ann (a claimed email)",
			pid(t, e.Store, "t1", chat), pid(t, e.Store, "t1", ann), pid(t, e.Store, "t1", bob))
	}
}

func testMerge(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true})
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	b := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "b", "b@x.io", "b", base))
	pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b)
	if pa == "" || pb == "" || pa == pb {
		t.Fatalf("two emails, two profiles: %q %q", pa, pb)
	}
	// Both get customer 1234 from the CRM: the profiles merge, anchored at
	// the smaller contact id, whichever order the values arrive in.
	if _, err := e.Store.SetContactAttributes(ctx, "t1", b.Contact.ID, attested("customerId", "1234"), integration); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.SetContactAttributes(ctx, "t1", a.Contact.ID, attested("customerId", " 1234 "), integration); err != nil {
		t.Fatal(err)
	}
	want := related.ProfileIDFor(min(a.Contact.ID, b.Contact.ID))
	if ga, gb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b); ga != want || gb != want {
		t.Fatalf("after the shared customer id: a in %q, b in %q; want both in %q", ga, gb, want)
	}
	gone := pa
	if gone == want {
		gone = pb
	}
	if loser := profileOf(t, e.Store, "t1", gone); loser.MergedInto != want {
		t.Fatalf("the merged-away id = %+v, want a pointer to %s", loser, want)
	}
	p := profileOf(t, e.Store, "t1", want)
	if len(p.Identifiers) != 3 || p.ContactCount != 2 {
		t.Fatalf("merged profile = %+v", p)
	}
	page, _ := e.Store.ListRelated(ctx, "t1", store.RelatedQuery{ProfileID: want}, store.Page{First: 10})
	if len(page.Items) != 2 {
		t.Fatalf("merged profile's interactions = %v", ids(page.Items))
	}
	for _, it := range page.Items {
		if it.ProfileID != want {
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
	b := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelWebChat, "b", "v", "b", base), "email", "noreply@shop.com"))
	c := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "c", "info@shop.com", "c", base))
	for _, r := range []*store.RecordResult{a, b, c} {
		if p := pid(t, e.Store, "t1", r); p != "" {
			t.Fatalf("a blocked value linked contact %s into %s", r.Contact.Address, p)
		}
	}
}

func testHubValues(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	rules, _ := e.Store.ProfileRules(ctx, "t1")
	email := rules[0]
	// Twelve customers give the shop's own mailbox: none is linked to
	// another through it, whatever the order.
	var rs []*store.RecordResult
	for i := range 12 {
		r := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelSMS, fmt.Sprint("s", i), fmt.Sprintf("+4474001234%02d", i), "hi", base), "email", "info@company.com"))
		rs = append(rs, r)
	}
	seen := map[string]bool{}
	for _, r := range rs {
		p := pid(t, e.Store, "t1", r)
		if p != "" && seen[p] {
			t.Fatalf("two customers share profile %s through a hub value", p)
		}
		seen[p] = true
	}
	hubs, err := e.Store.HubValues(ctx, "t1", store.Page{First: 10})
	if err != nil || len(hubs.Items) != 1 || hubs.Items[0].Value != "info@company.com" || hubs.Items[0].Contacts != 12 ||
		!hubs.Items[0].Quarantined || hubs.Items[0].RuleID != email.ID || hubs.Items[0].State != identity.QuarantineAutomatic {
		t.Fatalf("hub values = %+v, %v", hubs, err)
	}
	// An admin allows it: the twelve are one profile. Back to automatic:
	// apart again.
	if _, err := e.Store.SetValueQuarantine(ctx, "t1", email.ID, "INFO@company.com", identity.QuarantineAllowed, admin); err != nil {
		t.Fatal(err)
	}
	one := pid(t, e.Store, "t1", rs[0])
	for _, r := range rs {
		if pid(t, e.Store, "t1", r) != one || one == "" {
			t.Fatalf("an allowed value did not link %s", r.Contact.Address)
		}
	}
	if _, err := e.Store.SetValueQuarantine(ctx, "t1", email.ID, "info@company.com", identity.QuarantineAutomatic, admin); err != nil {
		t.Fatal(err)
	}
	clear(seen)
	for _, r := range rs {
		if p := pid(t, e.Store, "t1", r); p != "" && seen[p] {
			t.Fatalf("re-quarantined, %s is still shared", p)
		} else {
			seen[p] = true
		}
	}
	// Blocked: even two holders link nothing.
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "x", "desk@company.com", "x", base))
	b := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelSMS, "y", "+447400999999", "y", base), "email", "desk@company.com"))
	if pid(t, e.Store, "t1", a) != pid(t, e.Store, "t1", b) {
		t.Fatal("setup: two holders did not link")
	}
	h, err := e.Store.SetValueQuarantine(ctx, "t1", email.ID, "desk@company.com", identity.QuarantineBlocked, admin)
	if err != nil || !h.Quarantined || h.Contacts != 2 {
		t.Fatalf("blocked = %+v, %v", h, err)
	}
	if pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b); pa != "" || pb != "" {
		t.Fatalf("a blocked value still links: %q %q", pa, pb)
	}
	_, err = e.Store.SetValueQuarantine(ctx, "t1", "missing", "x@y.io", identity.QuarantineBlocked, admin)
	wantCode(t, err, related.CodeNotFound)
	_, err = e.Store.SetValueQuarantine(ctx, "t1", email.ID, "not an email", identity.QuarantineBlocked, admin)
	wantCode(t, err, related.CodeInvalid)
}

func testMaxPerProfile(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true, MaxPerProfile: 1})
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, DefaultRegion: "GB"})
	a := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "a", "a@x.io", "a", base), "customerId", "C-1"))
	b := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "b", "b@x.io", "b", base), "customerId", "C-2", "phone", "07400 123456"))
	// A caller whose number is b's gives a's email: merging would give one
	// profile two customer ids.
	record(t, e.Store, "t1", withAttested(msg(t, related.ChannelVoice, "c", "+447400123456", "c", base), "email", "a@x.io"))
	pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b)
	if pa == pb {
		t.Fatalf("the limit did not stop the merge")
	}
	conflicts := pairs(t, e.Store, "t1", identity.Conflict)
	if len(conflicts) == 0 || conflicts[0].Reason != identity.ReasonMaxPerProfile {
		t.Fatalf("conflicts = %+v", conflicts)
	}
	// Kept apart: the conflict is gone and stays gone.
	if err := e.Store.DismissPair(ctx, "t1", conflicts[0].ID, admin); err != nil {
		t.Fatal(err)
	}
	if got := pairs(t, e.Store, "t1", identity.Conflict); len(got) != 0 {
		t.Fatalf("conflicts after keep-apart = %+v", got)
	}
	// An admin merges explicitly past the limit.
	p, err := e.Store.MergeProfiles(ctx, "t1", pa, pb, admin)
	if err != nil || p.ID != pa {
		t.Fatalf("merge = %+v, %v", p, err)
	}
	if got := pid(t, e.Store, "t1", b); got != pa {
		t.Fatalf("after the explicit merge b is in %q", got)
	}
	_, err = e.Store.MergeProfiles(ctx, "t1", pa, "missing", admin)
	wantCode(t, err, related.CodeNotFound)
}

func testUnlink(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "accountId", Normalizer: identity.NormalizeExact, Enabled: true})
	saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true})
	// a -- account 1 -- b -- customer X -- c: b holds the profile together.
	a := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "a", "a@x.io", "a", base), "accountId", "1"))
	b := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "b", "b@x.io", "b", base), "accountId", "1", "customerId", "X"))
	c := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "c", "c@x.io", "c", base), "customerId", "X"))
	p := pid(t, e.Store, "t1", a)
	for _, r := range []*store.RecordResult{b, c} {
		if got := pid(t, e.Store, "t1", r); got != p {
			t.Fatalf("chain not linked: %q vs %q", got, p)
		}
	}
	got, err := e.Store.UnlinkContact(ctx, "t1", b.Contact.ID, admin)
	if err != nil {
		t.Fatal(err)
	}
	pa, pb, pc := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b), pid(t, e.Store, "t1", c)
	if pb == pa || pb == pc || pa == pc || pa == "" || pc == "" || got.ProfileID != pb {
		t.Fatalf("after unlink: a %q b %q c %q (was %q)", pa, pb, pc, p)
	}
	// The rules do not link b back: a new message naming account 1 again.
	record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "b2", "b@x.io", "again", base.Add(time.Hour)), "accountId", "1"))
	if again := pid(t, e.Store, "t1", b); again == pa || again == pc {
		t.Fatalf("the rules linked an unlinked contact back")
	}
	_, err = e.Store.UnlinkContact(ctx, "t1", "missing", admin)
	wantCode(t, err, related.CodeNotFound)
}

func testManual(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	v := record(t, e.Store, "t1", msg(t, related.ChannelWebChat, "v", "visitor", "v", base))
	pa := pid(t, e.Store, "t1", a)
	p, err := e.Store.LinkContact(ctx, "t1", pa, v.Contact.ID, admin)
	if err != nil || p.ID != pa || fmt.Sprint(p.Channels) != "[WEBCHAT EMAIL]" {
		t.Fatalf("link = %+v, %v", p, err)
	}
	if got := pid(t, e.Store, "t1", v); got != pa {
		t.Fatalf("linked contact is in %q", got)
	}
	links, _ := e.Store.ProfileLinks(ctx, "t1", pa)
	var manual *related.ProfileLink
	for _, l := range links {
		if l.Reason == related.LinkManual && l.ContactID == v.Contact.ID {
			manual = l
		}
	}
	if manual == nil || manual.By != admin {
		t.Fatalf("links = %+v, want a MANUAL link by %v", links, admin)
	}
	its, _ := e.Store.Interactions(ctx, "t1", []string{v.Interaction.ID})
	if its[0].ProfileID != pa {
		t.Fatalf("the linked contact's interaction is in %q", its[0].ProfileID)
	}
	p, err = e.Store.RenameProfile(ctx, "t1", pa, "Ann (VIP)", admin)
	if err != nil || p.Name != "Ann (VIP)" {
		t.Fatalf("rename = %+v, %v", p, err)
	}
	p, _ = e.Store.RenameProfile(ctx, "t1", pa, "", admin)
	if p.Name != "Name of a@x.io" && p.Name != "Name of visitor" {
		t.Fatalf("name after clearing = %q", p.Name)
	}
	_, err = e.Store.LinkContact(ctx, "t1", "missing", v.Contact.ID, admin)
	wantCode(t, err, related.CodeNotFound)
}

func testExplicitMerge(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "one@x.io", "a", base))
	b := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "b", "two@x.io", "b", base))
	pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b)
	for _, c := range []struct{ into, from, name string }{{pa, pb, "Chosen A"}, {pb, pa, "Chosen B"}} {
		t.Run(c.name, func(t *testing.T) {
			e := open(t)
			a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "one@x.io", "a", base))
			b := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "b", "two@x.io", "b", base))
			if pid(t, e.Store, "t1", a) != pa || pid(t, e.Store, "t1", b) != pb {
				t.Fatal("profile ids differ between two stores given the same facts")
			}
			if _, err := e.Store.RenameProfile(ctx, "t1", c.from, "The other name", admin); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Store.RenameProfile(ctx, "t1", c.into, c.name, admin); err != nil {
				t.Fatal(err)
			}
			p, err := e.Store.MergeProfiles(ctx, "t1", c.into, c.from, admin)
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != c.into || p.Name != c.name || p.ContactCount != 2 {
				t.Fatalf("merged = %+v, want %s named %q with 2 contacts", p, c.into, c.name)
			}
			if got := profileOf(t, e.Store, "t1", c.from); got.MergedInto != c.into {
				t.Fatalf("the merged id = %+v, want a pointer to %s", got, c.into)
			}
		})
	}
}

// testMergeKeepsAutomaticName: a merge keeps into's name when it is the
// automatic one too, though from brings more contacts under another
// person's name.
func testMergeKeepsAutomaticName(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	named := func(ch related.Channel, thread, addr, name string) related.RecordMessage {
		in := msg(t, ch, thread, addr, thread, base)
		in.Contact.Name = name
		return in
	}
	jon := record(t, e.Store, "t1", named(related.ChannelEmail, "j", "jon@x.io", "Jon Smith"))
	ivy := record(t, e.Store, "t1", withAttested(named(related.ChannelEmail, "i", "ivy@x.io", "Ivy Jones"), "email", "ivy@x.io"))
	record(t, e.Store, "t1", withAttested(named(related.ChannelWebChat, "i2", "v-ivy", "Ivy Jones"), "email", "ivy@x.io"))
	into, from := pid(t, e.Store, "t1", jon), pid(t, e.Store, "t1", ivy)
	if p := profileOf(t, e.Store, "t1", from); p.ContactCount != 2 || p.Name != "Ivy Jones" {
		t.Fatalf("Ivy's profile = %+v", p)
	}
	p, err := e.Store.MergeProfiles(ctx, "t1", into, from, admin)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != into || p.Name != "Jon Smith" || p.ContactCount != 3 {
		t.Fatalf("merged = %+v, want %s named Jon Smith with 3 contacts", p, into)
	}
	drain(t, e.Store, "t1")
	if p := profileOf(t, e.Store, "t1", into); p.Name != "Jon Smith" {
		t.Fatalf("after a re-evaluation the name is %q", p.Name)
	}
	checkAgainstFacts(t, e.Store)
}

func testDecisionsSurvive(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	b := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "b", "b@x.io", "b", base))
	c := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "c", "c@x.io", "c", base))
	d := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelWebChat, "d", "v-d", "d", base), "email", "c@x.io"))
	into := pid(t, e.Store, "t1", b)
	if _, err := e.Store.MergeProfiles(ctx, "t1", into, pid(t, e.Store, "t1", a), admin); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.UnlinkContact(ctx, "t1", d.Contact.ID, admin); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b); pa != into || pb != into {
			t.Fatalf("%s: the merge was undone: a %s b %s, want %s", when, pa, pb, into)
		}
		if pc, pd := pid(t, e.Store, "t1", c), pid(t, e.Store, "t1", d); pc == pd {
			t.Fatalf("%s: the unlink was undone", when)
		}
	}
	check("at once")
	rules, _ := e.Store.ProfileRules(ctx, "t1")
	email := rules[0]
	email.Enabled = false
	saveRule(t, e.Store, "t1", email)
	if pc := pid(t, e.Store, "t1", c); pc != "" {
		t.Fatalf("the email rule is off, yet c is in %s", pc)
	}
	email.Enabled = true
	saveRule(t, e.Store, "t1", email)
	check("after disabling and enabling the email rule")
}

func testHistory(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	b := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "b", "b@x.io", "b", base))
	pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t1", b)
	if _, err := e.Store.MergeProfiles(ctx, "t1", pa, pb, admin); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.RenameProfile(ctx, "t1", pa, "Ann", admin); err != nil {
		t.Fatal(err)
	}
	page, err := e.Store.ProfileHistory(ctx, "t1", pa, store.Page{First: 10})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range page.Items {
		kinds = append(kinds, string(ev.Kind))
		if ev.At.IsZero() || ev.ID == "" {
			t.Fatalf("event = %+v", ev)
		}
	}
	if fmt.Sprint(kinds) != "[RENAMED MERGED LINKED]" && fmt.Sprint(kinds) != "[RENAMED MERGED LINKED LINKED]" {
		t.Fatalf("history = %v, newest first", kinds)
	}
	merged := page.Items[1]
	if merged.By != admin || !slices.Contains(merged.Profiles, pb) || merged.Profiles[0] != pa {
		t.Fatalf("merge event = %+v", merged)
	}
	// Paging by cursor.
	first, err := e.Store.ProfileHistory(ctx, "t1", pa, store.Page{First: 1})
	if err != nil || len(first.Items) != 1 || !first.HasNextPage {
		t.Fatalf("first page = %+v, %v", first, err)
	}
	next, err := e.Store.ProfileHistory(ctx, "t1", pa, store.Page{First: 1, After: &store.Cursor{At: first.Items[0].At, ID: first.Items[0].ID}})
	if err != nil || len(next.Items) != 1 || next.Items[0].ID != page.Items[1].ID {
		t.Fatalf("second page = %+v, %v", next, err)
	}
}

func testReevaluate(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	cust := saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true})
	a := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "a", "a@x.io", "a", base), "customerId", "7"))
	b := record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "b", "b@x.io", "b", base), "customerId", "7"))
	if pid(t, e.Store, "t1", a) != pid(t, e.Store, "t1", b) {
		t.Fatal("customer rule did not link")
	}
	cust.Enabled = false
	if _, err := e.Store.SaveProfileRule(ctx, "t1", cust); err != nil {
		t.Fatal(err)
	}
	// Two contacts, each a step in both phases (values, then profiles).
	ev, err := e.Store.RuleEvaluation(ctx, "t1")
	if err != nil || ev == nil || ev.State != "RUNNING" || ev.Total != 4 {
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
	pa, pb := pid(t, s, "t1", a), pid(t, s, "t1", b)
	if pa == "" || pb == "" || pa == pb {
		t.Fatalf("after disabling: a %q b %q, want two profiles (each keeps its email)", pa, pb)
	}
	cust.Enabled = true
	saveRule(t, s, "t1", cust)
	if pid(t, s, "t1", a) != pid(t, s, "t1", b) {
		t.Fatal("re-enabling did not link again")
	}
}

func testProfileIsolation(t *testing.T, open Opener) {
	e := open(t)
	ctx := context.Background()
	a := record(t, e.Store, "t1", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	b := record(t, e.Store, "t2", msg(t, related.ChannelEmail, "a", "a@x.io", "a", base))
	pa, pb := pid(t, e.Store, "t1", a), pid(t, e.Store, "t2", b)
	if a.Contact.ID == b.Contact.ID || pa == pb {
		t.Fatal("two tenants share a contact or a profile")
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
	if h, _ := e.Store.ProfileHistory(ctx, "t2", pa, store.Page{First: 10}); len(h.Items) != 0 {
		t.Fatal("t2 read t1's history")
	}
	if f, _ := e.Store.TenantFacts(ctx, "t2"); len(f.Contacts) != 1 {
		t.Fatalf("t2's facts hold %d contacts, want its own 1", len(f.Contacts))
	}
	t2rules, _ := e.Store.ProfileRules(ctx, "t2")
	if pv, err := e.Store.PreviewRules(ctx, "t2", edit(t2rules, "email", func(r *identity.Rule) { r.Enabled = false })); err != nil || pv.Contacts != 1 || pv.Removed != 1 {
		t.Fatalf("t2's preview = %+v, %v; want its own one contact", pv, err)
	}
	_, err := e.Store.MergeProfiles(ctx, "t2", pb, pa, admin)
	wantCode(t, err, related.CodeNotFound)
	rule := saveRule(t, e.Store, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true, MaxPerProfile: 1})
	record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, "c1", "c1@x.io", "c", base), "customerId", "A"))
	record(t, e.Store, "t1", withAttested(msg(t, related.ChannelWebChat, "c2", "v", "c", base), "customerId", "B", "email", "c1@x.io"))
	record(t, e.Store, "t1", withAttrs(msg(t, related.ChannelWebChat, "c3", "v3", "c", base), "email", "a@x.io"))
	cf, sug := pairs(t, e.Store, "t1", identity.Conflict), pairs(t, e.Store, "t1", identity.Suggestion)
	if len(cf) == 0 || len(sug) == 0 {
		t.Fatal("the setup made no conflict or suggestion in t1")
	}
	if got := pairs(t, e.Store, "t2", identity.Conflict); len(got) != 0 {
		t.Fatalf("t2 lists t1's conflicts: %+v", got)
	}
	if got := pairs(t, e.Store, "t2", identity.Suggestion); len(got) != 0 {
		t.Fatalf("t2 lists t1's suggestions: %+v", got)
	}
	_, err = e.Store.ProfilePair(ctx, "t2", cf[0].ID)
	wantCode(t, err, related.CodeNotFound)
	_, err = e.Store.ConfirmPair(ctx, "t2", sug[0].ID, admin)
	wantCode(t, err, related.CodeNotFound)
	wantCode(t, e.Store.DismissPair(ctx, "t2", sug[0].ID, admin), related.CodeNotFound)
	if h, _ := e.Store.HubValues(ctx, "t2", store.Page{First: 10}); len(h.Items) != 0 {
		t.Fatal("t2 lists hub values")
	}
	_, err = e.Store.SetValueQuarantine(ctx, "t2", rule.ID, "A", identity.QuarantineBlocked, admin)
	wantCode(t, err, related.CodeNotFound)
	wantCode(t, e.Store.DeleteProfileRule(ctx, "t2", rule.ID), related.CodeNotFound)
	_, err = e.Store.SaveProfileRule(ctx, "t2", rule)
	wantCode(t, err, related.CodeNotFound)
	if ev, _ := e.Store.RuleEvaluation(ctx, "t2"); ev != nil {
		t.Fatalf("t2 sees t1's rule evaluation: %+v", ev)
	}
	if rules, _ := e.Store.ProfileRules(ctx, "t2"); len(rules) != 1 || rules[0].Attribute != "email" {
		t.Fatalf("t2's rules = %+v, want only its default", rules)
	}
	_, err = e.Store.LinkContact(ctx, "t2", pb, a.Contact.ID, admin)
	wantCode(t, err, related.CodeNotFound)
	_, err = e.Store.RenameProfile(ctx, "t2", pa, "mine", admin)
	wantCode(t, err, related.CodeNotFound)
	_, err = e.Store.UnlinkContact(ctx, "t2", a.Contact.ID, admin)
	wantCode(t, err, related.CodeNotFound)
	if p := profileOf(t, e.Store, "t1", pa); p.Name == "mine" {
		t.Fatal("t2 renamed t1's profile")
	}
}

func testPersonName(t *testing.T, open Opener) {
	e := open(t)
	in := msg(t, related.ChannelEmail, "a", "hana.baker@x.io", "hi", base)
	in.Contact.Name = ""
	r := record(t, e.Store, "t1", in)
	if p := profileOf(t, e.Store, "t1", pid(t, e.Store, "t1", r)); p.Name != "hana.baker@x.io" {
		t.Fatalf("a profile with no person's name = %q, want its identifier", p.Name)
	}
	in.Contact.Name = "Hana Baker"
	record(t, e.Store, "t1", in)
	if p := profileOf(t, e.Store, "t1", pid(t, e.Store, "t1", r)); p.Name != "Hana Baker" {
		t.Fatalf("once the person's name is known, the profile = %q, want it", p.Name)
	}
}
