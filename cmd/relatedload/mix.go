package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// The operations the tool sends, in the order reports list them.
const (
	opOpen     = "open"     // open an interaction: the interaction, its profile bar, the Related panel's first page
	opPage     = "page"     // the Related panel's second page, by the first page's endCursor
	opMessages = "messages" // the interaction's last 50 messages
	opRecord   = "record"   // recordMessage on an existing thread (sometimes a new one)
	opClose    = "close"    // closeInteraction with a random closed state
)

// knownOps lists every operation in report order.
var knownOps = []string{opOpen, opPage, opMessages, opRecord, opClose}

// mix is a weighted choice of operations: each arrival is operation op
// with probability weight/total.
type mix struct {
	ops     []string // in knownOps order, weight > 0 only
	weights []int
	total   int
}

// parseMix reads a mix such as "open=70,page=10,messages=10,record=7,close=3".
// Weights are non-negative integers and need not add up to 100; an
// operation left out has weight 0. At least one weight must be positive.
func parseMix(s string) (mix, error) {
	w := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return mix{}, fmt.Errorf("mix: %q: want op=weight", part)
		}
		if !isKnownOp(name) {
			return mix{}, fmt.Errorf("mix: unknown operation %q (want one of %s)", name, strings.Join(knownOps, ", "))
		}
		if _, dup := w[name]; dup {
			return mix{}, fmt.Errorf("mix: %q given twice", name)
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 {
			return mix{}, fmt.Errorf("mix: weight of %q must be a non-negative integer, got %q", name, val)
		}
		if n > 1_000_000 {
			return mix{}, fmt.Errorf("mix: weight of %q is too large (%d)", name, n)
		}
		w[name] = n
	}
	var m mix
	for _, op := range knownOps {
		if n := w[op]; n > 0 {
			m.ops = append(m.ops, op)
			m.weights = append(m.weights, n)
			m.total += n
		}
	}
	if m.total == 0 {
		return mix{}, fmt.Errorf("mix: %q selects no operation", s)
	}
	return m, nil
}

// isKnownOp reports whether op is one of the tool's operations.
func isKnownOp(op string) bool {
	for _, k := range knownOps {
		if k == op {
			return true
		}
	}
	return false
}

// pick draws an operation.
func (m mix) pick(r *rand.Rand) string {
	return m.at(r.IntN(m.total))
}

// at returns the operation a draw n in [0, total) selects.
func (m mix) at(n int) string {
	for i, w := range m.weights {
		if n < w {
			return m.ops[i]
		}
		n -= w
	}
	return m.ops[len(m.ops)-1]
}

// has reports whether the mix ever picks op.
func (m mix) has(op string) bool {
	for _, o := range m.ops {
		if o == op {
			return true
		}
	}
	return false
}

// String returns the mix in parseMix's syntax.
func (m mix) String() string {
	parts := make([]string, len(m.ops))
	for i, op := range m.ops {
		parts[i] = op + "=" + strconv.Itoa(m.weights[i])
	}
	return strings.Join(parts, ",")
}
