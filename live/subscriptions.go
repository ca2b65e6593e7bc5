package live

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// ChangeKind says how a Related panel, or an interaction list, changed.
type ChangeKind string

// The kinds of Related panel changes.
const (
	Added   ChangeKind = "ADDED"   // an interaction entered the panel's scope
	Updated ChangeKind = "UPDATED" // an interaction in scope changed: a message, a close, a reopen, a queue
	Removed ChangeKind = "REMOVED" // an interaction left the scope (an unlink, a split)
)

// Valid reports whether k is a known kind.
func (k ChangeKind) Valid() bool { return k == Added || k == Updated || k == Removed }

// MarshalGQL writes k as a GraphQL enum value.
func (k ChangeKind) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(k))) }

// UnmarshalGQL reads k from a GraphQL enum value.
func (k *ChangeKind) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok || !ChangeKind(s).Valid() {
		return fmt.Errorf("%v is not a valid change kind", v)
	}
	*k = ChangeKind(s)
	return nil
}

// Change is one change of a Related panel: the RelatedChange payload.
type Change struct {
	Kind ChangeKind
	// Interaction is the interaction that changed, as it is now.
	Interaction *related.Interaction
	// Scope is the panel's scope after the change.
	Scope related.Scope
}

// InteractionID is the global id of the interaction that changed, so a
// client can find the row to update or remove.
func (c *Change) InteractionID() string {
	return related.GlobalID(related.NodeInteraction, c.Interaction.ID)
}

// maxScopeScan bounds the interactions read to learn a profile's contacts
// when a panel's scope is (re)resolved. A profile's contacts are few (rules
// cap them); its interactions can be many, and the contacts of the newest
// ones are the ones a panel shows.
const maxScopeScan = 500

// maxMergeHops bounds the merge chain followed to a profile's root; the
// store keeps chains short (the winner is always the older profile).
const maxMergeHops = 16

// maxDiff bounds the interactions announced per contact entering or
// leaving a scope: a panel shows at most 100 rows per page, and a client
// that needs more refetches.
const maxDiff = 100

// panel is the state of one relatedChanged subscription: the interaction
// it is beside and the scope it currently spans. Its goroutine owns it.
type panel struct {
	h        *Hub
	s        *subscriber
	tenant   string
	self     string
	profiles map[string]bool     // the interaction's profile at the last resolution, and the root it resolved to
	profile  string              // that root: the profile a PROFILE scope spans
	scope    related.Scope       // the scope in use
	contacts map[string]struct{} // the contacts whose interactions the scope spans
}

// Related subscribes to the Related panel of interaction id of tenant: a
// Change for every interaction that enters, changes in or leaves the
// panel's scope, in the order the writes committed. The scope follows the
// interaction's profile (related.ChooseScope with no requested scope, as
// the panel's default): when profiles merge or split, the interactions
// that enter the scope arrive as Added and those that leave as Removed.
//
// The channel closes when ctx ends or the hub drops the subscription;
// onEnd is called first, with nil when ctx ended, else with the reason
// (ErrTooSlow, ErrClosed, a store failure). It returns a NOT_FOUND
// *related.Error when id names no interaction of tenant.
func (h *Hub) Related(ctx context.Context, tenant, id string, onEnd func(error)) (<-chan *Change, error) {
	p := &panel{h: h, tenant: tenant, self: id}
	it, err := p.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, related.NotFound("no such interaction", "interactionId")
	}
	if err := p.scopeOf(ctx, it); err != nil {
		return nil, err
	}
	s, err := h.subscribe(tenant, p.keys())
	if err != nil {
		return nil, err
	}
	p.s = s
	out := make(chan *Change)
	go run(ctx, h, s, out, onEnd, p.handle)
	return out, nil
}

// Interaction subscribes to the changes of interaction id of tenant: the
// interaction as it is after each committed write that changed it. See
// Related for how it ends.
func (h *Hub) Interaction(ctx context.Context, tenant, id string, onEnd func(error)) (<-chan *related.Interaction, error) {
	p := &panel{h: h, tenant: tenant}
	it, err := p.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, related.NotFound("no such interaction", "id")
	}
	s, err := h.subscribe(tenant, []string{"i:" + id})
	if err != nil {
		return nil, err
	}
	out := make(chan *related.Interaction)
	handle := func(ctx context.Context, e *routed) ([]*related.Interaction, error) {
		if e.InteractionID != id {
			return nil, nil
		}
		it, err := e.interaction(ctx, h.st)
		if err != nil || it == nil {
			return nil, err
		}
		return []*related.Interaction{it}, nil
	}
	go run(ctx, h, s, out, onEnd, handle)
	return out, nil
}

// run is a subscription's goroutine: it turns the events routed to s into
// payloads with handle and sends them on out, until ctx ends or the hub
// drops s. A store failure ends the subscription too: a payload it could
// not build is an update the client would silently miss, so it is told to
// refetch instead.
func run[T any](ctx context.Context, h *Hub, s *subscriber, out chan<- T, onEnd func(error), handle func(context.Context, *routed) ([]T, error)) {
	var end error
	defer func() {
		if onEnd != nil {
			onEnd(end)
		}
		close(out)
		h.unsubscribe(s)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			end = s.err
			return
		case e := <-s.in:
			payloads, err := handle(ctx, e)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				h.log.Error("live: building a payload failed; ending the subscription", "tenant", s.tenant, "err", err)
				end = fmt.Errorf("live: %w", err)
				return
			}
			for _, p := range payloads {
				select {
				case out <- p:
					h.delivered.Add(1)
				case <-ctx.Done():
					return
				case <-s.done:
					end = s.err
					return
				}
			}
		}
	}
}

// keys are the index keys the panel listens on: its own interaction (its
// profile may change), every contact in scope, and its profile (a contact
// may join it).
func (p *panel) keys() []string {
	keys := make([]string, 0, len(p.contacts)+2)
	keys = append(keys, "i:"+p.self)
	for c := range p.contacts {
		keys = append(keys, "c:"+c)
	}
	for id := range p.profiles {
		keys = append(keys, "p:"+id)
	}
	return keys
}

// membership reports whether an event kind may move contacts between
// profiles (merges, links, unlinks): every kind but the interaction and
// contact updates the store publishes for ordinary writes.
func membership(k store.EventKind) bool {
	return k != store.InteractionCreated && k != store.InteractionUpdated && k != store.ContactUpdated
}

// handle turns one event into the panel's changes.
func (p *panel) handle(ctx context.Context, e *routed) ([]*Change, error) {
	if e.InteractionID == p.self {
		// The panel's own interaction is not in its panel; only a change
		// of its profile concerns the panel.
		if !p.profiles[e.ProfileID] || membership(e.Kind) {
			return p.resolve(ctx, nil)
		}
		return nil, nil
	}
	_, inScope := p.contacts[e.ContactID]
	switch {
	case membership(e.Kind),
		inScope && e.ProfileID != p.profile,                     // a contact in scope moved
		!inScope && p.profile != "" && e.ProfileID == p.profile: // a contact joined the profile
		return p.resolve(ctx, e)
	case !inScope || e.InteractionID == "" || e.Kind == store.ContactUpdated:
		return nil, nil
	}
	it, err := e.interaction(ctx, p.h.st)
	if err != nil || it == nil {
		return nil, err
	}
	kind := Updated
	if e.Kind == store.InteractionCreated {
		kind = Added
	}
	return []*Change{{Kind: kind, Interaction: it, Scope: p.scope}}, nil
}

// resolve reloads the panel's interaction, works out its scope again and
// announces the difference: the interactions of contacts that entered the
// scope as Added, of those that left it as Removed. e, when not nil, is
// the event that prompted it; its interaction is announced as well when it
// is in scope and not already announced.
func (p *panel) resolve(ctx context.Context, e *routed) ([]*Change, error) {
	it, err := p.load(ctx, p.self)
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, fmt.Errorf("interaction %s no longer exists", p.self)
	}
	before := p.contacts
	if err := p.scopeOf(ctx, it); err != nil {
		return nil, err
	}
	scope, contacts := p.scope, p.contacts
	var out []*Change
	announce := func(contact string, kind ChangeKind) error {
		page, err := p.h.st.ListRelated(ctx, p.tenant, store.RelatedQuery{ContactID: contact, Exclude: p.self}, store.Page{First: maxDiff})
		if err != nil {
			return fmt.Errorf("list interactions of contact %s: %w", contact, err)
		}
		for _, x := range page.Items {
			out = append(out, &Change{Kind: kind, Interaction: x, Scope: scope})
		}
		return nil
	}
	for c := range before {
		if _, ok := contacts[c]; !ok {
			if err := announce(c, Removed); err != nil {
				return nil, err
			}
		}
	}
	entered := map[string]bool{}
	for c := range contacts {
		if _, ok := before[c]; !ok {
			entered[c] = true
			if err := announce(c, Added); err != nil {
				return nil, err
			}
		}
	}
	p.h.rekey(p.s, p.keys())
	if e != nil && e.InteractionID != "" && e.InteractionID != p.self && !entered[e.ContactID] {
		if _, ok := contacts[e.ContactID]; ok && !membership(e.Kind) && e.Kind != store.ContactUpdated {
			x, err := p.load(ctx, e.InteractionID)
			if err != nil {
				return nil, err
			}
			if x != nil {
				kind := Updated
				if e.Kind == store.InteractionCreated {
					kind = Added
				}
				out = append(out, &Change{Kind: kind, Interaction: x, Scope: scope})
			}
		}
	}
	return out, nil
}

// scopeOf works out the scope of it's panel as the Related resolver does
// (related.ChooseScope with no requested scope: PROFILE when its contact's
// profile, followed through merges, has other contacts) and sets the
// panel's state: the scope, its profile, and the contacts whose
// interactions it spans (its own, and in PROFILE scope those of its
// profile's interactions).
func (p *panel) scopeOf(ctx context.Context, it *related.Interaction) error {
	contacts := map[string]struct{}{it.ContactID: {}}
	profiles := map[string]bool{}
	linked, root := false, it.ProfileID
	for hops := 0; root != "" && hops < maxMergeHops; hops++ {
		profiles[root] = true
		found, err := p.h.st.Profiles(ctx, p.tenant, []string{root})
		if err != nil {
			return fmt.Errorf("load profile %s: %w", root, err)
		}
		if len(found) == 0 {
			break
		}
		if found[0].MergedInto == "" {
			linked = found[0].ContactCount > 1
			break
		}
		root = found[0].MergedInto
	}
	scope := related.ChooseScope("", linked)
	if scope == related.ScopeProfile {
		q := store.RelatedQuery{ProfileID: root, Exclude: it.ID}
		pg := store.Page{First: store.MaxPageSize}
		for read := 0; read < maxScopeScan; {
			page, err := p.h.st.ListRelated(ctx, p.tenant, q, pg)
			if err != nil {
				return fmt.Errorf("list profile %s: %w", root, err)
			}
			for _, x := range page.Items {
				contacts[x.ContactID] = struct{}{}
			}
			read += len(page.Items)
			if !page.HasNextPage || len(page.Items) == 0 {
				break
			}
			c := store.InteractionCursor(page.Items[len(page.Items)-1])
			pg.After = &c
		}
	}
	p.scope, p.profile, p.profiles, p.contacts = scope, root, profiles, contacts
	return nil
}

// load returns interaction id of the panel's tenant, or nil when there is
// none.
func (p *panel) load(ctx context.Context, id string) (*related.Interaction, error) {
	its, err := p.h.st.Interactions(ctx, p.tenant, []string{id})
	if err != nil {
		return nil, fmt.Errorf("load interaction %s: %w", id, err)
	}
	if len(its) == 0 {
		return nil, nil
	}
	return its[0], nil
}
