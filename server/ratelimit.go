package server

import (
	"context"
	"sync"
	"time"
)

// maxBuckets bounds the limiter's memory: a storm from many addresses
// cannot grow it without end.
const maxBuckets = 100_000

// limiter is a set of token buckets, one per key (an API key's id, or a
// client address). Each holds up to burst tokens and refills at rate per
// second; a request takes one. Hand-written rather than a dependency: it
// is thirty lines, and the gateway needs per-key buckets with eviction,
// which x/time/rate leaves to the caller anyway.
type limiter struct {
	rate  float64 // tokens per second; <= 0 disables the limiter
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	if burst < 1 {
		burst = 1
	}
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// allow takes a token from key's bucket. When there is none it returns
// false and how long until there will be one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l == nil || l.rate <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// wait takes a token from key's bucket, waiting for one while ctx lasts.
func (l *limiter) wait(ctx context.Context, key string) error {
	for {
		ok, d := l.allow(key)
		if ok {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// evict drops the buckets that have refilled completely: forgetting them
// changes nothing. If that frees too little, it forgets them all, which
// errs on the side of the clients.
func (l *limiter) evict(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets*9/10 {
		clear(l.buckets)
	}
}
