package resolvers

import (
	"context"
	"fmt"

	"github.com/relatedhq/related"
)

type messageResolver struct{ *Resolver }

// Interaction loads the interaction the message belongs to.
func (messageResolver) Interaction(ctx context.Context, obj *related.Message) (*related.Interaction, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	i, err := l.Interactions.Load(ctx, obj.InteractionID)()
	if err == nil && i == nil {
		err = errDangling("interaction", obj.InteractionID)
	}
	return i, err
}

// errDangling reports a reference to a document that is not there: a
// broken invariant of the store, so a server error, never the caller's.
func errDangling(what, id string) error {
	return fmt.Errorf("resolvers: %s %s is referenced but missing", what, id)
}
