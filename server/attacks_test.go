package server_test

// The attacks of issue 13, each repeated against a real server: each test
// failed before its fix. They count bytes, statements, connections and
// operations, never time.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// forward is the store's publisher until the hub exists: the hub needs
// the store, and the store needs a publisher when it opens.
type forward struct{ hub atomic.Pointer[live.Hub] }

func (f *forward) Publish(ctx context.Context, events []store.Event) {
	if h := f.hub.Load(); h != nil {
		h.Publish(ctx, events)
	}
}

// liveGateway is a gateway on SQLite with a live hub, so subscriptions
// see writes. wrap, when set, wraps the store the server is given.
func liveGateway(t *testing.T, opts server.Options, wrap func(store.Store) store.Store) (*gateway, *live.Hub) {
	t.Helper()
	fwd := &forward{}
	cmds := new(store.Commands)
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Publisher: fwd, Commands: cmds})
	if err != nil {
		t.Fatal(err)
	}
	hub := live.New(live.Options{Store: st})
	fwd.hub.Store(hub)
	opts.Store, opts.Commands, opts.Hub = st, cmds, hub
	if wrap != nil {
		opts.Store, opts.Keys = wrap(st), st
	}
	if opts.KeyCacheTTL == 0 {
		opts.KeyCacheTTL = time.Minute
	}
	srv := httptest.NewServer(server.New(opts))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.Close(ctx)
		srv.CloseClientConnections()
		srv.Close()
		st.Close()
	})
	g := &gateway{t: t, url: srv.URL, cmds: cmds, st: st}
	g.key = g.newKey(server.DemoTenant, related.RoleAdmin)
	return g, hub
}

// wsMsg is a graphql-transport-ws message as the tests read it.
type wsMsg struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// wsOpen opens a graphql-transport-ws connection with key in
// connection_init and returns it once acknowledged.
func (g *gateway) wsOpen(key string) *websocket.Conn {
	g.t.Helper()
	c, err := g.wsTry(key)
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

// wsTry opens a connection; the error says why it was refused.
func (g *gateway) wsTry(key string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(64 << 20)
	g.t.Cleanup(func() { c.CloseNow() })
	if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + key}}); err != nil {
		return nil, err
	}
	var ack wsMsg
	if err := wsjson.Read(ctx, c, &ack); err != nil {
		return nil, err
	}
	if ack.Type != "connection_ack" {
		return nil, fmt.Errorf("init answered %s %s", ack.Type, ack.Payload)
	}
	return c, nil
}

func wsSubscribe(t *testing.T, c *websocket.Conn, id, query string, vars map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wsjson.Write(ctx, c, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}}); err != nil {
		t.Fatal(err)
	}
}

// wsNext reads the next message that is not a ping or pong.
func wsNext(c *websocket.Conn, d time.Duration) (wsMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		var m wsMsg
		if err := wsjson.Read(ctx, c, &m); err != nil {
			return m, err
		}
		if m.Type != "ping" && m.Type != "pong" {
			return m, nil
		}
	}
}

// codes lists the extensions.code of the errors in a payload (a response,
// or an error message's list).
func codes(payload []byte) []string {
	var out []string
	var resp struct {
		Errors []struct {
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if json.Unmarshal(payload, &resp) == nil && len(resp.Errors) > 0 {
		for _, e := range resp.Errors {
			out = append(out, fmt.Sprint(e.Extensions["code"]))
		}
		return out
	}
	var list []struct {
		Extensions map[string]any `json:"extensions"`
	}
	if json.Unmarshal(payload, &list) == nil {
		for _, e := range list {
			out = append(out, fmt.Sprint(e.Extensions["code"]))
		}
	}
	var one struct {
		Extensions map[string]any `json:"extensions"`
	}
	if len(out) == 0 && json.Unmarshal(payload, &one) == nil && one.Extensions != nil {
		out = append(out, fmt.Sprint(one.Extensions["code"]))
	}
	return out
}

// sseOpen posts an operation asking for an event stream and returns the
// response (the stream, or a refusal).
func (g *gateway) sseOpen(ctx context.Context, key, query string, vars map[string]any) *http.Response {
	g.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, "POST", g.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// sseData reads a stream's data lines into a channel, closed at its end.
func sseData(r io.Reader) <-chan string {
	out := make(chan string, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				out <- l
			}
		}
	}()
	return out
}

// TestAttackCostOverflow: a sibling connection asking for first: 2^62
// wrapped the operation's cost negative, so an over-cost query beside it
// ran (item 1). It is refused, before any database command.
func TestAttackCostOverflow(t *testing.T) {
	g := newGateway(t, backends[0])
	iid := g.record(message("EMAIL", "cost", "cost@example.com", "hi", t0)).RecordMessage.Interaction.ID
	g.must(`{ viewer { tenant } }`, nil, nil)
	q := `query($n: Int, $id: ID!) {
	  a: interactions(first: $n) { edges { node { id } } }
	  interaction(id: $id) { related(first: 100) { edges { node { messages(first: 100) { edges { node { body } } } } } } }
	}`
	for _, n := range []any{json.Number("4611686018427387904"), json.Number("9223372036854775807"), 2147483647} {
		before := g.cmds.Total()
		resp, status := g.doAs(g.key, q, map[string]any{"n": n, "id": iid}, nil)
		if len(resp.Errors) == 0 || status < 400 {
			t.Fatalf("first: %v ran: status %d, data %.200s", n, status, resp.Data)
		}
		if code := resp.Errors[0].Extensions["code"]; code != server.CodeValidationFailed && code != server.CodeTooComplex {
			t.Fatalf("first: %v: %v", n, resp.Errors)
		}
		if d := g.cmds.Total() - before; d != 0 {
			t.Fatalf("first: %v: the refused query ran %d database commands", n, d)
		}
	}
}

// TestAttackHugeResponse: sixteen aliases of a page of long messages made
// a response hundreds of times the size of any documented limit (item 2).
// The response is refused with RESPONSE_TOO_LARGE on every transport, its
// bytes stay small, and the message pages stop being read once the budget
// is spent (counted in statements).
func TestAttackHugeResponse(t *testing.T) {
	const limit = 1 << 20
	g, hub := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: -1, MaxResponseBytes: limit}}, nil)
	body := strings.Repeat("A long email, quoted and requoted. ", 64<<10/35)
	var iid string
	for i := range 40 {
		iid = g.record(message("EMAIL", "huge", "huge@example.com", fmt.Sprint(i, body), t0.Add(time.Duration(i)*time.Minute))).RecordMessage.Interaction.ID
	}
	var aliases strings.Builder
	for i := range 16 {
		fmt.Fprintf(&aliases, " m%d: messages(first: 40) { edges { node { body } } }", i)
	}
	huge := "query($id: ID!) { interaction(id: $id) {" + aliases.String() + " } }"
	vars := map[string]any{"id": iid}

	t.Run("http", func(t *testing.T) {
		g.must(`{ viewer { tenant } }`, nil, nil) // the key is cached
		before := g.cmds.Snapshot()["select"]
		reqBody, _ := json.Marshal(map[string]any{"query": huge, "variables": vars})
		_, _, raw := g.post(g.key, reqBody, "application/json")
		if c := codes(raw); len(c) != 1 || c[0] != server.CodeResponseTooLarge {
			t.Fatalf("codes %v, body %.300s", c, raw)
		}
		if len(raw) > 4<<10 {
			t.Fatalf("the refusal is %d bytes", len(raw))
		}
		// The interaction, and at most two pages of messages: the budget
		// for bodies read is twice the response's, and a page is 2.5 MiB.
		if n := g.cmds.Snapshot()["select"] - before; n > 3 {
			t.Fatalf("%d select statements: the message pages went on being read past the budget", n)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		c := g.wsOpen(g.key)
		wsSubscribe(t, c, "1", huge, vars)
		m, err := wsNext(c, 10*time.Second)
		if err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), server.CodeResponseTooLarge) || len(m.Payload) > 4<<10 {
			t.Fatalf("%s %.300s %v", m.Type, m.Payload, err)
		}
	})
	t.Run("sse", func(t *testing.T) {
		resp := g.sseOpen(context.Background(), g.key, huge, vars)
		var got []string
		for l := range sseData(resp.Body) {
			got = append(got, l)
		}
		if len(got) != 1 || !strings.Contains(got[0], server.CodeResponseTooLarge) || len(got[0]) > 4<<10 {
			t.Fatalf("events %.300q", got)
		}
	})
	t.Run("subscription event", func(t *testing.T) {
		c := g.wsOpen(g.key)
		wsSubscribe(t, c, "s", `subscription($id: ID!) { interactionUpdated(id: $id) { messages(first: 40) { edges { node { body } } } } }`, vars)
		for hub.Stats().Subscriptions == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		g.record(message("EMAIL", "huge", "huge@example.com", "one more", t0.Add(time.Hour)))
		m, err := wsNext(c, 10*time.Second)
		if err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), server.CodeResponseTooLarge) || len(m.Payload) > 4<<10 {
			t.Fatalf("%s %.300s %v", m.Type, m.Payload, err)
		}
	})
	t.Run("batch", func(t *testing.T) {
		// A batch's answer is held whole: its operations share one budget.
		op := map[string]any{"query": `query($id: ID!) { interaction(id: $id) { messages(first: 10) { edges { node { body } } } } }`, "variables": vars}
		body, _ := json.Marshal([]any{op, op, op, op, op})
		status, _, raw := g.post(g.key, body, "application/json")
		var results []json.RawMessage
		if status != 200 || json.Unmarshal(raw, &results) != nil || len(results) != 5 {
			t.Fatalf("status %d: %.300s", status, raw)
		}
		tooLarge := 0
		for _, r := range results {
			if c := codes(r); len(c) == 1 && c[0] == server.CodeResponseTooLarge {
				tooLarge++
			}
		}
		if tooLarge != 4 || len(raw) > limit+64<<10 {
			t.Fatalf("%d of 5 results refused, a %d-byte answer for a %d-byte budget", tooLarge, len(raw), limit)
		}
	})
	t.Run("no bodies selected", func(t *testing.T) {
		// The whole thread's ids, times and count read no message text,
		// so the 40 long messages are no reason to refuse them.
		var out struct {
			Interaction struct {
				Messages struct {
					TotalCount int
					Edges      []struct{ Node struct{ ID, SentAt string } }
				}
			}
		}
		g.must(`query($id: ID!) { interaction(id: $id) { m1: messages(first: 50) { totalCount } messages(first: 50) { totalCount edges { node { id sentAt } } } } }`, vars, &out)
		if m := out.Interaction.Messages; m.TotalCount < 40 || len(m.Edges) != m.TotalCount {
			t.Fatalf("%d of %d messages", len(m.Edges), m.TotalCount)
		}
	})
	t.Run("within the limit", func(t *testing.T) {
		var out struct {
			Interaction struct {
				Messages struct{ Edges []any }
			}
		}
		g.must(`query($id: ID!) { interaction(id: $id) { messages(first: 10) { edges { node { body } } } } }`, vars, &out)
		if len(out.Interaction.Messages.Edges) != 10 {
			t.Fatalf("%d messages", len(out.Interaction.Messages.Edges))
		}
	})
}

// TestAttackWebSocketRate: operations on an open WebSocket ran at any rate
// (item 3: 2,000 queries in 0.41 s on one socket, 1,000 recordMessage in
// 0.73 s). Each pays the key's rate limit now: with a burst of 10 and no
// refill to speak of, 60 operations on one socket run 9 (the socket's own
// opening paid one) and refuse the rest with RATE_LIMITED.
func TestAttackWebSocketRate(t *testing.T) {
	g, _ := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: 0.0001, RateBurst: 10}}, nil)
	c := g.wsOpen(g.key)
	before := g.cmds.Snapshot()["insert"]
	for i := range 60 {
		q := `{ viewer { tenant } }`
		var vars map[string]any
		if i%2 == 1 {
			q = recordMutation
			vars = map[string]any{"in": message("EMAIL", fmt.Sprint("ws-", i), "ws@example.com", "hi", t0)}
		}
		wsSubscribe(t, c, fmt.Sprint(i), q, vars)
	}
	ran, limited := 0, 0
	for done := 0; done < 60; {
		m, err := wsNext(c, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch m.Type {
		case "next":
			if strings.Contains(string(m.Payload), server.CodeRateLimited) {
				limited++
			} else {
				ran++
			}
		case "error":
			if !strings.Contains(string(m.Payload), server.CodeRateLimited) {
				t.Fatalf("error %s", m.Payload)
			}
			limited++
			done++
		case "complete":
			done++
		}
	}
	if ran != 9 || limited != 51 {
		t.Fatalf("%d operations ran and %d were refused; want 9 and 51", ran, limited)
	}
	if n := g.cmds.Snapshot()["insert"] - before; n == 0 || n > 9*8 {
		t.Fatalf("%d inserts for at most 5 recorded messages", n)
	}
}

// blockingStore holds every ListInteractions until released: operations
// that stay in flight as long as a test needs, without timing.
type blockingStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) ListInteractions(ctx context.Context, tenant string, f store.InteractionFilter, p store.Page) (*store.InteractionPage, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.Store.ListInteractions(ctx, tenant, f, p)
}

// TestOperationsInFlightPerKey: a key runs at most MaxInFlight operations
// at once, over HTTP and WebSocket alike; another key is not affected.
func TestOperationsInFlightPerKey(t *testing.T) {
	bs := &blockingStore{entered: make(chan struct{}, 10), release: make(chan struct{})}
	g, _ := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: -1, MaxInFlight: 2}},
		func(s store.Store) store.Store { bs.Store = s; return bs })
	slow := `{ interactions(first: 1) { edges { node { id } } } }`
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, status := g.doAs(g.key, slow, nil, nil)
			statuses <- status
		}()
	}
	<-bs.entered
	<-bs.entered
	// Both slots are held: a third operation is refused, on either
	// transport, without reaching the store.
	resp, status := g.doAs(g.key, slow, nil, nil)
	if status != http.StatusTooManyRequests || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != server.CodeRateLimited {
		t.Fatalf("a third request: %d %+v", status, resp.Errors)
	}
	c := g.wsOpen(g.key)
	wsSubscribe(t, c, "1", slow, nil)
	if m, err := wsNext(c, 10*time.Second); err != nil || !strings.Contains(string(m.Payload), server.CodeRateLimited) {
		t.Fatalf("a third operation on a socket: %s %s %v", m.Type, m.Payload, err)
	}
	// Another key has its own slots.
	if _, status := g.doAs(g.newKey(server.DemoTenant, related.RoleAgent), `{ viewer { tenant } }`, nil, nil); status != 200 {
		t.Fatalf("another key: %d", status)
	}
	close(bs.release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Fatalf("a held request answered %d", s)
		}
	}
	if _, status := g.doAs(g.key, slow, nil, nil); status != 200 {
		t.Fatalf("after the others finished: %d", status)
	}
}

// TestConnectionsPerKey: a key holds at most MaxConnections WebSockets and
// event streams; the next is refused, and a closed one frees its slot.
func TestConnectionsPerKey(t *testing.T) {
	g, _ := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: -1, MaxConnections: 2}}, nil)
	iid := g.record(message("EMAIL", "conns", "conns@example.com", "hi", t0)).RecordMessage.Interaction.ID
	first := g.wsOpen(g.key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := g.sseOpen(ctx, g.key, `subscription($id: ID!) { interactionUpdated(id: $id) { id } }`, map[string]any{"id": iid})
	if stream.StatusCode != 200 {
		t.Fatalf("the event stream: %d", stream.StatusCode)
	}
	if _, err := g.wsTry(g.key); err == nil || websocket.CloseStatus(err) != 4429 {
		t.Fatalf("a third connection: %v, want close 4429", err)
	}
	resp := g.sseOpen(context.Background(), g.key, `subscription($id: ID!) { interactionUpdated(id: $id) { id } }`, map[string]any{"id": iid})
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(raw), server.CodeTooManyConns) {
		t.Fatalf("a third stream: %d %s", resp.StatusCode, raw)
	}
	// A query from a client that accepts event streams too (urql lists
	// text/event-stream in every request) is answered in JSON and holds
	// no connection slot.
	reqBody, _ := json.Marshal(map[string]any{"query": `{ viewer { tenant } }`})
	if status, _, raw := g.post(g.key, reqBody, "application/graphql-response+json, application/json, text/event-stream"); status != 200 || !strings.Contains(string(raw), `"tenant"`) {
		t.Fatalf("a query accepting event streams too: %d %s", status, raw)
	}
	first.Close(websocket.StatusNormalClosure, "")
	for i := 0; ; i++ {
		c, err := g.wsTry(g.key)
		if err == nil {
			c.CloseNow()
			break
		}
		if i == 100 {
			t.Fatalf("a closed connection's slot never came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAttackSSEOutlivesRevocation: event streams went on delivering 15 s
// after their key was revoked (item 4). They end as WebSockets do, with a
// last event that says why (UNAUTHENTICATED).
func TestAttackSSEOutlivesRevocation(t *testing.T) {
	g, _ := liveGateway(t, server.Options{KeyCacheTTL: 50 * time.Millisecond, KeyRecheck: 50 * time.Millisecond,
		Limits: server.Limits{RatePerSecond: -1}}, nil)
	iid := g.record(message("EMAIL", "sse", "sse@example.com", "hi", t0)).RecordMessage.Interaction.ID
	key := g.newKey(server.DemoTenant, related.RoleAgent)
	resp := g.sseOpen(context.Background(), key, `subscription($id: ID!) { interactionUpdated(id: $id) { id status } }`, map[string]any{"id": iid})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	events := sseData(resp.Body)
	revoke(t, g, key)
	deadline := time.After(10 * time.Second)
	last := ""
	for {
		select {
		case d, ok := <-events:
			if !ok {
				if !strings.Contains(last, `"UNAUTHENTICATED"`) {
					t.Fatalf("the stream ended after %q, want a last event with UNAUTHENTICATED", last)
				}
				return // the stream ended
			}
			if d != "" {
				last = d
			}
		case <-deadline:
			t.Fatal("the event stream of a revoked key is still open")
		}
	}
}

// TestAttackSlowBody: a body sent a byte at a time held its connection for
// ever, its deadline set only after it was read (item 5). The server now
// answers 408 REQUEST_TIMEOUT once the body timeout passes, whatever the
// body's length, and closes the connection: the client got to send a few
// bytes of its 100,000.
func TestAttackSlowBody(t *testing.T) {
	g := newGatewayWith(t, backends[0], server.Options{KeyCacheTTL: time.Minute,
		Limits: server.Limits{RatePerSecond: -1, BodyTimeout: 300 * time.Millisecond}})
	for _, accept := range []string{"application/json", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: %s\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n", accept, g.key)
			answered := make(chan *http.Response, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err == nil {
					io.ReadAll(resp.Body)
				}
				answered <- resp
			}()
			sent := 0
			for ; sent < 200; sent++ {
				select {
				case resp := <-answered:
					if resp == nil || resp.StatusCode != http.StatusRequestTimeout {
						t.Fatalf("after %d bytes: %v", sent, resp)
					}
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := conn.Write([]byte("{")); err != nil {
					break // closed by the server
				}
			}
			select {
			case resp := <-answered:
				if resp == nil || resp.StatusCode != http.StatusRequestTimeout {
					t.Fatalf("a body trickling in for %d bytes got no 408: %v", sent, resp)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("a body trickling in for %d bytes held its connection without an answer", sent)
			}
		})
	}
}

// TestSubscriptionEventsPayTheRate: a subscription event is work its key
// causes, so building one takes a token of the key's rate limit, as an
// operation does. Otherwise fifty subscriptions with heavy selections,
// fed by writes, made one key's work per second unbounded.
func TestSubscriptionEventsPayTheRate(t *testing.T) {
	g, hub := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: 0.0001, RateBurst: 5}}, nil)
	iid := g.record(message("EMAIL", "rate", "rate@example.com", "hi", t0)).RecordMessage.Interaction.ID
	writer := g.newKey(server.DemoTenant, related.RoleAgent)
	key := g.newKey(server.DemoTenant, related.RoleAgent)
	// The socket takes a token, and the subscription another.
	c := g.wsOpen(key)
	wsSubscribe(t, c, "s", `subscription($id: ID!) { interactionUpdated(id: $id) { id } }`, map[string]any{"id": iid})
	for hub.Stats().Subscriptions == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 3 {
		var out recorded
		if r, status := g.doAs(writer, recordMutation, map[string]any{"in": message("EMAIL", "rate", "rate@example.com", fmt.Sprint("write ", i), t0.Add(time.Minute))}, &out); status != 200 {
			t.Fatalf("write %d: %d %+v", i, status, r.Errors)
		}
		if m, err := wsNext(c, 10*time.Second); err != nil || m.Type != "next" {
			t.Fatalf("event %d: %s %s %v", i, m.Type, m.Payload, err)
		}
	}
	// Five tokens: the socket, the subscription and three events.
	if _, status := g.doAs(key, `{ viewer { tenant } }`, nil, nil); status != http.StatusTooManyRequests {
		t.Fatalf("the key's bucket should be empty after three events; a request got %d", status)
	}
}

// TestDocumentLimits covers the remaining per-request limits, each refused
// with its code before the database or stopped by it: the lexer's tokens,
// the fields of a document, a connection's page size, the operation
// timeout.
func TestDocumentLimits(t *testing.T) {
	bs := &blockingStore{entered: make(chan struct{}, 10), release: make(chan struct{})}
	g, _ := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: -1, OperationTimeout: 200 * time.Millisecond}},
		func(s store.Store) store.Store { bs.Store = s; return bs })
	g.must(`{ viewer { tenant } }`, nil, nil)
	fields := "{ viewer { " + strings.Repeat("...V ", 700) + "} } fragment V on Viewer { tenant role name }"
	for _, c := range []struct{ name, query, code string }{
		{"tokens", "{ viewer { " + strings.Repeat("tenant ", 25_000) + "} }", "GRAPHQL_PARSE_FAILED"},
		{"fields", fields, server.CodeTooManyFields},
		{"page size", `{ interactions(first: 101) { totalCount } }`, related.CodeInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := g.cmds.Total()
			resp, _ := g.doAs(g.key, c.query, map[string]any{"id": "x"}, nil)
			if len(resp.Errors) == 0 || resp.Errors[0].Extensions["code"] != c.code {
				t.Fatalf("errors %+v, want %s", resp.Errors, c.code)
			}
			if n := g.cmds.Total() - before; n != 0 {
				t.Fatalf("%d database commands ran", n)
			}
		})
	}
	t.Run("operation timeout", func(t *testing.T) {
		// The store never answers: the operation's own deadline ends it.
		resp, _ := g.doAs(g.key, `{ interactions(first: 1) { totalCount } }`, nil, nil)
		if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != server.CodeTimeout {
			t.Fatalf("errors %+v", resp.Errors)
		}
	})
}

// TestOversizedWebSocketMessage: a WebSocket message over the body limit
// closes the connection (1009, message too big) before it is decoded.
func TestOversizedWebSocketMessage(t *testing.T) {
	g, _ := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: -1, MaxBodyBytes: 64 << 10}}, nil)
	c := g.wsOpen(g.key)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := `{"id":"1","type":"subscribe","payload":{"query":"{ viewer { tenant } }","variables":{"pad":"` + strings.Repeat("x", 128<<10) + `"}}}`
	c.Write(ctx, websocket.MessageText, []byte(big))
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
				t.Fatalf("closed with %v, want 1009", err)
			}
			return
		}
	}
}
