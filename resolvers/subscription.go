package resolvers

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/live"
)

// errNoHub is a server misconfiguration: subscriptions need the live hub.
var errNoHub = errors.New("resolvers: live updates are not configured (no hub)")

type subscriptionResolver struct{ *Resolver }

// RelatedChanged streams the changes of interaction interactionID's
// Related panel. The hub resolves the panel's scope and loads each change's
// interaction; its fields resolve through per-event loaders (see
// AroundResponses).
func (r subscriptionResolver) RelatedChanged(ctx context.Context, interactionID string) (<-chan *live.Change, error) {
	v, id, err := r.subscriptionTarget(ctx, interactionID, "interactionId")
	if err != nil {
		return nil, err
	}
	return r.Hub.Related(ctx, v.Tenant, id, r.subscriptionEnd(ctx))
}

// InteractionUpdated streams interaction id as it is after each change.
func (r subscriptionResolver) InteractionUpdated(ctx context.Context, id string) (<-chan *related.Interaction, error) {
	v, sid, err := r.subscriptionTarget(ctx, id, "id")
	if err != nil {
		return nil, err
	}
	return r.Hub.Interaction(ctx, v.Tenant, sid, r.subscriptionEnd(ctx))
}

// InteractionsChanged streams the changes of the tenant's interaction
// list filtered by status (nil: every status). The hub counts it against
// the key's allowance of list subscriptions.
func (r subscriptionResolver) InteractionsChanged(ctx context.Context, status *related.Status) (<-chan *live.ListChange, error) {
	v, ok := related.ViewerFrom(ctx)
	if !ok {
		return nil, errNoViewer
	}
	if r.Hub == nil {
		return nil, errNoHub
	}
	var filter related.Status
	if status != nil {
		filter = *status
	}
	return r.Hub.List(ctx, v.Tenant, v.Principal, filter, r.subscriptionEnd(ctx))
}

// subscriptionTarget checks what a subscription needs and parses the
// interaction id it names. A malformed id, or one of another type, is
// reported like one that names nothing: NOT_FOUND.
func (r subscriptionResolver) subscriptionTarget(ctx context.Context, gid, field string) (related.Viewer, string, error) {
	v, ok := related.ViewerFrom(ctx)
	if !ok {
		return v, "", errNoViewer
	}
	if r.Hub == nil {
		return v, "", errNoHub
	}
	id, err := related.ParseTypedID(gid, related.NodeInteraction)
	if err != nil {
		return v, "", related.NotFound("no such interaction", field)
	}
	return v, id, nil
}

// subscriptionEnd returns the hook the hub calls when a subscription ends:
// an ending that is not the client's own (it fell behind, the server is
// shutting down, the store failed) reaches a WebSocket client as an error
// message for the subscription, so it knows to resubscribe and refetch.
// The error is shaped by PresentError, as every other error is: a store
// failure reaches the client as INTERNAL with the request id, never as
// the failure's own text.
func (r subscriptionResolver) subscriptionEnd(ctx context.Context) func(error) {
	return func(err error) {
		// Once the operation's context has ended, gqlgen has stopped
		// listening and may be reading the error holder already: an error
		// added now would reach nobody and race with that read.
		if err == nil || ctx.Err() != nil {
			return
		}
		addSubscriptionError(ctx, r.presentError(ctx, err))
	}
}

// presentError shapes an error the resolvers hand to a transport
// themselves, with PresentError when the server set it.
func (r *Resolver) presentError(ctx context.Context, err error) *gqlerror.Error {
	if r.PresentError != nil {
		return r.PresentError(ctx, err)
	}
	code := "INTERNAL"
	switch {
	case errors.Is(err, live.ErrTooSlow):
		code = "TOO_SLOW"
	case errors.Is(err, live.ErrClosed):
		code = "SHUTTING_DOWN"
	}
	r.Log.ErrorContext(ctx, "subscription ended", "err", err)
	return &gqlerror.Error{Message: "the subscription ended: resubscribe and refetch", Extensions: map[string]any{"code": code}}
}

// addSubscriptionError hands err, the reason a subscription ends, to its
// transport: to the holder of WithEndErrors (server-sent events, whose
// transport sends it as a last event), else to gqlgen's WebSocket
// transport. Only that transport puts its holder in the context, and
// gqlgen exports no way to ask whether it is there (AddSubscriptionError
// dereferences it), so elsewhere the call panics and is recovered.
func addSubscriptionError(ctx context.Context, err *gqlerror.Error) {
	if h, ok := ctx.Value(endErrorsKey{}).(*endErrors); ok {
		h.mu.Lock()
		h.list = append(h.list, err)
		h.mu.Unlock()
		return
	}
	defer func() { _ = recover() }()
	transport.AddSubscriptionError(ctx, err)
}

type endErrorsKey struct{}

// endErrors holds the errors a subscription ended with.
type endErrors struct {
	mu   sync.Mutex
	list gqlerror.List
}

// WithEndErrors returns a context whose subscription keeps the error it
// ends with (NOT_FOUND for an erased interaction, TOO_SLOW, ...) for a
// transport that has no message of its own for it, and the function that
// returns them once the subscription's responses are done.
func WithEndErrors(ctx context.Context) (context.Context, func() gqlerror.List) {
	h := &endErrors{}
	return context.WithValue(ctx, endErrorsKey{}, h), func() gqlerror.List {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Clone(h.list)
	}
}

// AroundResponses gives each event of a subscription its own loaders.
// AroundOperations runs once per subscription, so loaders made there would
// cache an interaction's contact for the subscription's whole life and
// serve a stale name minutes later. Queries and mutations keep the
// operation's loaders. Install it with handler.Server.AroundResponses.
func (r *Resolver) AroundResponses(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if graphql.HasOperationContext(ctx) {
		op := graphql.GetOperationContext(ctx).Operation
		if v, ok := related.ViewerFrom(ctx); ok && op != nil && op.Operation == ast.Subscription {
			ctx = WithLoaders(ctx, NewLoaders(r.Store, v.Tenant))
		}
	}
	return next(ctx)
}
