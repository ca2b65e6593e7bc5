package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/operation"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// gateStore holds every open-an-interaction read at a gate until the test
// opens it, counting the reads that arrived: requests then stay in flight
// for as long as the test needs, with no timing involved.
type gateStore struct {
	*sqlite.Store
	entered atomic.Int64
	gate    chan struct{}
}

func (g *gateStore) OpenView(ctx context.Context, tenant, id string, v *store.OpenView) (bool, error) {
	g.entered.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return g.Store.OpenView(ctx, tenant, id, v)
}

// admissionServer is a gateway whose store holds opens at a gate.
func admissionServer(t *testing.T, adm server.Admission) (*planPair, *gateStore, string) {
	t.Helper()
	cmds := new(store.Commands)
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Commands: cmds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gs := &gateStore{Store: st, gate: make(chan struct{})}
	srv := httptest.NewServer(server.New(server.Options{Store: gs, Commands: cmds, Limits: server.Limits{RatePerSecond: -1}, Admission: adm}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-gs.gate:
		default:
			close(gs.gate)
		}
	})
	secret, k, err := store.NewKey(server.DemoTenant, related.RoleAgent, "admission test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	in, err := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: "a", Direction: related.Inbound, Body: "hello",
		Contact: related.ContactInput{Address: "ann@example.com"}}.Normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.RecordMessage(context.Background(), server.DemoTenant, in)
	if err != nil {
		t.Fatal(err)
	}
	p := &planPair{t: t, st: st, planned: srv.URL, key: secret}
	p.metrics = func() string {
		_, b := p.get(srv.URL + "/metrics")
		return string(b)
	}
	body, _ := json.Marshal(map[string]any{"query": operation.OpenInteraction, "variables": map[string]any{"id": related.GlobalID(related.NodeInteraction, res.Interaction.ID)}})
	return p, gs, string(body)
}

// answer is one request's outcome.
type answer struct {
	status     int
	retryAfter string
	body       string
}

// waitFor polls cond until it holds, failing after a generous bound: the
// test counts, and only waits for the counts to be reached.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// metricValue reads one series of /metrics.
func metricValue(metrics, series string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, series+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(line, series+" "), &v)
			return v
		}
	}
	return -1
}

// TestAdmissionQueueIsBounded proves by counting that the server runs at
// most Concurrency requests, queues at most Queue more, and refuses every
// other one at once with 503 UNAVAILABLE and Retry-After; and that the
// queued ones run when slots free up.
func TestAdmissionQueueIsBounded(t *testing.T) {
	const running, queue, extra = 2, 3, 10
	p, gs, body := admissionServer(t, server.Admission{Concurrency: running, Queue: queue, QueueWait: time.Hour})
	answers := make(chan answer, running+extra)
	send := func() {
		go func() {
			status, b, h := p.postFull(p.planned, []byte(body))
			answers <- answer{status, h.Get("Retry-After"), string(b)}
		}()
	}
	for range running {
		send()
	}
	waitFor(t, "the first requests to run", func() bool { return gs.entered.Load() == running })
	for range extra {
		send()
	}
	// Every request beyond the running and the queued is refused at once,
	// while the gate is still shut.
	refused := 0
	for refused < extra-queue {
		a := <-answers
		if a.status != 503 || a.retryAfter != "1" || !strings.Contains(a.body, `"code":"UNAVAILABLE"`) {
			t.Fatalf("a request beyond the queue got %d (Retry-After %q): %s", a.status, a.retryAfter, a.body)
		}
		refused++
	}
	waitFor(t, "the queue to fill", func() bool { return metricValue(p.metrics(), "related_admission_queued") == queue })
	m := p.metrics()
	if got := metricValue(m, "related_admission_in_flight"); got != running {
		t.Fatalf("in flight %v, want %d", got, running)
	}
	if got := gs.entered.Load(); got != running {
		t.Fatalf("%d reads started, want %d: the limit let more run", got, running)
	}
	close(gs.gate)
	for range running + queue {
		if a := <-answers; a.status != 200 || strings.Contains(a.body, `"errors"`) {
			t.Fatalf("an admitted request got %d: %s", a.status, a.body)
		}
	}
	m = p.metrics()
	for outcome, want := range map[string]float64{"admitted": running, "queued": queue, "refused": extra - queue} {
		if got := metricValue(m, `related_admission_requests_total{outcome="`+outcome+`"}`); got != want {
			t.Errorf("%s: %v, want %v", outcome, got, want)
		}
	}
	if got := gs.entered.Load(); got != running+queue {
		t.Fatalf("%d reads in all, want %d", got, running+queue)
	}
}

// TestAdmissionQueueWaitIsBounded: a queued request that finds no slot
// within QueueWait is refused; it never runs.
func TestAdmissionQueueWaitIsBounded(t *testing.T) {
	p, gs, body := admissionServer(t, server.Admission{Concurrency: 1, Queue: 2, QueueWait: time.Millisecond})
	first := make(chan int, 1)
	go func() {
		status, _, _ := p.postFull(p.planned, []byte(body))
		first <- status
	}()
	waitFor(t, "the first request to run", func() bool { return gs.entered.Load() == 1 })
	for range 2 {
		if status, b, h := p.postFull(p.planned, []byte(body)); status != 503 || h.Get("Retry-After") == "" {
			t.Fatalf("a request that waited past QueueWait got %d: %s", status, b)
		}
	}
	close(gs.gate)
	if status := <-first; status != 200 {
		t.Fatalf("the running request got %d", status)
	}
	if got := gs.entered.Load(); got != 1 {
		t.Fatalf("%d reads, want 1: a refused request ran", got)
	}
}
