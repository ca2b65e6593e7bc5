//go:build race

package storetest

// raceEnabled reports a build with the race detector, which slows an
// in-test FerretDB (instrumented too) about tenfold: the randomized tests
// on a Slow database shrink further under it.
const raceEnabled = true
