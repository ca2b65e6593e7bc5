package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// The server's CPU is what a side-by-side comparison compares: wall-clock
// latency on a shared 2-core machine mixes in the client and every other
// process, CPU seconds of the server process do not. The tool reads them
// from /proc/PID/stat when given the server's pid (-pid: any local server,
// the Node peer too), else from the gateway's process_cpu_seconds_total on
// /metrics.

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports (the kernel fixes it for user space).
const clockTicks = 100

// procSample is one reading of a process's counters.
type procSample struct {
	CPUSeconds float64 // user + system
	RSSBytes   int64   // resident set now
	PeakRSS    int64   // the most resident set so far (VmHWM)
	AnonBytes  int64   // the resident set's anonymous part (RssAnon): the heap, not mapped files
	PssBytes   int64   // the proportional set size: shared pages counted once (smaps_rollup)
}

// cpuSource reads a server's CPU seconds.
type cpuSource interface {
	read(ctx context.Context) (procSample, error)
	name() string
}

// procSource reads /proc/PID.
type procSource struct {
	pid  int
	root string // "/proc", or a test's directory
}

func (p procSource) name() string { return fmt.Sprintf("/proc/%d/stat", p.pid) }

func (p procSource) read(context.Context) (procSample, error) {
	dir := fmt.Sprintf("%s/%d", p.root, p.pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procSample{}, fmt.Errorf("read server CPU: %w", err)
	}
	cpu, err := parseProcStat(string(b))
	if err != nil {
		return procSample{}, err
	}
	s := procSample{CPUSeconds: cpu}
	if b, err := os.ReadFile(dir + "/status"); err == nil {
		s.RSSBytes, s.PeakRSS, s.AnonBytes = parseProcStatus(string(b))
	}
	if b, err := os.ReadFile(dir + "/smaps_rollup"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					s.PssBytes = kb << 10
				}
			}
		}
	}
	return s, nil
}

// parseProcStat returns utime + stime of a /proc/PID/stat line, in
// seconds. The command name (field 2) may hold spaces and parentheses, so
// fields are counted from its last closing parenthesis.
func parseProcStat(s string) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// After the name: state (3), ppid (4), ... utime (14), stime (15).
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat: too few fields")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc stat times %q %q", f[11], f[12])
	}
	return float64(u+st) / clockTicks, nil
}

// parseProcStatus returns VmRSS, VmHWM and RssAnon of /proc/PID/status,
// in bytes (0 when absent).
func parseProcStatus(s string) (rss, peak, anon int64) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM" && name != "RssAnon") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 1 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		default:
			anon = kb << 10
		}
	}
	return rss, peak, anon
}

// metricsCPU reads process_cpu_seconds_total and
// process_resident_memory_bytes from the gateway's /metrics.
type metricsCPU struct {
	hc   *http.Client
	base string
}

func (m metricsCPU) name() string { return m.base + "/metrics process_cpu_seconds_total" }

func (m metricsCPU) read(ctx context.Context) (procSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base+"/metrics", nil)
	if err != nil {
		return procSample{}, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return procSample{}, fmt.Errorf("get %s/metrics: %w", m.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return procSample{}, fmt.Errorf("get %s/metrics: %s", m.base, resp.Status)
	}
	return parseProcessMetrics(io.LimitReader(resp.Body, 8<<20))
}

// parseProcessMetrics reads the process collector's CPU and memory series
// from a Prometheus text exposition.
func parseProcessMetrics(r io.Reader) (procSample, error) {
	var s procSample
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil || math.IsNaN(v) || v < 0 {
			continue
		}
		switch f[0] {
		case "process_cpu_seconds_total":
			s.CPUSeconds, found = v, true
		case "process_resident_memory_bytes":
			s.RSSBytes = int64(v)
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read metrics: %w", err)
	}
	if !found {
		return s, errors.New("the server's /metrics has no process_cpu_seconds_total: give its -pid")
	}
	return s, nil
}

// ServerCPU is what the server spent during a phase.
type ServerCPU struct {
	Source  string  `json:"source"`
	Seconds float64 `json:"cpu_s"`
	// PerRequestMs is the CPU milliseconds per request completed (successes
	// and errors alike), PerSuccessMs per success.
	PerRequestMs float64 `json:"cpu_ms_per_request"`
	PerSuccessMs float64 `json:"cpu_ms_per_success,omitempty"`
	// Cores is the mean number of cores busy: CPU seconds over wall seconds.
	Cores float64 `json:"cores"`
	// RSS is the resident set at the end; PeakRSS the most seen (VmHWM,
	// /proc only: since the process started).
	RSSMiB     float64 `json:"rss_mib,omitempty"`
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
	// AnonMiB is the resident set's anonymous part at the end (/proc
	// only): RSS less the mapped files, such as a database file read
	// through a memory map.
	AnonMiB float64 `json:"anon_mib,omitempty"`
	// PssMiB is the proportional set size at the end (/proc only): a page
	// shared between mappings counted once.
	PssMiB float64 `json:"pss_mib,omitempty"`
}

// serverCPU computes a phase's CPU figures from readings before and after.
func serverCPU(src string, before, after procSample, wallS float64, requests, successes int) *ServerCPU {
	c := &ServerCPU{Source: src, Seconds: round3(after.CPUSeconds - before.CPUSeconds)}
	if requests > 0 {
		c.PerRequestMs = round3(c.Seconds * 1000 / float64(requests))
	}
	if successes > 0 {
		c.PerSuccessMs = round3(c.Seconds * 1000 / float64(successes))
	}
	if wallS > 0 {
		c.Cores = round3(c.Seconds / wallS)
	}
	c.RSSMiB = round2(float64(after.RSSBytes) / (1 << 20))
	c.PeakRSSMiB = round2(float64(after.PeakRSS) / (1 << 20))
	c.AnonMiB = round2(float64(after.AnonBytes) / (1 << 20))
	c.PssMiB = round2(float64(after.PssBytes) / (1 << 20))
	return c
}
