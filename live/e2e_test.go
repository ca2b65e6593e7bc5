package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/mongo"
	"github.com/relatedhq/related/store/mongo/mongotest"
	"github.com/relatedhq/related/store/sqlite"
)

// ferret is the MongoDB wire-protocol server of the test binary: a
// FerretDB, or the MongoDB that MONGODB_URI names.
var ferret *mongotest.Server

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	goroutines := runtime.NumGoroutine()
	var err error
	ferret, err = mongotest.Start(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if err := ferret.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		code = 1
	}
	if code == 0 && !settled(goroutines) {
		fmt.Fprintln(os.Stderr, "goroutines left behind:")
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		code = 1
	}
	return code
}

// settled waits for the goroutines of closed servers, hubs and feeds to
// exit and reports whether no more than n remain.
func settled(n int) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if runtime.NumGoroutine() <= n {
			return true
		}
	}
	return false
}

func quietLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// forward is the store's publisher until the hub exists: the hub needs
// the store, and the store needs a publisher when it opens.
type forward struct{ hub atomic.Pointer[live.Hub] }

func (f *forward) Publish(ctx context.Context, events []store.Event) {
	if h := f.hub.Load(); h != nil {
		h.Publish(ctx, events)
	}
}

// replica is one gateway: a store, its hub, (on MongoDB) its feed, and a
// real HTTP server on a loopback port.
type replica struct {
	t    *testing.T
	st   store.Store
	cmds *store.Commands // the store's command counters
	hub  *live.Hub
	url  string
	key  string // an admin key of the demo tenant
}

type replicaOpts struct {
	buffer   int
	maxLists int
	mongo    string // the MongoDB URI; "" for SQLite
	db       string
}

func newSQLite(t *testing.T) *replica {
	return newReplica(t, replicaOpts{})
}

func newReplica(t *testing.T, o replicaOpts) *replica {
	t.Helper()
	ctx := context.Background()
	fwd := &forward{}
	cmds := new(store.Commands)
	var st store.Store
	var err error
	if o.mongo == "" {
		st, err = sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), Publisher: fwd, Logger: quietLog(), Commands: cmds})
	} else {
		st, err = mongo.Open(ctx, mongo.Options{URI: o.mongo, Database: o.db, Publisher: fwd, Logger: quietLog(), Commands: cmds})
	}
	if err != nil {
		t.Fatal(err)
	}
	hub := live.New(live.Options{Store: st, Buffer: o.buffer, MaxListsPerKey: o.maxLists, Logger: quietLog()})
	fwd.hub.Store(hub)
	var feed *mongo.Feed
	if o.mongo != "" {
		feed, err = mongo.StartFeed(ctx, mongo.FeedOptions{URI: o.mongo, Database: o.db, Publisher: hub, Poll: 250 * time.Millisecond, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(server.New(server.Options{
		Store: st, Hub: hub, Logger: quietLog(),
		Limits: server.Limits{RatePerSecond: -1, MaxSubscriptions: 1000},
	}))
	r := &replica{t: t, st: st, cmds: cmds, hub: hub, url: srv.URL}
	r.key = r.newKey(server.DemoTenant)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			t.Errorf("hub close: %v", err)
		}
		srv.CloseClientConnections()
		srv.Close()
		if feed != nil {
			if err := feed.Close(); err != nil {
				t.Errorf("feed close: %v", err)
			}
		}
		st.Close()
	})
	return r
}

// newKey stores an admin key of tenant and returns its secret.
func (r *replica) newKey(tenant string) string {
	r.t.Helper()
	secret, k, err := store.NewKey(tenant, related.RoleAdmin, "live test", time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.st.(store.KeyStore).CreateKey(context.Background(), k); err != nil {
		r.t.Fatal(err)
	}
	return secret
}

// sse opens a subscription over server-sent events with key, until ctx
// ends, and fails the test unless the stream starts.
func (r *replica) sse(ctx context.Context, key, query string, vars map[string]any) *http.Response {
	r.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, "POST", r.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		r.t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	return resp
}

// gql runs a query or mutation over HTTP with key and decodes data into out.
func (r *replica) gql(key, query string, vars map[string]any, out any) {
	r.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", r.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var res struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Errors) > 0 {
		r.t.Fatalf("%s: status %d: %s", query, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(res.Data, out); err != nil {
			r.t.Fatal(err)
		}
	}
}

// record records a message through the API and returns the global id of
// its interaction.
func (r *replica) record(key, thread, address, body, queue string) string {
	r.t.Helper()
	in := map[string]any{"channel": "EMAIL", "threadRef": thread, "direction": "INBOUND", "body": body,
		"contact": map[string]any{"address": address}}
	if queue != "" {
		in["queue"] = queue
	}
	var out struct {
		RecordMessage struct {
			Interaction struct{ ID string }
		}
	}
	r.gql(key, `mutation($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id } userErrors { message } } }`,
		map[string]any{"in": in}, &out)
	if out.RecordMessage.Interaction.ID == "" {
		r.t.Fatalf("recordMessage %s/%s made no interaction", thread, address)
	}
	return out.RecordMessage.Interaction.ID
}

// recordStore records a message straight through the store (for bulk
// writes that the API's rate limits would slow).
func (r *replica) recordStore(tenant, thread, address, body string) *related.Interaction {
	r.t.Helper()
	in, err := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: thread, Direction: related.Inbound,
		Body: body, Contact: related.ContactInput{Address: address}}.Normalize(time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	res, err := r.st.RecordMessage(context.Background(), tenant, in)
	if err != nil {
		r.t.Fatal(err)
	}
	return res.Interaction
}

// waitSubs waits until the hub holds n subscriptions: a subscribe message
// is acted on asynchronously, and a write before it would not be seen.
func (r *replica) waitSubs(n int64) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.hub.Stats().Subscriptions != n {
		if time.Now().After(deadline) {
			r.t.Fatalf("hub has %d subscriptions, want %d", r.hub.Stats().Subscriptions, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// msg is one protocol message from the server.
type msg struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// client is a real WebSocket client speaking graphql-transport-ws or the
// legacy graphql-ws protocol.
type client struct {
	t     *testing.T
	conn  *websocket.Conn
	proto string
	mu    sync.Mutex
	byID  map[string]chan msg
	other chan msg
	done  chan struct{}
}

const (
	transportWS = "graphql-transport-ws"
	legacyWS    = "graphql-ws"
)

func (r *replica) dial(key, proto string) *client {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(r.url, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{proto}})
	if err != nil {
		r.t.Fatal(err)
	}
	conn.SetReadLimit(1 << 22)
	c := &client{t: r.t, conn: conn, proto: proto, byID: map[string]chan msg{}, other: make(chan msg, 16), done: make(chan struct{})}
	r.t.Cleanup(c.close)
	c.send(msg{Type: "connection_init", Payload: json.RawMessage(`{"Authorization":"Bearer ` + key + `"}`)})
	go c.read()
	select {
	case m := <-c.other:
		if m.Type != "connection_ack" {
			r.t.Fatalf("got %s %s, want connection_ack", m.Type, m.Payload)
		}
	case <-time.After(5 * time.Second):
		r.t.Fatal("no connection_ack")
	}
	return c
}

func (c *client) send(m msg) {
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Errorf("send %s: %v", m.Type, err)
	}
}

func (c *client) read() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			return
		}
		var m msg
		if err := json.Unmarshal(b, &m); err != nil {
			continue
		}
		switch {
		case m.Type == "ka" || m.Type == "pong":
		case m.Type == "ping":
			c.send(msg{Type: "pong"})
		case m.ID != "":
			c.queue(m.ID) <- m
		default:
			c.other <- m
		}
	}
}

func (c *client) queue(id string) chan msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.byID[id]
	if q == nil {
		q = make(chan msg, 1024)
		c.byID[id] = q
	}
	return q
}

func (c *client) close() {
	c.conn.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// subscribe starts operation id.
func (c *client) subscribe(id, query string, vars map[string]any) {
	payload, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	typ := "subscribe"
	if c.proto == legacyWS {
		typ = "start"
	}
	c.send(msg{Type: typ, ID: id, Payload: payload})
}

// next returns the next message of operation id, failing after timeout.
func (c *client) next(id string, timeout time.Duration) msg {
	c.t.Helper()
	select {
	case m := <-c.queue(id):
		return m
	case <-time.After(timeout):
		c.t.Fatalf("operation %s: nothing within %s", id, timeout)
		return msg{}
	}
}

// none checks that operation id receives nothing for d.
func (c *client) none(id string, d time.Duration) {
	c.t.Helper()
	select {
	case m := <-c.queue(id):
		c.t.Fatalf("operation %s: unexpected %s %s", id, m.Type, m.Payload)
	case <-time.After(d):
	}
}

const relatedSub = `subscription($id: ID!) { relatedChanged(interactionId: $id) {
  kind scope interactionId interaction { id status closedState queue { name } contact { address } lastMessage { body } } } }`

const interactionSub = `subscription($id: ID!) { interactionUpdated(id: $id) { id status lastMessage { body } } }`

// change is a relatedChanged payload.
type change struct {
	Kind          string
	Scope         string
	InteractionID string
	Interaction   struct {
		ID          string
		Status      string
		ClosedState *string
		Queue       *struct{ Name string }
		Contact     struct{ Address string }
		LastMessage struct{ Body string }
	}
}

// nextChange waits for the next relatedChanged payload of operation id.
func (c *client) nextChange(id string) change {
	c.t.Helper()
	m := c.next(id, 5*time.Second)
	if m.Type != "next" && m.Type != "data" {
		c.t.Fatalf("operation %s: got %s %s, want a payload", id, m.Type, m.Payload)
	}
	var p struct {
		Data   struct{ RelatedChanged change }
		Errors []any
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
		c.t.Fatalf("payload %s: %v", m.Payload, err)
	}
	return p.Data.RelatedChanged
}

func expect(t *testing.T, got change, kind, id string) {
	t.Helper()
	if got.Kind != kind || got.InteractionID != id || got.Interaction.ID != id {
		t.Fatalf("got %s %s (interaction %s), want %s %s", got.Kind, got.InteractionID, got.Interaction.ID, kind, id)
	}
}

func storeID(t *testing.T, gid string) string {
	id, err := related.ParseTypedID(gid, related.NodeInteraction)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustInput(t *testing.T, thread, address, body string) related.RecordMessage {
	t.Helper()
	in, err := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: thread, Direction: related.Inbound,
		Body: body, Contact: related.ContactInput{Address: address}}.Normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return in
}
