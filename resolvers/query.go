package resolvers

import (
	"context"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
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

// Node resolves any global id. Ids that are malformed, of another tenant or
// of nothing all resolve to null alike.
func (r queryResolver) Node(ctx context.Context, id string) (related.Node, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	t, sid, err := related.ParseGlobalID(id)
	if err != nil {
		return nil, nil
	}
	switch t {
	case related.NodeInteraction:
		return nilNode(l.Interactions.Load(ctx, sid)())
	case related.NodeMessage:
		return nilNode(l.Messages.Load(ctx, sid)())
	case related.NodeContact:
		return nilNode(l.Contacts.Load(ctx, sid)())
	case related.NodeQueue:
		return nilNode(l.Queues.Load(ctx, sid)())
	case related.NodeProfile:
		// As Query.profile does: a merged-away profile's id resolves to
		// the profile it was merged into.
		return nilNode(loadProfile(ctx, l, sid))
	case related.NodeProfileRule:
		v, _, _ := request(ctx)
		rules, err := r.Store.ProfileRules(ctx, v.Tenant)
		if err != nil {
			return nil, err
		}
		for i := range rules {
			if rules[i].ID == sid {
				return &rules[i], nil
			}
		}
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
