package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
)

// wsWriteTimeout bounds one WebSocket write. gqlgen's own adapter writes
// without a deadline, so a client that stops reading (a frozen browser tab,
// a dead NAT) would hold its connection, its goroutines and a blocked
// payload forever. After this long the write fails, coder/websocket closes
// the connection, and gqlgen ends its subscriptions: the client reconnects.
//
// A variable so that tests can shorten it before New; nothing else changes
// it. Each connection keeps the value of its server, so a test restoring it
// races with no connection still writing.
var wsWriteTimeout = 10 * time.Second

// wsInitTimeout bounds the time a WebSocket may stay open without sending
// connection_init (and its key). A variable for tests, like wsWriteTimeout.
var wsInitTimeout = 10 * time.Second

// websockets accepts WebSocket connections for gqlgen's transport with a
// write deadline, and counts the open ones for /metrics. It is gqlgen's
// CoderWebsocketImplementation with those two changes.
type websockets struct {
	open         *atomic.Int64
	writeTimeout time.Duration // wsWriteTimeout when the server was made
}

var _ transport.WebsocketImplementation = websockets{}

// Accept upgrades the request, offering gqlgen's subprotocols.
func (u websockets) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	for key, values := range opts.ResponseHeader {
		for _, value := range values {
			w.Header().Add(key, value)
		}
	}
	var accept websocket.AcceptOptions
	for _, p := range opts.Subprotocols {
		if !slices.Contains(accept.Subprotocols, p) {
			accept.Subprotocols = append(accept.Subprotocols, p)
		}
	}
	conn, err := websocket.Accept(w, r, &accept)
	if err != nil {
		return nil, err
	}
	u.open.Add(1)
	return &wsConn{conn: conn, open: u.open, writeTimeout: u.writeTimeout}, nil
}

type wsConn struct {
	conn         *websocket.Conn
	open         *atomic.Int64
	writeTimeout time.Duration
	closed       sync.Once

	mu        sync.Mutex
	deadline  *time.Timer
	handshake chan struct{}
}

var (
	_ transport.WebsocketConn          = (*wsConn)(nil)
	_ transport.WebsocketReadLimiter   = (*wsConn)(nil)
	_ transport.WebsocketReadDeadliner = (*wsConn)(nil)
)

// gone counts the connection closed, once.
func (c *wsConn) gone() { c.closed.Do(func() { c.open.Add(-1) }) }

func (c *wsConn) Close() error {
	c.stopDeadline()
	c.gone()
	c.mu.Lock()
	inHandshake := c.handshake != nil
	c.mu.Unlock()
	if inHandshake {
		return nil // WriteClose's goroutine closes the connection
	}
	return c.conn.CloseNow()
}

func (c *wsConn) NextReader() (int, io.Reader, error) {
	for {
		typ, data, err := c.conn.Read(context.Background())
		if err != nil {
			switch websocket.CloseStatus(err) {
			case websocket.StatusNormalClosure, websocket.StatusNoStatusRcvd:
				return int(typ), nil, transport.ErrWebsocketClosed
			}
			return int(typ), nil, err
		}
		if p := checkJSONText(data); p != nil {
			// gqlgen would decode the message with its broken text
			// silently replaced: refuse the operation it carries here.
			if err := c.refuse(data, p); err != nil {
				return int(typ), nil, err
			}
			continue
		}
		return int(typ), bytes.NewReader(data), nil
	}
}

// refuse answers a message whose text is not Unicode: a subscribe (start)
// message gets an error for its operation, as a validation error would;
// anything else closes the connection, as a malformed message does.
func (c *wsConn) refuse(data []byte, p *textProblem) error {
	var m struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &m)
	if m.ID == "" || (m.Type != "subscribe" && m.Type != "start") {
		_ = c.conn.Close(websocket.StatusCode(4400), "invalid text: "+truncate(p.Error(), 100))
		return transport.ErrWebsocketClosed
	}
	if len(p.path) > 0 && p.path[0] == "payload" {
		p.path = p.path[1:] // the path within the operation, as over HTTP
	}
	e := textRefusal(p)
	ctx, cancel := context.WithTimeout(context.Background(), c.writeTimeout)
	defer cancel()
	legacy := c.conn.Subprotocol() != "graphql-transport-ws"
	var payload any = []any{e}
	if legacy {
		payload = e // graphql-ws's error payload is one error
	}
	msg, _ := json.Marshal(map[string]any{"id": m.ID, "type": "error", "payload": payload})
	if err := c.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return err
	}
	if legacy {
		done, _ := json.Marshal(map[string]any{"id": m.ID, "type": "complete"})
		return c.conn.Write(ctx, websocket.MessageText, done)
	}
	return nil
}

// truncate cuts s to at most n bytes, on a character boundary (a close
// reason must be valid UTF-8 and short).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// WriteJSON writes v within the write timeout; on expiry coder/websocket
// closes the connection.
func (c *wsConn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.writeTimeout)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, data)
}

// WriteClose runs the close handshake in the background: it waits up to
// five seconds for the peer, which must not stall gqlgen's teardown.
func (c *wsConn) WriteClose(code int, reason string) error {
	c.stopDeadline()
	c.mu.Lock()
	if c.handshake != nil {
		c.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	c.handshake = done
	c.mu.Unlock()
	go func() {
		defer close(done)
		_ = c.conn.Close(websocket.StatusCode(code), reason)
		c.gone()
	}()
	return nil
}

func (c *wsConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *wsConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

// SetReadDeadline closes the connection at t unless cleared (the zero
// time) or moved first: how gqlgen drops a client that stops answering
// pings.
func (c *wsConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if c.deadline != nil {
		c.deadline.Stop()
		c.deadline = nil
	}
	now := false
	if !t.IsZero() {
		if d := time.Until(t); d <= 0 {
			now = true
		} else {
			c.deadline = time.AfterFunc(d, func() { _ = c.conn.CloseNow() })
		}
	}
	c.mu.Unlock()
	if now {
		return c.conn.CloseNow()
	}
	return nil
}

func (c *wsConn) stopDeadline() {
	c.mu.Lock()
	if c.deadline != nil {
		c.deadline.Stop()
		c.deadline = nil
	}
	c.mu.Unlock()
}
