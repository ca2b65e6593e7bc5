package resolvers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/relatedhq/related"
)

// ErrTooLarge ends a response that would exceed its byte budget.
var ErrTooLarge = errors.New("the response would be larger than this server allows: ask for fewer items (first/last), fewer fields, or shorter pages of messages")

// Budget bounds what producing one response (one subscription event's)
// may cost in bytes: the bytes the response holds, counted by the server
// as each field resolves (Wrote), and the message bodies the resolvers
// read from the store to produce it (loadBodies). Message bodies are the
// only values that are large (up to related.MaxBodyLength each, a page of
// 100 of them is 25 MiB), so reading them is serialized per response and
// stops once the budget is spent: however many aliases ask for pages of
// long messages, the response reads at most MaxLoaded bytes of bodies and
// one page more.
//
// The zero value is not usable: make one with NewBudget and put it in the
// context with WithBudget.
type Budget struct {
	maxWritten, maxLoaded int64

	written  atomic.Int64
	loaded   atomic.Int64
	exceeded atomic.Bool

	gate chan struct{} // held while bodies are read

	// start, when set, runs once before the first field is resolved, with
	// that field's context: where the server waits for a slot of the
	// key's operations in flight for a subscription event, which must not
	// hold one while it waits for the event itself.
	start     func(context.Context) error
	startOnce sync.Once
	startErr  error
}

// NewBudget returns a budget of maxWritten response bytes and maxLoaded
// bytes of message bodies read.
func NewBudget(maxWritten, maxLoaded int64) *Budget {
	return &Budget{maxWritten: maxWritten, maxLoaded: maxLoaded, gate: make(chan struct{}, 1)}
}

// OnStart sets a function that runs once, before the first field of the
// response resolves; an error from it fails every field.
func (b *Budget) OnStart(fn func(context.Context) error) { b.start = fn }

// Start runs the start function once.
func (b *Budget) Start(ctx context.Context) error {
	if b.start == nil {
		return nil
	}
	b.startOnce.Do(func() { b.startErr = b.start(ctx) })
	return b.startErr
}

// Wrote counts n bytes of response and reports whether the response is
// still within its budget.
func (b *Budget) Wrote(n int64) bool {
	if b.written.Add(n) > b.maxWritten {
		b.exceeded.Store(true)
	}
	return !b.exceeded.Load()
}

// Exceeded reports whether the response went over its budget: its data is
// then dropped for an error.
func (b *Budget) Exceeded() bool { return b.exceeded.Load() }

// Written and Loaded are the bytes counted so far.
func (b *Budget) Written() int64 { return b.written.Load() }

// Loaded is the bytes of message bodies read so far.
func (b *Budget) Loaded() int64 { return b.loaded.Load() }

type budgetKey struct{}

// WithBudget returns ctx carrying b.
func WithBudget(ctx context.Context, b *Budget) context.Context {
	return context.WithValue(ctx, budgetKey{}, b)
}

// BudgetFrom returns the budget of ctx's response, nil when there is none.
func BudgetFrom(ctx context.Context) *Budget {
	b, _ := ctx.Value(budgetKey{}).(*Budget)
	return b
}

// loadBodies runs load, which reads message bodies and returns how many
// bytes they hold, within ctx's budget: one at a time per response, not
// at all once the budget is spent, and failing with ErrTooLarge when this
// read spent it.
func loadBodies[T any](ctx context.Context, load func() (T, int64, error)) (T, error) {
	var zero T
	b := BudgetFrom(ctx)
	if b == nil {
		v, _, err := load()
		return v, err
	}
	select {
	case b.gate <- struct{}{}:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	defer func() { <-b.gate }()
	if b.exceeded.Load() || b.loaded.Load() > b.maxLoaded {
		return zero, ErrTooLarge
	}
	v, n, err := load()
	if err != nil {
		return zero, err
	}
	if b.loaded.Add(n) > b.maxLoaded {
		b.exceeded.Store(true)
		return zero, ErrTooLarge
	}
	return v, nil
}

// chargeInteractions counts the kept copies of the interactions' last
// messages (at most related.InlineBodyLength each) against ctx's budget of
// bytes read. They are small, so they are read without waiting their turn;
// counting them keeps many pages of them bounded too.
func chargeInteractions(ctx context.Context, its []*related.Interaction) error {
	b := BudgetFrom(ctx)
	if b == nil {
		return nil
	}
	var n int64
	for _, it := range its {
		if it != nil && it.LastMessage != nil {
			n += int64(len(it.LastMessage.Body))
		}
	}
	if b.loaded.Add(n) > b.maxLoaded {
		b.exceeded.Store(true)
		return ErrTooLarge
	}
	return nil
}

// bodyBytes is the bytes of the messages' bodies.
func bodyBytes(ms []*related.Message) int64 {
	var n int64
	for _, m := range ms {
		if m != nil {
			n += int64(len(m.Body))
		}
	}
	return n
}
