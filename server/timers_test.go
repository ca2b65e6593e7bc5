package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// testServer is a server on SQLite with an admin key, for the tests of
// this package that need the real thing.
func testServer(t *testing.T, l Limits) (*Server, string, string, store.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret, k, _ := store.NewKey("acme", related.RoleAdmin, "timers", time.Now())
	if err := st.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Store: st, KeyCacheTTL: time.Hour, Limits: l})
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return s, srv.URL, secret, st
}

// TestWebSocketInitTimeout: a socket that never sends connection_init is
// closed once the init timeout passes.
func TestWebSocketInitTimeout(t *testing.T) {
	defer func(d time.Duration) { wsInitTimeout = d }(wsInitTimeout)
	wsInitTimeout = 100 * time.Millisecond
	s, url, _, _ := testServer(t, Limits{RatePerSecond: -1, AnonPerSecond: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("a socket without connection_init is still open")
			}
			break
		}
	}
	for s.metrics.websockets.Load() != 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.metrics.websockets.Load(); n != 0 {
		t.Fatalf("%d sockets still open", n)
	}
}

// TestWebSocketWriteTimeout: a client that stops reading while answers
// pile up has its connection closed once a write waits past the write
// timeout, instead of holding its goroutines and payloads for ever.
func TestWebSocketWriteTimeout(t *testing.T) {
	defer func(d time.Duration) { wsWriteTimeout = d }(wsWriteTimeout)
	wsWriteTimeout = 200 * time.Millisecond
	s, url, key, st := testServer(t, Limits{RatePerSecond: -1, MaxInFlight: -1})
	in, _ := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: "w", Direction: related.Inbound,
		Body: strings.Repeat("x", 200<<10), Contact: related.ContactInput{Address: "w@example.com"}}.Normalize(time.Now())
	res, err := st.RecordMessage(context.Background(), "acme", in)
	if err != nil {
		t.Fatal(err)
	}
	id := related.GlobalID(related.NodeInteraction, res.Interaction.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send := func(v any) error {
		b, _ := json.Marshal(v)
		return c.Write(ctx, websocket.MessageText, b)
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + key}})
	if _, _, err := c.Read(ctx); err != nil { // the ack; nothing is read after it
		t.Fatal(err)
	}
	// 200 KiB answers, never read: the socket's buffers fill, a write
	// waits, and the server gives up on the connection.
	for i := 0; s.metrics.websockets.Load() > 0 && ctx.Err() == nil; i++ {
		if send(map[string]any{"id": fmt.Sprint(i), "type": "subscribe", "payload": map[string]any{
			"query": `query($id: ID!) { interaction(id: $id) { lastMessage { body } } }`, "variables": map[string]any{"id": id}}}) != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for s.metrics.websockets.Load() != 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.metrics.websockets.Load(); n != 0 {
		t.Fatal("the server still holds a connection whose client stopped reading")
	}
}

// TestInternalTablesStayBounded: the limiter's buckets and the key cache
// stay within their bounds however many distinct addresses or forged keys
// arrive.
func TestInternalTablesStayBounded(t *testing.T) {
	l := newLimiter(10, 100, time.Now)
	for i := range maxBuckets + 5000 {
		l.allow(fmt.Sprint("addr-", i))
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Fatalf("%d buckets, bound %d", n, maxBuckets)
	}
	a := &authenticator{keys: noKeys{}, ttl: time.Hour, now: time.Now, cache: map[string]cachedKey{}}
	for i := range maxCachedKeys + 500 {
		if _, err := a.lookup(context.Background(), []byte(fmt.Sprint("hash-", i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.cache); n > maxCachedKeys {
		t.Fatalf("%d cached keys, bound %d", n, maxCachedKeys)
	}
}
