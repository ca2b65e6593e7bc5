package server

import (
	"container/list"
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// maxCachedQuery is the longest query text the caches keep. Longer
// queries (real operations are a few kilobytes) are parsed each time: one
// of them would otherwise take a large share of a cache's bytes.
const maxCachedQuery = 16 << 10

// parsedBytesPerNode is how many bytes of heap a parsed and validated
// document keeps per node (a field, fragment spread, argument, value,
// directive or variable): the node, its position, and what validation
// adds (definitions, expected types). Measured (TestParsedQueryCost) at
// 220 to 240 with the document's text; 300 keeps the estimate an upper
// bound.
const parsedBytesPerNode = 300

// docNodes counts the nodes of a parsed document, the measure of its heap.
func docNodes(doc *ast.QueryDocument) int64 {
	var n int64
	var values func(v *ast.Value)
	values = func(v *ast.Value) {
		if v == nil {
			return
		}
		n++
		for _, c := range v.Children {
			values(c.Value)
		}
	}
	directives := func(ds ast.DirectiveList) {
		for _, d := range ds {
			n++
			for _, a := range d.Arguments {
				n++
				values(a.Value)
			}
		}
	}
	var set func(ss ast.SelectionSet)
	set = func(ss ast.SelectionSet) {
		for _, sel := range ss {
			n++
			switch s := sel.(type) {
			case *ast.Field:
				for _, a := range s.Arguments {
					n++
					values(a.Value)
				}
				directives(s.Directives)
				set(s.SelectionSet)
			case *ast.InlineFragment:
				directives(s.Directives)
				set(s.SelectionSet)
			case *ast.FragmentSpread:
				directives(s.Directives)
			}
		}
	}
	for _, op := range doc.Operations {
		n++
		for _, v := range op.VariableDefinitions {
			n++
			values(v.DefaultValue)
		}
		directives(op.Directives)
		set(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		n++
		directives(f.Directives)
		set(f.SelectionSet)
	}
	return n
}

// sizedLRU is a least-recently-used cache bounded by the bytes its entries
// keep, not by their count: a count bound lets a thousand large entries pin
// a gigabyte (issue 13: 1,000 distinct 14 KB queries took the parsed-query
// cache to 1 GB). It implements gqlgen's graphql.Cache.
type sizedLRU[T any] struct {
	max  int64
	size func(key string, v T) int64

	mu    sync.Mutex
	used  int64
	order *list.List // front: most recently used
	items map[string]*list.Element
}

type sizedEntry[T any] struct {
	key  string
	val  T
	cost int64
}

var _ graphql.Cache[int] = (*sizedLRU[int])(nil)

// newSizedLRU returns a cache of at most max bytes, with size estimating
// the bytes an entry keeps (its key included).
func newSizedLRU[T any](max int64, size func(key string, v T) int64) *sizedLRU[T] {
	return &sizedLRU[T]{max: max, size: size, order: list.New(), items: map[string]*list.Element{}}
}

// Get implements graphql.Cache.
func (c *sizedLRU[T]) Get(_ context.Context, key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*sizedEntry[T]).val, true
	}
	var zero T
	return zero, false
}

// Add implements graphql.Cache. An entry larger than an eighth of the
// cache is not kept: it would evict many small ones for one.
func (c *sizedLRU[T]) Add(_ context.Context, key string, v T) {
	cost := c.size(key, v)
	if cost > c.max/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		old := e.Value.(*sizedEntry[T])
		c.used += cost - old.cost
		old.val, old.cost = v, cost
		c.order.MoveToFront(e)
	} else {
		c.items[key] = c.order.PushFront(&sizedEntry[T]{key: key, val: v, cost: cost})
		c.used += cost
	}
	for c.used > c.max {
		last := c.order.Back()
		old := last.Value.(*sizedEntry[T])
		c.order.Remove(last)
		delete(c.items, old.key)
		c.used -= old.cost
	}
}

// bytes is what the cache's entries keep, by its estimate.
func (c *sizedLRU[T]) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// entryOverhead is a cache entry's own bytes: the list element, the map
// slot and the entry struct.
const entryOverhead = 160

// parsedQueryCache caches parsed documents by query text, within max bytes.
func parsedQueryCache(max int64) graphql.Cache[*ast.QueryDocument] {
	return newSizedLRU(max, func(key string, doc *ast.QueryDocument) int64 {
		if len(key) > maxCachedQuery {
			return max // never kept
		}
		// The document keeps its text (the key: Source.Input is the same
		// string) and its nodes.
		return int64(len(key)) + docNodes(doc)*parsedBytesPerNode + entryOverhead
	})
}

// persistedQueryCache caches automatic persisted queries (sha256 -> text)
// within max bytes.
func persistedQueryCache(max int64) graphql.Cache[string] {
	return newSizedLRU(max, func(key string, text string) int64 {
		if len(text) > maxCachedQuery {
			return max
		}
		return int64(len(key)+len(text)) + entryOverhead
	})
}

// persistedCacheBytes bounds the automatic persisted queries' cache.
const persistedCacheBytes = 8 << 20
