package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// backend is a store the end-to-end tests run against, with its counters.
type backend struct {
	name string
	open func(t *testing.T) (store.Store, *store.Commands)
}

// backends lists the adapters every end-to-end test runs on.
var backends = []backend{
	{"sqlite", func(t *testing.T) (store.Store, *store.Commands) {
		cmds := new(store.Commands)
		s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Commands: cmds})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, cmds
	}},
}

// gateway is a real server on a real port.
type gateway struct {
	t    *testing.T
	url  string
	cmds *store.Commands
	st   store.Store
	key  string // the API key do sends
}

func newGateway(t *testing.T, b backend) *gateway {
	t.Helper()
	// An hour: a test that counts a request's database commands must not
	// see the key cache expire while the race detector slows it down.
	return newGatewayWith(t, b, server.Options{GraphiQL: true, Introspection: true, Limits: server.Limits{RatePerSecond: -1}, KeyCacheTTL: time.Hour})
}

// newGatewayWith starts a gateway with opts (Store and Commands filled in)
// and gives it an admin key of the demo tenant, which do sends.
func newGatewayWith(t *testing.T, b backend, opts server.Options) *gateway {
	t.Helper()
	st, cmds := b.open(t)
	opts.Store, opts.Commands = st, cmds
	srv := httptest.NewServer(server.New(opts))
	t.Cleanup(srv.Close)
	g := &gateway{t: t, url: srv.URL, cmds: cmds, st: st}
	g.key = g.newKey(server.DemoTenant, related.RoleAdmin)
	return g
}

// newKey stores a new key of tenant with role and returns its secret.
func (g *gateway) newKey(tenant, role string) string {
	g.t.Helper()
	secret, k, err := store.NewKey(tenant, role, "test "+role, time.Now())
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.st.(store.KeyStore).CreateKey(context.Background(), k); err != nil {
		g.t.Fatal(err)
	}
	return secret
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// do runs a GraphQL operation with the gateway's key and decodes its data
// into out.
func (g *gateway) do(query string, vars map[string]any, out any) gqlResponse {
	g.t.Helper()
	r, _ := g.doAs(g.key, query, vars, out)
	return r
}

// doAs runs a GraphQL operation with key (none if empty) and returns the
// decoded response and the HTTP status.
func (g *gateway) doAs(key, query string, vars map[string]any, out any) (gqlResponse, int) {
	g.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", g.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/graphql-response+json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		g.t.Fatalf("status %d, body %s: %v", resp.StatusCode, raw, err)
	}
	if out != nil && r.Data != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			g.t.Fatalf("decode %s: %v", r.Data, err)
		}
	}
	return r, resp.StatusCode
}

// must runs an operation that must not fail.
func (g *gateway) must(query string, vars map[string]any, out any) {
	g.t.Helper()
	if r := g.do(query, vars, out); len(r.Errors) > 0 {
		g.t.Fatalf("errors: %+v", r.Errors)
	}
}

const recordMutation = `mutation($in: RecordMessageInput!) {
  recordMessage(input: $in) {
    interaction { id contact { id } }
    message { id }
    userErrors { field message code }
  }
}`

type recorded struct {
	RecordMessage struct {
		Interaction *struct {
			ID      string
			Contact struct{ ID string }
		}
		Message    *struct{ ID string }
		UserErrors []struct {
			Field   []string
			Message string
			Code    string
		}
	}
}

func (g *gateway) record(in map[string]any) recorded {
	g.t.Helper()
	var out recorded
	g.must(recordMutation, map[string]any{"in": in}, &out)
	if len(out.RecordMessage.UserErrors) > 0 {
		g.t.Fatalf("userErrors: %+v", out.RecordMessage.UserErrors)
	}
	return out
}

func message(channel, thread, addr, body string, at time.Time) map[string]any {
	return map[string]any{
		"channel": channel, "threadRef": thread, "direction": "INBOUND", "body": body,
		"sentAt": at.Format(time.RFC3339Nano), "queue": "Support",
		"contact": map[string]any{"address": addr, "name": "Ann Example"},
	}
}

var t0 = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

const panelQuery = `query Panel($id: ID!, $first: Int, $after: String) {
  interaction(id: $id) {
    id channel status
    contact { name address }
    related(first: $first, after: $after) {
      scope totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges {
        cursor
        node {
          id channel status closedState closedAt
          queue { id name }
          contact { id name }
          lastMessage { body preview sentAt direction }
        }
      }
    }
  }
}`

type panel struct {
	Interaction struct {
		ID      string
		Channel string
		Related struct {
			Scope      string
			TotalCount int
			PageInfo   struct {
				HasNextPage, HasPreviousPage bool
				StartCursor, EndCursor       *string
			}
			Edges []struct {
				Cursor string
				Node   struct {
					ID, Channel, Status string
					ClosedState         *string
					ClosedAt            *time.Time
					Queue               *struct{ ID, Name string }
					Contact             struct{ ID, Name string }
					LastMessage         struct {
						Body, Preview, Direction string
						SentAt                   time.Time
					}
				}
			}
		}
	}
}

func TestRelatedPanel(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			var ids []string
			for i := range 4 {
				r := g.record(message("EMAIL", fmt.Sprint("th-", i), "Ann@Example.com", strings.Repeat("word ", 40)+fmt.Sprint(i), t0.Add(time.Duration(i)*time.Hour)))
				ids = append(ids, r.RecordMessage.Interaction.ID)
			}
			// Another channel of the same address is not in a CHANNEL panel.
			g.record(message("SMS", "sms-1", "+4477009000001", "other channel", t0.Add(5*time.Hour)))
			var closed struct {
				CloseInteraction struct {
					Interaction struct{ Status, ClosedState string }
					UserErrors  []any
				}
			}
			g.must(`mutation($id: ID!) { closeInteraction(input: {id: $id, state: IGNORED}) { interaction { status closedState } userErrors { message } } }`,
				map[string]any{"id": ids[1]}, &closed)
			if closed.CloseInteraction.Interaction.ClosedState != "IGNORED" {
				t.Fatalf("close = %+v", closed)
			}
			var p panel
			g.must(panelQuery, map[string]any{"id": ids[0]}, &p)
			rel := p.Interaction.Related
			if rel.Scope != "CHANNEL" || rel.TotalCount != 3 || len(rel.Edges) != 3 {
				t.Fatalf("related = %+v", rel)
			}
			want := []string{ids[3], ids[2], ids[1]}
			for i, e := range rel.Edges {
				n := e.Node
				if n.ID != want[i] || n.Channel != "EMAIL" || n.Queue == nil || n.Queue.Name != "Support" || n.Contact.Name != "Ann Example" {
					t.Fatalf("edge %d = %+v, want %s", i, n, want[i])
				}
				if len([]rune(n.LastMessage.Preview)) > 140 || !strings.HasSuffix(n.LastMessage.Preview, "…") || !strings.HasSuffix(n.LastMessage.Body, fmt.Sprint(3-i)) {
					t.Fatalf("lastMessage = %+v", n.LastMessage)
				}
				if !n.LastMessage.SentAt.Equal(t0.Add(time.Duration(3-i) * time.Hour)) {
					t.Fatalf("sentAt = %v", n.LastMessage.SentAt)
				}
			}
			if e := rel.Edges[2].Node; e.Status != "CLOSED" || e.ClosedState == nil || *e.ClosedState != "IGNORED" || e.ClosedAt == nil {
				t.Fatalf("closed item = %+v", e)
			}
			if e := rel.Edges[0].Node; e.Status != "OPEN" || e.ClosedState != nil || e.ClosedAt != nil {
				t.Fatalf("open item = %+v", e)
			}
		})
	}
}

func TestPagingWhileMessagesArrive(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			var ids []string
			for i := range 12 {
				r := g.record(message("WHATSAPP", fmt.Sprint("wa-", i), "+15550000001", fmt.Sprint("m", i), t0.Add(time.Duration(i)*time.Minute)))
				ids = append([]string{r.RecordMessage.Interaction.ID}, ids...)
			}
			self := ids[len(ids)-1]
			want := ids[:len(ids)-1]
			var got []string
			var after any
			for range 10 {
				var p panel
				g.must(panelQuery, map[string]any{"id": self, "first": 5, "after": after}, &p)
				for _, e := range p.Interaction.Related.Edges {
					got = append(got, e.Node.ID)
				}
				if !p.Interaction.Related.PageInfo.HasNextPage {
					break
				}
				after = *p.Interaction.Related.PageInfo.EndCursor
				// A new interaction arrives between pages.
				g.record(message("WHATSAPP", fmt.Sprint("late-", len(got)), "+15550000001", "late", t0.Add(time.Hour+time.Duration(len(got))*time.Minute)))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("paged %v\nwant  %v", got, want)
			}
		})
	}
}

// TestPanelCostIsFlat holds the Related panel's database cost to a constant
// whatever the page size: the dataloaders and the primed contact batch
// must keep N items from costing N lookups.
func TestPanelCostIsFlat(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			var self string
			for i := range 101 {
				in := message("EMAIL", fmt.Sprint("t-", i), "flat@example.com", fmt.Sprint("body ", i), t0.Add(time.Duration(i)*time.Minute))
				in["queue"] = fmt.Sprint("Queue ", i%9)
				self = g.record(in).RecordMessage.Interaction.ID
			}
			costs := map[int]int64{}
			for _, n := range []int{1, 20, 100} {
				before := g.cmds.Total()
				var p panel
				g.must(panelQuery, map[string]any{"id": self, "first": n}, &p)
				costs[n] = g.cmds.Total() - before
				if len(p.Interaction.Related.Edges) != n {
					t.Fatalf("first %d returned %d", n, len(p.Interaction.Related.Edges))
				}
			}
			if costs[1] != costs[20] || costs[20] != costs[100] {
				t.Fatalf("database commands by page size = %v, want the same for every size", costs)
			}
			// The interaction, its contact, its profile (the scope rule needs
			// its contact count), the page, the page's contacts, the count.
			if costs[1] > 6 {
				t.Fatalf("the panel costs %d commands, want at most 6", costs[1])
			}
			// /metrics exposes the counters by command name.
			resp, err := http.Get(g.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for name, n := range g.cmds.Snapshot() {
				line := fmt.Sprintf("related_db_commands_total{command=%q} %d", name, n)
				if !strings.Contains(string(raw), line) {
					t.Fatalf("/metrics lacks %q:\n%s", line, raw)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	g := newGateway(t, backends[0])
	ok := g.record(message("EMAIL", "th", "bad@example.com", "hello", t0))
	iid := ok.RecordMessage.Interaction.ID
	mutations := []struct {
		name      string
		in        map[string]any
		wantField string
		wantCode  string
	}{
		{"empty body", map[string]any{"body": "  "}, "input.body", related.CodeInvalid},
		{"blank address", map[string]any{"contact": map[string]any{"address": " "}}, "input.contact.address", related.CodeInvalid},
		{"control character in an address", map[string]any{"contact": map[string]any{"address": "a\x01b@example.com"}}, "input.contact.address", related.CodeInvalid},
		{"blank thread", map[string]any{"threadRef": ""}, "input.threadRef", related.CodeInvalid},
		{"blank attribute key", map[string]any{"contact": map[string]any{"address": "a@b.c", "attributes": []any{map[string]any{"key": "", "value": "v"}}}}, "input.contact.attributes.0.key", related.CodeInvalid},
		{"far future", map[string]any{"sentAt": "2999-01-01T00:00:00Z"}, "input.sentAt", related.CodeInvalid},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			in := message("EMAIL", "th-bad", "bad@example.com", "fine", t0)
			for k, v := range m.in {
				in[k] = v
			}
			before := g.cmds.Snapshot()
			var out recorded
			g.must(recordMutation, map[string]any{"in": in}, &out)
			ue := out.RecordMessage.UserErrors
			if len(ue) != 1 || strings.Join(ue[0].Field, ".") != m.wantField || ue[0].Code != m.wantCode || out.RecordMessage.Interaction != nil {
				t.Fatalf("userErrors = %+v, want %s on %s", ue, m.wantCode, m.wantField)
			}
			after := g.cmds.Snapshot()
			for _, verb := range []string{"insert", "update", "delete"} {
				if after[verb] != before[verb] {
					t.Fatalf("a refused write ran %s statements", verb)
				}
			}
		})
	}
	t.Run("unknown channel", func(t *testing.T) {
		r := g.do(recordMutation, map[string]any{"in": message("FAX", "th", "x", "hi", t0)}, nil)
		if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "FAX") {
			t.Fatalf("errors = %+v, want the unknown channel named", r.Errors)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		var out struct {
			CloseInteraction struct {
				Interaction *struct{ ID string }
				UserErrors  []struct {
					Field []string
					Code  string
				}
			}
		}
		for _, id := range []string{"nonsense", related.GlobalID(related.NodeInteraction, "missing"), related.GlobalID(related.NodeContact, "x")} {
			g.must(`mutation($id: ID!) { closeInteraction(input: {id: $id, state: SPAM}) { interaction { id } userErrors { field code } } }`, map[string]any{"id": id}, &out)
			ue := out.CloseInteraction.UserErrors
			if len(ue) != 1 || ue[0].Code != related.CodeNotFound || strings.Join(ue[0].Field, ".") != "input.id" {
				t.Fatalf("close %q: userErrors = %+v", id, ue)
			}
		}
		var q struct{ Interaction *struct{ ID string } }
		g.must(`query($id: ID!) { interaction(id: $id) { id } }`, map[string]any{"id": "garbage!"}, &q)
		if q.Interaction != nil {
			t.Fatalf("garbage id resolved to %+v", q.Interaction)
		}
	})
	for _, c := range []struct {
		name, args, field string
	}{
		{"first over 100", `first: 101`, "first"},
		{"negative first", `first: -1`, "first"},
		{"malformed cursor", `after: "not-a-cursor"`, "after"},
		{"first and last", `first: 1, last: 1`, "first"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := g.do(fmt.Sprintf(`query($id: ID!) { interaction(id: $id) { related(%s) { totalCount } } }`, c.args), map[string]any{"id": iid}, nil)
			if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != related.CodeInvalid || fmt.Sprint(r.Errors[0].Extensions["field"]) != "["+c.field+"]" {
				t.Fatalf("errors = %+v, want INVALID on %s", r.Errors, c.field)
			}
		})
	}
}

func TestClientMutationIDIsIdempotent(t *testing.T) {
	g := newGateway(t, backends[0])
	in := message("SMS", "s", "+15551234", "once", t0)
	in["clientMutationId"] = "retry-1"
	a, b := g.record(in), g.record(in)
	if a.RecordMessage.Message.ID != b.RecordMessage.Message.ID {
		t.Fatalf("retry stored a second message: %s vs %s", a.RecordMessage.Message.ID, b.RecordMessage.Message.ID)
	}
	var out struct {
		Interaction struct{ Messages struct{ TotalCount int } }
	}
	g.must(`query($id: ID!) { interaction(id: $id) { messages { totalCount } } }`, map[string]any{"id": a.RecordMessage.Interaction.ID}, &out)
	if out.Interaction.Messages.TotalCount != 1 {
		t.Fatalf("%d messages, want 1", out.Interaction.Messages.TotalCount)
	}
}

func TestPreferencesPersist(t *testing.T) {
	g := newGateway(t, backends[0])
	var out struct {
		Viewer struct {
			Tenant      string
			Preferences struct{ ShowRelated bool }
		}
	}
	g.must(`{ viewer { tenant preferences { showRelated } } }`, nil, &out)
	if out.Viewer.Tenant != "demo" || !out.Viewer.Preferences.ShowRelated {
		t.Fatalf("viewer = %+v", out.Viewer)
	}
	g.must(`mutation { setPreferences(input: {showRelated: false}) { preferences { showRelated } userErrors { message } } }`, nil, nil)
	g.must(`{ viewer { preferences { showRelated } } }`, nil, &out)
	if out.Viewer.Preferences.ShowRelated {
		t.Fatalf("showRelated did not persist")
	}
}

func TestProbes(t *testing.T) {
	g := newGateway(t, backends[0])
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/graphiql": 200, "/metrics": 200, "/nope": 404} {
		resp, err := http.Get(g.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("GET %s has no X-Request-Id", path)
		}
	}
	g.st.Close()
	resp, err := http.Get(g.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database closed = %d, want 503", resp.StatusCode)
	}
}

func TestServerErrorsDoNotLeak(t *testing.T) {
	g := newGateway(t, backends[0])
	r := g.record(message("EMAIL", "l", "leak@example.com", "hi", t0))
	g.st.Close() // every query now fails inside the database driver
	resp := g.do(`query($id: ID!) { interaction(id: $id) { id } }`, map[string]any{"id": r.RecordMessage.Interaction.ID}, nil)
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != server.CodeInternal || resp.Errors[0].Extensions["requestId"] == "" {
		t.Fatalf("errors = %+v", resp.Errors)
	}
	if m := resp.Errors[0].Message; strings.Contains(m, "sql") || strings.Contains(m, "closed") || strings.Contains(m, ".go") {
		t.Fatalf("error message leaks internals: %q", m)
	}
}
