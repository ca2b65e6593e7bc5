package main

import (
	"testing"
	"time"
)

// seq returns 1..n milliseconds.
func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value p50", seq(1), 50, time.Millisecond},
		{"one value p99", seq(1), 99, time.Millisecond},
		{"ten p50", seq(10), 50, 5 * time.Millisecond},
		{"ten p90", seq(10), 90, 9 * time.Millisecond},
		{"ten p99", seq(10), 99, 10 * time.Millisecond},
		{"ten p100", seq(10), 100, 10 * time.Millisecond},
		{"ten p1", seq(10), 1, time.Millisecond},
		{"hundred p99", seq(100), 99, 99 * time.Millisecond},
		{"hundred p50", seq(100), 50, 50 * time.Millisecond},
		{"thousand p99", seq(1000), 99, 990 * time.Millisecond},
		{"thousand p99.9", seq(1000), 99.9, 999 * time.Millisecond},
		{"three p50", seq(3), 50, 2 * time.Millisecond},
		{"two p50", seq(2), 50, time.Millisecond},
		{"p0 is the minimum", seq(10), 0, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.p); got != tt.want {
				t.Fatalf("percentile(%d values, %g) = %s, want %s", len(tt.in), tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"unsorted", []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond},
			Summary{N: 3, P50: 2, P90: 3, P99: 3, Max: 3, Mean: 2}},
		{"microseconds", []time.Duration{1500 * time.Microsecond, 250 * time.Microsecond},
			Summary{N: 2, P50: 0.25, P90: 1.5, P99: 1.5, Max: 1.5, Mean: 0.875}},
		{"hundred", seq(100), Summary{N: 100, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.in); got != tt.want {
				t.Fatalf("summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRecorderStats(t *testing.T) {
	r := newRecorder()
	for i := 1; i <= 4; i++ {
		r.add(opOpen, time.Duration(i)*time.Millisecond, time.Millisecond, 0, "")
	}
	r.add(opOpen, time.Second, time.Second, 0, "timeout")
	r.add(opRecord, 10*time.Millisecond, 9*time.Millisecond, time.Millisecond, "")
	r.add(opRecord, 0, 0, 0, "http_429:RATE_LIMITED")
	r.add(opRecord, 0, 0, 0, "http_429:RATE_LIMITED")
	got := r.stats(2 * time.Second)
	if len(got) != 3 || got[0].Op != opOpen || got[1].Op != opRecord || got[2].Op != "all" {
		t.Fatalf("stats lines = %+v, want open, record, all", got)
	}
	tests := []struct {
		line       OpStats
		count, err int
		ops        float64
		p50, max   float64
	}{
		{got[0], 5, 1, 2, 2, 4},
		{got[1], 3, 2, 0.5, 10, 10},
		{got[2], 8, 3, 2.5, 3, 10},
	}
	for _, tt := range tests {
		s := tt.line
		if s.Count != tt.count || s.Errors != tt.err || s.Throughput != tt.ops || s.Latency.P50 != tt.p50 || s.Latency.Max != tt.max {
			t.Errorf("%s: count %d errors %d ops/s %g p50 %g max %g; want %d %d %g %g %g",
				s.Op, s.Count, s.Errors, s.Throughput, s.Latency.P50, s.Latency.Max, tt.count, tt.err, tt.ops, tt.p50, tt.max)
		}
	}
	if got[1].Kinds["http_429:RATE_LIMITED"] != 2 || got[2].Kinds["record: http_429:RATE_LIMITED"] != 2 || got[2].Kinds["open: timeout"] != 1 {
		t.Errorf("error kinds: record %v, all %v", got[1].Kinds, got[2].Kinds)
	}
	if lag := r.lagSummary(); lag.N != 8 || lag.Max != 1 {
		t.Errorf("lag summary = %+v, want 8 values, max 1 ms", lag)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []int64
		want int64
	}{
		{nil, 0},
		{[]int64{2}, 2},
		{[]int64{3, 2, 2, 2, 9}, 2},
		{[]int64{1, 2, 3, 4}, 2},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestOverhead(t *testing.T) {
	phase := func(p50, p99, lag99 float64) *Phase {
		return &Phase{StartLag: Summary{P99: lag99}, Ops: []OpStats{{Op: opOpen, Latency: Summary{N: 10, P50: p50, P99: p99}}, {Op: "all"}}}
	}
	tests := []struct {
		name           string
		floor, gw      *Phase
		overP50, pct99 float64
		met50, met99   bool
		noisy          bool
	}{
		{"inside both", phase(0.5, 2, 0.1), phase(1.2, 2.5, 0.1), 0.7, 25, true, true, false},
		{"over both", phase(0.5, 2, 0.1), phase(2, 4, 0.1), 1.5, 100, false, false, false},
		{"p50 only", phase(0.2, 1, 0.1), phase(0.9, 1.5, 0.1), 0.7, 50, true, false, false},
		{"late client", phase(0.2, 1, 0.1), phase(0.9, 1.5, 3), 0.7, 50, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := overhead(tt.floor, tt.gw)
			if o.OverP50 != tt.overP50 || o.OverP99Pct != tt.pct99 || o.P50Met != tt.met50 || o.P99Met != tt.met99 || o.Noisy != tt.noisy {
				t.Fatalf("overhead = %+v, want over p50 %g, p99 %+g%%, met %v %v, noisy %v", o, tt.overP50, tt.pct99, tt.met50, tt.met99, tt.noisy)
			}
		})
	}
}
