package live

import (
	"context"
	"fmt"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// DefaultMaxListsPerKey is how many interaction-list subscriptions one API
// key may hold open when Options.MaxListsPerKey is 0. A list subscription
// receives every interaction write of its tenant, so it costs far more
// than a panel's; an agent console holds one per browser tab.
const DefaultMaxListsPerKey = 10

// CodeTooManySubscriptions is the error code of a list subscription
// refused for the key's allowance (the server's TOO_MANY_SUBSCRIPTIONS).
const CodeTooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS"

// listKey is the index key of a tenant's list subscribers: every
// interaction write of the tenant routes to it (see eventKeys).
const listKey = "*"

// ListChange is one change of a tenant's interaction list: the
// InteractionListChange payload.
type ListChange struct {
	Kind ChangeKind
	// Interaction is the interaction that changed, as it is now.
	Interaction *related.Interaction
}

// InteractionID is the global id of the interaction that changed, so a
// client can find the row to move or remove.
func (c *ListChange) InteractionID() string {
	return related.GlobalID(related.NodeInteraction, c.Interaction.ID)
}

// listKind is how an interaction written by an event of kind k shows in a
// list filtered by status ("" for every status), and whether it shows at
// all. The event does not say what the interaction was before, so:
//   - a new interaction that matches is Added, one that does not is never
//     announced (it was in no list);
//   - a changed interaction that matches is Updated: the client moves it,
//     or adds it when it has just entered the list (a reopen, a close);
//   - a changed interaction that no longer matches is Removed: the client
//     drops it if it shows it.
func listKind(k store.EventKind, status related.Status, it *related.Interaction) (ChangeKind, bool) {
	match := status == "" || it.Status == status
	switch {
	case k == store.InteractionCreated && match:
		return Added, true
	case k == store.InteractionCreated:
		return "", false
	case match:
		return Updated, true
	default:
		return Removed, true
	}
}

// List subscribes to tenant's interaction list, as Query.interactions lists
// it with the same status filter ("" for every status): a ListChange for
// every interaction write, in commit order (see listKind for the kinds).
// principal is the API key the subscription counts against: each may hold
// Options.MaxListsPerKey list subscriptions, and one more is refused with a
// TOO_MANY_SUBSCRIPTIONS *related.Error. It ends as Related does.
func (h *Hub) List(ctx context.Context, tenant, principal string, status related.Status, onEnd func(error)) (<-chan *ListChange, error) {
	if status != "" && !status.Valid() {
		return nil, related.Invalid(fmt.Sprintf("unknown status %q", status), "status")
	}
	s, err := h.subscribeList(tenant, principal)
	if err != nil {
		return nil, err
	}
	out := make(chan *ListChange)
	handle := func(ctx context.Context, e *routed) ([]*ListChange, error) {
		if e.Kind != store.InteractionCreated && e.Kind != store.InteractionUpdated {
			return nil, nil
		}
		it, err := e.interaction(ctx, h.st)
		if err != nil || it == nil {
			return nil, err
		}
		kind, ok := listKind(e.Kind, status, it)
		if !ok {
			return nil, nil
		}
		return []*ListChange{{Kind: kind, Interaction: it}}, nil
	}
	go run(ctx, h, s, out, onEnd, handle)
	return out, nil
}

// subscribeList indexes a list subscriber of tenant, counted against
// principal's allowance of list subscriptions.
func (h *Hub) subscribeList(tenant, principal string) (*subscriber, error) {
	s := h.newSubscriber(tenant)
	s.list, s.principal = true, principal
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.lists[principal] >= h.maxLists {
		return nil, &related.Error{Code: CodeTooManySubscriptions, Message: fmt.Sprintf(
			"this key has %d open interaction-list subscriptions, the most allowed: close one first", h.maxLists)}
	}
	h.lists[principal]++
	h.addLocked(s, []string{listKey})
	return s, nil
}
