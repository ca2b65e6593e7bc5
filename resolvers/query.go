package resolvers

import (
	"context"
	"fmt"
	"sync"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

type queryResolver struct{ *Resolver }

// Viewer is who the request acts for.
func (r queryResolver) Viewer(ctx context.Context) (*graph.Viewer, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return &graph.Viewer{Tenant: v.Tenant, Role: v.Role, Name: ptr(v.Name)}, nil
}

// MaxNodes bounds the ids of one Query.nodes call: a page's worth, as
// connections allow, so one field cannot ask for an unbounded batch.
const MaxNodes = 100

// Node resolves any global id. Ids that are malformed, of another tenant or
// of nothing all resolve to null alike.
func (r queryResolver) Node(ctx context.Context, id string) (related.Node, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return r.nodeLoader(ctx, l).load(ctx, id)()
}

// Nodes resolves global ids in order, null in place of each that names
// nothing. Every id is handed to its type's loader before any result is
// read, so the ids of one type cost one batched store call.
func (r queryResolver) Nodes(ctx context.Context, ids []string) ([]related.Node, error) {
	if len(ids) > MaxNodes {
		return nil, related.Invalid(fmt.Sprintf("at most %d ids, got %d", MaxNodes, len(ids)), "ids")
	}
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	nl := r.nodeLoader(ctx, l)
	thunks := make([]func() (related.Node, error), len(ids))
	for i, id := range ids {
		thunks[i] = nl.load(ctx, id)
	}
	out := make([]related.Node, len(ids))
	for i, th := range thunks {
		if out[i], err = th(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nodeLoader resolves global ids of every Node type for one node or nodes
// field. Types with a dataloader batch through it; rules, which the store
// reads as one list, are read once.
type nodeLoader struct {
	r     queryResolver
	l     *Loaders
	rules func() ([]identity.Rule, error)
}

// mergedContact loads the contact that id, no longer a contact of its
// own, was folded into by canonicalization; nil if id was never one.
func (n *nodeLoader) mergedContact(ctx context.Context, id string) (*related.Contact, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	m, err := n.r.Store.ContactAliases(ctx, v.Tenant, []string{id})
	if err != nil || m[id] == "" {
		return nil, err
	}
	return n.l.Contacts.Load(ctx, m[id])()
}

// nodeLoader returns the loader of one field, whose rules are read with
// ctx when first needed.
func (r queryResolver) nodeLoader(ctx context.Context, l *Loaders) *nodeLoader {
	return &nodeLoader{r: r, l: l, rules: sync.OnceValues(func() ([]identity.Rule, error) {
		v, _, err := request(ctx)
		if err != nil {
			return nil, err
		}
		return r.Store.ProfileRules(ctx, v.Tenant)
	})}
}

// load starts resolving id and returns the thunk that waits for it.
func (n *nodeLoader) load(ctx context.Context, id string) func() (related.Node, error) {
	l := n.l
	t, sid, err := related.ParseGlobalID(id)
	if err != nil {
		return func() (related.Node, error) { return nil, nil }
	}
	switch t {
	case related.NodeInteraction:
		th := l.Interactions.Load(ctx, sid)
		return func() (related.Node, error) { return nilNode(th()) }
	case related.NodeMessage:
		th := l.Messages.Load(ctx, sid)
		return func() (related.Node, error) { return nilNode(th()) }
	case related.NodeContact:
		th := l.Contacts.Load(ctx, sid)
		return func() (related.Node, error) {
			c, err := th()
			if err == nil && c == nil {
				c, err = n.mergedContact(ctx, sid) // a folded-away id leads to the contact now
			}
			return nilNode(c, err)
		}
	case related.NodeQueue:
		th := l.Queues.Load(ctx, sid)
		return func() (related.Node, error) { return nilNode(th()) }
	case related.NodeProfile:
		th := l.Profiles.Load(ctx, sid)
		return func() (related.Node, error) {
			p, err := th()
			if err == nil && p != nil && p.MergedInto != "" {
				p, err = loadProfile(ctx, l, p.MergedInto) // a merged-away id leads to the profile now
			}
			return nilNode(p, err)
		}
	case related.NodeProfileRule:
		return func() (related.Node, error) {
			rules, err := n.rules()
			if err != nil {
				return nil, err
			}
			for i := range rules {
				if rules[i].ID == sid {
					return &rules[i], nil
				}
			}
			return nil, nil
		}
	case related.NodeSuggestion, related.NodeConflict:
		return func() (related.Node, error) { return n.pair(ctx, t, sid) }
	}
	return func() (related.Node, error) { return nil, nil }
}

// pair reads a suggestion or a conflict; nil when id names nothing of
// type t.
func (n *nodeLoader) pair(ctx context.Context, t related.NodeType, id string) (related.Node, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	p, err := n.r.Store.ProfilePair(ctx, v.Tenant, id)
	switch {
	case related.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	case t == related.NodeSuggestion && p.Kind == identity.Suggestion:
		return &store.Suggestion{PairRecord: p}, nil
	case t == related.NodeConflict && p.Kind == identity.Conflict:
		return &store.Conflict{PairRecord: p}, nil
	}
	return nil, nil
}

// nilNode turns a loader's typed nil into an untyped nil Node, which
// GraphQL renders as null.
func nilNode[T interface {
	comparable
	related.Node
}](v T, err error) (related.Node, error) {
	var zero T
	if err != nil || v == zero {
		return nil, err
	}
	return v, nil
}

// Interaction resolves an interaction by global id; null when it names
// nothing the viewer can see.
func (r queryResolver) Interaction(ctx context.Context, id string) (*related.Interaction, error) {
	v, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	sid, err := related.ParseTypedID(id, related.NodeInteraction)
	if err != nil {
		return nil, nil
	}
	// One id has nothing to batch with: load it now rather than wait out
	// the loader's batching window, and prime the loaders with it.
	return loadInteractionNow(ctx, r.Store, l, v.Tenant, sid)
}

// loadInteractionNow loads one interaction directly (with its contact and
// profile where the store offers that) and primes the loaders.
func loadInteractionNow(ctx context.Context, s store.Store, l *Loaders, tenant, id string) (*related.Interaction, error) {
	if pr, ok := s.(store.PanelReader); ok {
		views, err := pr.InteractionViews(ctx, tenant, []string{id})
		if err != nil || len(views) == 0 {
			return nil, err
		}
		v := views[0]
		l.Interactions.Prime(ctx, id, v.Interaction)
		l.Contacts.Prime(ctx, v.Contact.ID, v.Contact)
		if v.Profile != nil {
			l.Profiles.Prime(ctx, v.Profile.ID, v.Profile)
		}
		return v.Interaction, nil
	}
	its, err := s.Interactions(ctx, tenant, []string{id})
	if err != nil || len(its) == 0 {
		return nil, err
	}
	l.Interactions.Prime(ctx, id, its[0])
	return its[0], nil
}

// Interactions lists the tenant's interactions, newest last message first.
func (r queryResolver) Interactions(ctx context.Context, first *int, after *string, last *int, before *string, status *related.Status) (*graph.InteractionConnection, error) {
	v, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	p, err := store.NewPage(first, after, last, before)
	if err != nil {
		return nil, err
	}
	f := store.InteractionFilter{}
	if status != nil {
		f.Status = *status
	}
	page, err := r.Store.ListInteractions(ctx, v.Tenant, f, p)
	if err != nil {
		return nil, err
	}
	if err := chargeInteractions(ctx, page.Items); err != nil {
		return nil, err
	}
	if err := primeContacts(ctx, r.Store, l, v.Tenant, page.Items); err != nil {
		return nil, err
	}
	conn := interactionConnection(page)
	conn.Filter = &f
	return conn, nil
}
