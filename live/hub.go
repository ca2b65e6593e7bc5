// Package live is the subscription hub: it fans the store's committed-write
// events out to GraphQL subscribers, by tenant and by the keys a Related
// panel is scoped by (DESIGN.md section 2, "Live updates"), and to the
// tenant's interaction lists (an agent's inbox), which every interaction
// write reaches.
//
// Events reach the hub through Publish (the hub is a store.Publisher): on
// the embedded database the store calls it directly after each commit; on
// MongoDB every replica also runs one feed reader (store/mongo.Feed) that
// reads the shared events collection and publishes here. The hub drops
// events it has already seen by id, so an event that arrives both from the
// local store and from the feed is delivered once.
//
// Publish never blocks and never touches the database: it only routes each
// event to the bounded buffers of the subscribers indexed under the
// event's keys. Each subscription has one goroutine that turns its events
// into payloads (with the store: it resolves the panel's scope and loads
// the interactions) and hands them to the transport. A subscriber whose
// buffer fills, because its client reads too slowly, is dropped with
// ErrTooSlow rather than allowed to grow memory.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// ErrTooSlow ends a subscription whose client fell too far behind: its
// buffer of undelivered events filled. The client should resubscribe and
// refetch what it shows.
var ErrTooSlow = errors.New("live: subscriber fell too far behind and was dropped; resubscribe and refetch")

// ErrClosed ends every subscription when the hub shuts down.
var ErrClosed = errors.New("live: server shutting down")

// DefaultBuffer is the number of undelivered events a subscriber may hold
// before it is dropped. A Related panel sees a few events a minute; 256
// rides out a burst (a merge, a bulk import) without letting a stalled
// client hold more than a few tens of kilobytes.
const DefaultBuffer = 256

// dedupWindow is how many recent event ids the hub remembers to drop
// repeats. Repeats come from the MongoDB feed re-reading events the local
// store already published, within seconds, so a window a few times the
// events of the feed's re-read overlap is plenty.
const dedupWindow = 1 << 16

// Options configure New.
type Options struct {
	// Store loads what payloads show and resolves scopes. Required.
	Store store.Store
	// Buffer bounds each subscriber's undelivered events (DefaultBuffer
	// when 0).
	Buffer int
	// Logger receives the hub's diagnostics (slog.Default() when nil).
	Logger *slog.Logger
	// MaxListsPerKey bounds each API key's open interaction-list
	// subscriptions (DefaultMaxListsPerKey when 0).
	MaxListsPerKey int
}

// Hub routes events to subscribers. It is safe for concurrent use. The
// zero value is not usable: call New.
type Hub struct {
	st       store.Store
	buffer   int
	log      *slog.Logger
	maxLists int

	mu     sync.Mutex
	closed bool
	// index maps tenant, then key ("i:<interaction>", "c:<contact>",
	// "p:<profile>"), to the subscribers listening on it. Indexing by
	// tenant first is what keeps tenants apart: an event is only ever
	// matched against its own tenant's subscribers.
	index map[string]map[string]map[*subscriber]struct{}
	seen  *idSet
	wg    sync.WaitGroup
	// lists counts each principal's open list subscriptions.
	lists map[string]int

	subs      atomic.Int64 // live subscriptions
	delivered atomic.Int64 // payloads handed to transports
	dropped   atomic.Int64 // subscribers dropped for falling behind
}

// New returns a hub over opts.Store.
func New(opts Options) *Hub {
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxListsPerKey <= 0 {
		opts.MaxListsPerKey = DefaultMaxListsPerKey
	}
	return &Hub{
		st: opts.Store, buffer: opts.Buffer, log: opts.Logger, maxLists: opts.MaxListsPerKey,
		index: map[string]map[string]map[*subscriber]struct{}{},
		seen:  newIDSet(dedupWindow),
		lists: map[string]int{},
	}
}

// Stats is a snapshot of the hub's counters, for /metrics.
type Stats struct {
	Subscriptions int64 // open subscriptions
	Delivered     int64 // payloads handed to transports since start
	Dropped       int64 // subscribers dropped for falling behind since start
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{Subscriptions: h.subs.Load(), Delivered: h.delivered.Load(), Dropped: h.dropped.Load()}
}

// subscriber is one subscription's place in the index: its keys and its
// bounded buffer. Its goroutine (see related.go, interaction.go) reads in.
type subscriber struct {
	tenant string
	keys   []string // guarded by Hub.mu
	in     chan *routed
	done   chan struct{} // closed when the hub drops the subscriber
	err    error         // why done was closed; written before closing done
	gone   bool          // guarded by Hub.mu: dropped or unsubscribed
	// list marks an interaction-list subscription, counted in Hub.lists
	// under principal.
	list      bool
	principal string
}

// Publish routes events to the subscribers indexed under their keys. It
// implements store.Publisher: it never blocks and never fails. Events are
// delivered in the order of Publish calls, so a store that publishes in
// commit order gets commit order at every subscriber.
func (h *Hub) Publish(_ context.Context, events []store.Event) {
	if h == nil {
		return // a store may publish before the hub that serves it exists
	}
	var slow []*subscriber
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	for _, e := range events {
		if e.ID != "" && !h.seen.add(e.ID) {
			continue // already delivered: the local store and the feed both saw it
		}
		keys := h.index[e.Tenant]
		if keys == nil {
			continue
		}
		var sent map[*subscriber]bool
		r := &routed{Event: e, lock: make(chan struct{}, 1)}
		for _, k := range eventKeys(e) {
			for s := range keys[k] {
				if sent[s] || s.gone {
					continue
				}
				if sent == nil {
					sent = map[*subscriber]bool{}
				}
				sent[s] = true
				select {
				case s.in <- r:
				default:
					// The buffer is full: the client is not keeping up.
					s.err = ErrTooSlow
					h.dropLocked(s)
					slow = append(slow, s)
				}
			}
		}
	}
	h.mu.Unlock()
	for range slow {
		h.dropped.Add(1)
	}
	if len(slow) > 0 {
		h.log.Warn("live: dropped subscribers that fell behind", "count", len(slow))
	}
}

// eventKeys are the index keys an event concerns: its interaction, its
// contact, its profile and, when it moved, the profile it left; and for a
// write of an interaction, the tenant's interaction lists. Membership
// events (a merge moves many interactions at once) change no list row, so
// they never reach a list subscriber's buffer.
func eventKeys(e store.Event) []string {
	keys := make([]string, 0, 5)
	if e.InteractionID != "" {
		keys = append(keys, "i:"+e.InteractionID)
		if e.Kind == store.InteractionCreated || e.Kind == store.InteractionUpdated || e.Kind == store.InteractionErased {
			keys = append(keys, listKey)
		}
	}
	if e.ContactID != "" {
		keys = append(keys, "c:"+e.ContactID)
	}
	if e.ProfileID != "" {
		keys = append(keys, "p:"+e.ProfileID)
	}
	if e.FromProfileID != "" && e.FromProfileID != e.ProfileID {
		keys = append(keys, "p:"+e.FromProfileID)
	}
	return keys
}

// subscribe indexes a new subscriber under keys.
func (h *Hub) subscribe(tenant string, keys []string) (*subscriber, error) {
	s := h.newSubscriber(tenant)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	h.addLocked(s, keys)
	return s, nil
}

func (h *Hub) newSubscriber(tenant string) *subscriber {
	return &subscriber{tenant: tenant, in: make(chan *routed, h.buffer), done: make(chan struct{})}
}

// addLocked indexes s under keys and counts it until unsubscribe.
func (h *Hub) addLocked(s *subscriber, keys []string) {
	h.setKeysLocked(s, keys)
	h.subs.Add(1)
	h.wg.Add(1)
}

// rekey moves s to keys, when its scope changed.
func (h *Hub) rekey(s *subscriber, keys []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.gone {
		return
	}
	h.unindexLocked(s)
	h.setKeysLocked(s, keys)
}

func (h *Hub) setKeysLocked(s *subscriber, keys []string) {
	t := h.index[s.tenant]
	if t == nil {
		t = map[string]map[*subscriber]struct{}{}
		h.index[s.tenant] = t
	}
	for _, k := range keys {
		set := t[k]
		if set == nil {
			set = map[*subscriber]struct{}{}
			t[k] = set
		}
		set[s] = struct{}{}
	}
	s.keys = keys
}

func (h *Hub) unindexLocked(s *subscriber) {
	t := h.index[s.tenant]
	for _, k := range s.keys {
		delete(t[k], s)
		if len(t[k]) == 0 {
			delete(t, k)
		}
	}
	if len(t) == 0 {
		delete(h.index, s.tenant)
	}
	s.keys = nil
}

// dropLocked removes s from the index and signals its goroutine, with
// s.err already set.
func (h *Hub) dropLocked(s *subscriber) {
	if s.gone {
		return
	}
	s.gone = true
	h.unindexLocked(s)
	close(s.done)
}

// unsubscribe removes s when its goroutine ends, whatever the reason.
func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	if !s.gone {
		s.gone = true
		h.unindexLocked(s)
	}
	if s.list {
		if h.lists[s.principal]--; h.lists[s.principal] <= 0 {
			delete(h.lists, s.principal)
		}
	}
	h.mu.Unlock()
	h.subs.Add(-1)
	h.wg.Done()
}

// Close ends every subscription with ErrClosed and waits for their
// goroutines to finish (or ctx to end). Publish and Subscribe do nothing
// after it.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		for _, keys := range h.index {
			for _, set := range keys {
				for s := range set {
					if !s.gone {
						s.err = ErrClosed
						h.dropLocked(s)
					}
				}
			}
		}
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idSet remembers the last n ids added, to drop repeats.
type idSet struct {
	ids  map[string]struct{}
	ring []string
	next int
}

func newIDSet(n int) *idSet {
	return &idSet{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records id and reports whether it was new.
func (s *idSet) add(id string) bool {
	if _, ok := s.ids[id]; ok {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.ids[id] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
	return true
}

// routed is an event on its way to subscribers. Every subscriber of an
// event shows the same interaction, so the first to load it shares it with
// the others: one store read per event, not one per subscriber. Only a
// success is shared. Each subscriber loads with its own context, so one
// whose client went away (its context cancelled mid-read) or whose key was
// revoked fails alone; the next subscriber loads again with its own
// (issue 13: an attacker dropping its socket ended a victim's
// subscriptions with the attacker's "context canceled"). The shared
// interaction is never modified.
type routed struct {
	store.Event
	lock   chan struct{} // held by the subscriber loading or reading
	loaded bool
	it     *related.Interaction
}

// interaction loads the event's interaction, or returns the one another
// subscriber loaded. It waits for a load in progress only while ctx lasts.
func (r *routed) interaction(ctx context.Context, st store.Store) (*related.Interaction, error) {
	select {
	case r.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.lock }()
	if r.loaded {
		return r.it, nil
	}
	its, err := st.Interactions(ctx, r.Tenant, []string{r.InteractionID})
	if err != nil {
		return nil, fmt.Errorf("load interaction %s: %w", r.InteractionID, err)
	}
	if len(its) > 0 {
		r.it = its[0]
	}
	r.loaded = true
	return r.it, nil
}
