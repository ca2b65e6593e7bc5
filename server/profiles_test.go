package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related/server"
)

// profileBackends returns the backends whose profile support is complete.
func profileBackends() []backend {
	var out []backend
	for _, b := range backends {
		if b.name == "sqlite" || profilesOnMongo {
			out = append(out, b)
		}
	}
	return out
}

// profilesOnMongo turns the profile end-to-end tests on for the MongoDB
// adapter.
var profilesOnMongo = true

const profilePanel = `query($id: ID!, $first: Int, $scope: RelatedScope) {
  interaction(id: $id) {
    profile { id name channels identifiers { key value } contacts { channel address } }
    related(first: $first, scope: $scope) {
      scope totalCount
      edges { node { id channel contact { address } profile { id name channels } } }
    }
  }
}`

type profileView struct {
	Interaction struct {
		Profile *struct {
			ID, Name    string
			Channels    []string
			Identifiers []struct{ Key, Value string }
			Contacts    []struct{ Channel, Address string }
		}
		Related struct {
			Scope      string
			TotalCount int
			Edges      []struct {
				Node struct {
					ID, Channel string
					Contact     struct{ Address string }
					Profile     *struct {
						ID, Name string
						Channels []string
					}
				}
			}
		}
	}
}

func TestProfileAcrossChannels(t *testing.T) {
	for _, b := range profileBackends() {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			// A phone rule besides the default email rule.
			var rule struct {
				UpsertProfileRule struct {
					Rule       *struct{ ID, Attribute, Normalizer string }
					UserErrors []struct {
						Field []string
						Code  string
					}
				}
			}
			g.must(`mutation { upsertProfileRule(input: {attribute: "phone", normalizer: PHONE, defaultRegion: "GB", priority: 10}) {
				rule { id attribute normalizer } userErrors { field code } } }`, nil, &rule)
			if rule.UpsertProfileRule.Rule == nil || len(rule.UpsertProfileRule.UserErrors) > 0 {
				t.Fatalf("upsert = %+v", rule)
			}
			// Invalid rules: userErrors naming the field.
			for _, c := range []struct{ input, field, code string }{
				{`{attribute: "phone", normalizer: EXACT}`, "input.attribute", "CONFLICT"},
				{`{attribute: "x", normalizer: EXACT, maxPerProfile: -1}`, "input.maxPerProfile", "INVALID"},
				{`{attribute: " ", normalizer: EXACT}`, "input.attribute", "INVALID"},
			} {
				g.must(`mutation { upsertProfileRule(input: `+c.input+`) { rule { id } userErrors { field code } } }`, nil, &rule)
				ue := rule.UpsertProfileRule.UserErrors
				if len(ue) != 1 || strings.Join(ue[0].Field, ".") != c.field || ue[0].Code != c.code {
					t.Fatalf("%s: userErrors = %+v, want %s on %s", c.input, ue, c.code, c.field)
				}
			}
			// The tenant's numbers are British unless written otherwise.
			var settings struct {
				SetTenantSettings struct {
					Settings   struct{ DefaultRegion string }
					UserErrors []struct{ Field []string }
				}
			}
			g.must(`mutation { setTenantSettings(input: {defaultRegion: "gb"}) { settings { defaultRegion } userErrors { field } } }`, nil, &settings)
			if settings.SetTenantSettings.Settings.DefaultRegion != "GB" {
				t.Fatalf("settings = %+v", settings)
			}
			g.must(`mutation { setTenantSettings(input: {defaultRegion: "Narnia"}) { settings { defaultRegion } userErrors { field } } }`, nil, &settings)
			if ue := settings.SetTenantSettings.UserErrors; len(ue) != 1 || strings.Join(ue[0].Field, ".") != "input.defaultRegion" {
				t.Fatalf("a bad region: %+v", settings)
			}
			// One customer on email, SMS (the same number as a WhatsApp
			// attribute) and WhatsApp; the CRM attests the email on
			// WhatsApp.
			email := g.record(message("EMAIL", "e1", "ann@example.com", "email 1", t0))
			in := message("WHATSAPP", "w1", "+44 7700 900123", "whatsapp", t0.Add(time.Hour))
			in["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "email", "value": "ANN@example.com", "attested": true}}
			wa := g.record(in)
			sms := g.record(message("SMS", "s1", "07700 900123", "sms", t0.Add(2*time.Hour)))
			_ = sms
			var v profileView
			g.must(profilePanel, map[string]any{"id": email.RecordMessage.Interaction.ID}, &v)
			p := v.Interaction.Profile
			if p == nil || p.Name != "Ann Example" || fmt.Sprint(p.Channels) != "[EMAIL SMS WHATSAPP]" || len(p.Contacts) != 3 {
				t.Fatalf("profile bar = %+v", p)
			}
			rel := v.Interaction.Related
			if rel.Scope != "PROFILE" || rel.TotalCount != 2 || len(rel.Edges) != 2 || rel.Edges[0].Node.Channel != "SMS" || rel.Edges[1].Node.Channel != "WHATSAPP" {
				t.Fatalf("related = %+v", rel)
			}
			for _, e := range rel.Edges {
				if e.Node.Profile == nil || e.Node.Profile.ID != p.ID {
					t.Fatalf("item profile = %+v", e.Node.Profile)
				}
			}
			// CHANNEL scope on request.
			g.must(profilePanel, map[string]any{"id": wa.RecordMessage.Interaction.ID, "scope": "CHANNEL"}, &v)
			if v.Interaction.Related.Scope != "CHANNEL" || v.Interaction.Related.TotalCount != 0 {
				t.Fatalf("channel scope = %+v", v.Interaction.Related)
			}
			// profileByIdentifier normalizes with the rule.
			var by struct{ ProfileByIdentifier *struct{ ID string } }
			g.must(`{ profileByIdentifier(key: "phone", value: "+44 (0)7700 900123") { id } }`, nil, &by)
			if by.ProfileByIdentifier == nil || by.ProfileByIdentifier.ID != p.ID {
				t.Fatalf("by phone = %+v", by)
			}
			g.must(`{ profileByIdentifier(key: "email", value: " Ann@Example.COM ") { id } }`, nil, &by)
			if by.ProfileByIdentifier == nil || by.ProfileByIdentifier.ID != p.ID {
				t.Fatalf("by email = %+v", by)
			}
			// Rename, then links explain every membership.
			var renamed struct {
				RenameProfile struct{ Profile struct{ Name string } }
			}
			g.must(`mutation($id: ID!) { renameProfile(input: {id: $id, name: "Ann (VIP)"}) { profile { name } userErrors { message } } }`, map[string]any{"id": p.ID}, &renamed)
			if renamed.RenameProfile.Profile.Name != "Ann (VIP)" {
				t.Fatalf("rename = %+v", renamed)
			}
			var links struct {
				Profile struct {
					Links []struct {
						Reason, LinkedAt string
						Key, Value       *string
						Contact          struct{ Channel string }
					}
				}
			}
			g.must(`query($id: ID!) { profile(id: $id) { links { reason key value linkedAt contact { channel } } } }`, map[string]any{"id": p.ID}, &links)
			if len(links.Profile.Links) < 3 {
				t.Fatalf("links = %+v", links)
			}
			for _, l := range links.Profile.Links {
				if l.Reason != "RULE" || l.Key == nil || l.Value == nil || l.LinkedAt == "" {
					t.Fatalf("link = %+v", l)
				}
			}
			// Unlink the SMS contact: it shares its number with the WhatsApp
			// contact, yet stays apart in a profile of its own.
			var unlinked struct {
				UnlinkContact struct {
					Contact    struct{ Profile *struct{ ID string } }
					UserErrors []struct{ Message string }
				}
			}
			smsContact := sms.RecordMessage.Interaction.Contact.ID
			g.must(`mutation($id: ID!) { unlinkContact(input: {contactId: $id}) { contact { profile { id } } userErrors { message } } }`, map[string]any{"id": smsContact}, &unlinked)
			if len(unlinked.UnlinkContact.UserErrors) > 0 || unlinked.UnlinkContact.Contact.Profile == nil {
				t.Fatalf("unlink = %+v", unlinked)
			}
			g.must(profilePanel, map[string]any{"id": email.RecordMessage.Interaction.ID}, &v)
			if fmt.Sprint(v.Interaction.Profile.Channels) != "[EMAIL WHATSAPP]" || v.Interaction.Related.TotalCount != 1 ||
				v.Interaction.Profile.ID == unlinked.UnlinkContact.Contact.Profile.ID {
				t.Fatalf("after unlink = %+v", v.Interaction)
			}
			p.ID = v.Interaction.Profile.ID // (the id of the contact's profile if it was its anchor)
			// Link it back by hand.
			var linked struct {
				LinkContact struct{ Profile struct{ Channels []string } }
			}
			g.must(`mutation($p: ID!, $c: ID!) { linkContact(input: {profileId: $p, contactId: $c}) { profile { channels } userErrors { message } } }`,
				map[string]any{"p": p.ID, "c": smsContact}, &linked)
			if fmt.Sprint(linked.LinkContact.Profile.Channels) != "[EMAIL SMS WHATSAPP]" {
				t.Fatalf("link = %+v", linked)
			}
		})
	}
}

// TestProfilePanelCostIsFlat: a PROFILE-scope page whose items span many
// channels and contacts costs the same for 1, 20 and 100 items, profile
// lookups included (one batched load).
func TestProfilePanelCostIsFlat(t *testing.T) {
	for _, b := range profileBackends() {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			sharedCustomerRule(t, g)
			chans := []string{"EMAIL", "WEBCHAT", "SMS", "WHATSAPP", "MESSENGER", "INSTAGRAM", "TWITTER", "VOICE"}
			var self string
			for i := range 101 {
				ch := chans[i%len(chans)]
				addr := fmt.Sprintf("contact-%d-%s", i%13, strings.ToLower(ch))
				switch ch {
				case "EMAIL":
					addr = fmt.Sprintf("c%d@example.com", i%13)
				case "SMS", "WHATSAPP", "VOICE":
					addr = fmt.Sprintf("+1202555%04d", i%13)
				}
				in := message(ch, fmt.Sprint("t-", i), addr, fmt.Sprint("body ", i), t0.Add(time.Duration(i)*time.Minute))
				in["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "customerId", "value": "flat"}}
				self = g.record(in).RecordMessage.Interaction.ID
			}
			costs := map[int]int64{}
			for _, n := range []int{1, 20, 100} {
				before := g.cmds.Total()
				var v profileView
				g.must(profilePanel, map[string]any{"id": self, "first": n}, &v)
				costs[n] = g.cmds.Total() - before
				if len(v.Interaction.Related.Edges) != n || v.Interaction.Related.Scope != "PROFILE" {
					t.Fatalf("first %d: %d items, scope %s", n, len(v.Interaction.Related.Edges), v.Interaction.Related.Scope)
				}
			}
			if costs[1] != costs[20] || costs[20] != costs[100] {
				t.Fatalf("database commands by page size = %v, want the same for every size", costs)
			}
		})
	}
}

// sharedCustomerRule adds a customerId rule that any value merges through
// and that no number of holders quarantines: the tests' way to put many
// contacts in one profile.
func sharedCustomerRule(t *testing.T, g *gateway) {
	t.Helper()
	var rule struct {
		UpsertProfileRule struct {
			Rule       *struct{ ID string }
			UserErrors []struct{ Message string }
		}
	}
	g.must(`mutation { upsertProfileRule(input: {attribute: "customerId", normalizer: EXACT, autoMerge: ANY, maxContactsPerValue: 0}) {
		rule { id } userErrors { message } } }`, nil, &rule)
	if rule.UpsertProfileRule.Rule == nil {
		t.Fatalf("upsert = %+v", rule)
	}
}

// TestFoldedContactIDStillLeads: a contact id a client kept from before
// canonicalization folded that contact into another (the tenant's region
// arrived later) leads to the contact it became, in node(id:) and in the
// mutations that take a contact id.
func TestFoldedContactIDStillLeads(t *testing.T) {
	for _, b := range profileBackends() {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			national := g.record(message("SMS", "n1", "07400 123456", "national", t0))
			intl := g.record(message("SMS", "i1", "+44 7400 123456", "international", t0.Add(time.Minute)))
			old, now := national.RecordMessage.Interaction.Contact.ID, intl.RecordMessage.Interaction.Contact.ID
			if old == now {
				t.Fatal("without a region the national number is a contact of its own")
			}
			g.must(`mutation { setTenantSettings(input: {defaultRegion: "GB"}) { userErrors { field } } }`, nil, nil)
			for done := false; !done; {
				var err error
				if done, err = g.st.CanonicalizeContacts(context.Background(), server.DemoTenant, 10); err != nil {
					t.Fatal(err)
				}
			}
			var node struct {
				Node *struct{ ID, Address string }
			}
			g.must(`query($id: ID!) { node(id: $id) { id ... on Contact { address } } }`, map[string]any{"id": old}, &node)
			if node.Node == nil || node.Node.ID != now || node.Node.Address != "+447400123456" {
				t.Fatalf("node(old id) = %+v, want the contact %s", node.Node, now)
			}
			var set struct {
				SetContactAttributes struct {
					Contact    *struct{ ID string }
					UserErrors []struct{ Field []string }
				}
			}
			g.must(`mutation($id: ID!) { setContactAttributes(input: {contactId: $id, attributes: [{key: "customerId", value: "C-1"}]}) {
				contact { id } userErrors { field } } }`, map[string]any{"id": old}, &set)
			if c := set.SetContactAttributes.Contact; c == nil || c.ID != now || len(set.SetContactAttributes.UserErrors) > 0 {
				t.Fatalf("setContactAttributes(old id) = %+v", set)
			}
		})
	}
}
