package server

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Admission control: the server runs at most Concurrency GraphQL requests
// at once; Queue more may wait, each at most QueueWait, for one of them to
// finish; the rest are refused at once with 503 UNAVAILABLE and
// Retry-After. A server offered more than it can serve then serves what it
// can at the latency it can, and refuses the rest cheaply, instead of
// taking everything in and serving everyone late: without a bound, work
// in flight grows with the overload, each request takes longer, clients
// time out and retry, and the server stays behind after the overload has
// passed (a metastable failure rather than a slowdown).
//
// It applies to the plain requests of GraphQL over HTTP (GET and POST,
// batches counted once): the work that answers and is done. Subscriptions
// over WebSocket and server-sent events live for minutes and have their
// own per-key bounds.

// Admission configures admission control (Options.Admission).
type Admission struct {
	// Concurrency is how many GraphQL requests run at once: 0 means
	// DefaultConcurrency, a negative value no limit (and no queue).
	Concurrency int
	// Queue is how many requests may wait for a slot beyond Concurrency:
	// 0 means DefaultQueue, a negative value none.
	Queue int
	// QueueWait is the longest a request waits for a slot before it is
	// refused: 0 means DefaultQueueWait.
	QueueWait time.Duration
}

// The defaults, measured on a 2-core machine (BENCHMARKS.md): a request of
// the hot path is a fraction of a millisecond of CPU and waits for nothing
// but the CPU (the embedded database reads from memory), so a few per core
// keep every core busy; more in flight only share the cores and add
// latency. The queue absorbs bursts of a few milliseconds of work.
var (
	// DefaultConcurrency is 2 per core the Go runtime uses (GOMAXPROCS).
	DefaultConcurrency = func() int { return 2 * runtime.GOMAXPROCS(0) }
	// DefaultQueue is 8 per core.
	DefaultQueue = func() int { return 8 * runtime.GOMAXPROCS(0) }
)

// DefaultQueueWait bounds the wait of a queued request: an overloaded
// server answers within it, admitted or refused.
const DefaultQueueWait = 20 * time.Millisecond

// retryAfterOverload is the Retry-After of a refusal, in seconds: the
// smallest the header can say, since the overload it reports is often a
// burst.
const retryAfterOverload = 1

// withDefaults fills in the zero fields.
func (a Admission) withDefaults() Admission {
	if a.Concurrency == 0 {
		a.Concurrency = DefaultConcurrency()
	}
	if a.Queue == 0 {
		a.Queue = DefaultQueue()
	}
	if a.QueueWait <= 0 {
		a.QueueWait = DefaultQueueWait
	}
	if a.Queue < 0 {
		a.Queue = 0
	}
	return a
}

// admission is the server's admission control.
type admission struct {
	cfg     Admission
	slots   chan struct{} // a token per request running; nil: no limit
	waiting atomic.Int64  // requests in the queue

	admitted, queued, refused prometheus.Counter
}

func newAdmission(cfg Admission, reg *prometheus.Registry) *admission {
	a := &admission{cfg: cfg.withDefaults()}
	if a.cfg.Concurrency > 0 {
		a.slots = make(chan struct{}, a.cfg.Concurrency)
	}
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "related_admission_requests_total",
		Help: "GraphQL requests by admission outcome: admitted at once, admitted after waiting in the queue, or refused (503 UNAVAILABLE).",
	}, []string{"outcome"})
	a.admitted, a.queued, a.refused = outcomes.WithLabelValues("admitted"), outcomes.WithLabelValues("queued"), outcomes.WithLabelValues("refused")
	reg.MustRegister(outcomes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "related_admission_in_flight", Help: "GraphQL requests running (admitted)."},
			func() float64 { return float64(len(a.slots)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "related_admission_queued", Help: "GraphQL requests waiting for a slot."},
			func() float64 { return float64(a.waiting.Load()) }),
	)
	return a
}

// acquire takes a slot for a request: at once when one is free, else
// after waiting in the queue (when it has room) until one frees up, for at
// most QueueWait or until ctx ends. ok is false when the request is
// refused; otherwise release gives the slot back.
func (a *admission) acquire(ctx context.Context) (release func(), ok bool) {
	if a.slots == nil {
		return func() {}, true
	}
	select {
	case a.slots <- struct{}{}:
		a.admitted.Inc()
		return a.release, true
	default:
	}
	// The queue's bound is kept by counting: a request that finds it full
	// is refused without waiting.
	if a.waiting.Add(1) > int64(a.cfg.Queue) {
		a.waiting.Add(-1)
		a.refused.Inc()
		return nil, false
	}
	defer a.waiting.Add(-1)
	t := time.NewTimer(a.cfg.QueueWait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		a.queued.Inc()
		return a.release, true
	case <-t.C:
	case <-ctx.Done():
	}
	a.refused.Inc()
	return nil, false
}

func (a *admission) release() { <-a.slots }

// admit runs admission control for one request: false when it was
// refused, with the refusal written (503 UNAVAILABLE, Retry-After).
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release, ok = s.admission.acquire(r.Context())
	if ok {
		return release, true
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterOverload))
	// The same UNAVAILABLE (503, Retry-After) as a database that cannot
	// answer: clients handle both alike, by retrying later.
	writeError(w, r, http.StatusServiceUnavailable, CodeUnavailable,
		"the server is at capacity: retry after the delay in the Retry-After header")
	return nil, false
}
