//go:build !race

package storetest

// raceEnabled reports a build with the race detector (see race.go).
const raceEnabled = false
