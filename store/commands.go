package store

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Commands counts database commands by name: "find", "insert", "update"
// and so on for MongoDB, one per statement ("select", "insert", ...) for
// SQLite. "Database round trips" means these counts on both adapters; the
// server exports them as related_db_commands_total and tests use them to
// prove a query's cost does not grow with its page size.
type Commands struct {
	m sync.Map // string -> *atomic.Int64
}

// Add counts one command called name.
func (c *Commands) Add(name string) {
	v, ok := c.m.Load(name)
	if !ok {
		v, _ = c.m.LoadOrStore(name, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Snapshot returns the counts so far.
func (c *Commands) Snapshot() map[string]int64 {
	out := map[string]int64{}
	c.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// Total returns the number of commands counted so far.
func (c *Commands) Total() int64 {
	var n int64
	c.m.Range(func(_, v any) bool {
		n += v.(*atomic.Int64).Load()
		return true
	})
	return n
}

// Names returns the command names counted so far, sorted.
func (c *Commands) Names() []string {
	var names []string
	c.m.Range(func(k, _ any) bool {
		names = append(names, k.(string))
		return true
	})
	sort.Strings(names)
	return names
}
