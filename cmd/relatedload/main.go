// Command relatedload is the gateway's load tool. It drives a running
// gateway over HTTP at a fixed arrival rate (open loop) with a mix of the
// agent desktop's operations, and reports throughput, latency percentiles
// and database commands per operation (from the gateway's /metrics). Its
// floor mode performs the Related panel's database reads directly, in
// process, on the same embedded database, to show what the gateway adds.
//
// Gateway mode (the server runs with --rate-limit -1 --max-inflight -1 so
// the per-key limits do not shape the load):
//
//	relatedload -url http://127.0.0.1:8080 -key rk_... -rate 200 -duration 30s \
//	    -mix open=70,page=10,messages=10,record=7,close=3
//
// Floor mode (the same database directory; the server may be running):
//
//	relatedload -floor -data-dir ./data -rate 200 -duration 30s
//
// Both, one after the other at the same rate with open arrivals only, and
// the gateway's latency over the floor:
//
//	relatedload -compare -url http://127.0.0.1:8080 -key rk_... -data-dir ./data -rate 200 -duration 30s
//
// or in two runs saved with -json, then compared (on the same data, the
// same -seed opens the same interactions in the same order in both):
//
//	relatedload -floor -data-dir ./data -rate 200 -json > floor.json
//	relatedload -mix open=1 -url http://127.0.0.1:8080 -key rk_... -rate 200 -json > gateway.json
//	relatedload -diff floor.json gateway.json
//
// The server's CPU per request is reported beside the latency: from
// /proc/PID/stat with -pid (any local server), else from the gateway's
// process_cpu_seconds_total. The Node peer (bench/peer) is driven with
// -peer (open only, interactions sampled from -data-dir, no key), and
// -check-peer URL first proves it answers the same data as the gateway.
// -phases runs back-to-back rates in one open loop (an overload, then
// recovery) and reports each phase, the recovery window and every second:
//
//	relatedload -url http://127.0.0.1:8080 -key rk_... -data-dir ./data -mix open=1 -pid PID -rate 1000 -duration 10s
//	relatedload -peer -url http://127.0.0.1:4000 -data-dir ./data -mix open=1 -pid PID -rate 1000 -duration 10s
//	relatedload -check-peer http://127.0.0.1:4000 -url http://127.0.0.1:8080 -key rk_... -data-dir ./data
//	relatedload -url ... -key ... -data-dir ./data -mix open=1 -pid PID -phases 3000:10s,9000:10s,3000:20s
//
// Operations: open (operation.OpenInteraction: the
// interaction, its profile bar and its Related panel's first page with
// every panel field), page (the panel's second page by the first page's
// endCursor, on interactions with more than -first related), messages
// (the last 50 messages), record (recordMessage on an open interaction's
// thread, a new thread with probability -new-thread, with a
// clientMutationId) and close (closeInteraction with a random state).
// Record and close change the database: measure on a copy.
//
// Arrival i is due at i/rate seconds and runs in its own goroutine whether
// or not earlier ones finished; latency is measured from the due time, so
// a server that falls behind shows as latency (no coordinated omission).
// Percentiles are exact (every duration is kept and sorted). Before the
// open-loop phase, each operation of the mix runs -calibrate times
// serially with /metrics read around every request: the median is the
// operation's database commands. Everything is bounded: sampling, warm-up
// and calibration by their counts and -timeout per request, the open loop
// by -duration plus at most twice -timeout; Ctrl-C stops a run with a
// partial report.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relatedhq/related"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// config is the command line.
type config struct {
	url         string
	key         string
	rate        float64
	duration    time.Duration
	mixText     string
	cap         int
	first       int
	timeout     time.Duration
	sample      int
	calibrate   int
	warmup      int
	newThread   float64
	seed        uint64
	jsonOut     bool
	floor       bool
	compare     bool
	dataDir     string
	tenant      string
	allowRemote bool
	quiet       bool
	diff        bool
	pid         int
	peer        bool
	phasesText  string
	segments    []segment
	checkPeer   string
	summary     bool
}

// maxDuration and maxRate bound a run.
const (
	maxDuration = time.Hour
	maxRate     = 100_000
)

func (c *config) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "the gateway's base URL (loopback only unless -allow-remote)")
	fs.StringVar(&c.key, "key", getenv("RELATED_KEY"), "API key of the tenant (env RELATED_KEY)")
	fs.Float64Var(&c.rate, "rate", 200, "arrivals per second (open loop)")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "length of the open-loop phase")
	fs.StringVar(&c.mixText, "mix", "open=70,page=10,messages=10,record=7,close=3", "operation weights (open, page, messages, record, close)")
	fs.IntVar(&c.cap, "concurrency-cap", 512, "most requests in flight; an arrival beyond it waits for a slot, and the wait counts in its latency")
	fs.IntVar(&c.first, "first", 20, "Related page size of open and page")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.IntVar(&c.sample, "sample", 5000, "interactions to sample before the run (100 a page)")
	fs.IntVar(&c.calibrate, "calibrate", 50, "serial requests per operation to count database commands (0: skip)")
	fs.IntVar(&c.warmup, "warmup", 200, "serial open requests before measuring, not recorded (0: none)")
	fs.Float64Var(&c.newThread, "new-thread", 0.1, "probability that record starts a new thread instead of appending")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed: the same seed draws the same operations and targets")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON instead of tables")
	fs.BoolVar(&c.floor, "floor", false, "floor mode: the panel's database reads in process on -data-dir, open arrivals only")
	fs.BoolVar(&c.compare, "compare", false, "run the floor, then the gateway with open arrivals only, and print the gateway's latency over the floor")
	fs.StringVar(&c.dataDir, "data-dir", "", "embedded database directory (floor and compare)")
	fs.StringVar(&c.tenant, "tenant", "demo", "tenant the floor reads (the gateway's is the key's)")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a non-loopback -url")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&c.diff, "diff", false, "compare two saved -json reports: relatedload -diff FLOOR.json GATEWAY.json")
	fs.IntVar(&c.pid, "pid", 0, "the server's process id: its CPU and memory are read from /proc/PID (else from the gateway's /metrics)")
	fs.BoolVar(&c.peer, "peer", false, "the target is the Node peer (bench/peer): no key, no /metrics; open arrivals only, sampled from -data-dir")
	fs.StringVar(&c.phasesText, "phases", "", "back-to-back rates instead of -rate and -duration, such as 300:10s,900:10s,300:20s (an overload, then recovery)")
	fs.BoolVar(&c.summary, "summary", false, "print one tab-separated line: mode, rate, requests, errors, p50 and p99 ms, server CPU ms per request, cores, RSS and peak RSS MiB, load average, anonymous RSS and Pss MiB (for scripts: bench/side-by-side.sh)")
	fs.StringVar(&c.checkPeer, "check-peer", "", "compare the data of operation.OpenInteraction from -url (the gateway) and this URL (the peer) for -sample interactions of -data-dir")
}

// validate checks the flags of the selected mode.
func (c *config) validate() error {
	if c.rate <= 0 || c.rate > maxRate || math.IsNaN(c.rate) {
		return fmt.Errorf("-rate must be in (0, %d]", maxRate)
	}
	if c.duration <= 0 || c.duration > maxDuration {
		return fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	}
	if c.cap < 1 || c.cap > 100_000 {
		return errors.New("-concurrency-cap must be in [1, 100000]")
	}
	if c.first < 1 || c.first > 100 {
		return errors.New("-first must be in [1, 100]")
	}
	if c.timeout <= 0 || c.timeout > 5*time.Minute {
		return errors.New("-timeout must be in (0, 5m]")
	}
	if c.sample < 1 || c.sample > 100_000 {
		return errors.New("-sample must be in [1, 100000]")
	}
	if c.calibrate < 0 || c.calibrate > 10_000 || c.warmup < 0 || c.warmup > 100_000 {
		return errors.New("-calibrate must be in [0, 10000] and -warmup in [0, 100000]")
	}
	if c.newThread < 0 || c.newThread > 1 {
		return errors.New("-new-thread must be in [0, 1]")
	}
	if c.floor && c.compare {
		return errors.New("give -floor or -compare, not both")
	}
	if (c.floor || c.compare) && c.dataDir == "" {
		return errors.New("-floor and -compare need -data-dir")
	}
	if (c.peer || c.checkPeer != "") && c.dataDir == "" {
		return errors.New("-peer and -check-peer sample interactions from the database: give -data-dir")
	}
	if c.pid < 0 {
		return errors.New("-pid must be a process id")
	}
	if c.phasesText != "" {
		segs, err := parsePhases(c.phasesText)
		if err != nil {
			return err
		}
		c.segments = segs
	}
	return nil
}

// parsePhases reads -phases: rate:duration pairs, comma-separated.
func parsePhases(s string) ([]segment, error) {
	var out []segment
	var total time.Duration
	for _, part := range strings.Split(s, ",") {
		r, d, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("-phases: %q is not rate:duration", part)
		}
		rate, err := strconv.ParseFloat(strings.TrimSuffix(r, "/s"), 64)
		if err != nil || rate <= 0 || rate > maxRate || math.IsNaN(rate) {
			return nil, fmt.Errorf("-phases: rate %q must be in (0, %d]", r, maxRate)
		}
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return nil, fmt.Errorf("-phases: duration %q: want a positive duration such as 10s", d)
		}
		total += dur
		out = append(out, segment{Rate: rate, Duration: dur, DurationS: dur.Seconds()})
	}
	if total > maxDuration {
		return nil, fmt.Errorf("-phases: at most %s in all", maxDuration)
	}
	return out, nil
}

// run runs the command line args and returns the exit status: 0, 1 for a
// failure, 2 for a usage error, 130 when interrupted (the partial report
// is still printed).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("relatedload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, getenv)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: relatedload [-url URL -key KEY] [-rate N] [-duration D] [-mix op=w,...] [-json]")
		fmt.Fprintln(stderr, "       relatedload -floor -data-dir DIR [-rate N] [-duration D]")
		fmt.Fprintln(stderr, "       relatedload -compare -url URL -key KEY -data-dir DIR [-rate N] [-duration D]")
		fmt.Fprintln(stderr, "       relatedload -diff FLOOR.json GATEWAY.json")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if c.diff {
		if fs.NArg() != 2 {
			fmt.Fprintln(stderr, "relatedload: -diff takes two reports: FLOOR.json GATEWAY.json")
			return 2
		}
		rep, err := diffReports(fs.Arg(0), fs.Arg(1), stderr)
		if err != nil {
			fmt.Fprintln(stderr, "relatedload:", err)
			return 1
		}
		return writeReport(rep, c.jsonOut, stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relatedload: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := c.validate(); err != nil {
		fmt.Fprintln(stderr, "relatedload:", err)
		return 2
	}
	progress := stderr
	if c.quiet {
		progress = io.Discard
	}
	var rep *Report
	var err error
	switch {
	case c.checkPeer != "":
		return runCheckPeer(ctx, c, stdout, progress)
	case c.floor:
		rep, err = runFloor(ctx, c, progress)
	case c.compare:
		rep, err = runCompare(ctx, c, progress)
	default:
		rep, err = runGateway(ctx, c, progress)
	}
	if err != nil {
		fmt.Fprintln(stderr, "relatedload:", err)
		return 1
	}
	rep.Machine.Load1End = load1()
	if c.summary {
		return writeSummary(rep, stdout)
	}
	return writeReport(rep, c.jsonOut, stdout, stderr)
}

// writeReport prints rep as JSON or tables and returns the exit code.
func writeReport(rep *Report, asJSON bool, stdout, stderr io.Writer) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "relatedload: write report:", err)
			return 1
		}
	} else {
		rep.print(stdout)
	}
	if rep.Interrupted {
		return 130
	}
	return 0
}

// diffReports builds a compare report from a saved floor report and a
// saved gateway report (-json output of two runs), writing warnings about
// runs that do not compare to warn.
func diffReports(floorPath, gatewayPath string, warn io.Writer) (*Report, error) {
	read := func(path string) (*Report, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read report: %w", err)
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("decode report %s: %w", path, err)
		}
		return &r, nil
	}
	f, err := read(floorPath)
	if err != nil {
		return nil, err
	}
	g, err := read(gatewayPath)
	if err != nil {
		return nil, err
	}
	if f.Floor == nil {
		return nil, fmt.Errorf("%s has no floor phase (run it with -floor -json)", floorPath)
	}
	if g.Gateway == nil {
		return nil, fmt.Errorf("%s has no gateway phase (run it without -floor, with -json)", gatewayPath)
	}
	rep := &Report{Mode: "diff", Config: g.Config, Floor: f.Floor, Gateway: g.Gateway, Calibration: g.Calibration,
		StartedAt: g.StartedAt, Machine: g.Machine, Interrupted: f.Interrupted || g.Interrupted}
	rep.Config.DataDir, rep.Config.Tenant = f.Config.DataDir, f.Config.Tenant
	rep.Overhead = overhead(rep.Floor, rep.Gateway)
	if f.Config.Rate != g.Config.Rate || f.Config.First != g.Config.First {
		fmt.Fprintf(warn, "relatedload: WARNING: the runs differ: floor %g/s first %d, gateway %g/s first %d\n", f.Config.Rate, f.Config.First, g.Config.Rate, g.Config.First)
	}
	if strings.Contains(g.Config.Mix, ",") || !strings.HasPrefix(g.Config.Mix, "open=") {
		fmt.Fprintf(warn, "relatedload: WARNING: the gateway run's mix is %s: its open latency shares the server with other operations, the floor's does not\n", g.Config.Mix)
	}
	return rep, nil
}

// The random streams of a run, all from -seed: warm-up and calibration
// draw from their own, so a phase's operations and targets depend only on
// the seed. An open-only gateway run and a floor run with the same seed
// and sample open the same interactions in the same order.
const (
	streamPrep    = 1
	streamOps     = 2
	streamTargets = 3
)

// newRand returns the random stream of seed.
func newRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

// runGateway samples the gateway's interactions, calibrates each
// operation's database commands, then runs the open-loop phase.
func runGateway(ctx context.Context, c config, progress io.Writer) (*Report, error) {
	m, err := parseMix(c.mixText)
	if err != nil {
		return nil, err
	}
	if c.peer && (len(m.ops) != 1 || m.ops[0] != opOpen) {
		return nil, errors.New("-peer answers open only: give -mix open=1")
	}
	g, err := newGateway(c.url, c.key, c.cap, c.allowRemote, c.peer)
	if err != nil {
		return nil, err
	}
	rep := newReport("gateway", c, m)
	if c.peer {
		rep.Mode = "peer"
	}
	t0 := time.Now()
	var p *pool
	if c.dataDir != "" && len(m.ops) == 1 && m.ops[0] == opOpen {
		// Open only: the interactions come from the database, so that a
		// server that answers nothing but open (the peer) can be driven,
		// and the same -seed opens the same interactions on either.
		fmt.Fprintf(progress, "relatedload: sampling up to %d interactions from %s\n", c.sample, c.dataDir)
		p, err = sampleDB(ctx, c)
	} else {
		fmt.Fprintf(progress, "relatedload: sampling up to %d interactions from %s\n", c.sample, g.endpoint)
		p, err = g.sample(ctx, c.sample, c.first)
	}
	if err != nil {
		return nil, err
	}
	rep.Sample = &SampleInfo{Interactions: len(p.all), WithSecondPage: len(p.paged), Open: len(p.open), Seconds: round2(time.Since(t0).Seconds())}
	if len(p.all) == 0 {
		return nil, errors.New("the tenant has no interactions: seed it first (relatedd seed)")
	}
	if m.has(opPage) && len(p.paged) == 0 {
		return nil, fmt.Errorf("the mix has page but no sampled interaction has more than %d related: seed more data or drop page", c.first)
	}
	jobs := &gatewayJobs{g: g, p: p, first: c.first, newThread: c.newThread, runID: strconv.FormatInt(time.Now().UnixMilli(), 36)}
	fmt.Fprintf(progress, "relatedload: %d interactions sampled (%d with a second Related page, %d open)\n", len(p.all), len(p.paged), len(p.open))
	prep := newRand(c.seed, streamPrep)
	if err := warm(ctx, c, progress, func() job { return jobs.build(opOpen, prep) }); err != nil {
		return nil, err
	}
	if c.calibrate > 0 && !c.peer {
		for _, op := range m.ops {
			fmt.Fprintf(progress, "relatedload: calibrating %s (%d serial requests)\n", op, c.calibrate)
			cal, err := calibrate(ctx, g, jobs, op, c.calibrate, prep, c.timeout)
			if err != nil {
				return nil, fmt.Errorf("calibrate %s: %w", op, err)
			}
			rep.Calibration = append(rep.Calibration, cal)
		}
	}
	if len(c.segments) > 0 {
		fmt.Fprintf(progress, "relatedload: open loop, phases %s, mix %s\n", c.phasesText, m)
	} else {
		fmt.Fprintf(progress, "relatedload: open loop, %g/s for %s, mix %s\n", c.rate, c.duration, m)
	}
	ops, targets := newRand(c.seed, streamOps), newRand(c.seed, streamTargets)
	rep.Gateway, err = gatewayPhase(ctx, c, g, func() job { return jobs.build(m.pick(ops), targets) }, progress)
	if err != nil {
		return nil, err
	}
	rep.Interrupted = rep.Gateway.Loop.Interrupted
	return rep, nil
}

// gatewayPhase runs one open-loop phase against the gateway (or the peer),
// reading its command counters and its CPU before and after.
func gatewayPhase(ctx context.Context, c config, g *gateway, next func() job, progress io.Writer) (*Phase, error) {
	var before counters
	var err error
	if !g.peer {
		if before, err = fetchCounters(ctx, g.hc, g.base); err != nil {
			return nil, err
		}
	}
	cpu := c.cpuSource(g)
	var cpu0 procSample
	if cpu != nil {
		if cpu0, err = cpu.read(ctx); err != nil {
			return nil, err
		}
	}
	var sampled cpuSource // the timeline of a phased loop reads the CPU each second
	if len(c.segments) > 0 {
		sampled = cpu
	}
	samples := startSampler(ctx, sampled, time.Second)
	rec := newRecorder()
	loop := openLoop(ctx, loopConfig{rate: c.rate, duration: c.duration, segments: c.segments, cap: c.cap, timeout: c.timeout, progress: progress}, next, rec)
	perSecond := samples()
	// Read the counters even after Ctrl-C, for the partial report.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	ph := newPhase(loop, rec)
	all := ph.Ops[len(ph.Ops)-1]
	if cpu != nil {
		cpu1, err := cpu.read(mctx)
		if err != nil {
			return nil, err
		}
		ph.CPU = serverCPU(cpu.name(), cpu0, cpu1, loop.ElapsedS, all.Count, all.Count-all.Errors)
	}
	if len(c.segments) > 0 {
		ph.Segments, ph.Recovery = segmentWindows(rec, c.segments)
		_, length := schedule(c.segments)
		ph.Timeline = rec.timeline(length, time.Second)
		for i := range ph.Timeline {
			if i < len(perSecond) {
				ph.Timeline[i].CPUCores = perSecond[i]
			}
		}
	}
	if g.peer {
		return ph, nil
	}
	after, err := fetchCounters(mctx, g.hc, g.base)
	if err != nil {
		return nil, err
	}
	d, total := delta(before.Commands, after.Commands)
	ph.Commands, ph.CommandsTotal = d, total
	if n := all.Count; n > 0 {
		ph.CommandsPerRequest = round2(float64(total) / float64(n))
	}
	if n := after.Requests - before.Requests; n > 0 {
		ph.ServerRequests = n
		ph.ServerMeanMs = round3((after.Seconds - before.Seconds) / float64(n) * 1000)
	}
	return ph, nil
}

// cpuSource is where the server's CPU is read: /proc/PID with -pid, else
// the gateway's /metrics; none for the peer without -pid.
func (c config) cpuSource(g *gateway) cpuSource {
	switch {
	case c.pid > 0:
		return procSource{pid: c.pid, root: "/proc"}
	case !g.peer:
		return metricsCPU{hc: g.hc, base: g.base}
	}
	return nil
}

// startSampler reads src every interval until the returned function is
// called, which returns the cores busy in each interval (CPU seconds over
// wall seconds). A nil src samples nothing.
func startSampler(ctx context.Context, src cpuSource, interval time.Duration) func() []float64 {
	if src == nil {
		return func() []float64 { return nil }
	}
	stop := make(chan struct{})
	done := make(chan []float64)
	go func() {
		var out []float64
		t := time.NewTicker(interval)
		defer t.Stop()
		prev, err := src.read(ctx)
		last := time.Now()
		for err == nil {
			select {
			case <-stop:
				done <- out
				return
			case <-t.C:
			}
			cur, rerr := src.read(ctx)
			if rerr != nil {
				break
			}
			now := time.Now()
			out = append(out, round2((cur.CPUSeconds-prev.CPUSeconds)/now.Sub(last).Seconds()))
			prev, last = cur, now
		}
		<-stop
		done <- out
	}()
	return func() []float64 {
		close(stop)
		return <-done
	}
}

// segmentWindows summarizes each segment of a phased loop by its requests'
// due times, and the last segment from 2 s after its start: the recovery
// after an overload.
func segmentWindows(rec *recorder, segs []segment) ([]Window, *Window) {
	var out []Window
	var at time.Duration
	for _, s := range segs {
		out = append(out, rec.window(at, at+s.Duration))
		at += s.Duration
	}
	last := segs[len(segs)-1]
	if len(segs) < 2 || last.Duration <= recoveryGrace {
		return out, nil
	}
	w := rec.window(at-last.Duration+recoveryGrace, at)
	return out, &w
}

// recoveryGrace is how long after an overload ends the recovery window
// starts: the "within 2 s after the overload".
const recoveryGrace = 2 * time.Second

// warm runs c.warmup jobs serially, unrecorded, so the measured phases
// start with warm caches and connections.
func warm(ctx context.Context, c config, progress io.Writer, next func() job) error {
	if c.warmup == 0 {
		return nil
	}
	fmt.Fprintf(progress, "relatedload: warming up (%d serial opens)\n", c.warmup)
	failed := 0
	var last string
	for range c.warmup {
		j := next()
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		kind := j.run(rctx)
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("warm-up: %w", ctx.Err())
		}
		if kind != "" {
			failed++
			last = kind
		}
	}
	if failed == c.warmup {
		return fmt.Errorf("warm-up: every request failed (%s)%s", last, hint(last))
	}
	return nil
}

// runFloor samples the tenant's interactions from the database and runs
// the open-loop phase of floor reads.
func runFloor(ctx context.Context, c config, progress io.Writer) (*Report, error) {
	f, err := openFloor(ctx, c.dataDir, c.tenant, c.first)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep := newReport("floor", c, mix{ops: []string{opOpen}, weights: []int{1}, total: 1})
	ids, err := floorSample(ctx, c, f, rep, progress)
	if err != nil {
		return nil, err
	}
	rep.Floor, err = floorPhase(ctx, c, f, ids, progress)
	if err != nil {
		return nil, err
	}
	rep.Interrupted = rep.Floor.Loop.Interrupted
	return rep, nil
}

// floorSample samples interaction ids from the floor's database.
func floorSample(ctx context.Context, c config, f *floorDB, rep *Report, progress io.Writer) ([]string, error) {
	fmt.Fprintf(progress, "relatedload: sampling up to %d interactions of tenant %q from %s\n", c.sample, c.tenant, c.dataDir)
	t0 := time.Now()
	ids, err := f.sample(ctx, c.sample)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("tenant %q has no interactions in %s", c.tenant, c.dataDir)
	}
	rep.Sample = &SampleInfo{Interactions: len(ids), Seconds: round2(time.Since(t0).Seconds())}
	return ids, nil
}

// floorPhase warms up and runs the open-loop phase of floor reads over ids.
func floorPhase(ctx context.Context, c config, f *floorDB, ids []string, progress io.Writer) (*Phase, error) {
	prep := newRand(c.seed, streamPrep)
	if err := warm(ctx, c, progress, func() job { return f.job(ids[prep.IntN(len(ids))]) }); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "relatedload: floor open loop, %g/s for %s\n", c.rate, c.duration)
	targets := newRand(c.seed, streamTargets)
	rec := newRecorder()
	loop := openLoop(ctx, loopConfig{rate: c.rate, duration: c.duration, cap: c.cap, timeout: c.timeout, progress: progress},
		func() job { return f.job(ids[targets.IntN(len(ids))]) }, rec)
	return newPhase(loop, rec), nil
}

// runCompare runs the floor phase, then the gateway phase with open
// arrivals only over the same interactions in the same order, and
// compares their latency.
func runCompare(ctx context.Context, c config, progress io.Writer) (*Report, error) {
	g, err := newGateway(c.url, c.key, c.cap, c.allowRemote, false)
	if err != nil {
		return nil, err
	}
	f, err := openFloor(ctx, c.dataDir, c.tenant, c.first)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep := newReport("compare", c, mix{ops: []string{opOpen}, weights: []int{1}, total: 1})
	ids, err := floorSample(ctx, c, f, rep, progress)
	if err != nil {
		return nil, err
	}
	// The floor first, with the gateway idle.
	rep.Floor, err = floorPhase(ctx, c, f, ids, progress)
	if err != nil {
		return nil, err
	}
	if rep.Floor.Loop.Interrupted {
		rep.Interrupted = true
		return rep, nil
	}
	// Then the gateway, opening the same interactions in the same order.
	p := &pool{}
	for _, id := range ids {
		p.add(target{ID: related.GlobalID(related.NodeInteraction, id)})
	}
	jobs := &gatewayJobs{g: g, p: p, first: c.first}
	prep := newRand(c.seed, streamPrep)
	if err := warm(ctx, c, progress, func() job { return jobs.build(opOpen, prep) }); err != nil {
		return nil, err
	}
	if c.calibrate > 0 {
		fmt.Fprintf(progress, "relatedload: calibrating open (%d serial requests)\n", c.calibrate)
		cal, err := calibrate(ctx, g, jobs, opOpen, c.calibrate, prep, c.timeout)
		if err != nil {
			return nil, err
		}
		rep.Calibration = append(rep.Calibration, cal)
	}
	// The same draws as the floor's phase: the same interactions in the
	// same order.
	fmt.Fprintf(progress, "relatedload: gateway open loop, %g/s for %s\n", c.rate, c.duration)
	targets := newRand(c.seed, streamTargets)
	rep.Gateway, err = gatewayPhase(ctx, c, g, func() job { return jobs.build(opOpen, targets) }, progress)
	if err != nil {
		return nil, err
	}
	rep.Interrupted = rep.Gateway.Loop.Interrupted
	rep.Overhead = overhead(rep.Floor, rep.Gateway)
	return rep, nil
}

// writeSummary prints rep's phase as one tab-separated line.
func writeSummary(rep *Report, w io.Writer) int {
	ph := rep.Gateway
	if ph == nil {
		ph = rep.Floor
	}
	if ph == nil {
		return 1
	}
	all := ph.Ops[len(ph.Ops)-1]
	cpu := ServerCPU{}
	if ph.CPU != nil {
		cpu = *ph.CPU
	}
	fmt.Fprintf(w, "%s\t%g\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\n", rep.Mode, rep.Config.Rate, all.Count, all.Errors,
		all.Latency.P50, all.Latency.P99, cpu.PerRequestMs, cpu.Cores, cpu.RSSMiB, cpu.PeakRSSMiB, rep.Machine.Load1Start, cpu.AnonMiB, cpu.PssMiB)
	if rep.Interrupted {
		return 130
	}
	return 0
}
