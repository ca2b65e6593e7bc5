package live_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

type attackerKey struct{}

// gatedStore makes the attacker's interaction loads wait until the
// attacker's context ends, once gating is on: a subscriber whose client
// goes away in the middle of a read.
type gatedStore struct {
	store.Store
	gating atomic.Bool
	in     chan struct{} // the attacker's load has started
}

func (g *gatedStore) Interactions(ctx context.Context, tenant string, ids []string) ([]*related.Interaction, error) {
	if g.gating.Load() && ctx.Value(attackerKey{}) != nil {
		g.in <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return g.Store.Interactions(ctx, tenant, ids)
}

// TestOneSubscribersCancellationIsItsOwn: the hub loaded an event's
// interaction with its first subscriber's context and shared the result,
// errors included, so an attacker dropping its socket mid-read ended a
// victim's subscription with "context canceled" (issue 13, item 7). The
// victim now loads with its own context and gets its update.
func TestOneSubscribersCancellationIsItsOwn(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in, err := related.RecordMessage{
		Channel: related.ChannelEmail, ThreadRef: "t", Direction: related.Inbound, Body: "hi",
		Contact: related.ContactInput{Address: "victim@example.com"},
	}.Normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.RecordMessage(ctx, "acme", in)
	if err != nil {
		t.Fatal(err)
	}
	id := res.Interaction.ID
	gs := &gatedStore{Store: st, in: make(chan struct{}, 1)}
	hub := live.New(live.Options{Store: gs, Logger: quietLog()})
	defer hub.Close(ctx)

	attackerCtx, cancelAttacker := context.WithCancel(context.WithValue(ctx, attackerKey{}, true))
	defer cancelAttacker()
	attackerDone := make(chan struct{})
	attacker, err := hub.Interaction(attackerCtx, "acme", id, func(error) { close(attackerDone) })
	if err != nil {
		t.Fatal(err)
	}
	victimCtx, cancelVictim := context.WithCancel(ctx)
	defer cancelVictim()
	var victimEnd atomic.Value
	victim, err := hub.Interaction(victimCtx, "acme", id, func(err error) {
		if err != nil {
			victimEnd.Store(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	event := func(eid string) store.Event {
		return store.Event{ID: eid, Tenant: "acme", Kind: store.InteractionUpdated, InteractionID: id}
	}
	// A first event: both get it; the victim's stays unread, so the
	// victim is busy delivering it while the attacker reads the next.
	hub.Publish(ctx, []store.Event{event("e0")})
	if it := <-attacker; it == nil || it.ID != id {
		t.Fatalf("attacker's first update: %+v", it)
	}
	gs.gating.Store(true)
	hub.Publish(ctx, []store.Event{event("e1")})
	<-gs.in                                       // the attacker is reading the interaction of e1...
	cancelAttacker()                              // ...when its client goes away
	<-attackerDone                                // its subscription has ended, its read failed
	if it := <-victim; it == nil || it.ID != id { // e0
		t.Fatalf("victim's first update: %+v", it)
	}
	select {
	case it, ok := <-victim: // e1
		if !ok || it == nil || it.ID != id {
			t.Fatalf("the victim's subscription ended with the attacker's failure: %v", victimEnd.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the victim never got its update")
	}
	if err, _ := victimEnd.Load().(error); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("victim ended: %v", err)
	}
}
