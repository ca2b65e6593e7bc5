package storetest

import (
	"context"
	"sync"

	"github.com/relatedhq/related/store"
)

// Recorder is a store.Publisher that keeps every event, for Env.Events.
type Recorder struct {
	mu     sync.Mutex
	events []store.Event
}

// Publish keeps events.
func (r *Recorder) Publish(_ context.Context, events []store.Event) {
	r.mu.Lock()
	r.events = append(r.events, events...)
	r.mu.Unlock()
}

// Events returns the events kept so far.
func (r *Recorder) Events() []store.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Event(nil), r.events...)
}
