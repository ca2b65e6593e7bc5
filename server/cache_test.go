package server

import (
	"context"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql/handler/lru"
)

func TestBoundedCacheKeepsNoLongQueries(t *testing.T) {
	ctx := context.Background()
	parsed := boundedCache[int]{lru.New[int](10)}
	long := strings.Repeat("x", maxCachedQuery+1)
	parsed.Add(ctx, "short", 1)
	parsed.Add(ctx, long, 2)
	if _, ok := parsed.Get(ctx, long); ok {
		t.Fatal("a query longer than the bound was cached")
	}
	if v, ok := parsed.Get(ctx, "short"); !ok || v != 1 {
		t.Fatal("a short query was not cached")
	}
	persisted := boundedCache[string]{lru.New[string](10)}
	persisted.Add(ctx, "hash", long)
	if _, ok := persisted.Get(ctx, "hash"); ok {
		t.Fatal("a persisted query longer than the bound was cached")
	}
}
