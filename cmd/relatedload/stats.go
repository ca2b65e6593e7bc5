package main

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted, a slice
// in ascending order, by the nearest-rank method: the smallest recorded
// value such that at least p% of the values are at or below it. So p100 is
// the maximum and every percentile is a value that was actually recorded.
// It returns 0 for an empty slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// p*n first: for integer p and n the product is exact.
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Summary is a latency distribution, in milliseconds.
type Summary struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// summarize sorts ds in place and summarizes it.
func summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Summary{
		N:    len(ds),
		P50:  ms(percentile(ds, 50)),
		P90:  ms(percentile(ds, 90)),
		P99:  ms(percentile(ds, 99)),
		Max:  ms(ds[len(ds)-1]),
		Mean: ms(sum / time.Duration(len(ds))),
	}
}

// ms converts d to milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// recorder collects the outcome of every request of a phase. Every
// duration is kept (a 1,000/s run of a minute is 60,000 values), so the
// percentiles are exact.
type recorder struct {
	mu  sync.Mutex
	ops map[string]*opLog
	lag []time.Duration // start lag of every arrival: launch time - scheduled time
	// events are every request's outcome by due time (event).
	events []event
}

// opLog is what one operation's requests did.
type opLog struct {
	latency []time.Duration // successes: completion - scheduled arrival
	service []time.Duration // successes: completion - actual start
	errors  map[string]int  // failures by kind
}

func newRecorder() *recorder { return &recorder{ops: map[string]*opLog{}} }

// add records one request of op: its latency from the scheduled arrival,
// its service time from its actual start, its start lag, and kind, the
// error kind ("" for a success).
func (r *recorder) add(op string, latency, service, lag time.Duration, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.ops[op]
	if o == nil {
		o = &opLog{errors: map[string]int{}}
		r.ops[op] = o
	}
	r.lag = append(r.lag, lag)
	if kind != "" {
		o.errors[kind]++
		return
	}
	o.latency = append(o.latency, latency)
	o.service = append(o.service, service)
}

// OpStats is one operation's line of a phase's report.
type OpStats struct {
	Op string `json:"op"`
	// Count is the number of requests completed (successes and errors).
	Count  int            `json:"count"`
	Errors int            `json:"errors"`
	Kinds  map[string]int `json:"error_kinds,omitempty"`
	// Throughput is successes per second over the phase's elapsed time.
	Throughput float64 `json:"ops_per_s"`
	// Latency is measured from each request's scheduled arrival time
	// (open loop: queueing in the client and server is included).
	Latency Summary `json:"latency"`
	// Service is measured from the moment the request actually started.
	Service Summary `json:"service"`
}

// stats returns a line per operation in report order, then "all". elapsed
// is the phase's wall time.
func (r *recorder) stats(elapsed time.Duration) []OpStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []OpStats
	all := OpStats{Op: "all", Kinds: map[string]int{}}
	var allLat, allSvc []time.Duration
	names := make([]string, 0, len(r.ops))
	for name := range r.ops {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return opRank(names[i]) < opRank(names[j]) })
	for _, name := range names {
		o := r.ops[name]
		s := OpStats{Op: name, Kinds: map[string]int{}}
		for k, n := range o.errors {
			s.Errors += n
			s.Kinds[k] += n
			all.Kinds[name+": "+k] += n
		}
		s.Count = len(o.latency) + s.Errors
		s.Throughput = perSecond(len(o.latency), elapsed)
		allLat = append(allLat, o.latency...)
		allSvc = append(allSvc, o.service...)
		s.Latency = summarize(slices.Clone(o.latency))
		s.Service = summarize(slices.Clone(o.service))
		if len(s.Kinds) == 0 {
			s.Kinds = nil
		}
		all.Count += s.Count
		all.Errors += s.Errors
		out = append(out, s)
	}
	all.Throughput = perSecond(len(allLat), elapsed)
	all.Latency = summarize(allLat)
	all.Service = summarize(allSvc)
	if len(all.Kinds) == 0 {
		all.Kinds = nil
	}
	return append(out, all)
}

// lagSummary summarizes the start lag of every arrival.
func (r *recorder) lagSummary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return summarize(slices.Clone(r.lag))
}

// opRank orders operations as knownOps does, unknown ones last.
func opRank(op string) int {
	for i, k := range knownOps {
		if k == op {
			return i
		}
	}
	return len(knownOps)
}

// perSecond returns n per second of d, rounded to 0.1.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

// median returns the median of xs (the lower middle for an even count),
// leaving xs sorted; 0 for none.
func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[(len(xs)-1)/2]
}

// event is one request's outcome placed in time: its due time as an offset
// from the loop's start, for the timeline and the per-segment windows.
type event struct {
	due, latency time.Duration
	kind         string
}

// event records a request's outcome by its due time.
func (r *recorder) event(due, latency time.Duration, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{due, latency, kind})
}

// Window is what the requests due in a stretch of time did.
type Window struct {
	FromS float64 `json:"from_s"`
	ToS   float64 `json:"to_s"`
	// Count is the requests due in the window that completed, Errors
	// those that failed (by kind in Kinds).
	Count  int            `json:"count"`
	Errors int            `json:"errors"`
	Kinds  map[string]int `json:"error_kinds,omitempty"`
	// Latency is of the successes, from their due time.
	Latency Summary `json:"latency"`
	// Throughput is successes per second of the window.
	Throughput float64 `json:"ops_per_s"`
	// CPU is the server's, over the window's wall time (timeline only).
	CPUCores float64 `json:"cpu_cores,omitempty"`
}

// window summarizes the requests due in [from, to).
func (r *recorder) window(from, to time.Duration) Window {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := Window{FromS: round3(from.Seconds()), ToS: round3(to.Seconds()), Kinds: map[string]int{}}
	var lat []time.Duration
	for _, e := range r.events {
		if e.due < from || e.due >= to {
			continue
		}
		w.Count++
		if e.kind != "" {
			w.Errors++
			w.Kinds[e.kind]++
			continue
		}
		lat = append(lat, e.latency)
	}
	w.Latency = summarize(lat)
	w.Throughput = perSecond(len(lat), to-from)
	if len(w.Kinds) == 0 {
		w.Kinds = nil
	}
	return w
}

// timeline summarizes the requests due in each bin of the loop's length.
func (r *recorder) timeline(length, bin time.Duration) []Window {
	var out []Window
	for at := time.Duration(0); at < length; at += bin {
		out = append(out, r.window(at, min(at+bin, length)))
	}
	return out
}
