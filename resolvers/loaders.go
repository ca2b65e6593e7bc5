package resolvers

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// loaderWait is how long a loader gathers keys before it queries. GraphQL
// resolves the items of a list concurrently, so their keys arrive within
// microseconds of each other; the panel's hot path does not wait at all,
// since the related resolver primes the contacts it is about to need.
const loaderWait = 200 * time.Microsecond

// maxBatch bounds the ids of one store call.
const maxBatch = 500

// Loaders batch and cache the lookups of one operation by id. They are made
// per operation, for one tenant, so nothing cached crosses operations or
// tenants.
type Loaders struct {
	Interactions *dataloader.Loader[string, *related.Interaction]
	Messages     *dataloader.Loader[string, *related.Message]
	Contacts     *dataloader.Loader[string, *related.Contact]
	Queues       *dataloader.Loader[string, *related.Queue]
	Profiles     *dataloader.Loader[string, *related.Profile]
	// ProfileContacts loads the contacts of profiles, by profile id.
	ProfileContacts *dataloader.Loader[string, []*related.Contact]
}

// identified is what the store's documents have in common for loaders.
type identified interface {
	*related.Interaction | *related.Message | *related.Contact | *related.Queue | *related.Profile
}

func idOf[V identified](v V) string {
	switch x := any(v).(type) {
	case *related.Interaction:
		return x.ID
	case *related.Message:
		return x.ID
	case *related.Contact:
		return x.ID
	case *related.Queue:
		return x.ID
	case *related.Profile:
		return x.ID
	}
	return ""
}

// batch adapts a store batch getter to a dataloader batch function: results
// in key order, nil for ids that name nothing.
func batch[V identified](tenant string, get func(context.Context, string, []string) ([]V, error)) dataloader.BatchFunc[string, V] {
	return func(ctx context.Context, keys []string) []*dataloader.Result[V] {
		out := make([]*dataloader.Result[V], len(keys))
		found, err := get(ctx, tenant, keys)
		byID := make(map[string]V, len(found))
		for _, v := range found {
			byID[idOf(v)] = v
		}
		for i, k := range keys {
			out[i] = &dataloader.Result[V]{Data: byID[k], Error: err}
		}
		return out
	}
}

func newLoader[V identified](tenant string, get func(context.Context, string, []string) ([]V, error)) *dataloader.Loader[string, V] {
	return dataloader.NewBatchedLoader(batch(tenant, get),
		dataloader.WithWait[string, V](loaderWait),
		dataloader.WithBatchCapacity[string, V](maxBatch))
}

// NewLoaders returns a fresh set of loaders over s for tenant.
func NewLoaders(s store.Store, tenant string) *Loaders {
	l := &Loaders{
		Interactions: newLoader(tenant, s.Interactions),
		Messages: newLoader(tenant, func(ctx context.Context, tenant string, ids []string) ([]*related.Message, error) {
			// Whole bodies, up to 256 KiB each: read within the budget.
			return loadBodies(ctx, func() ([]*related.Message, int64, error) {
				ms, err := s.Messages(ctx, tenant, ids)
				return ms, bodyBytes(ms), err
			})
		}),
		Contacts: newLoader(tenant, s.Contacts),
		Queues:   newLoader(tenant, s.Queues),
		Profiles: newLoader(tenant, s.Profiles),
		ProfileContacts: dataloader.NewBatchedLoader(func(ctx context.Context, keys []string) []*dataloader.Result[[]*related.Contact] {
			cs, err := s.ProfileContacts(ctx, tenant, keys)
			byProfile := map[string][]*related.Contact{}
			for _, c := range cs {
				byProfile[c.ProfileID] = append(byProfile[c.ProfileID], c)
			}
			out := make([]*dataloader.Result[[]*related.Contact], len(keys))
			for i, k := range keys {
				out[i] = &dataloader.Result[[]*related.Contact]{Data: byProfile[k], Error: err}
			}
			return out
		}, dataloader.WithWait[string, []*related.Contact](loaderWait), dataloader.WithBatchCapacity[string, []*related.Contact](maxBatch)),
	}
	if pr, ok := s.(store.PanelReader); ok {
		// Interactions come with their contacts and profiles in one
		// command, which prime the other loaders: opening an interaction
		// then costs no separate contact or profile lookup.
		l.Interactions = newLoader(tenant, func(ctx context.Context, tenant string, ids []string) ([]*related.Interaction, error) {
			views, err := pr.InteractionViews(ctx, tenant, ids)
			out := make([]*related.Interaction, len(views))
			for i, v := range views {
				out[i] = v.Interaction
				l.Contacts.Prime(ctx, v.Contact.ID, v.Contact)
				if v.Profile != nil {
					l.Profiles.Prime(ctx, v.Profile.ID, v.Profile)
				}
			}
			return out, err
		})
	}
	return l
}

type loadersKey struct{}

// WithLoaders returns ctx carrying l.
func WithLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, l)
}

// lazyLoaders are an operation's loaders, made when a resolver first
// needs them: an operation a compiled plan answers (plan.go) needs none,
// and making six loaders is a good part of its allocations.
type lazyLoaders struct {
	once   sync.Once
	store  store.Store
	tenant string
	l      *Loaders
}

func (z *lazyLoaders) get() *Loaders {
	z.once.Do(func() { z.l = NewLoaders(z.store, z.tenant) })
	return z.l
}

// AroundOperations gives every GraphQL operation its own loaders, for the
// tenant of the viewer the request acts for. Install it with
// handler.Server.AroundOperations.
func (r *Resolver) AroundOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if v, ok := related.ViewerFrom(ctx); ok {
		ctx = context.WithValue(ctx, loadersKey{}, &lazyLoaders{store: r.Store, tenant: v.Tenant})
	}
	return next(ctx)
}

// errNoViewer is a server misconfiguration: the HTTP layer must put a
// viewer in every request's context before GraphQL runs.
var errNoViewer = errors.New("resolvers: no viewer in context")

// request returns the viewer and loaders of the operation ctx belongs to.
func request(ctx context.Context) (related.Viewer, *Loaders, error) {
	v, ok := related.ViewerFrom(ctx)
	var l *Loaders
	switch x := ctx.Value(loadersKey{}).(type) {
	case *Loaders:
		l = x
	case *lazyLoaders:
		l = x.get()
	}
	if !ok || l == nil {
		return related.Viewer{}, nil, errNoViewer
	}
	return v, l, nil
}
