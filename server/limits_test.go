package server

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"

	"github.com/relatedhq/related/graph"
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

// TestComplexityNeverWraps holds the cost arithmetic to saturation: a
// sibling with an enormous page size (the attack of issue 13: first:
// 2^62 wrapped the int64 total negative, so an over-cost query beside it
// passed) makes the whole operation cost the most there is, never less.
func TestComplexityNeverWraps(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	q := `query($n: Int, $id: ID!) {
	  a: interactions(first: $n) { edges { node { id } } }
	  interaction(id: $id) { related(first: 100) { edges { node { messages(first: 100) { edges { node { body } } } } } } }
	}`
	doc, errs := gqlparser.LoadQuery(schema, q)
	if errs != nil {
		t.Fatal(errs)
	}
	for _, n := range []any{
		int64(4611686018427387904), int64(math.MaxInt64), json.Number("4611686018427387904"),
		json.Number("1e300"), json.Number("99999999999999999999999999"), float64(1e300), math.Inf(1), math.NaN(),
	} {
		c := complexity(doc.Operations[0], map[string]any{"n": n, "id": "x"})
		if c < int64(DefaultLimits.MaxComplexity) {
			t.Errorf("first: %v costs %d, want at least the limit %d", n, c, DefaultLimits.MaxComplexity)
		}
	}
	for _, n := range []any{int64(-5), json.Number("-4611686018427387904"), float64(-1e300)} {
		c := complexity(doc.Operations[0], map[string]any{"n": n, "id": "x"})
		if c < 0 {
			t.Errorf("first: %v costs %d", n, c)
		}
	}
	for _, c := range []struct{ a, b, want int64 }{
		{saturate, saturate, saturate}, {1 << 39, 4, saturate}, {3, 4, 12}, {0, saturate, 0}, {-1, 5, 0},
	} {
		if got := mulSat(c.a, c.b); got != c.want {
			t.Errorf("mulSat(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestValidationWorkIsBounded sends the pre-check the documents that made
// validation quadratic (issue 13, item 8: distinct documents repeating
// one field held 1.8 cores for one key): each is refused before gqlgen
// validates it, by counting the field pairs validation would compare. The
// largest documents within the limits are then validated, and their cost
// logged (for the README's figure: a few milliseconds each).
func TestValidationWorkIsBounded(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	rep := func(s string, n int) string { return strings.Repeat(s+" ", n) }
	p := newPrecheck(DefaultLimits)
	for name, q := range map[string]string{
		"one field 1990 times": "{ viewer { " + rep("role", 1990) + "} }",
		"nested 50 x 38":       "query($id: ID!) { interaction(id: $id) { " + rep("contact { "+rep("name", 38)+" }", 50) + " } }",
		"three levels":         "query($id: ID!) { interaction(id: $id) { " + rep("contact { "+rep("profile { "+rep("name", 10)+" }", 10)+" }", 18) + " } }",
		"through fragments":    "{ viewer { " + rep("...F", 300) + " } } fragment F on Viewer { role tenant }",
		"through distinct fragments": func() string {
			var b strings.Builder
			b.WriteString("{ viewer { ")
			for i := range 600 {
				fmt.Fprintf(&b, "...F%d ", i)
			}
			b.WriteString("} }\n")
			for i := range 600 {
				fmt.Fprintf(&b, "fragment F%d on Viewer { role tenant }\n", i)
			}
			return b.String()
		}(),
	} {
		err := p.check(q).err
		if err == nil || err.Extensions["code"] != CodeTooManyFields {
			t.Errorf("%s: %v, want %s", name, err, CodeTooManyFields)
		}
	}
	for name, q := range map[string]string{
		"one field 200 times (19,900 pairs)": "{ viewer { " + rep("role", 200) + "} }",
		"1,990 distinct paths": "query($id: ID!) { " + func() string {
			var b strings.Builder
			for i := range 49 {
				fmt.Fprintf(&b, "a%d: interaction(id: $id) { id channel status createdAt closedAt closedState threadRef updatedAt queue { id name } contact { id name address channel attributes { key value } } lastMessage { id body preview sentAt direction author } profile { id name channels } } ", i)
			}
			return b.String()
		}() + "}",
	} {
		if err := p.check(q).err; err != nil {
			t.Fatalf("%s: refused: %v", name, err)
		}
		st, doc, _ := measureDoc(q, DefaultLimits.MaxTokens)
		pairs, _ := overlapPairs(doc)
		start := time.Now()
		if _, errs := gqlparser.LoadQuery(schema, q); errs != nil {
			t.Fatalf("%s: %v", name, errs)
		}
		t.Logf("%s: %d fields, %d pairs: validated in %v", name, st.fields, pairs, time.Since(start))
	}
}
