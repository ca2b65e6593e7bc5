package server_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related/operation"
	"github.com/relatedhq/related/server"
)

// TestRoundTrips guards the database cost of the two hottest operations by
// counting commands, not time: opening an interaction costs at most 4,
// through its compiled plan and through gqlgen alike, whatever the page size and however many channels the profile spans
// (SQLite answers it in 2), and recording a message on a linked contact
// (no merge) at most 8.
func TestRoundTrips(t *testing.T) {
	for _, b := range profileBackends() {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			sharedCustomerRule(t, g)
			chans := []string{"EMAIL", "WEBCHAT", "SMS", "WHATSAPP", "MESSENGER", "INSTAGRAM", "TWITTER", "VOICE"}
			var self string
			for i := range 60 {
				ch := chans[i%len(chans)]
				addr := fmt.Sprintf("rt-%d-%s", i%5, ch)
				switch ch {
				case "EMAIL":
					addr = fmt.Sprintf("rt%d@example.com", i%5)
				case "SMS", "WHATSAPP", "VOICE":
					addr = fmt.Sprintf("+1202555%04d", i%5)
				}
				in := message(ch, fmt.Sprint("rt-", i), addr, fmt.Sprint("body ", i), t0.Add(time.Duration(i)*time.Minute))
				in["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "customerId", "value": "rt"}}
				self = g.record(in).RecordMessage.Interaction.ID
			}
			// The compiled plan answers operation.OpenInteraction; the
			// same query through gqlgen (NoPlans, on the same store) must
			// keep the same bound.
			noPlans := httptest.NewServer(server.New(server.Options{Store: g.st, Commands: g.cmds, NoPlans: true,
				KeyCacheTTL: time.Hour, Limits: server.Limits{RatePerSecond: -1}}))
			t.Cleanup(noPlans.Close)
			viaGqlgen := &gateway{t: t, url: noPlans.URL, cmds: g.cmds, st: g.st, key: g.key}
			for _, path := range []struct {
				name string
				g    *gateway
			}{{"plan", g}, {"gqlgen", viaGqlgen}} {
				openCost(t, b.name+" "+path.name, path.g, self)
			}
			// A further message from a contact already linked: no merge.
			in := message("EMAIL", "rt-again", "rt0@example.com", "again", t0.Add(2*time.Hour))
			before := g.cmds.Total()
			g.record(in)
			n := g.cmds.Total() - before
			t.Logf("record-a-message costs %d database commands", n)
			if n > 8 {
				t.Fatalf("record-a-message costs %d commands, want at most 8", n)
			}
		})
	}
}

// TestLongLastMessage: the Related panel shows a long email's whole body
// although the interaction keeps only its start, loading the whole ones
// of a page in one batched read.
func TestLongLastMessage(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			g := newGateway(t, b)
			long := strings.Repeat("A long email line. ", 1000)
			g.record(message("EMAIL", "long-1", "long@example.com", long, t0))
			g.record(message("EMAIL", "long-2", "long@example.com", long+"2", t0.Add(time.Minute)))
			self := g.record(message("EMAIL", "short", "long@example.com", "short", t0.Add(time.Hour))).RecordMessage.Interaction.ID
			var v struct {
				Interaction struct {
					Related struct {
						Edges []struct {
							Node struct {
								LastMessage struct{ Body, Preview string }
							}
						}
					}
				}
			}
			g.must(`query($id: ID!) { interaction(id: $id) { related(first: 5) { edges { node { lastMessage { body preview } } } } } }`, map[string]any{"id": self}, &v)
			edges := v.Interaction.Related.Edges
			if len(edges) != 2 || edges[0].Node.LastMessage.Body != long+"2" || edges[1].Node.LastMessage.Body != long {
				t.Fatalf("related bodies: %d edges, want the two whole long bodies", len(edges))
			}
			if n := len([]rune(edges[0].Node.LastMessage.Preview)); n != 140 {
				t.Fatalf("preview of %d characters", n)
			}
		})
	}
}

// openCost asserts that operation.OpenInteraction on self costs g the same
// database commands for 1, 20 and 59 related items (at most 4 on SQLite).
func openCost(t *testing.T, name string, g *gateway, self string) {
	t.Helper()
	// A first request fills the server's key cache: its lookup is the
	// key's cost, not the operation's.
	var warm struct {
		Typename string `json:"__typename"`
	}
	g.must(`{ __typename }`, nil, &warm)
	costs := map[int]int64{}
	for _, n := range []int{1, 20, 59} {
		before := g.cmds.Total()
		var v struct {
			Interaction struct {
				Profile struct{ Channels []string }
				Related struct {
					Scope      string
					TotalCount int
					Edges      []any
				}
			}
		}
		g.must(operation.OpenInteraction, map[string]any{"id": self, "first": n}, &v)
		costs[n] = g.cmds.Total() - before
		if len(v.Interaction.Related.Edges) != n || v.Interaction.Related.TotalCount != 59 || len(v.Interaction.Profile.Channels) != 8 {
			t.Fatalf("%s: first %d: %d items of %d, %d channels", name, n, len(v.Interaction.Related.Edges), v.Interaction.Related.TotalCount, len(v.Interaction.Profile.Channels))
		}
	}
	t.Logf("%s: open-an-interaction costs %v database commands by page size", name, costs)
	if costs[1] != costs[20] || costs[20] != costs[59] {
		t.Fatalf("%s: open-an-interaction by page size = %v, want the same for every size", name, costs)
	}
	if strings.HasPrefix(name, "sqlite") && costs[1] > 4 {
		t.Fatalf("%s: open-an-interaction costs %d commands, want at most 4", name, costs[1])
	}
}
