package resolvers

import (
	"context"
	"fmt"
	"strings"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/store"
)

// Erasure: the right to be forgotten, and its tombstones.

type erasureResolver struct{ *Resolver }

// Subject is what the erasure erased.
func (erasureResolver) Subject(_ context.Context, obj *related.Erasure) (graph.ErasureSubject, error) {
	return graph.ErasureSubject(obj.Subject), nil
}

// reason checks an erasure's reason.
func reason(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", related.Invalid("must not be blank: say why (a request's reference)", "reason")
	case len(s) > related.MaxReasonLength:
		return "", related.Invalid(fmt.Sprintf("is longer than %d bytes", related.MaxReasonLength), "reason")
	}
	return s, nil
}

// EraseProfile erases every contact of a profile.
func (r mutationResolver) EraseProfile(ctx context.Context, input graph.EraseProfileInput) (*graph.ErasePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ErasePayload{ClientMutationID: input.ClientMutationID}
	id, err := inputID(input.ID, related.NodeProfile, "id")
	var why string
	if err == nil {
		why, err = reason(input.Reason)
	}
	if err == nil {
		payload.Erasure, err = r.Store.EraseProfile(ctx, v.Tenant, id, why, related.ActorFrom(ctx))
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// EraseContact erases one contact.
func (r mutationResolver) EraseContact(ctx context.Context, input graph.EraseContactInput) (*graph.ErasePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ErasePayload{ClientMutationID: input.ClientMutationID}
	id, err := r.contactInputID(ctx, v.Tenant, input.ID, "id")
	var why string
	if err == nil {
		why, err = reason(input.Reason)
	}
	if err == nil {
		payload.Erasure, err = r.Store.EraseContact(ctx, v.Tenant, id, why, related.ActorFrom(ctx))
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// Erasures pages through the tenant's tombstones.
func (r queryResolver) Erasures(ctx context.Context, first *int, after *string, last *int, before *string) (*graph.ErasureConnection, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	p, err := store.NewPage(first, after, last, before)
	if err != nil {
		return nil, err
	}
	page, err := r.Store.Erasures(ctx, v.Tenant, p)
	if err != nil {
		return nil, err
	}
	conn := &graph.ErasureConnection{Edges: make([]*graph.ErasureEdge, len(page.Items))}
	for i, e := range page.Items {
		conn.Edges[i] = &graph.ErasureEdge{Cursor: store.Cursor{At: e.At, ID: e.ID}.Encode(), Node: e}
	}
	conn.PageInfo = pageInfo(page.HasNextPage, page.HasPreviousPage, conn.Edges, func(e *graph.ErasureEdge) string { return e.Cursor })
	return conn, nil
}
