package resolvers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/operation"
	"github.com/relatedhq/related/resolvers"
	"github.com/relatedhq/related/store"
)

// panelStore answers the panel's reads from memory, so the benchmark
// measures what the gateway itself spends (GraphQL parsing, validation,
// execution, resolvers, loaders, JSON) and means the same on any
// database. Methods the panel does not call are left to the embedded nil
// interface: calling one panics, which would show the panel's path changed.
type panelStore struct {
	store.Store
	views map[string]*store.InteractionView
	page  *store.InteractionPage
}

func (s *panelStore) InteractionViews(_ context.Context, _ string, ids []string) ([]*store.InteractionView, error) {
	out := make([]*store.InteractionView, 0, len(ids))
	for _, id := range ids {
		if v, ok := s.views[id]; ok {
			out = append(out, v)
		}
	}
	return out, nil
}

func (s *panelStore) RelatedPanel(_ context.Context, _ string, _ store.RelatedQuery, p store.Page) (*store.InteractionPage, error) {
	n := min(p.Limit(), len(s.page.Items))
	return &store.InteractionPage{Items: s.page.Items[:n], Contacts: s.page.Contacts[:n], Total: len(s.page.Items), HasNextPage: n < len(s.page.Items)}, nil
}

func (s *panelStore) Interactions(context.Context, string, []string) ([]*related.Interaction, error) {
	return nil, nil
}

func (s *panelStore) Contacts(context.Context, string, []string) ([]*related.Contact, error) {
	return nil, nil
}

func (s *panelStore) Profiles(context.Context, string, []string) ([]*related.Profile, error) {
	return nil, nil
}

func newPanelStore(items int) *panelStore {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	profile := &related.Profile{ID: "p1", Tenant: "demo", Name: "ann@example.com", AutoName: "ann@example.com",
		Channels: related.Channels, ContactCount: 8}
	mk := func(i int) (*related.Interaction, *related.Contact) {
		ch := related.Channels[i%len(related.Channels)]
		c := &related.Contact{ID: fmt.Sprintf("c%d", i%8), Tenant: "demo", Channel: ch, Address: fmt.Sprintf("addr-%d", i%8), Name: "Ann Example", ProfileID: "p1"}
		it := &related.Interaction{ID: fmt.Sprintf("i%03d", i), Tenant: "demo", Channel: ch, ContactID: c.ID, ProfileID: "p1",
			QueueID: "q1", QueueName: "Billing", Status: related.StatusClosed, ClosedState: related.ClosedStateClosed, ClosedAt: at,
			CreatedAt: at, UpdatedAt: at,
			LastMessage: &related.Message{ID: fmt.Sprintf("m%d", i), Direction: related.Inbound, SentAt: at.Add(-time.Duration(i) * time.Minute),
				Body: strings.Repeat("Hello, my order has not arrived yet. ", 4)}}
		return it, c
	}
	self, selfContact := mk(1000)
	s := &panelStore{views: map[string]*store.InteractionView{self.ID: {Interaction: self, Contact: selfContact, Profile: profile}}, page: &store.InteractionPage{}}
	for i := range items {
		it, c := mk(i)
		s.page.Items = append(s.page.Items, it)
		s.page.Contacts = append(s.page.Contacts, c)
	}
	return s
}

// BenchmarkOpenInteraction is the gateway's CPU and allocation cost of
// the panel query, database time excluded, by page size.
func BenchmarkOpenInteraction(b *testing.B) {
	for _, n := range []int{1, 20, 100} {
		b.Run(fmt.Sprint("first=", n), func(b *testing.B) {
			res := resolvers.New(newPanelStore(n), nil)
			srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: res}))
			srv.AddTransport(transport.POST{})
			srv.SetQueryCache(lru.New[*ast.QueryDocument](100)) // as the server does
			srv.AroundOperations(res.AroundOperations)
			body := fmt.Sprintf(`{"query":%q,"variables":{"id":%q,"first":%d}}`, operation.OpenInteraction, related.GlobalID(related.NodeInteraction, "i1000"), n)
			ctx := related.WithViewer(context.Background(), related.Viewer{Tenant: "demo", Role: related.RoleAgent, Principal: "k"})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/graphql", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"errors"`) {
					b.Fatalf("status %d: %s", w.Code, w.Body.String())
				}
			}
		})
	}
}
