package resolvers

import (
	"context"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
)

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
