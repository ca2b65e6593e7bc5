package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
)

// rootFields reads the schema's root fields from the generated executable
// schema, so a field added to the schema is tested without anyone
// remembering to add it here.
func rootFields(t *testing.T) map[string][]string {
	t.Helper()
	s := graph.NewExecutableSchema(graph.Config{}).Schema()
	out := map[string][]string{}
	for obj, def := range map[string]any{"Query": s.Query, "Mutation": s.Mutation, "Subscription": s.Subscription} {
		_ = def
		d := s.Types[obj]
		if d == nil {
			continue
		}
		for _, f := range d.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				out[obj] = append(out[obj], f.Name)
			}
		}
	}
	return out
}

// TestRoleTableCoversSchema holds the role table against the schema:
// every mutation has an explicit entry, and every role's answer for every
// root field is the intended one.
func TestRoleTableCoversSchema(t *testing.T) {
	adminOnly := []string{"upsertProfileRule", "deleteProfileRule", "linkContact", "unlinkContact", "mergeProfiles", "renameProfile",
		"confirmSuggestion", "dismissSuggestion", "resolveConflict", "setValueQuarantine", "setTenantSettings", "eraseProfile", "eraseContact"}
	integration := []string{"recordMessage", "setContactAttributes"}
	fields := rootFields(t)
	if len(fields["Query"]) == 0 || len(fields["Mutation"]) == 0 {
		t.Fatalf("schema root fields = %v", fields)
	}
	for obj, names := range fields {
		for _, name := range names {
			if obj == "Mutation" && !server.MutationListed(name) {
				t.Errorf("Mutation.%s has no entry in the role table (server/roles.go): decide who may run it", name)
			}
			for _, role := range server.Roles {
				want := role != related.RoleIntegration
				if obj == "Query" && (strings.HasPrefix(name, "preview") || name == "erasures") {
					want = role == related.RoleAdmin
				}
				if obj == "Mutation" {
					want = role == related.RoleAdmin || (role == related.RoleAgent && !slices.Contains(adminOnly, name)) ||
						role == related.RoleIntegration && slices.Contains(integration, name)
				}
				if got := server.Allowed(role, obj, name); got != want {
					t.Errorf("Allowed(%s, %s.%s) = %v, want %v", role, obj, name, got, want)
				}
			}
		}
	}
	if server.Allowed(related.RoleAgent, "Mutation", "someFutureMutation") || !server.Allowed(related.RoleAdmin, "Mutation", "someFutureMutation") {
		t.Error("an unlisted mutation must be admin-only")
	}
	if server.Allowed("root", "Query", "viewer") || server.Allowed("", "Query", "viewer") {
		t.Error("an unknown role may run nothing")
	}
}

// operations has one document per root field, for the HTTP role test.
var operations = map[string]string{
	"Query.viewer":                   `{ viewer { tenant } }`,
	"Query.node":                     `{ node(id: "x") { id } }`,
	"Query.nodes":                    `{ nodes(ids: ["x", "y"]) { id } }`,
	"Query.interaction":              `{ interaction(id: "x") { id } }`,
	"Query.interactions":             `{ interactions(first: 1) { totalCount } }`,
	"Query.profile":                  `{ profile(id: "x") { id } }`,
	"Query.profileByIdentifier":      `{ profileByIdentifier(key: "email", value: "a@example.com") { id } }`,
	"Query.profileRules":             `{ profileRules { id } }`,
	"Query.profileConflicts":         `{ profileConflicts { totalCount } }`,
	"Query.profileSuggestions":       `{ profileSuggestions { totalCount } }`,
	"Query.hubValues":                `{ hubValues { edges { cursor } } }`,
	"Query.tenantSettings":           `{ tenantSettings { defaultRegion } }`,
	"Query.previewProfileRule":       `{ previewProfileRule(input: {attribute: "loyaltyId", normalizer: EXACT}) { contactsTouched } }`,
	"Query.previewDeleteProfileRule": `{ previewDeleteProfileRule(id: "x") { contactsTouched } }`,
	"Query.erasures":                 `{ erasures { edges { cursor } } }`,
	"Mutation.eraseProfile":          `mutation { eraseProfile(input: {id: "x", reason: "r"}) { __typename } }`,
	"Mutation.eraseContact":          `mutation { eraseContact(input: {id: "x", reason: "r"}) { __typename } }`,
	"Query.ruleEvaluation":           `{ ruleEvaluation { __typename } }`,
	"Mutation.recordMessage":         `mutation { recordMessage(input: {channel: EMAIL, threadRef: "roles", contact: {address: "roles@example.com"}, direction: INBOUND, body: "hi"}) { __typename } }`,
	"Mutation.closeInteraction":      `mutation { closeInteraction(input: {id: "x", state: SPAM}) { __typename } }`,
	"Mutation.reopenInteraction":     `mutation { reopenInteraction(input: {id: "x"}) { __typename } }`,
	"Mutation.setContactAttributes":  `mutation { setContactAttributes(input: {contactId: "x", attributes: []}) { __typename } }`,
	"Mutation.setPreferences":        `mutation { setPreferences(input: {showRelated: true}) { __typename } }`,
	"Mutation.upsertProfileRule":     `mutation { upsertProfileRule(input: {attribute: "email", normalizer: EMAIL}) { __typename } }`,
	"Mutation.deleteProfileRule":     `mutation { deleteProfileRule(input: {id: "x"}) { __typename } }`,
	"Mutation.linkContact":           `mutation { linkContact(input: {profileId: "x", contactId: "y"}) { __typename } }`,
	"Mutation.unlinkContact":         `mutation { unlinkContact(input: {contactId: "x"}) { __typename } }`,
	"Mutation.mergeProfiles":         `mutation { mergeProfiles(input: {intoId: "x", fromId: "y"}) { __typename } }`,
	"Mutation.renameProfile":         `mutation { renameProfile(input: {id: "x", name: "n"}) { __typename } }`,
	"Mutation.confirmSuggestion":     `mutation { confirmSuggestion(input: {id: "x"}) { __typename } }`,
	"Mutation.dismissSuggestion":     `mutation { dismissSuggestion(input: {id: "x"}) { __typename } }`,
	"Mutation.resolveConflict":       `mutation { resolveConflict(input: {id: "x", action: MERGE}) { __typename } }`,
	"Mutation.setValueQuarantine":    `mutation { setValueQuarantine(input: {ruleId: "x", value: "v", state: BLOCKED}) { __typename } }`,
	"Mutation.setTenantSettings":     `mutation { setTenantSettings(input: {defaultRegion: "GB"}) { __typename } }`,
}

// TestEveryRoleEveryOperation runs every query and mutation of the schema
// with a key of every role, through HTTP against SQLite: allowed ones are
// not refused, the others are refused whole with FORBIDDEN and 403 and
// write nothing.
func TestEveryRoleEveryOperation(t *testing.T) {
	g := newGateway(t, backends[0])
	keys := map[string]string{}
	for _, role := range server.Roles {
		keys[role] = g.newKey(server.DemoTenant, role)
	}
	// A key's first use records when it was last used: not part of what
	// the operations below may or may not write.
	for _, key := range keys {
		g.doAs(key, `{ __typename }`, nil, nil)
	}
	fields := rootFields(t)
	for _, obj := range []string{"Query", "Mutation"} {
		for _, name := range fields[obj] {
			doc, ok := operations[obj+"."+name]
			if !ok {
				t.Errorf("no test operation for %s.%s: add one to operations", obj, name)
				continue
			}
			for _, role := range server.Roles {
				t.Run(obj+"."+name+"/"+role, func(t *testing.T) {
					before := g.cmds.Snapshot()
					r, status := g.doAs(keys[role], doc, nil, nil)
					forbidden := false
					for _, e := range r.Errors {
						if e.Extensions["code"] == server.CodeForbidden {
							forbidden = true
						} else if e.Extensions["code"] == "GRAPHQL_VALIDATION_FAILED" {
							t.Fatalf("the test's document is invalid: %s", e.Message)
						}
					}
					want := server.Allowed(role, obj, name)
					if forbidden == want {
						t.Fatalf("%s running %s.%s: status %d, errors %+v; allowed = %v", role, obj, name, status, r.Errors, want)
					}
					if !want {
						if status != http.StatusForbidden {
							t.Fatalf("status %d, want 403", status)
						}
						after := g.cmds.Snapshot()
						for _, verb := range []string{"insert", "update", "delete"} {
							if after[verb] != before[verb] {
								t.Fatalf("a refused operation ran %s statements", verb)
							}
						}
					}
				})
			}
		}
	}
}

func TestAuthentication(t *testing.T) {
	g := newGatewayWith(t, backends[0], server.Options{KeyCacheTTL: 20 * time.Millisecond, Limits: server.Limits{RatePerSecond: -1, AnonPerSecond: 1000, AnonBurst: 1000}})
	forged, _, _ := store.NewKey(server.DemoTenant, related.RoleAdmin, "", time.Now())
	for name, key := range map[string]string{
		"missing":   "",
		"forged":    forged,
		"malformed": "rk_not-a-key",
		"garbage":   "' OR 1=1 --",
	} {
		t.Run(name, func(t *testing.T) {
			r, status := g.doAs(key, `{ viewer { tenant } }`, nil, nil)
			if status != http.StatusUnauthorized || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != server.CodeUnauthenticated || len(r.Data) > 0 {
				t.Fatalf("status %d, response %+v", status, r)
			}
		})
	}
	t.Run("wrong scheme", func(t *testing.T) {
		req, _ := http.NewRequest("POST", g.url+"/graphql", strings.NewReader(`{"query":"{ viewer { tenant } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Basic "+g.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		key := g.newKey(server.DemoTenant, related.RoleAgent)
		var out struct{ Viewer struct{ Tenant, Role string } }
		if r, status := g.doAs(key, `{ viewer { tenant role } }`, nil, &out); status != 200 || out.Viewer.Role != related.RoleAgent {
			t.Fatalf("a fresh key: %d %+v", status, r)
		}
		revoke(t, g, key)
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, status := g.doAs(key, `{ viewer { tenant } }`, nil, nil)
			if status == http.StatusUnauthorized {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a revoked key still works after 5s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// revoke revokes the key whose secret is secret.
func revoke(t *testing.T, g *gateway, secret string) {
	t.Helper()
	ks := g.st.(store.KeyStore)
	k, err := ks.KeyByHash(context.Background(), store.HashKey(secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.RevokeKey(context.Background(), k.Tenant, k.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestTenantIsolation tries another tenant's global ids through the API:
// they read as missing and refuse writes as NOT_FOUND, exactly as ids that
// name nothing, and the data is unchanged.
func TestTenantIsolation(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			r := g.record(message("EMAIL", "iso", "iso@example.com", "secret body", t0))
			iid, cid := r.RecordMessage.Interaction.ID, r.RecordMessage.Interaction.Contact.ID
			other := g.newKey("other", related.RoleAdmin)
			missing := related.GlobalID(related.NodeInteraction, "missing")
			for _, id := range []string{iid, cid, missing} {
				var out struct {
					Node        *struct{ ID string }
					Interaction *struct{ ID string }
				}
				resp, _ := g.doAs(other, `query($id: ID!) { node(id: $id) { id } interaction(id: $id) { id } }`, map[string]any{"id": id}, &out)
				if len(resp.Errors) > 0 || out.Node != nil || out.Interaction != nil {
					t.Fatalf("the other tenant read %s: %+v %+v", id, out, resp.Errors)
				}
			}
			codes := func(id string) string {
				var out struct {
					CloseInteraction struct {
						Interaction *struct{ ID string }
						UserErrors  []struct {
							Code    string
							Message string
						}
					}
				}
				g.doAs(other, `mutation($id: ID!) { closeInteraction(input: {id: $id, state: SPAM}) { interaction { id } userErrors { code message } } }`, map[string]any{"id": id}, &out)
				if out.CloseInteraction.Interaction != nil {
					t.Fatalf("the other tenant closed %s", id)
				}
				return fmt.Sprint(out.CloseInteraction.UserErrors)
			}
			if a, b := codes(iid), codes(missing); a != b || !strings.Contains(a, related.CodeNotFound) {
				t.Fatalf("another tenant's id answers %s, a missing id %s: want the same NOT_FOUND", a, b)
			}
			var still struct{ Interaction struct{ Status string } }
			g.must(`query($id: ID!) { interaction(id: $id) { status } }`, map[string]any{"id": iid}, &still)
			if still.Interaction.Status != "OPEN" {
				t.Fatalf("the interaction is now %s", still.Interaction.Status)
			}
		})
	}
}

// TestComplexityRefusedBeforeTheDatabase sends queries over the limits and
// checks that no database command ran for them.
func TestComplexityRefusedBeforeTheDatabase(t *testing.T) {
	g := newGateway(t, backends[0])
	r := g.record(message("EMAIL", "cx", "cx@example.com", "hi", t0))
	g.must(`{ viewer { tenant } }`, nil, nil) // the key is cached now
	aliases := strings.Builder{}
	aliases.WriteString("{")
	for i := range 500 {
		fmt.Fprintf(&aliases, " a%d: viewer { tenant }", i)
	}
	aliases.WriteString(" }")
	deep := "{ interaction(id: $id) { " + strings.Repeat("related { edges { node { ", 5) + "id" + strings.Repeat(" } } }", 5) + " } }"
	bomb := `query { ...F5 } fragment F0 on Query { viewer { tenant } }`
	for i := 1; i <= 5; i++ {
		bomb += fmt.Sprintf(" fragment F%d on Query { ...F%d ...F%d }", i, i-1, i-1)
	}
	bomb = strings.Replace(bomb, "F0 on Query { viewer { tenant } }", "F0 on Query { a: viewer { tenant } b: viewer { tenant } c: viewer { tenant } d: viewer { tenant } e: viewer { tenant } f: viewer { tenant } g: viewer { tenant } h: viewer { tenant } i: viewer { tenant } j: viewer { tenant } }", 1)
	for _, c := range []struct{ name, query, code string }{
		{"wide", `query($id: ID!) { interaction(id: $id) { related(first: 100) { edges { node { related(first: 100) { edges { node { id messages(first: 100) { edges { node { body } } } } } } } } } } }`, server.CodeTooComplex},
		{"deep", "query($id: ID!) " + deep, server.CodeTooDeep},
		{"alias flood", aliases.String(), server.CodeTooManyAliases},
		{"fragment bomb", bomb, server.CodeTooManyAliases},
		{"operations", strings.Repeat("query Q { viewer { tenant } } ", 1) + func() string {
			var b strings.Builder
			for i := range 20 {
				fmt.Fprintf(&b, " query Q%d { viewer { tenant } }", i)
			}
			return b.String()
		}(), server.CodeTooManyOps},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := g.cmds.Total()
			resp, status := g.doAs(g.key, c.query, map[string]any{"id": r.RecordMessage.Interaction.ID}, nil)
			if len(resp.Errors) == 0 || resp.Errors[0].Extensions["code"] != c.code || (len(resp.Data) > 0 && string(resp.Data) != "null") {
				t.Fatalf("status %d, errors %+v, want %s", status, resp.Errors, c.code)
			}
			if status < 400 {
				t.Fatalf("status %d, want a 4xx refusal", status)
			}
			if n := g.cmds.Total() - before; n != 0 {
				t.Fatalf("the refused query ran %d database commands", n)
			}
		})
	}
	// The Related panel at its largest page is within the limits.
	var p panel
	g.must(panelQuery, map[string]any{"id": r.RecordMessage.Interaction.ID, "first": 100}, &p)
}

func TestOversizedBody(t *testing.T) {
	g := newGateway(t, backends[0])
	big := `{"query":"{ viewer { tenant } }","variables":{"pad":"` + strings.Repeat("x", 2<<20) + `"}}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big)) // no length: sent chunked
		}
		req, _ := http.NewRequest("POST", g.url+"/graphql", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), server.CodeTooLarge) {
			t.Fatalf("chunked %v: status %d, body %.200s", chunked, resp.StatusCode, raw)
		}
	}
}

func TestRateLimit(t *testing.T) {
	g := newGatewayWith(t, backends[0], server.Options{Limits: server.Limits{RatePerSecond: 1, RateBurst: 5}})
	other := g.newKey(server.DemoTenant, related.RoleAgent)
	limited := 0
	var retry string
	for range 20 {
		body, _ := json.Marshal(map[string]any{"query": "{ viewer { tenant } }"})
		req, _ := http.NewRequest("POST", g.url+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			retry = resp.Header.Get("Retry-After")
			if !strings.Contains(string(raw), server.CodeRateLimited) {
				t.Fatalf("429 body %s", raw)
			}
		}
	}
	if limited < 10 || retry == "" {
		t.Fatalf("%d of 20 requests limited, Retry-After %q", limited, retry)
	}
	// Buckets are per key: another key is unaffected.
	if _, status := g.doAs(other, `{ viewer { tenant } }`, nil, nil); status != 200 {
		t.Fatalf("another key got %d", status)
	}
}

// TestPersistedOnly runs the allow-list mode: a registered operation runs
// by its text or its hash; anything else is refused.
func TestPersistedOnly(t *testing.T) {
	q := `{ viewer { tenant } }`
	g := newGatewayWith(t, backends[0], server.Options{PersistedOnly: true, Persisted: map[string]string{sha(q): q}, Limits: server.Limits{RatePerSecond: -1}})
	if r, status := g.doAs(g.key, q, nil, nil); status != 200 || len(r.Errors) > 0 {
		t.Fatalf("registered query: %d %+v", status, r.Errors)
	}
	if r, _ := g.doAs(g.key, `{ viewer { role } }`, nil, nil); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != server.CodeNotPersisted {
		t.Fatalf("unregistered query: %+v", r.Errors)
	}
	body := fmt.Sprintf(`{"extensions":{"persistedQuery":{"version":1,"sha256Hash":%q}}}`, sha(q))
	req, _ := http.NewRequest("POST", g.url+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `"tenant":"demo"`) {
		t.Fatalf("by hash: %s", raw)
	}
}

func TestIntrospectionAndGraphiQLOffByDefault(t *testing.T) {
	g := newGatewayWith(t, backends[0], server.Options{Limits: server.Limits{RatePerSecond: -1}})
	if r, _ := g.doAs(g.key, `{ __schema { queryType { name } } }`, nil, nil); len(r.Errors) == 0 {
		t.Fatal("introspection answered")
	}
	resp, err := http.Get(g.url + "/graphiql")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/graphiql = %d", resp.StatusCode)
	}
}

// TestWebSocketAuthAndRevocation opens a graphql-transport-ws connection
// with the key in connection_init, revokes the key and expects the server
// to close the connection within seconds; a connection without a key and
// one from another site's page are refused.
func TestWebSocketAuthAndRevocation(t *testing.T) {
	g := newGatewayWith(t, backends[0], server.Options{KeyCacheTTL: 50 * time.Millisecond, KeyRecheck: 50 * time.Millisecond, Limits: server.Limits{RatePerSecond: -1}})
	wsURL := "ws" + strings.TrimPrefix(g.url, "http") + "/graphql"
	dial := func(t *testing.T, init map[string]any, h http.Header) (*websocket.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: h})
		if err != nil {
			return nil, err
		}
		if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": init}); err != nil {
			return nil, err
		}
		return c, nil
	}
	readType := func(c *websocket.Conn, d time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var m struct{ Type string }
		err := wsjson.Read(ctx, c, &m)
		return m.Type, err
	}
	t.Run("revoked while open", func(t *testing.T) {
		key := g.newKey(server.DemoTenant, related.RoleAgent)
		c, err := dial(t, map[string]any{"Authorization": "Bearer " + key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if typ, err := readType(c, 5*time.Second); typ != "connection_ack" {
			t.Fatalf("got %q, %v; want connection_ack", typ, err)
		}
		revoke(t, g, key)
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := readType(c, time.Until(deadline))
			if err != nil {
				if time.Now().After(deadline) {
					t.Fatal("the connection stayed open 5s after its key was revoked")
				}
				return // closed by the server
			}
		}
	})
	t.Run("no key", func(t *testing.T) {
		c, err := dial(t, map[string]any{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		for {
			typ, err := readType(c, 5*time.Second)
			if err != nil {
				if websocket.CloseStatus(err) != 4403 {
					t.Fatalf("closed with %v, want 4403", err)
				}
				return
			}
			if typ == "connection_ack" {
				t.Fatal("a connection without a key was acknowledged")
			}
		}
	})
	t.Run("header key", func(t *testing.T) {
		c, err := dial(t, nil, http.Header{"Authorization": {"Bearer " + g.key}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if typ, err := readType(c, 5*time.Second); typ != "connection_ack" {
			t.Fatalf("got %q, %v", typ, err)
		}
	})
	t.Run("foreign origin", func(t *testing.T) {
		_, err := dial(t, map[string]any{"Authorization": "Bearer " + g.key}, http.Header{"Origin": {"https://evil.example"}})
		if err == nil {
			t.Fatal("a page of another origin opened a websocket")
		}
	})
}

// TestForgedKeyStorm throttles an address that sends well-formed unknown
// keys (each costs a database lookup), while a missing header is always a
// plain 401.
func TestForgedKeyStorm(t *testing.T) {
	g := newGatewayWith(t, backends[0], server.Options{Limits: server.Limits{RatePerSecond: -1, AnonPerSecond: 0.01, AnonBurst: 3}})
	for range 10 {
		if _, status := g.doAs("", `{ viewer { tenant } }`, nil, nil); status != http.StatusUnauthorized {
			t.Fatalf("no key: %d", status)
		}
	}
	codes := map[int]int{}
	for range 6 {
		forged, _, _ := store.NewKey(server.DemoTenant, related.RoleAdmin, "", time.Now())
		_, status := g.doAs(forged, `{ viewer { tenant } }`, nil, nil)
		codes[status]++
	}
	if codes[http.StatusUnauthorized] != 3 || codes[http.StatusTooManyRequests] != 3 {
		t.Fatalf("forged keys answered %v, want 3 401s then 429s", codes)
	}
	// A valid key still works from the same address.
	if _, status := g.doAs(g.key, `{ viewer { tenant } }`, nil, nil); status != 200 {
		t.Fatalf("a valid key got %d", status)
	}
}
