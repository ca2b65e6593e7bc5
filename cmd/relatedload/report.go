package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything a run measured; -json prints it as is.
type Report struct {
	Mode        string        `json:"mode"` // gateway, floor or compare
	Config      ReportConfig  `json:"config"`
	Sample      *SampleInfo   `json:"sample,omitempty"`
	Calibration []Calibration `json:"calibration,omitempty"`
	Floor       *Phase        `json:"floor,omitempty"`
	Gateway     *Phase        `json:"gateway,omitempty"`
	Overhead    *Overhead     `json:"overhead,omitempty"`
	Interrupted bool          `json:"interrupted,omitempty"`
	StartedAt   time.Time     `json:"started_at"`
	Machine     Machine       `json:"machine"`
}

// ReportConfig is the run's configuration.
type ReportConfig struct {
	URL            string  `json:"url,omitempty"`
	DataDir        string  `json:"data_dir,omitempty"`
	Tenant         string  `json:"tenant,omitempty"`
	Rate           float64 `json:"rate"`
	DurationS      float64 `json:"duration_s"`
	Mix            string  `json:"mix"`
	ConcurrencyCap int     `json:"concurrency_cap"`
	First          int     `json:"first"`
	TimeoutS       float64 `json:"timeout_s"`
	Seed           uint64  `json:"seed"`
	Warmup         int     `json:"warmup"`
	Calibrate      int     `json:"calibrate"`
	// Phases are -phases' segments, when given (Rate and DurationS are
	// then their first).
	Phases []segment `json:"phases,omitempty"`
	PID    int       `json:"pid,omitempty"`
}

// SampleInfo is what the pre-run sampling found.
type SampleInfo struct {
	Interactions   int     `json:"interactions"`
	WithSecondPage int     `json:"with_second_page,omitempty"`
	Open           int     `json:"open,omitempty"`
	Seconds        float64 `json:"seconds"`
}

// Phase is one open-loop phase.
type Phase struct {
	Loop loopResult `json:"loop"`
	// StartLag is how late requests started after their due time: the
	// client's own scheduling delay plus waits for a free slot.
	StartLag Summary   `json:"start_lag"`
	Ops      []OpStats `json:"ops"` // per operation, then "all"
	// Commands are the gateway's database commands during the phase, by
	// name, and their total (gateway phases only). They include the
	// server's background reads and the requests of other clients.
	Commands           map[string]int64 `json:"commands,omitempty"`
	CommandsTotal      int64            `json:"commands_total,omitempty"`
	CommandsPerRequest float64          `json:"commands_per_request,omitempty"`
	// ServerRequests and ServerMeanMs are the /graphql requests the
	// gateway served during the phase and their mean time inside the
	// server (its own measure, from /metrics: no client, no network).
	ServerRequests int64   `json:"server_requests,omitempty"`
	ServerMeanMs   float64 `json:"server_mean_ms,omitempty"`
	// CPU is the server process's CPU over the phase (-pid, or the
	// gateway's /metrics).
	CPU *ServerCPU `json:"server_cpu,omitempty"`
	// Segments, Recovery and Timeline describe a phased loop (-phases):
	// each segment's requests by due time, the last segment from 2 s after
	// its start, and every second of the loop.
	Segments []Window `json:"segments,omitempty"`
	Recovery *Window  `json:"recovery,omitempty"`
	Timeline []Window `json:"timeline,omitempty"`
}

// Overhead is the gateway's open latency over the floor's.
type Overhead struct {
	FloorP50   float64 `json:"floor_p50_ms"`
	GatewayP50 float64 `json:"gateway_p50_ms"`
	OverP50    float64 `json:"over_p50_ms"`
	OverP50Pct float64 `json:"over_p50_pct"`
	FloorP99   float64 `json:"floor_p99_ms"`
	GatewayP99 float64 `json:"gateway_p99_ms"`
	OverP99    float64 `json:"over_p99_ms"`
	OverP99Pct float64 `json:"over_p99_pct"`
	// The targets: under 1 ms at p50, under 30% at p99.
	P50Met bool `json:"p50_target_met"`
	P99Met bool `json:"p99_target_met"`
	// Service is the same comparison of service times (from each
	// request's actual start), which leaves out the client's scheduling
	// delay that both latencies include.
	Service *Overhead `json:"service,omitempty"`
	// Noisy reports that a phase's requests started late (start lag p99
	// over noisyLagMs): the client or the machine was busy, so the
	// percentiles, and whether the targets are met, are not trustworthy.
	Noisy bool `json:"noisy,omitempty"`
}

// noisyLagMs is the start lag p99 above which a phase is called noisy: a
// client on an otherwise idle machine starts requests well within it.
const noisyLagMs = 1.0

func newReport(mode string, c config, m mix) *Report {
	rc := ReportConfig{
		Rate: c.rate, DurationS: c.duration.Seconds(), Mix: m.String(), ConcurrencyCap: c.cap,
		First: c.first, TimeoutS: c.timeout.Seconds(), Seed: c.seed, Warmup: c.warmup, Calibrate: c.calibrate,
		Phases: c.segments, PID: c.pid,
	}
	if mode != "floor" {
		rc.URL = c.url
	}
	if mode != "gateway" {
		rc.DataDir, rc.Tenant = c.dataDir, c.tenant
	}
	if mode == "floor" {
		rc.Calibrate = 0
	}
	return &Report{Mode: mode, Config: rc, StartedAt: time.Now().UTC().Truncate(time.Second), Machine: newMachine()}
}

func newPhase(loop loopResult, rec *recorder) *Phase {
	return &Phase{Loop: loop, StartLag: rec.lagSummary(), Ops: rec.stats(loop.Elapsed)}
}

// overhead compares the open latency of two phases, and their service
// times.
func overhead(floor, gw *Phase) *Overhead {
	o := compareSummaries(opLine(floor, opOpen).Latency, opLine(gw, opOpen).Latency)
	o.Service = compareSummaries(opLine(floor, opOpen).Service, opLine(gw, opOpen).Service)
	o.Noisy = floor.StartLag.P99 > noisyLagMs || gw.StartLag.P99 > noisyLagMs
	return o
}

// compareSummaries compares the gateway's distribution g with the floor's f.
func compareSummaries(f, g Summary) *Overhead {
	o := &Overhead{
		FloorP50: f.P50, GatewayP50: g.P50, OverP50: round3(g.P50 - f.P50), OverP50Pct: pct(g.P50, f.P50),
		FloorP99: f.P99, GatewayP99: g.P99, OverP99: round3(g.P99 - f.P99), OverP99Pct: pct(g.P99, f.P99),
	}
	o.P50Met = f.N > 0 && g.N > 0 && o.OverP50 < 1
	o.P99Met = f.N > 0 && g.N > 0 && o.OverP99Pct < 30
	return o
}

// opLine returns the phase's line of op (zero when absent).
func opLine(p *Phase, op string) OpStats {
	for _, s := range p.Ops {
		if s.Op == op {
			return s
		}
	}
	return OpStats{Op: op}
}

// pct returns how much larger a is than b, in percent of b.
func pct(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round((a-b)/b*1000) / 10
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// print writes the report as tables.
func (r *Report) print(w io.Writer) {
	c := r.Config
	switch r.Mode {
	case "gateway", "peer":
		if len(c.Phases) > 0 {
			fmt.Fprintf(w, "relatedload: %s %s, phases %s, mix %s, first %d, cap %d, seed %d\n", r.Mode, c.URL, formatSegments(c.Phases), c.Mix, c.First, c.ConcurrencyCap, c.Seed)
		} else {
			fmt.Fprintf(w, "relatedload: %s %s, %g arrivals/s for %gs, mix %s, first %d, cap %d, seed %d\n", r.Mode, c.URL, c.Rate, c.DurationS, c.Mix, c.First, c.ConcurrencyCap, c.Seed)
		}
	case "floor":
		fmt.Fprintf(w, "relatedload: floor (panel reads in process) on %s, tenant %s, %g opens/s for %gs, first %d, cap %d, seed %d\n", c.DataDir, c.Tenant, c.Rate, c.DurationS, c.First, c.ConcurrencyCap, c.Seed)
	case "diff":
		fmt.Fprintf(w, "relatedload: saved floor run on %s and gateway run on %s, %g arrivals/s for %gs, mix %s, first %d\n", c.DataDir, c.URL, c.Rate, c.DurationS, c.Mix, c.First)
	case "compare":
		fmt.Fprintf(w, "relatedload: floor on %s then gateway %s, tenant %s, %g opens/s for %gs each, first %d, cap %d, seed %d\n", c.DataDir, c.URL, c.Tenant, c.Rate, c.DurationS, c.First, c.ConcurrencyCap, c.Seed)
	}
	if s := r.Sample; s != nil {
		if r.Mode == "gateway" && s.WithSecondPage+s.Open > 0 {
			fmt.Fprintf(w, "sampled %d interactions in %.2fs: %d with a second Related page, %d open\n", s.Interactions, s.Seconds, s.WithSecondPage, s.Open)
		} else {
			fmt.Fprintf(w, "sampled %d interactions in %.2fs\n", s.Interactions, s.Seconds)
		}
	}
	if len(r.Calibration) > 0 {
		fmt.Fprintf(w, "\ndatabase commands per operation (%d serial requests each, /metrics read around every request)\n", r.Config.Calibrate)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "op\tmedian\tmean\tmin\tmax\terrors\t by command (mean)\t")
		for _, cal := range r.Calibration {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%d\t%d\t%d\t %s\t\n", cal.Op, cal.Median, cal.Mean, cal.Min, cal.Max, cal.Errors, formatFloats(cal.ByCommand))
		}
		tw.Flush()
	}
	if r.Floor != nil {
		fmt.Fprintln(w, "\nfloor: store.PanelReader reads in process (InteractionViews + RelatedPanel)")
		r.Floor.print(w)
	}
	if r.Gateway != nil {
		if r.Mode == "compare" || r.Mode == "diff" {
			fmt.Fprintln(w, "\ngateway: over HTTP")
		} else {
			fmt.Fprintln(w, "\nopen loop")
		}
		r.Gateway.print(w)
	}
	if o := r.Overhead; o != nil {
		fmt.Fprintln(w, "\ngateway over floor (open, latency from scheduled arrival, ms)")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\tfloor\tgateway\tover (ms)\tover (%)\ttarget\t\t")
		fmt.Fprintf(tw, "p50\t%.3f\t%.3f\t%+.3f\t%+.1f%%\t< 1 ms\t%s\t\n", o.FloorP50, o.GatewayP50, o.OverP50, o.OverP50Pct, met(o.P50Met))
		fmt.Fprintf(tw, "p99\t%.3f\t%.3f\t%+.3f\t%+.1f%%\t< 30%%\t%s\t\n", o.FloorP99, o.GatewayP99, o.OverP99, o.OverP99Pct, met(o.P99Met))
		if s := o.Service; s != nil {
			fmt.Fprintf(tw, "service p50\t%.3f\t%.3f\t%+.3f\t%+.1f%%\t\t\t\n", s.FloorP50, s.GatewayP50, s.OverP50, s.OverP50Pct)
			fmt.Fprintf(tw, "service p99\t%.3f\t%.3f\t%+.3f\t%+.1f%%\t\t\t\n", s.FloorP99, s.GatewayP99, s.OverP99, s.OverP99Pct)
		}
		tw.Flush()
		if o.Noisy {
			fmt.Fprintf(w, "UNRELIABLE: a phase started its requests over %g ms late at p99 (the client or the machine was busy): rerun on a quiet machine\n", noisyLagMs)
		}
	}
	m := r.Machine
	fmt.Fprintf(w, "\nmachine: %d CPUs, GOMAXPROCS %d, load average (1 min) %.2f at start, %.2f at end\n", m.CPUs, m.GOMAXPROCS, m.Load1Start, m.Load1End)
	if m.Load1Start > 0.5 {
		fmt.Fprintln(w, "WARNING: the machine was busy before the run started (load average above 0.5): other work skews these latencies")
	}
	if r.Interrupted {
		fmt.Fprintln(w, "\nINTERRUPTED: the figures above cover only part of the run")
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// print writes one phase: the scheduler's line, the latency table, the
// command counts and the errors.
func (p *Phase) print(w io.Writer) {
	l := p.Loop
	fmt.Fprintf(w, "%d arrivals scheduled, %d sent, %d unsent; elapsed %.2fs; start lag p50 %.3f ms, p99 %.3f ms, max %.3f ms; %d waited for a slot\n",
		l.Scheduled, l.Sent, l.Unsent, l.ElapsedS, p.StartLag.P50, p.StartLag.P99, p.StartLag.Max, l.CapWaits)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\terrors\tops/s\tp50\tp90\tp99\tmax\tmean\t service p50\tp99\t")
	for _, s := range p.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t %.3f\t%.3f\t\n",
			s.Op, s.Count, s.Errors, s.Throughput, s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.Max, s.Latency.Mean, s.Service.P50, s.Service.P99)
	}
	tw.Flush()
	fmt.Fprintln(w, "(latency in ms from each request's scheduled arrival, successes only; service time from its actual start)")
	if p.Commands != nil || p.CommandsTotal != 0 {
		fmt.Fprintf(w, "database commands during the phase: %d (%.2f per request, background included): %s\n", p.CommandsTotal, p.CommandsPerRequest, formatInts(p.Commands))
	}
	all := p.Ops[len(p.Ops)-1]
	if c := p.CPU; c != nil {
		fmt.Fprintf(w, "server CPU (%s): %.3f s, %.3f ms per request (%.3f per success), %.2f cores busy; RSS %.1f MiB at the end", c.Source, c.Seconds, c.PerRequestMs, c.PerSuccessMs, c.Cores, c.RSSMiB)
		if c.PeakRSSMiB > 0 {
			fmt.Fprintf(w, ", peak %.1f MiB, anonymous %.1f MiB, Pss %.1f MiB", c.PeakRSSMiB, c.AnonMiB, c.PssMiB)
		}
		fmt.Fprintln(w)
	}
	if len(p.Segments) > 0 {
		fmt.Fprintln(w, "\nby phase (requests by due time; latency of successes, ms)")
		printWindows(w, p.Segments)
		if r := p.Recovery; r != nil {
			fmt.Fprintf(w, "recovery (the last phase from %gs after its start): %d requests, %d errors, p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", recoveryGrace.Seconds(), r.Count, r.Errors, r.Latency.P50, r.Latency.P99, r.Latency.Max)
		}
		fmt.Fprintln(w, "\nevery second")
		printWindows(w, p.Timeline)
	}
	if p.ServerRequests > 0 {
		fmt.Fprintf(w, "server-side time per /graphql request (the gateway's own measure, from /metrics): mean %.3f ms over %d requests (client mean %.3f ms)\n", p.ServerMeanMs, p.ServerRequests, all.Service.Mean)
	}
	if all.Errors > 0 {
		fmt.Fprintf(w, "errors: %s\n", formatInts64(all.Kinds))
	}
	if l.Unsent > 0 && !l.Interrupted {
		fmt.Fprintf(w, "WARNING: %d arrivals were never sent: %d requests in flight for the whole tail of the run; the target is saturated\n", l.Unsent, l.Sent)
	}
	if p.StartLag.P99 > noisyLagMs && !l.Interrupted {
		fmt.Fprintf(w, "WARNING: requests started %.3f ms late at p99 (the client or the machine is busy); the latencies include it\n", p.StartLag.P99)
	}
	if l.CapWaits > 0 {
		fmt.Fprintf(w, "WARNING: %d arrivals waited for a slot (-concurrency-cap): the target was not keeping up\n", l.CapWaits)
	}
}

// formatFloats writes a map as sorted k=v pairs.
func formatFloats(m map[string]float64) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.2f", k, m[k])
	}
	return strings.Join(parts, " ")
}

// formatInts writes a map as sorted k=v pairs.
func formatInts(m map[string]int64) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// formatInts64 writes error kinds as sorted k=v pairs.
func formatInts64(m map[string]int) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// printWindows writes a table of windows.
func printWindows(w io.Writer, ws []Window) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "from s\tto s\tcount\terrors\tok/s\tp50\tp99\tmax\tserver cores\t errors by kind\t")
	for _, x := range ws {
		fmt.Fprintf(tw, "%.1f\t%.1f\t%d\t%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.2f\t %s\t\n", x.FromS, x.ToS, x.Count, x.Errors, x.Throughput,
			x.Latency.P50, x.Latency.P99, x.Latency.Max, x.CPUCores, formatInts64(x.Kinds))
	}
	tw.Flush()
}

// formatSegments writes -phases' segments back.
func formatSegments(segs []segment) string {
	parts := make([]string, len(segs))
	for i, s := range segs {
		parts[i] = fmt.Sprintf("%g/s for %gs", s.Rate, s.DurationS)
	}
	return strings.Join(parts, ", then ")
}
