package sqlite_test

import (
	"context"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
	"github.com/relatedhq/related/store/storetest"
)

// smallTables hold a row or a few per tenant: scanning them is fine.
var smallTables = map[string]bool{"rule_evaluations": true, "profile_rules": true, "tenant_settings": true, "canonicalizations": true}

// TestEveryStatementUsesAnIndex runs the whole conformance suite while
// recording every distinct statement the adapter runs, then asks SQLite's
// planner how it runs each one: no statement may scan a table that grows
// with the data, or sort rows in a temporary b-tree (an ORDER BY its index
// does not provide). This holds every query shape to an index by
// construction: a new statement that lacks one fails here.
func TestEveryStatementUsesAnIndex(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]any{}
	var dir string
	open := func(t *testing.T) *storetest.Env {
		dir = t.TempDir()
		cmds := new(store.Commands)
		rec := new(storetest.Recorder)
		openStore := func(t *testing.T) store.Store {
			s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir, Commands: cmds, Publisher: rec, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			sqlite.Observe(s, func(q string, args []any) {
				mu.Lock()
				if _, ok := seen[q]; !ok {
					seen[q] = append([]any(nil), args...)
				}
				mu.Unlock()
			})
			return s
		}
		env := &storetest.Env{Store: openStore(t), Commands: cmds, Atomic: true, Events: rec.Events, Slow: true} // smaller randomized runs: the statements are what it checks
		env.Reopen = func(t *testing.T) store.Store {
			env.Store.Close()
			env.Store = openStore(t)
			return env.Store
		}
		t.Cleanup(func() { env.Store.Close() })
		return env
	}
	t.Run("suite", func(t *testing.T) {
		storetest.Run(t, open)
		storetest.RunProfiles(t, open)
		storetest.RunCanonical(t, open)
		storetest.RunErasure(t, open)
	})
	if t.Failed() {
		return
	}
	// Plan every statement on a database with the full schema.
	s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := sqlite.DB(s)
	scan := regexp.MustCompile(`^SCAN (\w+)`)
	tenantOnly := regexp.MustCompile(`^SEARCH (\w+) .*\(tenant=\?\)$`)
	var queries []string
	for q := range seen {
		queries = append(queries, q)
	}
	sort.Strings(queries)
	checked := 0
	for _, q := range queries {
		verb := strings.ToUpper(strings.Fields(q)[0])
		if verb == "SAVEPOINT" || verb == "RELEASE" || verb == "ROLLBACK" || verb == "PRAGMA" {
			continue
		}
		rows, err := db.Query("EXPLAIN QUERY PLAN "+q, seen[q]...)
		if err != nil {
			t.Errorf("explain %s: %v", q, err)
			continue
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		checked++
		for _, step := range plan {
			if m := scan.FindStringSubmatch(step); m != nil && !smallTables[m[1]] && !strings.Contains(step, "USING") {
				t.Errorf("statement scans table %s:\n%s\nplan: %s", m[1], q, strings.Join(plan, " | "))
			}
			// Every table is per tenant: a search on the tenant alone
			// reads the whole tenant, a scan in all but name.
			// (An ORDER BY ... LIMIT its index serves stops at the limit.)
			limited := strings.Contains(q, "ORDER BY") && strings.Contains(q, "LIMIT")
			if m := tenantOnly.FindStringSubmatch(step); m != nil && !smallTables[m[1]] && !limited && !tenantWide[strings.Join(strings.Fields(q), " ")] {
				t.Errorf("statement reads all of a tenant's %s:\n%s\nplan: %s", m[1], q, strings.Join(plan, " | "))
			}
			if strings.Contains(step, "TEMP B-TREE FOR ORDER BY") {
				t.Errorf("statement sorts in a temporary b-tree (its index does not give the ORDER BY):\n%s\nplan: %s", q, strings.Join(plan, " | "))
			}
		}
	}
	t.Logf("checked the plans of %d distinct statements", checked)
	if checked < 40 {
		t.Fatalf("only %d statements seen: the suite did not run", checked)
	}
}

// tenantWide are the statements that read a whole tenant on purpose.
// Normalized to single spaces.
var tenantWide = map[string]bool{
	// A rule change re-evaluates every contact: the count is its progress total.
	"SELECT count(*) FROM contacts WHERE tenant = ?": true,
	// Query.interactions' totalCount, only when selected; a covering index.
	"SELECT count(*) FROM interactions WHERE tenant = ?": true,
	// TenantFacts: every identity fact of a tenant, for verification.
	"SELECT id FROM contacts WHERE tenant = ? ORDER BY id": true,
}
