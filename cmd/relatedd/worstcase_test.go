package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relatedhq/related"
)

// worstCaseRSS is the README's figure (Resource bounds, "one key at its
// worst"): the most resident memory the server process reaches while one
// key does everything its limits allow, on the default limits, with no
// GOMEMLIMIT.
const worstCaseRSS = 512 << 20

// TestOneKeyAtItsWorst builds relatedd, gives it a thread of 100 messages
// of 256 KiB, restarts it on the default limits, and has one key do
// everything its limits allow at once for a while: HTTP and event-stream
// requests for the largest responses the schema can describe, every
// WebSocket and event stream the key may open, every subscription it may
// hold (each selecting a page of those messages) fed by writes, and
// distinct 14 KB documents for the query cache. (Bodies trickling in hold
// operation slots and almost no memory: they would only make the rest
// lighter; TestAttackSlowBody covers them.) It reads
// the server's peak resident memory (VmHWM in /proc/PID/status: the
// kernel's own count, of a real process, so nothing the test process
// allocates is counted and nothing the runtime holds is missed) and holds
// it under worstCaseRSS. It also logs the CPU the server used per second
// and the most descriptors it held open.
func TestOneKeyAtItsWorst(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a real server for seconds")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the server's memory")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "relatedd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")

	// The data, loaded with the limits off.
	seeder := startRelatedd(t, bin, data, "--rate-limit", "-1", "--max-inflight", "-1")
	key := seeder.key
	long := strings.Repeat("A long email, quoted and requoted again. ", (related.MaxBodyLength-100)/41)
	var thread string
	for i := range 100 {
		thread = seeder.record(t, key, "long", fmt.Sprint(i, " ", long))
	}
	seeder.stop(t)

	// The server as it runs: the default limits.
	srv := startRelatedd(t, bin, data)
	defer srv.stop(t)
	time.Sleep(500 * time.Millisecond)

	var aliases strings.Builder
	for i := range 16 {
		fmt.Fprintf(&aliases, " m%d: messages(first: 100) { edges { node { body } } }", i)
	}
	huge := `query($id: ID!) { interaction(id: $id) {` + aliases.String() + ` } }`
	hugeBody, _ := json.Marshal(map[string]any{"query": huge, "variables": map[string]any{"id": thread}})

	// The heaviest operation there is, alone: what one token buys.
	before := srv.proc(t)
	const alone = 20
	for range alone {
		if status := srv.post(t, key, hugeBody); status != 200 {
			t.Fatalf("the heavy operation alone: %d", status)
		}
	}
	perOp := (srv.proc(t).cpu - before.cpu) / alone

	base := srv.proc(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	heavySub := `subscription($id: ID!) { interactionUpdated(id: $id) { messages(first: 100) { edges { node { body } } } } }`
	vars := map[string]any{"id": thread}
	var sent, answered atomic.Int64
	var wg sync.WaitGroup
	loop := func(n int, f func(i int)) {
		for w := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					f(w*1_000_000 + i)
					sent.Add(1)
				}
			}()
		}
	}
	post := func(body []byte, accept string) {
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.url+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", accept)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answered.Add(1)
	}
	// The largest responses, over HTTP and as event streams.
	loop(12, func(int) { post(hugeBody, "application/json") })
	loop(4, func(int) { post(hugeBody, "text/event-stream") })
	// Distinct 14 KB documents, for the parsed-query cache.
	loop(2, func(i int) {
		var b strings.Builder
		fmt.Fprintf(&b, "query Q%d($id: ID!) { ", i)
		for a := range 49 {
			fmt.Fprintf(&b, "a%d: interaction(id: $id) { id channel status createdAt closedAt queue { id name } contact { id name address } lastMessage { id body preview sentAt } profile { id name channels } } ", a)
		}
		b.WriteString("}")
		body, _ := json.Marshal(map[string]any{"query": b.String(), "variables": vars})
		post(body, "application/json")
	})
	// Writes to the thread, which every subscription below follows.
	loop(1, func(i int) {
		body, _ := json.Marshal(map[string]any{"query": `mutation($in: RecordMessageInput!) { recordMessage(input: $in) { userErrors { code } } }`,
			"variables": map[string]any{"in": map[string]any{"channel": "EMAIL", "threadRef": "long", "direction": "INBOUND",
				"body": fmt.Sprint("write ", i), "contact": map[string]any{"address": "worst@example.com"}}}})
		post(body, "application/json")
	})
	// Every WebSocket the key may open (one more than it may, to be sure),
	// carrying every subscription it may hold, each on the heavy page,
	// and as many operations as the socket takes.
	subs := 0
	for c := range 21 {
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.url, "http")+"/graphql", &websocket.DialOptions{
			Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: http.Header{"Authorization": {"Bearer " + key}}})
		if err != nil {
			continue
		}
		conn.SetReadLimit(16 << 20)
		defer conn.CloseNow()
		write := func(v any) error {
			b, _ := json.Marshal(v)
			return conn.Write(ctx, websocket.MessageText, b)
		}
		if write(map[string]any{"type": "connection_init"}) != nil {
			continue
		}
		wg.Add(1)
		go func() { // read and drop everything
			defer wg.Done()
			for {
				if _, _, err := conn.Read(ctx); err != nil {
					return
				}
			}
		}()
		for range 3 {
			write(map[string]any{"id": fmt.Sprint("s", subs), "type": "subscribe", "payload": map[string]any{"query": heavySub, "variables": vars}})
			subs++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if write(map[string]any{"id": fmt.Sprint("q", c, "-", i), "type": "subscribe", "payload": map[string]any{"query": huge, "variables": vars}}) != nil {
					return
				}
				sent.Add(1)
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}

	var peakFDs int
	var samples int
	for ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if n := srv.fds(); n > peakFDs {
			peakFDs = n
		}
		samples++
	}
	end := srv.proc(t)
	wg.Wait()
	cpu := (end.cpu - base.cpu).Seconds() / 15
	t.Logf("the heaviest operation alone costs %v of CPU", perOp)
	t.Logf("one key at its worst for 15 s: %d requests and messages sent, %d HTTP answers; server RSS %d MiB at rest, peak %d MiB (limit %d MiB); %.2f CPU-seconds per second; at most %d descriptors open",
		sent.Load(), answered.Load(), base.rss>>20, end.hwm>>20, worstCaseRSS>>20, cpu, peakFDs)
	if end.hwm > worstCaseRSS {
		t.Fatalf("the server's resident memory peaked at %d MiB, over the README's %d MiB", end.hwm>>20, worstCaseRSS>>20)
	}
	// The server is still serving.
	if !srv.ready() {
		t.Fatal("the server is not ready after the attack")
	}
}

// relatedd is a running relatedd process.
type relatedd struct {
	cmd  *exec.Cmd
	url  string
	key  string // the first start's admin key, if this was the first start
	done chan error
}

func startRelatedd(t *testing.T, bin, data string, flags ...string) *relatedd {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append([]string{"serve", "--addr", addr, "--data-dir", data}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &relatedd{cmd: cmd, url: "http://" + addr, done: make(chan error, 1)}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		l := strings.TrimSpace(lines.Text())
		if strings.HasPrefix(l, "rk_") && r.key == "" {
			r.key = l
		}
		if strings.HasPrefix(l, "Related is serving on ") {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	go func() { r.done <- cmd.Wait() }()
	if !r.ready() {
		cmd.Process.Kill()
		t.Fatal("relatedd did not become ready")
	}
	return r
}

func (r *relatedd) ready() bool {
	for range 100 {
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (r *relatedd) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(40 * time.Second):
		r.cmd.Process.Kill()
		t.Error("relatedd did not stop on SIGTERM")
	}
}

// post sends a GraphQL request body with key and returns the status.
func (r *relatedd) post(t *testing.T, key string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest("POST", r.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// record records a message with key and returns its interaction's id.
func (r *relatedd) record(t *testing.T, key, thread, body string) string {
	t.Helper()
	reqBody, _ := json.Marshal(map[string]any{
		"query": `mutation($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id } userErrors { message } } }`,
		"variables": map[string]any{"in": map[string]any{"channel": "EMAIL", "threadRef": thread, "direction": "INBOUND",
			"body": body, "contact": map[string]any{"address": "worst@example.com"}}},
	})
	req, _ := http.NewRequest("POST", r.url+"/graphql", bytes.NewReader(reqBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			RecordMessage struct {
				Interaction *struct{ ID string }
				UserErrors  []struct{ Message string }
			}
		}
		Errors []any
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil || out.Data.RecordMessage.Interaction == nil {
		t.Fatalf("record: %d %.300s", resp.StatusCode, raw)
	}
	return out.Data.RecordMessage.Interaction.ID
}

// procStat is what /proc says of a process.
type procStat struct {
	rss, hwm int64 // resident now, and at its peak
	cpu      time.Duration
}

func (r *relatedd) proc(t *testing.T) procStat {
	t.Helper()
	pid := r.cmd.Process.Pid
	var ps procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			ps.rss = kb << 10
		case "VmHWM:":
			ps.hwm = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	ps.cpu = time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
	return ps
}

// fds counts the process's open descriptors: its connections, mostly.
func (r *relatedd) fds() int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", r.cmd.Process.Pid))
	return len(entries)
}
