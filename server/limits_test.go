package server

import (
	"testing"
	"time"
)

var testNow = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

func TestLimiter(t *testing.T) {
	now := testNow
	l := newLimiter(2, 3, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.allow("k"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("k")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("past the burst: %v, wait %v", ok, wait)
	}
	if ok, _ := l.allow("other"); !ok {
		t.Fatal("buckets are not per key")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.allow("k"); !ok {
		t.Fatal("no refill after half a second at 2/s")
	}
	if ok, _ := newLimiter(-1, 0, time.Now).allow("k"); !ok {
		t.Fatal("a disabled limiter refused")
	}
}

func TestMeasure(t *testing.T) {
	for _, c := range []struct {
		q                    string
		fields, aliases, ops int64
		depth                int
	}{
		{`{ a { b c } }`, 3, 0, 1, 2},
		{`{ x: a { y: b c } }`, 3, 2, 1, 2},
		{`query { ...F ...F } fragment F on Query { a { b } }`, 4, 0, 1, 2},
		{`query { ...F } fragment F on Query { ...F }`, 0, 0, 1, 0},
		{`{ __schema { types { name } } }`, 3, 0, 1, 1},
		{`query A { a } query B { b }`, 2, 0, 2, 1},
	} {
		st, ops, err := measure(c.q, 1000)
		if err != nil || st.fields != c.fields || st.aliases != c.aliases || int64(ops) != c.ops || st.depth != c.depth {
			t.Errorf("measure(%s) = %+v, %d ops, %v", c.q, st, ops, err)
		}
	}
}
