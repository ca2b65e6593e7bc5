package server

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// maxCachedQuery is the longest query text the caches keep. gqlgen keys
// its parsed-query and persisted-query caches by the whole text, so without
// a bound 1,000 entries of 1 MiB bodies could pin a gigabyte; real
// operations are a few kilobytes.
const maxCachedQuery = 16 << 10

// boundedCache is a gqlgen cache that keeps no query text longer than
// maxCachedQuery: such queries are parsed each time.
type boundedCache[T any] struct {
	graphql.Cache[T]
}

// Get implements graphql.Cache.
func (c boundedCache[T]) Get(ctx context.Context, key string) (T, bool) {
	if len(key) > maxCachedQuery {
		var zero T
		return zero, false
	}
	return c.Cache.Get(ctx, key)
}

// Add implements graphql.Cache. The persisted-query cache is keyed by a
// hash and holds the text as its value, so a long value is refused too.
func (c boundedCache[T]) Add(ctx context.Context, key string, value T) {
	if text, ok := any(value).(string); ok && len(text) > maxCachedQuery {
		return
	}
	if len(key) <= maxCachedQuery {
		c.Cache.Add(ctx, key, value)
	}
}
