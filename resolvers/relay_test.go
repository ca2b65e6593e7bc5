package resolvers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/resolvers"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// Relay completeness, through the real server over HTTP on SQLite: every
// Node type resolves through node and nodes, and every mutation echoes
// clientMutationId. Both tests walk the schema, so a type or mutation
// added later without a case here fails them.

// gateway is a server on a real port with an admin key.
type gateway struct {
	t    *testing.T
	url  string
	key  string
	cmds *store.Commands
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	cmds := new(store.Commands)
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Commands: cmds, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(server.New(server.Options{Store: st, Commands: cmds, Logger: slog.New(slog.DiscardHandler), Limits: server.Limits{RatePerSecond: -1}, KeyCacheTTL: time.Minute}))
	t.Cleanup(srv.Close)
	secret, k, err := store.NewKey(server.DemoTenant, related.RoleAdmin, "relay test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return &gateway{t: t, url: srv.URL, key: secret, cmds: cmds}
}

type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// do runs an operation and decodes its data into out; it fails the test
// on GraphQL errors unless errs is given to receive them.
func (g *gateway) do(query string, vars map[string]any, out any, errs ...*[]gqlError) {
	g.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, g.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		g.t.Fatalf("status %d, body %s: %v", resp.StatusCode, raw, err)
	}
	if len(errs) > 0 {
		*errs[0] = r.Errors
	} else if len(r.Errors) > 0 {
		g.t.Fatalf("%s\nerrors: %s", query, raw)
	}
	if out != nil && len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, out); err != nil {
			g.t.Fatalf("decode %s: %v", r.Data, err)
		}
	}
}

// servedSchema is the schema gqlgen executes.
func servedSchema() *ast.Schema { return graph.NewExecutableSchema(graph.Config{}).Schema() }

type userErrors []struct {
	Field   []string
	Message string
	Code    string
}

// onePerNodeType creates, through the API, at least one object of every
// type that implements Node, and returns a global id of each by type name.
func onePerNodeType(g *gateway) map[string]string {
	g.t.Helper()
	ids := map[string]string{}
	var rule struct {
		UpsertProfileRule struct {
			Rule       struct{ ID string }
			UserErrors userErrors
		}
	}
	// At most one customer id per profile: a shared email that would join
	// two customer ids is a conflict instead of a merge.
	g.do(`mutation { upsertProfileRule(input: {attribute: "customerId", normalizer: CASE_INSENSITIVE, maxPerProfile: 1}) {
		rule { id } userErrors { field message code } } }`, nil, &rule)
	if len(rule.UpsertProfileRule.UserErrors) > 0 {
		g.t.Fatalf("upsertProfileRule: %+v", rule.UpsertProfileRule.UserErrors)
	}
	ids["ProfileRule"] = rule.UpsertProfileRule.Rule.ID

	const record = `mutation($input: RecordMessageInput!) { recordMessage(input: $input) {
		interaction { id queue { id } contact { id profile { id } } }
		message { id }
		userErrors { field message code } } }`
	type recorded struct {
		RecordMessage struct {
			Interaction struct {
				ID      string
				Queue   *struct{ ID string }
				Contact struct {
					ID      string
					Profile *struct{ ID string }
				}
			}
			Message    struct{ ID string }
			UserErrors userErrors
		}
	}
	msg := func(ch, thread, address string, attrs ...map[string]any) recorded {
		var r recorded
		g.do(record, map[string]any{"input": map[string]any{
			"channel": ch, "threadRef": thread, "direction": "INBOUND", "body": "Hello about my order", "queue": "Billing",
			"contact": map[string]any{"address": address, "attributes": attrs},
		}}, &r)
		if len(r.RecordMessage.UserErrors) > 0 {
			g.t.Fatalf("recordMessage %s: %+v", thread, r.RecordMessage.UserErrors)
		}
		return r
	}
	attr := func(k, v string, attested bool) map[string]any {
		return map[string]any{"key": k, "value": v, "attested": attested}
	}
	c1 := msg("EMAIL", "t-c1", "c1@example.com", attr("customerId", "A", true))
	msg("WEBCHAT", "t-c2", "visitor-2", attr("customerId", "B", true), attr("email", "c1@example.com", true))
	msg("WEBCHAT", "t-c3", "visitor-3", attr("email", "c1@example.com", false))
	it := c1.RecordMessage.Interaction
	ids["Interaction"], ids["Message"], ids["Contact"] = it.ID, c1.RecordMessage.Message.ID, it.Contact.ID
	if it.Queue != nil {
		ids["Queue"] = it.Queue.ID
	}
	if it.Contact.Profile != nil {
		ids["Profile"] = it.Contact.Profile.ID
	}

	var pairs struct {
		ProfileSuggestions, ProfileConflicts struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	g.do(`{ profileSuggestions { edges { node { id } } } profileConflicts { edges { node { id } } } }`, nil, &pairs)
	if e := pairs.ProfileSuggestions.Edges; len(e) > 0 {
		ids["ProfileSuggestion"] = e[0].Node.ID
	}
	if e := pairs.ProfileConflicts.Edges; len(e) > 0 {
		ids["ProfileConflict"] = e[0].Node.ID
	}
	return ids
}

type node struct {
	Typename string `json:"__typename"`
	ID       string
}

// TestEveryNodeTypeResolves walks the types that implement Node in the
// served schema, creates one object of each through the API, and checks
// node and nodes return it; nodes keeps the order of its ids and answers
// null in place for ids that name nothing.
func TestEveryNodeTypeResolves(t *testing.T) {
	g := newGateway(t)
	ids := onePerNodeType(g)
	s := servedSchema()
	var types []string
	for _, d := range s.GetPossibleTypes(s.Types["Node"]) {
		types = append(types, d.Name)
	}
	slices.Sort(types)
	if len(types) < 8 {
		t.Fatalf("Node's implementers = %v", types)
	}
	var all []string
	for _, typ := range types {
		id, ok := ids[typ]
		if !ok || id == "" {
			t.Errorf("no %s was created: %s implements Node, so onePerNodeType must make one and node must resolve it", typ, typ)
			continue
		}
		var got struct{ Node *node }
		g.do(`query($id: ID!) { node(id: $id) { __typename id } }`, map[string]any{"id": id}, &got)
		if got.Node == nil || got.Node.Typename != typ || got.Node.ID != id {
			t.Errorf("node(%s id %q) = %+v; want that %s", typ, id, got.Node, typ)
		}
		all = append(all, id)
	}

	// nodes: every type at once, then ids that name nothing, in place.
	nothing := []string{
		"",
		"not a global id",
		related.GlobalID(related.NodeInteraction, "nothing"),
		related.GlobalID(related.NodeProfile, "nothing"),
		related.GlobalID(related.TypeErasure, "x"), // a global id, but not of a Node
		strings.Repeat("A", 300),
	}
	req := append(append(slices.Clone(all), nothing...), all[0])
	var got struct{ Nodes []*node }
	g.do(`query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }`, map[string]any{"ids": req}, &got)
	if len(got.Nodes) != len(req) {
		t.Fatalf("nodes returned %d entries for %d ids", len(got.Nodes), len(req))
	}
	for i, id := range req {
		n := got.Nodes[i]
		wantNull := i >= len(all) && i < len(all)+len(nothing)
		switch {
		case wantNull && n != nil:
			t.Errorf("nodes[%d] (%q) = %+v; want null", i, id, n)
		case !wantNull && (n == nil || n.ID != id):
			t.Errorf("nodes[%d] = %+v; want the node %q", i, n, id)
		}
	}
}

// TestNodesBounds checks the bound of nodes (100 ids; more is an INVALID
// error naming ids) and that ids of one type cost one batched read.
func TestNodesBounds(t *testing.T) {
	g := newGateway(t)
	ids := onePerNodeType(g)
	const query = `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`

	var errs []gqlError
	g.do(query, map[string]any{"ids": make([]string, resolvers.MaxNodes+1)}, nil, &errs)
	if len(errs) != 1 || errs[0].Extensions["code"] != "INVALID" || fmt.Sprint(errs[0].Extensions["field"]) != "[ids]" ||
		!strings.Contains(errs[0].Message, "at most 100") {
		t.Errorf("101 ids: errors %+v; want one INVALID error naming ids", errs)
	}

	// 100 interaction ids, one of which exists: one read of interactions.
	many := []string{ids["Interaction"]}
	for i := len(many); i < resolvers.MaxNodes; i++ {
		many = append(many, related.GlobalID(related.NodeInteraction, fmt.Sprintf("missing%d", i)))
	}
	g.do(`{ viewer { tenant } }`, nil, nil) // the key's first use is recorded: not part of what is measured
	before := g.cmds.Snapshot()
	var got struct{ Nodes []*struct{ ID string } }
	g.do(query, map[string]any{"ids": many}, &got)
	if len(got.Nodes) != resolvers.MaxNodes || got.Nodes[0] == nil || got.Nodes[0].ID != ids["Interaction"] || got.Nodes[1] != nil {
		t.Fatalf("nodes of 100 ids = %d entries, first %+v", len(got.Nodes), got.Nodes[0])
	}
	var total int64
	for name, n := range g.cmds.Snapshot() {
		if d := n - before[name]; d > 0 {
			t.Logf("%s: %d", name, d)
			total += d
		}
	}
	if total > 2 {
		t.Errorf("nodes of 100 interaction ids sent %d database commands; want one batched read (plus at most the key's)", total)
	}
}

// mutationSamples has one operation per mutation, each sending
// clientMutationId: "cm". Ids name nothing: the mutation answers with a
// userError, and its payload still echoes the id.
var mutationSamples = map[string]string{
	"recordMessage":        `recordMessage(input: {channel: EMAIL, threadRef: "echo", contact: {address: "echo@example.com"}, direction: INBOUND, body: "hi", clientMutationId: "cm"})`,
	"closeInteraction":     `closeInteraction(input: {id: "x", state: SPAM, clientMutationId: "cm"})`,
	"reopenInteraction":    `reopenInteraction(input: {id: "x", clientMutationId: "cm"})`,
	"setContactAttributes": `setContactAttributes(input: {contactId: "x", attributes: [], clientMutationId: "cm"})`,
	"setPreferences":       `setPreferences(input: {showRelated: true, clientMutationId: "cm"})`,
	"upsertProfileRule":    `upsertProfileRule(input: {attribute: "loyaltyId", normalizer: EXACT, clientMutationId: "cm"})`,
	"deleteProfileRule":    `deleteProfileRule(input: {id: "x", clientMutationId: "cm"})`,
	"linkContact":          `linkContact(input: {profileId: "x", contactId: "y", clientMutationId: "cm"})`,
	"unlinkContact":        `unlinkContact(input: {contactId: "x", clientMutationId: "cm"})`,
	"mergeProfiles":        `mergeProfiles(input: {intoId: "x", fromId: "y", clientMutationId: "cm"})`,
	"renameProfile":        `renameProfile(input: {id: "x", name: "n", clientMutationId: "cm"})`,
	"confirmSuggestion":    `confirmSuggestion(input: {id: "x", clientMutationId: "cm"})`,
	"dismissSuggestion":    `dismissSuggestion(input: {id: "x", clientMutationId: "cm"})`,
	"resolveConflict":      `resolveConflict(input: {id: "x", action: MERGE, clientMutationId: "cm"})`,
	"setValueQuarantine":   `setValueQuarantine(input: {ruleId: "x", value: "v", state: BLOCKED, clientMutationId: "cm"})`,
	"setTenantSettings":    `setTenantSettings(input: {defaultRegion: "GB", clientMutationId: "cm"})`,
	"eraseProfile":         `eraseProfile(input: {id: "x", reason: "r", clientMutationId: "cm"})`,
	"eraseContact":         `eraseContact(input: {id: "x", reason: "r", clientMutationId: "cm"})`,
}

// TestEveryMutationEchoesClientMutationID runs every mutation of the
// served schema with a clientMutationId and checks its payload echoes it,
// on success and on a userError alike.
func TestEveryMutationEchoesClientMutationID(t *testing.T) {
	g := newGateway(t)
	for _, f := range servedSchema().Mutation.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			sample, ok := mutationSamples[f.Name]
			if !ok {
				t.Fatalf("Mutation.%s has no sample in mutationSamples: add one sending clientMutationId", f.Name)
			}
			var got map[string]struct {
				ClientMutationID *string
				UserErrors       userErrors
			}
			g.do(`mutation { `+sample+` { clientMutationId userErrors { field message code } } }`, nil, &got)
			p, ok := got[f.Name]
			if !ok || p.ClientMutationID == nil || *p.ClientMutationID != "cm" {
				t.Errorf("%s: clientMutationId = %v (userErrors %+v); want the input's \"cm\"", f.Name, p.ClientMutationID, p.UserErrors)
			}
			for _, e := range p.UserErrors {
				if !graph.UserErrorCode(e.Code).IsValid() || len(e.Field) == 0 || e.Field[0] != "input" {
					t.Errorf("%s: userError %+v; want a UserErrorCode and a field under input", f.Name, e)
				}
			}
		})
	}
}
