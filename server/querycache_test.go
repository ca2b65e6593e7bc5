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
	send(wideQuery(docs + 1))
	before := heapInUse()
	for i := range docs {
		send(wideQuery(i))
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%d distinct %d-byte documents: the heap grew %d bytes (cache bound %d)", docs, len(wideQuery(0)), grown, cacheBytes)
	if grown > cacheBytes+8<<20 {
		t.Fatalf("the heap grew %d bytes for a %d-byte cache", grown, cacheBytes)
	}
}
