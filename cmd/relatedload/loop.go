package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// job is one arrival's work. run returns the error kind of the request,
// "" for a success; it must honour ctx, which carries the per-request
// timeout.
type job struct {
	op  string
	run func(ctx context.Context) string
}

// loopConfig is how an open-loop phase schedules its arrivals.
type loopConfig struct {
	rate     float64       // arrivals per second
	duration time.Duration // arrivals are scheduled over [0, duration)
	// segments, when set, replace rate and duration: arrivals at each
	// segment's rate for its duration, one after the other, with no pause
	// between them (an overload followed by a recovery: -phases).
	segments []segment
	cap      int           // most requests in flight at once
	timeout  time.Duration // per request
	progress io.Writer     // a progress line every 5 s (nil: none)
}

// loopResult is what the scheduler itself observed.
type loopResult struct {
	Scheduled int `json:"scheduled"`
	Sent      int `json:"sent"`
	// Unsent arrivals were scheduled but never started: the phase hit its
	// hard stop (duration + timeout) while waiting for a free slot.
	Unsent int `json:"unsent"`
	// CapWaits counts arrivals that found cap requests in flight and had
	// to wait for one to finish (their wait is in their latency).
	CapWaits    int           `json:"cap_waits"`
	Elapsed     time.Duration `json:"-"`
	ElapsedS    float64       `json:"elapsed_s"`
	Interrupted bool          `json:"interrupted,omitempty"`
}

// openLoop runs an open-loop phase: arrival i is due at start + i/rate,
// whether or not earlier requests have finished, and each runs in its own
// goroutine. A request's latency is measured from its due time, not from
// when it happened to start, so a server (or client) that falls behind
// shows as latency instead of silently lowering the offered rate
// (coordinated omission). next builds each arrival's job; it is called
// from the scheduling goroutine only, in order.
//
// At most cfg.cap requests are in flight: an arrival that finds them all
// busy waits for a slot, and its wait counts in its latency. The phase
// stops scheduling at duration + timeout at the latest and then waits for
// the requests in flight, each bounded by timeout.
func openLoop(ctx context.Context, cfg loopConfig, next func() job, rec *recorder) loopResult {
	segs := cfg.segments
	if len(segs) == 0 {
		segs = []segment{{Rate: cfg.rate, Duration: cfg.duration}}
	}
	dues, total := schedule(segs)
	n := len(dues)
	res := loopResult{Scheduled: n}
	sem := make(chan struct{}, cfg.cap)
	var wg sync.WaitGroup
	var done, failed atomic.Int64
	start := time.Now()
	hardStop := time.NewTimer(total + cfg.timeout)
	defer hardStop.Stop()
	wait := time.NewTimer(0)
	defer wait.Stop()
	<-wait.C

	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if cfg.progress != nil {
		progressDone.Add(1)
		go func() {
			defer progressDone.Done()
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					d := done.Load()
					fmt.Fprintf(cfg.progress, "  t=%4.0fs  done %d of %d  errors %d\n", time.Since(start).Seconds(), d, n, failed.Load())
				}
			}
		}()
	}

schedule:
	for i := 0; i < n; i++ {
		offset := dues[i]
		due := start.Add(offset)
		if d := time.Until(due); d > 0 {
			wait.Reset(d)
			select {
			case <-wait.C:
			case <-ctx.Done():
				res.Interrupted = true
				break schedule
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			res.CapWaits++
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				res.Interrupted = true
				break schedule
			case <-hardStop.C:
				break schedule
			}
		}
		j := next()
		res.Sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			begin := time.Now()
			rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
			kind := j.run(rctx)
			cancel()
			end := time.Now()
			rec.add(j.op, end.Sub(due), end.Sub(begin), begin.Sub(due), kind)
			rec.event(offset, end.Sub(due), kind)
			done.Add(1)
			if kind != "" {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	progressDone.Wait()
	res.Elapsed = time.Since(start)
	res.ElapsedS = math.Round(res.Elapsed.Seconds()*1000) / 1000
	res.Unsent = n - res.Sent
	if ctx.Err() != nil {
		res.Interrupted = true
	}
	return res
}

// segment is a stretch of an open loop at one arrival rate.
type segment struct {
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"-"`
	// DurationS is Duration for the JSON report.
	DurationS float64 `json:"duration_s"`
}

// schedule returns every arrival's due time as an offset from the loop's
// start, and the loop's whole length.
func schedule(segs []segment) ([]time.Duration, time.Duration) {
	var dues []time.Duration
	var at time.Duration
	for _, s := range segs {
		n := int(math.Ceil(s.Rate * s.Duration.Seconds()))
		for i := range n {
			dues = append(dues, at+time.Duration(float64(i)*float64(time.Second)/s.Rate))
		}
		at += s.Duration
	}
	return dues, at
}
