package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/server"
)

// TestSubscriptionCapPerKey opens more subscriptions on one key than the
// cap allows: the extra one is refused with TOO_MANY_SUBSCRIPTIONS, and
// another key is unaffected.
func TestSubscriptionCapPerKey(t *testing.T) {
	st, cmds := backends[0].open(t)
	hub := live.New(live.Options{Store: st})
	t.Cleanup(func() { hub.Close(context.Background()) })
	srv := httptest.NewServer(server.New(server.Options{Store: st, Commands: cmds, Hub: hub, KeyCacheTTL: time.Minute,
		Limits: server.Limits{RatePerSecond: -1, MaxSubscriptions: 2}}))
	t.Cleanup(srv.Close)
	g := &gateway{t: t, url: srv.URL, cmds: cmds, st: st}
	g.key = g.newKey(server.DemoTenant, related.RoleAgent)
	iid := g.record(message("EMAIL", "subs", "subs@example.com", "hi", t0)).RecordMessage.Interaction.ID

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(key string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + key}})
		var ack struct{ Type string }
		if err := wsjson.Read(ctx, c, &ack); err != nil || ack.Type != "connection_ack" {
			t.Fatalf("init: %+v %v", ack, err)
		}
		return c
	}
	subscribe := func(c *websocket.Conn, id string) {
		wsjson.Write(ctx, c, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{
			"query": fmt.Sprintf(`subscription { interactionUpdated(id: %q) { id } }`, iid)}})
	}
	c := open(g.key)
	for i := range 3 {
		subscribe(c, fmt.Sprint("s", i))
	}
	var msg struct {
		ID      string
		Type    string
		Payload json.RawMessage
	}
	// Which of the three is refused depends on scheduling; one is.
	if err := wsjson.Read(ctx, c, &msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg.Payload), server.CodeTooManySubs) {
		t.Fatalf("third subscription: %s %s %s", msg.ID, msg.Type, msg.Payload)
	}
	// Another key has its own allowance.
	c2 := open(g.newKey(server.DemoTenant, related.RoleAgent))
	subscribe(c2, "other")
	readCtx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer rcancel()
	if err := wsjson.Read(readCtx, c2, &msg); err == nil && strings.Contains(string(msg.Payload), server.CodeTooManySubs) {
		t.Fatalf("another key's subscription was refused: %s", msg.Payload)
	}
}
