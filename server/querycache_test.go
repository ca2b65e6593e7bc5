package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// wideQuery is a valid document of about 14 KB that parses into some 1,900
// nodes: 49 aliases of an interaction with most of its fields. i makes it
// distinct.
func wideQuery(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "query Q%d($id: ID!) { ", i)
	for a := range 49 {
		fmt.Fprintf(&b, "a%d: interaction(id: $id) { id channel status createdAt closedAt closedState queue { id name } contact { id name address channel } lastMessage { id body preview sentAt direction author } profile { id name channels } } ", a)
	}
	b.WriteString("}")
	return b.String()
}

// TestParsedQueryCacheStaysWithinItsBytes sends a server many distinct
// valid 14 KB documents, the attack of issue 13 (item 8: 1,000 of them
// took the process from 66 MB to 1 GB, and it stayed there): the heap the
// server keeps afterwards grows by about its parsed-query cache's bytes,
// not by what the documents would take.
func TestParsedQueryCacheStaysWithinItsBytes(t *testing.T) {
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret, k, _ := store.NewKey("acme", related.RoleAgent, "cache", time.Now())
	if err := st.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	const cacheBytes = 4 << 20
	srv := httptest.NewServer(New(Options{Store: st, KeyCacheTTL: time.Hour, Limits: Limits{RatePerSecond: -1, QueryCacheBytes: cacheBytes}}))
	defer srv.Close()
	send := func(query string) {
		// An operation name the document does not hold: the document is
		// parsed, validated and cached, and nothing runs.
		body, _ := json.Marshal(map[string]any{"query": query, "operationName": "Nope", "variables": map[string]any{"id": "x"}})
		req, _ := http.NewRequest("POST", srv.URL+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(raw), "operation Nope not found") {
			t.Fatalf("%d %s", resp.StatusCode, raw)
		}
	}
	if n := len(wideQuery(0)); n > maxCachedQuery {
		t.Fatalf("the test's documents are %d bytes: too long to be cached at all", n)
	}
	const docs = 150
	heapGrowth(t, "wide", docs, cacheBytes, func(i int) { send(wideQuery(i)) })
	// Small documents padded to 200 KB: too long for the parsed-query
	// cache, yet the pre-check remembers each one's variables. What it
	// keeps must be copied out of the text, or each entry pins the whole
	// document (1,000 of 1 MB took one key's server to 1.3 GB).
	padded := func(i int) string {
		return fmt.Sprintf("query Q%d($id: ID!) { node(id: $id) { id } }", i) + strings.Repeat(" ", 200<<10)
	}
	heapGrowth(t, "padded", docs, precheckCacheBytes, func(i int) { send(padded(i)) })
}

// heapGrowth runs send(0..docs-1) and fails if the heap kept afterwards
// grew by more than bound and some slack.
func heapGrowth(t *testing.T, name string, docs int, bound int64, send func(i int)) {
	t.Helper()
	send(docs + 1)
	before := heapInUse()
	for i := range docs {
		send(i)
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%s: %d distinct documents: the heap grew %d bytes (cache bound %d)", name, docs, grown, bound)
	if grown > bound+8<<20 {
		t.Fatalf("%s: the heap grew %d bytes for a %d-byte cache", name, grown, bound)
	}
}
