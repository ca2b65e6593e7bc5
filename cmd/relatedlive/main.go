// Command relatedlive is the live-updates load benchmark: N WebSocket
// subscribers (graphql-transport-ws) watch the Related panels of M
// interactions, and K more watch the tenant's inbox (interactionsChanged,
// which receives every write), while writes flow at a fixed rate; it
// reports the delivery latency, the server's memory per subscriber and its
// CPU.
//
// It runs the gateway as a child process (itself with -serve), on the
// embedded database in a temporary directory, so the server's RSS and CPU
// are measured apart from the clients':
//
//	go run ./cmd/relatedlive -subscribers 10000 -panels 1000 -rate 200 -duration 30s
//	go run ./cmd/relatedlive -subscribers 1000 -panels 100 -inboxes 50 -rate 200 -duration 30s
//
// Latency is measured from just before a write is sent to the moment a
// subscriber receives its event: an upper bound of commit-to-client, since
// it includes the write's own request. See BENCHMARKS.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

func main() {
	var (
		serve       = flag.Bool("serve", false, "internal: run the gateway child process")
		subscribers = flag.Int("subscribers", 1000, "concurrent subscribers (one WebSocket connection each)")
		panels      = flag.Int("panels", 100, "distinct Related panels the subscribers watch")
		rate        = flag.Int("rate", 200, "writes per second, spread over the panels")
		duration    = flag.Duration("duration", 30*time.Second, "how long writes flow while measuring")
		inboxes     = flag.Int("inboxes", 0, "more subscribers, each on the tenant's inbox (interactionsChanged(status: OPEN)), which every write reaches")
	)
	flag.Parse()
	raiseFileLimit()
	if *serve {
		if err := serveChild(*panels, *subscribers, *inboxes); err != nil {
			fmt.Fprintln(os.Stderr, "relatedlive -serve:", err)
			os.Exit(1)
		}
		return
	}
	if err := bench(*subscribers, *panels, *inboxes, *rate, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "relatedlive:", err)
		os.Exit(1)
	}
}

// setup is what the child tells the parent on its first stdout line.
type setup struct {
	Addr   string
	Key    string
	Panels []string // interaction ids of the panels' subjects
	Others []string // an interaction in each panel's scope, which the writes update
	Pid    int
}

// forward is the store's publisher until the hub exists.
type forward struct{ hub atomic.Pointer[live.Hub] }

func (f *forward) Publish(ctx context.Context, events []store.Event) {
	if h := f.hub.Load(); h != nil {
		h.Publish(ctx, events)
	}
}

// serveChild runs a gateway on a fresh embedded database with M panels.
func serveChild(panels, subscribers, inboxes int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "relatedlive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fwd := &forward{}
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, Publisher: fwd, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	hub := live.New(live.Options{Store: st, Logger: log, MaxListsPerKey: inboxes + 1})
	fwd.hub.Store(hub)
	secret, k, err := store.NewKey(server.DemoTenant, related.RoleAdmin, "bench", time.Now())
	if err != nil {
		return err
	}
	if err := st.CreateKey(ctx, k); err != nil {
		return err
	}
	out := setup{Key: secret, Pid: os.Getpid()}
	for i := range panels {
		addr := fmt.Sprintf("customer%d@example.com", i)
		// Thread refs are unique per channel: one per panel.
		a, err := record(ctx, st, addr, fmt.Sprint("subject-", i), "panel subject")
		if err != nil {
			return err
		}
		b, err := record(ctx, st, addr, fmt.Sprint("other-", i), "panel row")
		if err != nil {
			return err
		}
		out.Panels = append(out.Panels, related.GlobalID(related.NodeInteraction, a))
		out.Others = append(out.Others, b)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	out.Addr = ln.Addr().String()
	srv := &http.Server{Handler: server.New(server.Options{
		Store: st, Hub: hub, Logger: log,
		Limits: server.Limits{RatePerSecond: -1, AnonPerSecond: -1, MaxSubscriptions: subscribers + inboxes + 100, MaxConnections: -1, MaxInFlight: -1},
	})}
	go srv.Serve(ln)
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hub.Close(cctx)
	return srv.Shutdown(cctx)
}

func record(ctx context.Context, st store.Store, addr, thread, body string) (string, error) {
	in, err := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: thread, Direction: related.Inbound,
		Body: body, Contact: related.ContactInput{Address: addr}}.Normalize(time.Now())
	if err != nil {
		return "", err
	}
	res, err := st.RecordMessage(ctx, server.DemoTenant, in)
	if err != nil {
		return "", err
	}
	return res.Interaction.ID, nil
}

// procStat is a process's RSS and CPU time, from /proc.
type procStat struct {
	rss int64         // bytes
	cpu time.Duration // user + system
}

func readProc(pid int) (procStat, error) {
	var ps procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			ps.rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	ps.cpu = time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
	return ps, nil
}

func bench(n, m, k, rate int, duration time.Duration) error {
	if m > n {
		m = n
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(exe, "-serve", "-panels", strconv.Itoa(m), "-subscribers", strconv.Itoa(n), "-inboxes", strconv.Itoa(k))
	child.Stderr = os.Stderr
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() {
		_ = child.Process.Signal(syscall.SIGTERM)
		_ = child.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("child setup: %w", err)
	}
	var s setup
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		return fmt.Errorf("child setup %q: %w", line, err)
	}
	runtime.GC()
	base, err := readProc(s.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("gateway pid %d on %s: %d panels; baseline RSS %.1f MiB\n", s.Pid, s.Addr, m, mib(base.rss))

	// Subscribe: subscriber i watches panel i mod M.
	var (
		lat     = make(chan time.Duration, 1<<16)
		errs    atomic.Int64
		ctx, cf = context.WithCancel(context.Background())
		wg      sync.WaitGroup
		ready   sync.WaitGroup
	)
	defer cf()
	start := time.Now()
	sem := make(chan struct{}, 64) // connect 64 at a time
	for i := range n + k {
		wg.Add(1)
		ready.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			panel := "" // the inbox
			if i < n {
				panel = s.Panels[i%m]
			}
			err := subscribe(ctx, s, panel, &ready, sem, lat)
			if err != nil && ctx.Err() == nil {
				if errs.Add(1) <= 5 {
					fmt.Fprintln(os.Stderr, "subscriber:", err)
				}
			}
		}()
	}
	ready.Wait()
	if e := errs.Load(); e > 0 {
		return fmt.Errorf("%d subscribers failed", e)
	}
	if err := waitSubscriptions(s, n+k); err != nil {
		return err
	}
	runtime.GC()
	subscribed, _ := readProc(s.Pid)
	fmt.Printf("%d subscribers (%d on panels, %d on the inbox) connected in %s; RSS %.1f MiB (%.1f KiB per subscriber)\n",
		n+k, n, k, time.Since(start).Round(time.Millisecond), mib(subscribed.rss), float64(subscribed.rss-base.rss)/1024/float64(n+k))

	// Writes at a fixed rate, each to a random panel's other interaction.
	var sent, failed atomic.Int64
	var samples []time.Duration
	collected := make(chan struct{})
	go func() {
		for d := range lat {
			samples = append(samples, d)
		}
		close(collected)
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	before, _ := readProc(s.Pid)
	t0 := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	var writers sync.WaitGroup
	var peakRSS int64
	for time.Since(t0) < duration {
		<-tick.C
		writers.Add(1)
		go func() {
			defer writers.Done()
			j := rand.IntN(m)
			if err := write(client, s, j); err != nil {
				if failed.Add(1) <= 5 {
					fmt.Fprintln(os.Stderr, "write:", err)
				}
				return
			}
			sent.Add(1)
		}()
		if p, err := readProcRSS(s.Pid); err == nil && p > peakRSS {
			peakRSS = p
		}
	}
	tick.Stop()
	writers.Wait()
	elapsed := time.Since(t0)
	after, _ := readProc(s.Pid)
	dropped := metric(s, "related_subscriptions_dropped_total")
	time.Sleep(2 * time.Second) // let the last events arrive
	cf()
	wg.Wait()
	close(lat)
	<-collected

	expected := sent.Load() * int64(n/m+k)
	slices.Sort(samples)
	fmt.Printf("writes: %d sent (%.0f/s), %d failed; events: %d received of %d expected (%d subscribers per panel, %d inboxes); %d subscribers dropped as too slow\n",
		sent.Load(), float64(sent.Load())/elapsed.Seconds(), failed.Load(), len(samples), expected, n/m, k, dropped)
	if len(samples) > 0 {
		fmt.Printf("latency write-sent -> client: p50 %s  p90 %s  p99 %s  max %s\n",
			pct(samples, 0.50), pct(samples, 0.90), pct(samples, 0.99), samples[len(samples)-1].Round(time.Millisecond/10))
	}
	cpu := after.cpu - before.cpu
	fmt.Printf("server CPU: %.2f s over %.1f s = %.0f%% of one core (2 cores on this machine: %d)\n",
		cpu.Seconds(), elapsed.Seconds(), 100*cpu.Seconds()/elapsed.Seconds(), runtime.NumCPU())
	fmt.Printf("server RSS: baseline %.1f MiB, subscribed %.1f MiB, peak under load %.1f MiB, end %.1f MiB; per subscriber %.1f KiB\n",
		mib(base.rss), mib(subscribed.rss), mib(max(peakRSS, after.rss)), mib(after.rss), float64(max(peakRSS, after.rss)-base.rss)/1024/float64(n))
	return nil
}

func readProcRSS(pid int) (int64, error) {
	p, err := readProc(pid)
	return p.rss, err
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func pct(s []time.Duration, q float64) time.Duration {
	return s[min(len(s)-1, int(q*float64(len(s))))].Round(time.Millisecond / 10)
}

// subscribe opens one connection, subscribes to panel (the inbox when
// panel is "") and reports the latency of every event until ctx ends.
func subscribe(ctx context.Context, s setup, panel string, ready *sync.WaitGroup, sem chan struct{}, lat chan<- time.Duration) error {
	once := sync.OnceFunc(func() { <-sem; ready.Done() })
	defer once()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, "ws://"+s.Addr+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	send := func(v any) error {
		b, _ := json.Marshal(v)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	if err := send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + s.Key}}); err != nil {
		return err
	}
	if _, _, err := conn.Read(dctx); err != nil {
		return err
	}
	payload := map[string]any{
		"query":     `subscription($id: ID!) { relatedChanged(interactionId: $id) { kind interactionId interaction { lastMessage { body } } } }`,
		"variables": map[string]any{"id": panel},
	}
	if panel == "" {
		payload = map[string]any{"query": `subscription { interactionsChanged(status: OPEN) { kind interactionId interaction { lastMessage { body } } } }`}
	}
	if err := send(map[string]any{"type": "subscribe", "id": "1", "payload": payload}); err != nil {
		return err
	}
	once()
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		// The payload of either subscription: data.<field>.interaction.
		var m struct {
			Type    string
			Payload struct {
				Data map[string]struct {
					Interaction struct{ LastMessage struct{ Body string } }
				}
			}
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		switch m.Type {
		case "ping":
			if err := send(map[string]any{"type": "pong"}); err != nil {
				return err
			}
		case "next":
			var body string
			for _, c := range m.Payload.Data {
				body = c.Interaction.LastMessage.Body
			}
			if ns, err := strconv.ParseInt(strings.TrimPrefix(body, "t="), 10, 64); err == nil {
				select {
				case lat <- now.Sub(time.Unix(0, ns)):
				default:
				}
			}
		case "error", "complete":
			return fmt.Errorf("subscription ended: %s", b)
		}
	}
}

// write records a message on panel j's other interaction, its body the
// time it was sent.
func write(c *http.Client, s setup, j int) error {
	in := map[string]any{"channel": "EMAIL", "threadRef": fmt.Sprint("other-", j), "direction": "INBOUND",
		"contact": map[string]any{"address": fmt.Sprintf("customer%d@example.com", j)},
		"body":    fmt.Sprintf("t=%d", time.Now().UnixNano())}
	body, _ := json.Marshal(map[string]any{
		"query":     `mutation($in: RecordMessageInput!) { recordMessage(input: $in) { userErrors { message } } }`,
		"variables": map[string]any{"in": in},
	})
	req, _ := http.NewRequest("POST", "http://"+s.Addr+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Key)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || bytes.Contains(raw, []byte(`"errors"`)) {
		return fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	return nil
}

// metric returns the value of an unlabelled series of the gateway's
// /metrics, or -1.
func metric(s setup, name string) int64 {
	resp, err := http.Get("http://" + s.Addr + "/metrics")
	if err != nil {
		return -1
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// waitSubscriptions waits until the gateway's /metrics counts n
// subscriptions.
func waitSubscriptions(s setup, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if metric(s, "related_subscriptions") >= int64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the gateway never counted every subscription")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// raiseFileLimit lifts the open-files limit to its hard maximum: 10,000
// connections need as many descriptors on each side.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
