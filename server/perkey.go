package server

import (
	"context"
	"sync"
)

// perKey counts what each API key holds open (subscriptions, streaming
// connections, operations in flight) against a maximum; a negative one
// means no limit. Slots are taken with acquire or wait and given back with
// the returned release.
type perKey struct {
	max int

	mu   sync.Mutex
	keys map[string]*keySlots
}

type keySlots struct {
	held    int
	waiters []chan struct{} // woken, first come first served, as slots free up
}

func newPerKey(max int) *perKey { return &perKey{max: max, keys: map[string]*keySlots{}} }

// acquire takes a slot of key, or returns false when all are held.
func (p *perKey) acquire(key string) (release func(), ok bool) {
	if p.max < 0 {
		return func() {}, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keys[key]
	if k == nil {
		k = &keySlots{}
		p.keys[key] = k
	}
	if k.held >= p.max {
		return nil, false
	}
	k.held++
	return p.releaser(key), true
}

// wait takes a slot of key, waiting for one while ctx lasts.
func (p *perKey) wait(ctx context.Context, key string) (release func(), err error) {
	for {
		if release, ok := p.acquire(key); ok {
			return release, nil
		}
		ch := make(chan struct{}, 1)
		p.mu.Lock()
		k := p.keys[key]
		if k == nil || k.held < p.max {
			p.mu.Unlock()
			continue // freed meanwhile
		}
		k.waiters = append(k.waiters, ch)
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			if k := p.keys[key]; k != nil {
				for i, w := range k.waiters {
					if w == ch {
						k.waiters = append(k.waiters[:i], k.waiters[i+1:]...)
						break
					}
				}
			}
			p.mu.Unlock()
			select {
			case <-ch: // woken as we gave up: pass the wake-up on
				p.wake(key)
			default:
			}
			return nil, ctx.Err()
		}
	}
}

// releaser returns the function that gives one slot of key back, once.
func (p *perKey) releaser(key string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			k := p.keys[key]
			k.held--
			p.mu.Unlock()
			p.wake(key)
		})
	}
}

// wake wakes one waiter of key, and forgets key when nothing holds or
// waits for it (so the map does not grow with every key ever seen).
func (p *perKey) wake(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keys[key]
	if k == nil {
		return
	}
	if len(k.waiters) > 0 {
		w := k.waiters[0]
		k.waiters = k.waiters[1:]
		w <- struct{}{}
		return
	}
	if k.held <= 0 {
		delete(p.keys, key)
	}
}

// holding reports the slots key holds, for tests.
func (p *perKey) holding(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := p.keys[key]; k != nil {
		return k.held
	}
	return 0
}

// acquireUntil takes a slot of key for as long as ctx lasts.
func (p *perKey) acquireUntil(ctx context.Context, key string) bool {
	release, ok := p.acquire(key)
	if ok {
		context.AfterFunc(ctx, release)
	}
	return ok
}
