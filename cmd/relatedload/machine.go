package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine is what the run knows of the machine it ran on: latency figures
// from a machine busy with other work are not the gateway's.
type Machine struct {
	CPUs       int `json:"cpus"`
	GOMAXPROCS int `json:"gomaxprocs"`
	// Load1Start and Load1End are the 1-minute load averages (Linux
	// /proc/loadavg) when the run started and ended; -1 when unknown.
	Load1Start float64 `json:"load1_start"`
	Load1End   float64 `json:"load1_end"`
}

// newMachine describes this machine now.
func newMachine() Machine {
	return Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Load1Start: load1(), Load1End: -1}
}

// load1 returns the 1-minute load average, or -1 when it cannot be read.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	return parseLoadavg(string(b))
}

// parseLoadavg reads the first field of /proc/loadavg's text; -1 when
// malformed.
func parseLoadavg(s string) float64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || v < 0 {
		return -1
	}
	return v
}
