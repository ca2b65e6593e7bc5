package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/server"
)

// TestIdentityAPI drives issues 10, 11 and 12 through GraphQL and HTTP, as
// a client would: warnings for an unparseable address, attestation by role,
// suggestions confirmed, hub values, history with actors, a rule preview,
// erasure and export.
func TestIdentityAPI(t *testing.T) {
	for _, b := range profileBackends() {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			agentKey := g.newKey(server.DemoTenant, related.RoleAgent)
			integrationKey := g.newKey(server.DemoTenant, related.RoleIntegration)
			const rec = `mutation($in: RecordMessageInput!) { recordMessage(input: $in) {
				interaction { id contact { id addressStatus profile { id name } } }
				userErrors { field code } warnings { field code message } } }`
			type recordOut struct {
				RecordMessage struct {
					Interaction *struct {
						ID      string
						Contact struct {
							ID, AddressStatus string
							Profile           *struct{ ID, Name string }
						}
					}
					UserErrors []struct {
						Field []string
						Code  string
					}
					Warnings []struct {
						Field         []string
						Code, Message string
					}
				}
			}
			// An unparseable sender is recorded, and said.
			var bad recordOut
			g.must(rec, map[string]any{"in": message("EMAIL", "bad", "bob @example.com", "hi", t0)}, &bad)
			w := bad.RecordMessage.Warnings
			if bad.RecordMessage.Interaction == nil || bad.RecordMessage.Interaction.Contact.AddressStatus != "UNPARSEABLE" ||
				len(w) != 1 || w[0].Code != "UNPARSEABLE_ADDRESS" || strings.Join(w[0].Field, ".") != "input.contact.address" {
				t.Fatalf("unparseable sender = %+v", bad.RecordMessage)
			}
			// An agent may not attest; an integration may.
			attested := message("WEBCHAT", "chat", "visitor-1", "hi", t0.Add(time.Minute))
			attested["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "email", "value": "ann@example.com", "attested": true}}
			var out recordOut
			r, _ := g.doAs(agentKey, rec, map[string]any{"in": attested}, &out)
			if ue := out.RecordMessage.UserErrors; len(r.Errors) > 0 || len(ue) != 1 || strings.Join(ue[0].Field, ".") != "input.contact.attributes.0.attested" {
				t.Fatalf("an agent's attestation = %+v, %+v", out.RecordMessage, r.Errors)
			}
			email := g.record(message("EMAIL", "mail", "ann@example.com", "hi", t0))
			r, _ = g.doAs(integrationKey, rec, map[string]any{"in": attested}, &out)
			if len(r.Errors) > 0 || out.RecordMessage.Interaction == nil || out.RecordMessage.Interaction.Contact.Profile == nil {
				t.Fatalf("an integration's attested email = %+v, %+v", out.RecordMessage, r.Errors)
			}
			annProfile := out.RecordMessage.Interaction.Contact.Profile.ID
			if r, status := g.doAs(integrationKey, `{ viewer { tenant } }`, nil, nil); status != http.StatusForbidden || len(r.Errors) == 0 {
				t.Fatalf("an integration key read: status %d", status)
			}
			// A visitor who typed the address: a suggestion, confirmed.
			typed := message("WEBCHAT", "chat2", "visitor-2", "hi", t0.Add(2*time.Minute))
			typed["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "email", "value": "ANN@example.com"}}
			g.must(rec, map[string]any{"in": typed}, &out)
			var sug struct {
				ProfileSuggestions struct {
					TotalCount int
					Edges      []struct {
						Node struct {
							ID, Reason, Explanation string
							Sources                 []string
							Identifier              struct{ Key, Value string }
							Profiles                []struct{ ID string }
						}
					}
				}
			}
			g.must(`{ profileSuggestions(first: 10) { totalCount edges { node { id reason explanation sources identifier { key value } profiles { id } } } } }`, nil, &sug)
			if sug.ProfileSuggestions.TotalCount != 1 || sug.ProfileSuggestions.Edges[0].Node.Reason != "CLAIMED" ||
				sug.ProfileSuggestions.Edges[0].Node.Identifier.Value != "ann@example.com" || sug.ProfileSuggestions.Edges[0].Node.Explanation == "" {
				t.Fatalf("suggestions = %+v", sug)
			}
			sid := sug.ProfileSuggestions.Edges[0].Node.ID
			var node struct {
				Node *struct {
					Typename string `json:"__typename"`
				}
			}
			g.must(`query($id: ID!) { node(id: $id) { __typename } }`, map[string]any{"id": sid}, &node)
			if node.Node == nil || node.Node.Typename != "ProfileSuggestion" {
				t.Fatalf("node(suggestion) = %+v", node)
			}
			var conf struct {
				ConfirmSuggestion struct {
					Profile *struct {
						ID       string
						Contacts []struct{ ID string }
					}
					UserErrors []struct{ Code string }
				}
			}
			if r, status := g.doAs(agentKey, `mutation($id: ID!) { confirmSuggestion(input: {id: $id}) { profile { id } } }`, map[string]any{"id": sid}, nil); status != http.StatusForbidden {
				t.Fatalf("an agent confirmed a suggestion: %d %+v", status, r.Errors)
			}
			g.must(`mutation($id: ID!) { confirmSuggestion(input: {id: $id}) { profile { id contacts { id } } userErrors { code } } }`, map[string]any{"id": sid}, &conf)
			if conf.ConfirmSuggestion.Profile == nil || len(conf.ConfirmSuggestion.Profile.Contacts) != 3 {
				t.Fatalf("confirm = %+v", conf)
			}
			annProfile = conf.ConfirmSuggestion.Profile.ID
			// History, with who did what.
			var hist struct {
				Profile struct {
					Name    string
					History struct {
						Edges []struct {
							Node struct {
								Kind  string
								Actor struct {
									Name string
									Role *string
								}
							}
						}
					}
				}
			}
			g.must(`query($id: ID!) { profile(id: $id) { name history(first: 20) { edges { node { kind actor { name role } } } } } }`, map[string]any{"id": annProfile}, &hist)
			kinds := map[string]string{}
			for _, e := range hist.Profile.History.Edges {
				role := ""
				if e.Node.Actor.Role != nil {
					role = *e.Node.Actor.Role
				}
				kinds[e.Node.Kind] = role
			}
			if kinds["CONFIRMED"] != related.RoleAdmin || hist.Profile.Name != "Ann Example" {
				t.Fatalf("history = %+v (%v)", hist, kinds)
			}
			// A rule preview changes nothing and says what would change.
			var pv struct {
				PreviewProfileRule struct {
					ContactsTouched int
					Partial         bool
					Summary         struct{ ProfilesSplit, ContactsMoved int }
				}
			}
			var rules struct {
				ProfileRules []struct{ ID, Attribute string }
			}
			g.must(`{ profileRules { id attribute } }`, nil, &rules)
			g.must(`query($id: ID!) { previewProfileRule(input: {id: $id, attribute: "email", normalizer: EMAIL, enabled: false}) {
				contactsTouched partial summary { profilesSplit contactsMoved } } }`, map[string]any{"id": rules.ProfileRules[0].ID}, &pv)
			if pv.PreviewProfileRule.ContactsTouched != 3 || pv.PreviewProfileRule.Partial {
				t.Fatalf("preview = %+v", pv)
			}
			// Export, then erase.
			req, _ := http.NewRequest("GET", g.url+"/export/profiles/"+annProfile, nil)
			req.Header.Set("Authorization", "Bearer "+g.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			lines := strings.Split(strings.TrimSpace(string(body)), "\n")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 1+3+3+3 {
				t.Fatalf("export: %d %s, %d lines:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), len(lines), body)
			}
			var first struct{ Type string }
			if json.Unmarshal([]byte(lines[0]), &first); first.Type != "profile" {
				t.Fatalf("export starts with %s", lines[0])
			}
			req.Header.Set("Authorization", "Bearer "+agentKey)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("an agent exported: %v %v", resp.StatusCode, err)
			}
			var er struct {
				EraseProfile struct {
					Erasure *struct {
						Contacts, Interactions, Messages int
						Subject                          string
					}
					UserErrors []struct{ Field []string }
				}
			}
			g.must(`mutation($id: ID!) { eraseProfile(input: {id: $id, reason: "  "}) { erasure { contacts } userErrors { field } } }`, map[string]any{"id": annProfile}, &er)
			if ue := er.EraseProfile.UserErrors; len(ue) != 1 || strings.Join(ue[0].Field, ".") != "input.reason" {
				t.Fatalf("a blank reason = %+v", er)
			}
			g.must(`mutation($id: ID!) { eraseProfile(input: {id: $id, reason: "DSR-1"}) { erasure { contacts interactions messages subject } userErrors { field } } }`, map[string]any{"id": annProfile}, &er)
			if e := er.EraseProfile.Erasure; e == nil || e.Contacts != 3 || e.Interactions != 3 || e.Subject != "PROFILE" {
				t.Fatalf("erasure = %+v", er)
			}
			g.must(`query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": email.RecordMessage.Interaction.ID}, &node)
			if node.Node != nil {
				t.Fatal("an erased interaction still reads")
			}
			var ers struct {
				Erasures struct {
					Edges []struct{ Node struct{ Reason string } }
				}
			}
			g.must(`{ erasures { edges { node { reason } } } }`, nil, &ers)
			if len(ers.Erasures.Edges) != 1 || ers.Erasures.Edges[0].Node.Reason != "DSR-1" {
				t.Fatalf("erasures = %+v", ers)
			}
		})
	}
}

// TestRuleEvaluationIsItsPreview is the audit's reproduction through
// GraphQL: three contacts share a loyalty id, two others another, and a
// rule for it quarantines a value held by more than two. The run, in
// batches of one contact, reports exactly what previewProfileRule said,
// samples included, and no holder of the hub value is ever merged.
func TestRuleEvaluationIsItsPreview(t *testing.T) {
	const summary = `summary { profilesMerged profilesSplit profilesCreated profilesRemoved profilesUnchanged contactsMoved
		valuesQuarantined suggestionsCreated samples { before { id name contacts { id } } after { id name contacts { id } } } }`
	for _, b := range profileBackends() {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			integrationKey := g.newKey(server.DemoTenant, related.RoleIntegration)
			var hub []string
			for i, id := range []string{"L-1", "L-1", "L-1", "L-2", "L-3", "L-3"} {
				in := message("EMAIL", fmt.Sprint("t", i), fmt.Sprintf("c%d@example.com", i), "hi", t0)
				in["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "loyaltyId", "value": id, "attested": true}}
				var out struct {
					RecordMessage struct {
						Interaction struct {
							Contact struct{ Profile struct{ ID string } }
						}
					}
				}
				if r, _ := g.doAs(integrationKey, `mutation($in: RecordMessageInput!) { recordMessage(input: $in) {
					interaction { contact { profile { id } } } } }`, map[string]any{"in": in}, &out); len(r.Errors) > 0 {
					t.Fatalf("record: %+v", r.Errors)
				}
				if id == "L-1" {
					hub = append(hub, out.RecordMessage.Interaction.Contact.Profile.ID)
				}
			}
			rule := map[string]any{"attribute": "loyaltyId", "normalizer": "EXACT", "autoMerge": "ANY", "maxContactsPerValue": 2}
			var pv struct {
				PreviewProfileRule struct{ Summary json.RawMessage }
			}
			g.must(`query($in: ProfileRuleInput!) { previewProfileRule(input: $in) { `+summary+` } }`, map[string]any{"in": rule}, &pv)
			g.must(`mutation($in: ProfileRuleInput!) { upsertProfileRule(input: $in) { rule { id } } }`, map[string]any{"in": rule}, nil)
			for done := false; !done; {
				var err error
				if done, err = g.st.EvaluateRules(context.Background(), server.DemoTenant, 1); err != nil {
					t.Fatal(err)
				}
			}
			var ev struct {
				RuleEvaluation struct {
					State            string
					Processed, Total int
					Summary          json.RawMessage
				}
			}
			g.must(`{ ruleEvaluation { state processed total `+summary+` } }`, nil, &ev)
			if e := ev.RuleEvaluation; e.State != "DONE" || e.Processed != 12 || e.Total != 12 {
				t.Fatalf("evaluation %s, %d steps of %d; want 12 of 12 (six contacts, twice)", e.State, e.Processed, e.Total)
			}
			if got, want := string(ev.RuleEvaluation.Summary), string(pv.PreviewProfileRule.Summary); got != want {
				t.Fatalf("the run reports\n%s\nits preview said\n%s", got, want)
			}
			var counts struct{ ProfilesMerged, ProfilesUnchanged, ValuesQuarantined int }
			if err := json.Unmarshal(ev.RuleEvaluation.Summary, &counts); err != nil || counts.ProfilesMerged != 1 ||
				counts.ProfilesUnchanged != 4 || counts.ValuesQuarantined != 1 {
				t.Fatalf("summary = %s, %v; want the pair merged, four profiles unchanged, the hub value quarantined", ev.RuleEvaluation.Summary, err)
			}
			for _, p := range hub {
				var h struct {
					Profile struct {
						History struct {
							Edges []struct{ Node struct{ Kind string } }
						}
					}
				}
				g.must(`query($id: ID!) { profile(id: $id) { history(first: 50) { edges { node { kind } } } } }`, map[string]any{"id": p}, &h)
				for _, e := range h.Profile.History.Edges {
					if e.Node.Kind == "MERGED" || e.Node.Kind == "SPLIT" {
						t.Fatalf("a holder of the hub value was %s during the run", e.Node.Kind)
					}
				}
			}
		})
	}
}
