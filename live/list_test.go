package live_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store/mongo/mongotest"
)

const listSub = `subscription($status: InteractionStatus) { interactionsChanged(status: $status) {
  kind interactionId interaction { id status closedState queue { name } contact { address } lastMessage { body } } } }`

// listChange is an interactionsChanged payload.
type listChange struct {
	Kind          string
	InteractionID string
	Interaction   struct {
		ID          string
		Status      string
		ClosedState *string
		Queue       *struct{ Name string }
		Contact     struct{ Address string }
		LastMessage struct{ Body string }
	}
}

// nextListChange waits for the next interactionsChanged payload of
// operation id.
func (c *client) nextListChange(id string) listChange {
	c.t.Helper()
	m := c.next(id, 5*time.Second)
	if m.Type != "next" && m.Type != "data" {
		c.t.Fatalf("operation %s: got %s %s, want a payload", id, m.Type, m.Payload)
	}
	var p struct {
		Data   struct{ InteractionsChanged listChange }
		Errors []any
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
		c.t.Fatalf("payload %s: %v", m.Payload, err)
	}
	return p.Data.InteractionsChanged
}

func expectList(t *testing.T, op string, got listChange, kind, id, status string) {
	t.Helper()
	if got.Kind != kind || got.InteractionID != id || got.Interaction.ID != id || got.Interaction.Status != status {
		t.Fatalf("%s: got %s %s (interaction %s, %s), want %s %s (%s)", op, got.Kind, got.InteractionID,
			got.Interaction.ID, got.Interaction.Status, kind, id, status)
	}
}

// The interaction list, live, on each adapter (MongoDB through its events
// feed): what each write is for the OPEN list, the CLOSED list and the
// unfiltered one; profile changes and other tenants' writes reach none.
func TestInteractionList(t *testing.T) {
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
			otherKey := r.newKey("other")
			c := r.dial(r.key, transportWS)
			c.subscribe("open", listSub, map[string]any{"status": "OPEN"})
			c.subscribe("closed", listSub, map[string]any{"status": "CLOSED"})
			c.subscribe("all", listSub, nil)
			r.waitSubs(3)

			// A new interaction: ADDED to the open and the whole list.
			a := r.record(r.key, "a", "ann@example.com", "first", "Billing")
			expectList(t, "open", c.nextListChange("open"), "ADDED", a, "OPEN")
			got := c.nextListChange("all")
			expectList(t, "all", got, "ADDED", a, "OPEN")
			if got.Interaction.LastMessage.Body != "first" || got.Interaction.Queue == nil || got.Interaction.Queue.Name != "Billing" {
				t.Fatalf("payload %+v", got.Interaction)
			}
			// A message on it: UPDATED, with the new last message.
			r.record(r.key, "a", "ann@example.com", "second", "")
			if got := c.nextListChange("open"); got.Kind != "UPDATED" || got.Interaction.LastMessage.Body != "second" {
				t.Fatalf("after a message: %+v", got)
			}
			expectList(t, "all", c.nextListChange("all"), "UPDATED", a, "OPEN")
			// The closed list cannot tell that a was never in it: REMOVED,
			// which a client that does not show it ignores.
			expectList(t, "closed", c.nextListChange("closed"), "REMOVED", a, "OPEN")
			// A close: it leaves the open list and enters the closed one.
			r.gql(r.key, `mutation($id: ID!) { closeInteraction(input: {id: $id, state: IGNORED}) { userErrors { message } } }`, map[string]any{"id": a}, nil)
			expectList(t, "open", c.nextListChange("open"), "REMOVED", a, "CLOSED")
			got = c.nextListChange("closed")
			expectList(t, "closed", got, "UPDATED", a, "CLOSED")
			if got.Interaction.ClosedState == nil || *got.Interaction.ClosedState != "IGNORED" {
				t.Fatalf("closed state %+v", got.Interaction)
			}
			expectList(t, "all", c.nextListChange("all"), "UPDATED", a, "CLOSED")
			// A reopen: back the other way.
			r.gql(r.key, `mutation($id: ID!) { reopenInteraction(input: {id: $id}) { userErrors { message } } }`, map[string]any{"id": a}, nil)
			expectList(t, "open", c.nextListChange("open"), "UPDATED", a, "OPEN")
			expectList(t, "closed", c.nextListChange("closed"), "REMOVED", a, "OPEN")
			expectList(t, "all", c.nextListChange("all"), "UPDATED", a, "OPEN")

			// A contact joining a profile moves no list row: a web chat
			// visitor giving Ann's email is one new interaction (ADDED),
			// and the link's profile events reach no list.
			chat := ""
			{
				var out struct {
					RecordMessage struct{ Interaction struct{ ID string } }
				}
				r.gql(r.key, `mutation($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id } userErrors { message } } }`,
					map[string]any{"in": map[string]any{"channel": "WEBCHAT", "threadRef": "chat-1", "direction": "INBOUND", "body": "hi from chat",
						"contact": map[string]any{"address": "visitor-1", "attributes": []any{map[string]any{"key": "email", "value": "ann@example.com"}}}}}, &out)
				chat = out.RecordMessage.Interaction.ID
			}
			expectList(t, "open", c.nextListChange("open"), "ADDED", chat, "OPEN")
			expectList(t, "all", c.nextListChange("all"), "ADDED", chat, "OPEN")
			// Another tenant's writes, the same address and thread included.
			r.record(otherKey, "a", "ann@example.com", "other tenant", "")
			c.none("open", 500*time.Millisecond)
			c.none("closed", 0)
			c.none("all", 0)

			// Commit order for a burst, one payload per write.
			for i := range 20 {
				r.recordStore(server.DemoTenant, fmt.Sprint("burst-", i), "bob@example.com", fmt.Sprintf("burst %02d", i))
			}
			for i := range 20 {
				got := c.nextListChange("open")
				if got.Kind != "ADDED" || got.Interaction.LastMessage.Body != fmt.Sprintf("burst %02d", i) {
					t.Fatalf("burst event %d: %+v", i, got)
				}
			}
			c.none("open", 300*time.Millisecond)
			c.none("closed", 0)
		})
	}
}

// Each key holds at most MaxListsPerKey list subscriptions: one more is
// refused with TOO_MANY_SUBSCRIPTIONS, an ended one frees its slot, and
// another key has an allowance of its own.
func TestListSubscriptionsPerKey(t *testing.T) {
	r := newReplica(t, replicaOpts{maxLists: 2})
	c := r.dial(r.key, transportWS)
	c.subscribe("l1", listSub, nil)
	c.subscribe("l2", listSub, map[string]any{"status": "OPEN"})
	r.waitSubs(2)
	c.subscribe("l3", listSub, nil)
	m := c.next("l3", 5*time.Second)
	if !strings.Contains(string(m.Payload), `"code":"`+live.CodeTooManySubscriptions+`"`) || live.CodeTooManySubscriptions != server.CodeTooManySubs {
		t.Fatalf("third list subscription: %s %s", m.Type, m.Payload)
	}
	// Panel subscriptions are not list subscriptions.
	a := r.record(r.key, "a", "ann@example.com", "first", "")
	expectList(t, "l2", c.nextListChange("l2"), "ADDED", a, "OPEN")
	c.subscribe("rel", relatedSub, map[string]any{"id": a})
	r.waitSubs(3)
	// Another key.
	o := r.dial(r.newKey(server.DemoTenant), transportWS)
	o.subscribe("l1", listSub, nil)
	r.waitSubs(4)
	// Ending one frees its slot.
	c.send(msg{Type: "complete", ID: "l1"})
	r.waitSubs(3)
	c.subscribe("l4", listSub, nil)
	r.waitSubs(4)
	b := r.record(r.key, "b", "bob@example.com", "to every list", "")
	expectList(t, "l4", c.nextListChange("l4"), "ADDED", b, "OPEN")
	expectList(t, "l2", c.nextListChange("l2"), "ADDED", b, "OPEN")
	expectList(t, "other key", o.nextListChange("l1"), "ADDED", b, "OPEN")
	// A dropped connection frees the key's slots too.
	c.close()
	r.waitSubs(1)
	c = r.dial(r.key, transportWS)
	c.subscribe("x1", listSub, nil)
	c.subscribe("x2", listSub, nil)
	r.waitSubs(3)
}

// A list subscriber on one replica sees the writes taken by another, once
// (the events feed, de-duplicated by event id).
func TestInteractionListAcrossReplicas(t *testing.T) {
	db := mongotest.FreshDB()
	r1 := newReplica(t, replicaOpts{mongo: ferret.URI, db: db})
	r2 := newReplica(t, replicaOpts{mongo: ferret.URI, db: db})
	c := r2.dial(r2.key, transportWS)
	c.subscribe("open", listSub, map[string]any{"status": "OPEN"})
	r2.waitSubs(1)
	a := r1.record(r1.key, "a", "ann@example.com", "through replica 1", "")
	expectList(t, "open", c.nextListChange("open"), "ADDED", a, "OPEN")
	r2.gql(r2.key, `mutation($id: ID!) { closeInteraction(input: {id: $id, state: CLOSED}) { userErrors { message } } }`, map[string]any{"id": a}, nil)
	expectList(t, "open", c.nextListChange("open"), "REMOVED", a, "CLOSED")
	// No repeats once the feed has re-read its overlap window.
	c.none("open", 2500*time.Millisecond)
}

// Every list subscriber of a tenant shares the one store read of an
// event's interaction: delivering a write to 20 subscribers costs one
// command more than the write itself. Fields beyond the interaction's own
// resolve per subscriber (each event has its own loaders), so a payload
// that selects the contact costs one read per subscriber on top.
func TestListDeliveryCost(t *testing.T) {
	const n = 20
	r := newReplica(t, replicaOpts{maxLists: n})
	seq := 0
	// cost records a new interaction through the store and returns the
	// commands it took until every subscriber had its payload.
	cost := func(c *client, query string) int64 {
		t.Helper()
		seq++
		before := r.cmds.Total()
		r.recordStore(server.DemoTenant, fmt.Sprint("cost-", seq), fmt.Sprintf("cost%d@example.com", seq), "a new interaction")
		if c != nil {
			for i := range n {
				if got := c.nextListChange(fmt.Sprint(query, i)); got.Kind != "ADDED" {
					t.Fatalf("subscriber %d: %+v", i, got)
				}
			}
		}
		return r.cmds.Total() - before
	}
	cost(nil, "") // the tenant's first write also sets the tenant up
	write := cost(nil, "")

	own := r.dial(r.key, transportWS)
	for i := range n {
		own.subscribe(fmt.Sprint("own", i), `subscription { interactionsChanged(status: OPEN) { kind interactionId interaction { id status lastMessage { body } } } }`, nil)
	}
	r.waitSubs(n)
	if got := cost(own, "own") - write; got != 1 {
		t.Errorf("delivering a write to %d list subscribers took %d commands, want 1 (the shared interaction read)", n, got)
	}
	own.close()
	r.waitSubs(0)

	withContact := r.dial(r.key, transportWS)
	for i := range n {
		withContact.subscribe(fmt.Sprint("contact", i), listSub, nil)
	}
	r.waitSubs(n)
	got := cost(withContact, "contact") - write
	t.Logf("a write: %d commands; delivered to %d list subscribers: +1 shared read, +%d with the contact selected", write, n, got-1)
	if got != 1+n {
		t.Errorf("with the contact selected: %d commands, want %d (one contact read per subscriber)", got, 1+n)
	}
}
