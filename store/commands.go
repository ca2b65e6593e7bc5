package store

import (
	"context"
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
	m   sync.Map // string -> *atomic.Int64
	obs atomic.Pointer[CommandObserver]
}

// CommandObserver is told of each command as it starts, with the context
// of the request that sends it; the func it returns is called when the
// command ends, with its error. The server hooks its duration histogram
// and tracing spans in here.
type CommandObserver func(ctx context.Context, name string) (end func(error))

// Observe sets the observer of the commands counted from now on.
func (c *Commands) Observe(o CommandObserver) { c.obs.Store(&o) }

// Observed reports whether an observer is set.
func (c *Commands) Observed() bool { return c.obs.Load() != nil }

// Start counts one command called name and returns the func to call when
// it ends. Without an observer it costs what Add costs: the func returned
// is a static no-op.
func (c *Commands) Start(ctx context.Context, name string) (end func(error)) {
	c.Add(name)
	if o := c.obs.Load(); o != nil {
		return (*o)(ctx, name)
	}
	return endNothing
}

func endNothing(error) {}

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
