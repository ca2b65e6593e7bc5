package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/operation"
	"github.com/relatedhq/related/seed"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// BenchmarkOpenInteractionSQLite is the whole server's cost of opening an
// interaction on the embedded database, in process (no network): the
// middleware, the GraphQL pipeline, the compiled plan or gqlgen's
// execution, and the two statements. It opens the interaction of the
// seeded data with the largest Related panel (20 rows on the first page).
//
//	go test ./server -run XXX -bench OpenInteractionSQLite -benchmem
func BenchmarkOpenInteractionSQLite(b *testing.B) {
	ctx := context.Background()
	cmds := new(store.Commands)
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: b.TempDir(), Commands: cmds, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := seed.Run(ctx, st, seed.Options{Customers: 30, Seed: 1, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		b.Fatal(err)
	}
	secret, k, err := store.NewKey(server.DemoTenant, related.RoleAgent, "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateKey(ctx, k); err != nil {
		b.Fatal(err)
	}
	// The interaction with the most related ones.
	page, err := st.ListInteractions(ctx, server.DemoTenant, store.InteractionFilter{}, store.Page{First: 100})
	if err != nil {
		b.Fatal(err)
	}
	best, most := "", -1
	for _, it := range page.Items {
		n, err := st.CountRelated(ctx, server.DemoTenant, store.RelatedQuery{ProfileID: it.ProfileID, Exclude: it.ID})
		if err == nil && it.ProfileID != "" && n > most {
			best, most = it.ID, n
		}
	}
	body, _ := json.Marshal(map[string]any{"query": operation.OpenInteraction, "variables": map[string]any{"id": related.GlobalID(related.NodeInteraction, best), "first": 20}})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, plans := range []bool{true, false} {
		name := "plan"
		if !plans {
			name = "gqlgen"
		}
		b.Run(name, func(b *testing.B) {
			h := server.New(server.Options{Store: st, Commands: cmds, Logger: quiet, Limits: server.Limits{RatePerSecond: -1}, NoPlans: !plans})
			b.ReportAllocs()
			var size int
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+secret)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"errors"`) {
					b.Fatalf("status %d: %s", w.Code, w.Body.String())
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/answer")
			b.ReportMetric(float64(min(most, 20)), "rows")
		})
	}
	_ = fmt.Sprint
}
