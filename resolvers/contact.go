package resolvers

import (
	"context"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
)

type contactResolver struct{ *Resolver }

// ID is the contact's global id.
func (contactResolver) ID(_ context.Context, obj *related.Contact) (string, error) {
	return related.GlobalID(related.NodeContact, obj.ID), nil
}

// Name is null while the contact's name is unknown.
func (contactResolver) Name(_ context.Context, obj *related.Contact) (*string, error) {
	return ptr(obj.Name), nil
}

type queueResolver struct{ *Resolver }

// ID is the queue's global id.
func (queueResolver) ID(_ context.Context, obj *related.Queue) (string, error) {
	return related.GlobalID(related.NodeQueue, obj.ID), nil
}

type viewerResolver struct{ *Resolver }

// Preferences are the viewer's, or the defaults.
func (r viewerResolver) Preferences(ctx context.Context, _ *graph.Viewer) (*related.Preferences, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	p, err := r.Store.Preferences(ctx, v.Tenant, v.Principal)
	if err != nil {
		return nil, err
	}
	return &p, nil
}
