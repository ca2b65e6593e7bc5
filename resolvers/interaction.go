package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/store"
)

type interactionResolver struct{ *Resolver }

// Contact loads the contacts of a list of interactions through the
// operation's loader.
func (interactionResolver) Contact(ctx context.Context, objs []*related.Interaction) ([]*related.Contact, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	// gqlgen hands over every interaction of the list at once: one loader
	// call for all of them (mostly served from the contacts the related
	// resolver primed), and no goroutine per row.
	ids := make([]string, len(objs))
	for i, o := range objs {
		ids[i] = o.ContactID
	}
	cs, errs := l.Contacts.LoadMany(ctx, ids)()
	for i, c := range cs {
		if i < len(errs) && errs[i] != nil {
			return nil, errs[i]
		}
		if c == nil {
			// A contact is never deleted while an interaction points at it.
			return nil, errDangling("contact", ids[i])
		}
	}
	return cs, nil
}

// LastMessage is each interaction's newest message: the copy the
// interaction keeps, or, when that copy holds only the start of a long
// body, the whole message, loaded for the whole list in one call.
func (interactionResolver) LastMessage(ctx context.Context, objs []*related.Interaction) ([]*related.Message, error) {
	out := make([]*related.Message, len(objs))
	var ids []string
	var at []int
	for i, o := range objs {
		out[i] = o.LastMessage
		if o.LastMessage != nil && o.LastMessage.Partial {
			ids, at = append(ids, o.LastMessage.ID), append(at, i)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	ms, errs := l.Messages.LoadMany(ctx, ids)()
	for k, m := range ms {
		if k < len(errs) && errs[k] != nil {
			return nil, errs[k]
		}
		if m != nil {
			out[at[k]] = m
		}
	}
	return out, nil
}

// Messages pages through the previous correspondence, oldest first.
func (r interactionResolver) Messages(ctx context.Context, obj *related.Interaction, first *int, after *string, last *int, before *string) (*graph.MessageConnection, error) {
	p, err := store.NewPage(first, after, last, before)
	if err != nil {
		return nil, err
	}
	// Bodies are read (and count against the operation's budget) only
	// when the page shows them: a page of ids, times or a count of a
	// thread of long messages reads no message text.
	bodies := selects(ctx, "edges", "node", "body") || selects(ctx, "edges", "node", "preview")
	page, err := loadBodies(ctx, func() (*store.MessagePage, int64, error) {
		pg, err := r.Store.ListMessages(ctx, obj.Tenant, obj.ID, p, bodies)
		if err != nil {
			return nil, 0, err
		}
		return pg, bodyBytes(pg.Items), nil
	})
	if err != nil {
		return nil, err
	}
	conn := &graph.MessageConnection{InteractionID: obj.ID, Edges: make([]*graph.MessageEdge, len(page.Items))}
	for i, m := range page.Items {
		conn.Edges[i] = &graph.MessageEdge{Cursor: store.MessageCursor(m).Encode(), Node: m}
	}
	conn.PageInfo = pageInfo(page.HasNextPage, page.HasPreviousPage, conn.Edges, func(e *graph.MessageEdge) string { return e.Cursor })
	return conn, nil
}

// Related is the Related panel. The scope rule is related.ChooseScope;
// this resolver only feeds it.
func (r interactionResolver) Related(ctx context.Context, obj *related.Interaction, first *int, after *string, last *int, before *string, scope *related.Scope) (*graph.InteractionConnection, error) {
	p, err := store.NewPage(first, after, last, before)
	if err != nil {
		return nil, err
	}
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	var requested related.Scope
	if scope != nil {
		requested = *scope
	}
	// The panel spans the profile when the contact shares one with others.
	linked, profileID := false, obj.ProfileID
	if profileID != "" && requested != related.ScopeChannel {
		p, err := loadProfile(ctx, l, profileID)
		if err != nil {
			return nil, err
		}
		if p != nil {
			linked, profileID = p.ContactCount > 1, p.ID // p.ID: a merged-away id followed
		}
	}
	used := related.ChooseScope(requested, linked)
	q := store.RelatedQuery{ContactID: obj.ContactID, Exclude: obj.ID}
	if used == related.ScopeProfile {
		q = store.RelatedQuery{ProfileID: profileID, Exclude: obj.ID}
	}
	if pr, ok := r.Store.(store.PanelReader); ok {
		// The page, its contacts and its total in one command.
		page, err := pr.RelatedPanel(ctx, obj.Tenant, q, p)
		if err != nil {
			return nil, err
		}
		if err := chargeInteractions(ctx, page.Items); err != nil {
			return nil, err
		}
		for _, c := range page.Contacts {
			l.Contacts.Prime(ctx, c.ID, c)
		}
		conn := interactionConnection(page)
		conn.Query, conn.Scope, conn.Total = &q, &used, &page.Total
		return conn, nil
	}
	page, err := r.Store.ListRelated(ctx, obj.Tenant, q, p)
	if err != nil {
		return nil, err
	}
	if err := chargeInteractions(ctx, page.Items); err != nil {
		return nil, err
	}
	if err := primeContacts(ctx, r.Store, l, obj.Tenant, page.Items); err != nil {
		return nil, err
	}
	conn := interactionConnection(page)
	conn.Query, conn.Scope = &q, &used
	return conn, nil
}

// interactionConnection turns a page of interactions into a connection.
func interactionConnection(page *store.InteractionPage) *graph.InteractionConnection {
	conn := &graph.InteractionConnection{Edges: make([]*graph.InteractionEdge, len(page.Items))}
	for i, it := range page.Items {
		conn.Edges[i] = &graph.InteractionEdge{Cursor: store.InteractionCursor(it).Encode(), Node: it}
	}
	conn.PageInfo = pageInfo(page.HasNextPage, page.HasPreviousPage, conn.Edges, func(e *graph.InteractionEdge) string { return e.Cursor })
	return conn
}

// primeContacts loads the contacts of a page's items in one store call and
// primes the loader with them, when the query selects them. The items'
// contact resolvers then find them cached: the page costs one contact
// lookup whatever its size, without waiting out the loader's batch window.
func primeContacts(ctx context.Context, s store.Store, l *Loaders, tenant string, items []*related.Interaction) error {
	if len(items) == 0 || !selects(ctx, "edges", "node", "contact") {
		return nil
	}
	seen := make(map[string]bool, len(items))
	ids := make([]string, 0, len(items))
	for _, it := range items {
		if !seen[it.ContactID] {
			seen[it.ContactID] = true
			ids = append(ids, it.ContactID)
		}
	}
	cs, err := s.Contacts(ctx, tenant, ids)
	if err != nil {
		return err
	}
	for _, c := range cs {
		l.Contacts.Prime(ctx, c.ID, c)
	}
	return nil
}

// selects reports whether the field being resolved selects the given path
// of sub-fields (through fragments too).
func selects(ctx context.Context, path ...string) bool {
	fields := graphql.CollectFieldsCtx(ctx, nil)
	for depth, name := range path {
		var next []graphql.CollectedField
		for _, f := range fields {
			if f.Name == name {
				next = append(next, f)
			}
		}
		if len(next) == 0 {
			return false
		}
		if depth == len(path)-1 {
			return true
		}
		var sub []graphql.CollectedField
		for _, f := range next {
			sub = append(sub, graphql.CollectFields(graphql.GetOperationContext(ctx), f.Selections, nil)...)
		}
		fields = sub
	}
	return false
}

// pageInfo builds a connection's PageInfo from its edges.
func pageInfo[E any](hasNext, hasPrev bool, edges []E, cursor func(E) string) *graph.PageInfo {
	pi := &graph.PageInfo{HasNextPage: hasNext, HasPreviousPage: hasPrev}
	if len(edges) > 0 {
		start, end := cursor(edges[0]), cursor(edges[len(edges)-1])
		pi.StartCursor, pi.EndCursor = &start, &end
	}
	return pi
}

type interactionConnectionResolver struct{ *Resolver }

// TotalCount counts the whole list; it costs a database command, so it runs
// only when selected.
func (r interactionConnectionResolver) TotalCount(ctx context.Context, obj *graph.InteractionConnection) (int, error) {
	v, _, err := request(ctx)
	if err != nil {
		return 0, err
	}
	if obj.Total != nil {
		return *obj.Total, nil
	}
	if obj.Filter != nil {
		return r.Store.CountInteractions(ctx, v.Tenant, *obj.Filter)
	}
	if obj.Query == nil {
		return len(obj.Edges), nil
	}
	return r.Store.CountRelated(ctx, v.Tenant, *obj.Query)
}

type messageConnectionResolver struct{ *Resolver }

// TotalCount counts the interaction's messages.
func (r messageConnectionResolver) TotalCount(ctx context.Context, obj *graph.MessageConnection) (int, error) {
	v, _, err := request(ctx)
	if err != nil {
		return 0, err
	}
	return r.Store.CountMessages(ctx, v.Tenant, obj.InteractionID)
}
