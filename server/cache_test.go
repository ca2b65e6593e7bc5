package server

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/relatedhq/related/graph"
)

func TestSizedLRUKeepsWithinItsBytes(t *testing.T) {
	ctx := context.Background()
	c := newSizedLRU(1000, func(key string, v string) int64 { return int64(len(key) + len(v)) })
	for i := range 100 {
		c.Add(ctx, fmt.Sprint("k", i), strings.Repeat("v", 40))
		if c.bytes() > 1000 {
			t.Fatalf("after %d adds the cache holds %d bytes, over its 1000", i+1, c.bytes())
		}
	}
	if _, ok := c.Get(ctx, "k0"); ok {
		t.Fatal("the oldest entry survived")
	}
	if v, ok := c.Get(ctx, "k99"); !ok || len(v) != 40 {
		t.Fatal("the newest entry is gone")
	}
	// Recently used entries survive; an entry over an eighth is not kept.
	c.Get(ctx, "k80")
	for i := range 20 {
		c.Add(ctx, fmt.Sprint("n", i), strings.Repeat("v", 40))
	}
	if _, ok := c.Get(ctx, "k80"); !ok {
		t.Fatal("a recently read entry was evicted before older ones")
	}
	c.Add(ctx, "big", strings.Repeat("v", 200))
	if _, ok := c.Get(ctx, "big"); ok {
		t.Fatal("an entry over an eighth of the cache was kept")
	}
	if _, ok := parsedQueryCache(1 << 20).(*sizedLRU[*ast.QueryDocument]); !ok {
		t.Fatal("the parsed-query cache is not bounded by bytes")
	}
}

// denseQuery is a valid document of about n bytes: many fragments of a
// few fields each, within the field and alias limits, different for each i.
func denseQuery(i, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "query Q%d($id: ID!) { interaction(id: $id) { ", i)
	var frags strings.Builder
	for f := 0; b.Len()+frags.Len() < n; f++ {
		fmt.Fprintf(&b, "...F%d ", f)
		fmt.Fprintf(&frags, "fragment F%d on Interaction { id channel status contact { name address } queue { name } }\n", f)
	}
	b.WriteString("} }\n")
	b.WriteString(frags.String())
	return b.String()
}

// flatQuery is a valid document of about n bytes made of the shortest
// selections there are, within the limits (each field at most 199 times
// per selection set): the densest a document gets in nodes per byte.
func flatQuery(i, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "query Q%d($id: ID!) { ", i)
	for a := 0; b.Len() < n; a++ {
		fmt.Fprintf(&b, "a%d: interaction(id: $id) { %s} ", a, strings.Repeat("id ", 199))
	}
	b.WriteString("}")
	return b.String()
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestParsedQueryCost measures what parsed and validated documents keep on
// the heap, and holds the estimate the parsed-query cache is bounded by
// (text plus parsedBytesPerNode per node) to be at least that: an estimate
// below the truth would let the cache exceed its bytes.
func TestParsedQueryCost(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	const n = 50
	for _, c := range []struct {
		name string
		make func(i, n int) string
		size int
	}{{"fragments", denseQuery, 2 << 10}, {"fragments", denseQuery, 14 << 10}, {"flat", flatQuery, 8 << 10}} {
		size := c.size
		queries := make([]string, n)
		for i := range queries {
			queries[i] = c.make(i, size)
		}
		before := heapInUse()
		docs := make([]*ast.QueryDocument, n)
		for i, q := range queries {
			doc, errs := gqlparser.LoadQuery(schema, q)
			if errs != nil {
				t.Fatal(errs)
			}
			docs[i] = doc
		}
		after := heapInUse()
		var estimate, nodes int64
		for i, doc := range docs {
			nodes += docNodes(doc)
			estimate += int64(len(queries[i])) + docNodes(doc)*parsedBytesPerNode
		}
		kept := int64(after - before)
		t.Logf("%s, %d-byte documents: %.1f bytes of heap per byte of text, %.0f per node; estimated %d, kept %d",
			c.name, size, float64(kept)/float64(n*size), float64(kept)/float64(nodes), estimate, kept)
		if kept > estimate {
			t.Errorf("%d parsed documents keep %d bytes; the cache estimates them at %d", n, kept, estimate)
		}
		runtime.KeepAlive(docs)
		runtime.KeepAlive(queries)
	}
}
