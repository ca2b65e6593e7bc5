package main

import (
	"context"
	"testing"
	"time"
)

// sleeper is a job that takes d, or until its context ends.
func sleeper(d time.Duration) func() job {
	return func() job {
		return job{op: opOpen, run: func(ctx context.Context) string {
			select {
			case <-time.After(d):
				return ""
			case <-ctx.Done():
				return "timeout"
			}
		}}
	}
}

func TestOpenLoop(t *testing.T) {
	tests := []struct {
		name  string
		cfg   loopConfig
		work  time.Duration
		check func(t *testing.T, res loopResult, open OpStats)
	}{
		{
			name: "keeps the rate",
			cfg:  loopConfig{rate: 1000, duration: 100 * time.Millisecond, cap: 100, timeout: time.Second},
			work: time.Millisecond,
			check: func(t *testing.T, res loopResult, open OpStats) {
				if res.Scheduled != 100 || res.Sent != 100 || res.Unsent != 0 || open.Count != 100 || open.Errors != 0 {
					t.Fatalf("scheduled %d sent %d unsent %d count %d errors %d, want 100 100 0 100 0", res.Scheduled, res.Sent, res.Unsent, open.Count, open.Errors)
				}
			},
		},
		{
			// One slot and 5 ms of work per 1 ms arrival: requests queue, and
			// their latency (from the due time) shows it while their service
			// time does not.
			name: "queueing shows as latency",
			cfg:  loopConfig{rate: 1000, duration: 40 * time.Millisecond, cap: 1, timeout: time.Second},
			work: 5 * time.Millisecond,
			check: func(t *testing.T, res loopResult, open OpStats) {
				if res.CapWaits == 0 {
					t.Fatalf("no arrival waited for a slot")
				}
				if open.Latency.Max < 10*open.Service.P50 {
					t.Fatalf("latency max %.3f ms, service p50 %.3f ms: queueing is hidden", open.Latency.Max, open.Service.P50)
				}
			},
		},
		{
			name: "hard stop leaves arrivals unsent",
			cfg:  loopConfig{rate: 100, duration: 50 * time.Millisecond, cap: 1, timeout: 30 * time.Millisecond},
			work: time.Second,
			check: func(t *testing.T, res loopResult, open OpStats) {
				if res.Unsent == 0 || res.Sent+res.Unsent != res.Scheduled || open.Errors != res.Sent {
					t.Fatalf("scheduled %d sent %d unsent %d errors %d: want some unsent and every sent one timed out", res.Scheduled, res.Sent, res.Unsent, open.Errors)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			res := openLoop(context.Background(), tt.cfg, sleeper(tt.work), rec)
			tt.check(t, res, opLine(&Phase{Ops: rec.stats(res.Elapsed)}, opOpen))
		})
	}
}

func TestOpenLoopStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rec := newRecorder()
	start := time.Now()
	res := openLoop(ctx, loopConfig{rate: 100, duration: time.Hour, cap: 10, timeout: time.Hour}, sleeper(time.Hour), rec)
	if !res.Interrupted || time.Since(start) > 5*time.Second {
		t.Fatalf("interrupted %v after %s, want a prompt stop", res.Interrupted, time.Since(start))
	}
}
