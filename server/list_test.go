package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/mongo"
	"github.com/relatedhq/related/store/mongo/mongotest"
	"github.com/relatedhq/related/store/sqlite"
)

// newLiveGateway starts a gateway whose store publishes to a hub: SQLite
// directly, MongoDB through its events feed as a replica does.
func newLiveGateway(t *testing.T, backend string, opts server.Options, hubOpts live.Options) (*gateway, *live.Hub) {
	t.Helper()
	ctx := context.Background()
	fwd := &forward{}
	cmds := new(store.Commands)
	var st store.Store
	var err error
	db := mongotest.FreshDB()
	if backend == "sqlite" {
		st, err = sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), Commands: cmds, Publisher: fwd})
	} else {
		// No local publisher: every event comes through the feed.
		st, err = mongo.Open(ctx, mongo.Options{URI: mongoURI, Database: db, Commands: cmds})
	}
	if err != nil {
		t.Fatal(err)
	}
	hubOpts.Store = st
	hub := live.New(hubOpts)
	fwd.hub.Store(hub)
	var feed *mongo.Feed
	if backend == "mongo" {
		feed, err = mongo.StartFeed(ctx, mongo.FeedOptions{URI: mongoURI, Database: db, Publisher: hub, Poll: 250 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
	}
	opts.Store, opts.Commands, opts.Hub = st, cmds, hub
	opts.Limits.RatePerSecond = -1
	srv := httptest.NewServer(server.New(opts))
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.Close(cctx)
		srv.CloseClientConnections()
		srv.Close()
		if feed != nil {
			feed.Close()
		}
		st.Close()
	})
	g := &gateway{t: t, url: srv.URL, cmds: cmds, st: st}
	g.key = g.newKey(server.DemoTenant, related.RoleAdmin)
	return g, hub
}

// sse starts a subscription over server-sent events and returns its data
// lines; the stream ends with ctx.
func (g *gateway) sse(ctx context.Context, key, query string, vars map[string]any) <-chan string {
	g.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, "POST", g.url+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "data:"); ok && strings.TrimSpace(l) != "" {
				lines <- l
			}
		}
	}()
	return lines
}

// waitHub waits until the hub holds n subscriptions.
func waitHub(t *testing.T, hub *live.Hub, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); hub.Stats().Subscriptions != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hub has %d subscriptions, want %d", hub.Stats().Subscriptions, n)
		}
	}
}

type listEvent struct {
	Data struct {
		InteractionsChanged struct {
			Kind          string
			InteractionID string
			Interaction   struct {
				ID, Status  string
				ClosedState *string
				LastMessage struct{ Body string }
			}
		}
	}
	Errors []struct {
		Message    string
		Extensions map[string]any
	}
}

func nextEvent(t *testing.T, lines <-chan string) listEvent {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("the stream ended")
		}
		var e listEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return listEvent{}
}

const listSubscription = `subscription($s: InteractionStatus) { interactionsChanged(status: $s) {
  kind interactionId interaction { id status closedState lastMessage { body } } } }`

// TestInteractionsChangedSSE drives the inbox's live list over SSE on each
// adapter, as an agent key (a partner's read-only key may subscribe too):
// a new interaction is ADDED, a message UPDATED with its body, a close
// REMOVED from the OPEN list; and each key's allowance of list
// subscriptions holds on this transport too.
func TestInteractionsChangedSSE(t *testing.T) {
	for _, backend := range []string{"sqlite", "mongo"} {
		t.Run(backend, func(t *testing.T) {
			g, hub := newLiveGateway(t, backend, server.Options{KeyCacheTTL: time.Minute}, live.Options{MaxListsPerKey: 1})
			agent := g.newKey(server.DemoTenant, related.RoleAgent)
			partner := g.newKey(server.DemoTenant, related.RolePartner)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			open := g.sse(ctx, agent, listSubscription, map[string]any{"s": "OPEN"})
			all := g.sse(ctx, partner, listSubscription, nil)
			waitHub(t, hub, 2)

			id := g.record(message("EMAIL", "t1", "ann@example.com", "hello", t0)).RecordMessage.Interaction.ID
			for _, lines := range []<-chan string{open, all} {
				e := nextEvent(t, lines).Data.InteractionsChanged
				if e.Kind != "ADDED" || e.InteractionID != id || e.Interaction.LastMessage.Body != "hello" {
					t.Fatalf("after a new interaction: %+v", e)
				}
			}
			g.record(message("EMAIL", "t1", "ann@example.com", "again", t0.Add(time.Minute)))
			if e := nextEvent(t, open).Data.InteractionsChanged; e.Kind != "UPDATED" || e.Interaction.LastMessage.Body != "again" {
				t.Fatalf("after a message: %+v", e)
			}
			g.must(`mutation($id: ID!) { closeInteraction(input: {id: $id, state: SPAM}) { userErrors { message } } }`, map[string]any{"id": id}, nil)
			if e := nextEvent(t, open).Data.InteractionsChanged; e.Kind != "REMOVED" || e.Interaction.Status != "CLOSED" || *e.Interaction.ClosedState != "SPAM" {
				t.Fatalf("after a close: %+v", e)
			}

			// The agent's key holds its one list subscription: another is
			// refused, whatever the transport.
			refused := nextEvent(t, g.sse(ctx, agent, listSubscription, nil))
			if len(refused.Errors) == 0 || refused.Errors[0].Extensions["code"] != server.CodeTooManySubs {
				t.Fatalf("a second list subscription of the key: %+v", refused)
			}
			waitHub(t, hub, 2)
		})
	}
}
