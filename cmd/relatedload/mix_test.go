package main

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    string // the mix's String, when valid
		total   int
		wantErr string
	}{
		{in: "open=70,page=10,messages=10,record=7,close=3", want: "open=70,page=10,messages=10,record=7,close=3", total: 100},
		{in: " close = 3 , open=1 ", want: "open=1,close=3", total: 4},
		{in: "open=100", want: "open=100", total: 100},
		{in: "open=1,page=0", want: "open=1", total: 1},
		{in: "open=5,,record=5,", want: "open=5,record=5", total: 10},
		{in: "", wantErr: "selects no operation"},
		{in: "open=0,close=0", wantErr: "selects no operation"},
		{in: "opne=1", wantErr: "unknown operation"},
		{in: "open=1,open=2", wantErr: "given twice"},
		{in: "open=-1", wantErr: "non-negative integer"},
		{in: "open=1.5", wantErr: "non-negative integer"},
		{in: "open", wantErr: "want op=weight"},
		{in: "open=2000000", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := parseMix(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseMix(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMix(%q): %v", tt.in, err)
			}
			if m.String() != tt.want || m.total != tt.total {
				t.Fatalf("parseMix(%q) = %s (total %d), want %s (total %d)", tt.in, m, m.total, tt.want, tt.total)
			}
		})
	}
}

func TestMixAt(t *testing.T) {
	m, err := parseMix("open=2,page=0,record=1,close=3")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{opOpen, opOpen, opRecord, opClose, opClose, opClose}
	for n, w := range want {
		if got := m.at(n); got != w {
			t.Errorf("at(%d) = %s, want %s", n, got, w)
		}
	}
	if m.has(opPage) || !m.has(opRecord) {
		t.Errorf("has: page %v record %v, want false true", m.has(opPage), m.has(opRecord))
	}
}

func TestMixPickFollowsWeights(t *testing.T) {
	m, err := parseMix("open=70,page=10,messages=10,record=7,close=3")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 100_000
	got := map[string]int{}
	for range n {
		got[m.pick(r)]++
	}
	for i, op := range m.ops {
		want := float64(m.weights[i]) / float64(m.total) * n
		if d := float64(got[op]) - want; d > 0.05*want+100 || d < -0.05*want-100 {
			t.Errorf("%s drawn %d times of %d, want about %.0f", op, got[op], n, want)
		}
	}
}
