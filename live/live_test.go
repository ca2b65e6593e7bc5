package live_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store/mongo/mongotest"
)

// Every kind of change, on each adapter: a message, a close, a reopen and
// a queue change on a related interaction are UPDATED, a new interaction
// of the contact is ADDED, the panel's own interaction reaches
// interactionUpdated only, and another contact's writes reach neither.
func TestEventKinds(t *testing.T) {
	for _, b := range []struct {
		name string
		new  func(t *testing.T) *replica
	}{
		{"sqlite", newSQLite},
		{"mongo", func(t *testing.T) *replica {
			return newReplica(t, replicaOpts{mongo: ferret.URI, db: mongotest.FreshDB()})
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			r := b.new(t)
			a := r.record(r.key, "a", "ann@example.com", "first", "")
			bID := r.record(r.key, "b", "ann@example.com", "other thread", "")
			c := r.dial(r.key, transportWS)
			c.subscribe("rel", relatedSub, map[string]any{"id": a})
			c.subscribe("int", interactionSub, map[string]any{"id": a})
			r.waitSubs(2)

			r.record(r.key, "b", "ann@example.com", "a reply on b", "")
			got := c.nextChange("rel")
			expect(t, got, "UPDATED", bID)
			if got.Interaction.LastMessage.Body != "a reply on b" || got.Scope != "CHANNEL" {
				t.Fatalf("payload %+v", got)
			}

			cID := r.record(r.key, "c", "ann@example.com", "a new thread", "")
			expect(t, c.nextChange("rel"), "ADDED", cID)

			r.gql(r.key, `mutation($id: ID!) { closeInteraction(input: {id: $id, state: SPAM}) { userErrors { message } } }`, map[string]any{"id": bID}, nil)
			got = c.nextChange("rel")
			expect(t, got, "UPDATED", bID)
			if got.Interaction.Status != "CLOSED" || got.Interaction.ClosedState == nil || *got.Interaction.ClosedState != "SPAM" {
				t.Fatalf("after close: %+v", got.Interaction)
			}
			r.gql(r.key, `mutation($id: ID!) { reopenInteraction(input: {id: $id}) { userErrors { message } } }`, map[string]any{"id": bID}, nil)
			got = c.nextChange("rel")
			expect(t, got, "UPDATED", bID)
			if got.Interaction.Status != "OPEN" {
				t.Fatalf("after reopen: %+v", got.Interaction)
			}
			r.record(r.key, "b", "ann@example.com", "to billing", "Billing")
			got = c.nextChange("rel")
			expect(t, got, "UPDATED", bID)
			if got.Interaction.Queue == nil || got.Interaction.Queue.Name != "Billing" {
				t.Fatalf("after queue change: %+v", got.Interaction)
			}

			// The panel's own interaction: interactionUpdated, not relatedChanged.
			r.record(r.key, "a", "ann@example.com", "on a itself", "")
			m := c.next("int", 5*time.Second)
			if !strings.Contains(string(m.Payload), "on a itself") {
				t.Fatalf("interactionUpdated: %s", m.Payload)
			}
			// Another contact's write concerns neither subscription.
			r.record(r.key, "z", "bob@example.com", "unrelated", "")
			c.none("rel", 300*time.Millisecond)
			c.none("int", 0)

			// Commit order, for a burst on one scope: one event per write.
			// A payload shows the interaction as it is when the event is
			// delivered, so a later write may already show in an earlier
			// event; it never goes backwards.
			for i := range 20 {
				r.recordStore(server.DemoTenant, "b", "ann@example.com", fmt.Sprintf("burst %02d", i))
			}
			last := ""
			for i := range 20 {
				got := c.nextChange("rel")
				body := got.Interaction.LastMessage.Body
				if body < last || !strings.HasPrefix(body, "burst ") {
					t.Fatalf("event %d: %q after %q", i, body, last)
				}
				last = body
			}
			if last != "burst 19" {
				t.Fatalf("last event shows %q, want burst 19", last)
			}
			c.none("rel", 200*time.Millisecond)
		})
	}
}

// A subscription sees its own tenant's writes only, even for the same
// address and thread, and cannot subscribe to another tenant's interaction.
func TestTenantIsolation(t *testing.T) {
	r := newSQLite(t)
	otherKey := r.newKey("other")
	a := r.record(r.key, "a", "ann@example.com", "demo", "")
	r.record(r.key, "b", "ann@example.com", "demo b", "")
	c := r.dial(r.key, transportWS)
	c.subscribe("rel", relatedSub, map[string]any{"id": a})
	c.subscribe("int", interactionSub, map[string]any{"id": a})
	r.waitSubs(2)

	// The same contact address and threads in the other tenant.
	r.record(otherKey, "a", "ann@example.com", "other a", "")
	r.record(otherKey, "b", "ann@example.com", "other b", "")
	r.record(otherKey, "c", "ann@example.com", "other c", "")
	c.none("rel", 300*time.Millisecond)
	c.none("int", 0)

	// The other tenant cannot subscribe to demo's interaction.
	o := r.dial(otherKey, transportWS)
	o.subscribe("x", relatedSub, map[string]any{"id": a})
	m := o.next("x", 5*time.Second)
	if !strings.Contains(string(m.Payload), "NOT_FOUND") && !strings.Contains(string(m.Payload), "no such interaction") {
		t.Fatalf("other tenant's subscription: %s %s", m.Type, m.Payload)
	}
	// demo's own write still arrives.
	r.record(r.key, "b", "ann@example.com", "demo again", "")
	if got := c.nextChange("rel"); got.Interaction.LastMessage.Body != "demo again" {
		t.Fatalf("got %+v", got)
	}
}

// The legacy subscriptions-transport-ws protocol ("graphql-ws").
func TestLegacyProtocol(t *testing.T) {
	r := newSQLite(t)
	a := r.record(r.key, "a", "ann@example.com", "first", "")
	c := r.dial(r.key, legacyWS)
	c.subscribe("1", relatedSub, map[string]any{"id": a})
	r.waitSubs(1)
	b := r.record(r.key, "b", "ann@example.com", "new", "")
	expect(t, c.nextChange("1"), "ADDED", b)
	c.send(msg{Type: "stop", ID: "1"})
	r.waitSubs(0)
}

// Server-sent events (graphql-sse's distinct connections mode, as gqlgen
// serves it).
func TestSSE(t *testing.T) {
	r := newSQLite(t)
	a := r.record(r.key, "a", "ann@example.com", "first", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := r.sse(ctx, r.key, relatedSub, map[string]any{"id": a})
	r.waitSubs(1)
	b := r.record(r.key, "b", "ann@example.com", "over sse", "")
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			if strings.HasPrefix(l, "data:") && strings.Contains(l, "relatedChanged") {
				var p struct {
					Data struct{ RelatedChanged change }
				}
				if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data:")), &p); err != nil {
					t.Fatal(err)
				}
				expect(t, p.Data.RelatedChanged, "ADDED", b)
				cancel()
				for range lines {
				}
				r.waitSubs(0)
				return
			}
		case <-timeout:
			t.Fatal("no event over SSE")
		}
	}
}

// A client that stops reading is dropped once its buffer fills, with the
// other subscribers unaffected, and its memory is released.
func TestStalledClient(t *testing.T) {
	r := newReplica(t, replicaOpts{buffer: 8})
	a := r.record(r.key, "a", "ann@example.com", "first", "")
	good := r.dial(r.key, transportWS)
	good.subscribe("rel", `subscription($id: ID!) { relatedChanged(interactionId: $id) { kind } }`, map[string]any{"id": a})

	// The stalled client: subscribes, then never reads again.
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(r.url, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{transportWS}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	write := func(v string) {
		if err := conn.Write(ctx, websocket.MessageText, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"type":"connection_init","payload":{"Authorization":"Bearer ` + r.key + `"}}`)
	if _, _, err := conn.Read(ctx); err != nil { // the ack
		t.Fatal(err)
	}
	q, _ := json.Marshal(map[string]any{"type": "subscribe", "id": "s", "payload": map[string]any{"query": relatedSub, "variables": map[string]any{"id": a}}})
	write(string(q))
	r.waitSubs(2)

	// Big payloads fill the socket buffers quickly.
	big := strings.Repeat("x", 200<<10)
	deadline := time.Now().Add(60 * time.Second)
	n := 0
	for r.hub.Stats().Dropped == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled subscriber was not dropped after %d writes", n)
		}
		r.recordStore(server.DemoTenant, "b", "ann@example.com", fmt.Sprint(n, big))
		n++
		// The good client keeps up.
		if m := good.next("rel", 5*time.Second); m.Type != "next" {
			t.Fatalf("good client: %s %s", m.Type, m.Payload)
		}
	}
	t.Logf("stalled subscriber dropped after %d writes of %d KiB", n, len(big)>>10)
	r.waitSubs(1)
	// The good client still receives.
	r.recordStore(server.DemoTenant, "b", "ann@example.com", "after")
	if m := good.next("rel", 5*time.Second); m.Type != "next" {
		t.Fatalf("good client after the drop: %s %s", m.Type, m.Payload)
	}
}

// Subscriptions end, with an error saying why, when the hub closes; and a
// client that reconnects subscribes again.
func TestShutdownAndReconnect(t *testing.T) {
	r := newSQLite(t)
	a := r.record(r.key, "a", "ann@example.com", "first", "")
	c := r.dial(r.key, transportWS)
	c.subscribe("rel", relatedSub, map[string]any{"id": a})
	r.waitSubs(1)
	c.close()
	r.waitSubs(0)

	c = r.dial(r.key, transportWS)
	c.subscribe("rel", relatedSub, map[string]any{"id": a})
	r.waitSubs(1)
	b := r.record(r.key, "b", "ann@example.com", "after reconnect", "")
	expect(t, c.nextChange("rel"), "ADDED", b)

	metrics := r.metrics()
	for _, want := range []string{"related_subscriptions 1", "related_websocket_connections 1"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.hub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m := c.next("rel", 5*time.Second)
	if m.Type != "error" || !strings.Contains(string(m.Payload), "SHUTTING_DOWN") {
		t.Fatalf("after shutdown: %s %s", m.Type, m.Payload)
	}
}

func (r *replica) metrics() string {
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
