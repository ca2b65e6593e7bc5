package server_test

// Fuzz targets for the gateway's entry points: an HTTP POST body (as JSON
// and as an event stream), a GET query string, and a WebSocket message on
// an open connection, each against a real server on SQLite. Their seed
// corpora (testdata/fuzz/FuzzXxx) hold the attacks of issue 13; `go test`
// runs the seeds, and CI fuzzes each target briefly (.ci/run).
//
// What must hold whatever arrives: no panic, no 5xx, no INTERNAL (a
// caller's input is never the server's failure), a JSON answer, and no
// answer larger than the response limit.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// fuzzLimit is the fuzzed server's response limit.
const fuzzLimit = 256 << 10

// fuzzTarget is the server a fuzz target sends to, with data to find and
// every limit on but the rate.
type fuzzTarget struct {
	url, key string
}

func fuzzServer(f *testing.F) *fuzzTarget {
	f.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	secret, k, _ := store.NewKey(server.DemoTenant, related.RoleAdmin, "fuzz", time.Now())
	if err := st.CreateKey(context.Background(), k); err != nil {
		f.Fatal(err)
	}
	in, _ := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: "fuzz", Direction: related.Inbound,
		Body: strings.Repeat("body ", 1000), Contact: related.ContactInput{Address: "fuzz@example.com"}}.Normalize(time.Now())
	for range 3 {
		if _, err := st.RecordMessage(context.Background(), server.DemoTenant, in); err != nil {
			f.Fatal(err)
		}
	}
	hub := live.New(live.Options{Store: st})
	srv := httptest.NewServer(server.New(server.Options{Store: st, Hub: hub, KeyCacheTTL: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Limits: server.Limits{RatePerSecond: -1, MaxConnections: 1000, MaxResponseBytes: fuzzLimit, BodyTimeout: 5 * time.Second, OperationTimeout: 5 * time.Second}}))
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.Close(ctx)
		srv.CloseClientConnections()
		srv.Close()
		st.Close()
	})
	return &fuzzTarget{url: srv.URL, key: secret}
}

// checkAnswer holds an HTTP answer to the invariants.
func checkAnswer(t *testing.T, status int, contentType string, body []byte) {
	t.Helper()
	if status >= 500 {
		t.Fatalf("status %d: %.500s", status, body)
	}
	if int64(len(body)) > fuzzLimit+64<<10 {
		t.Fatalf("a %d-byte answer, over the %d-byte limit", len(body), fuzzLimit)
	}
	if bytes.Contains(body, []byte(`"`+server.CodeInternal+`"`)) {
		t.Fatalf("INTERNAL: %.500s", body)
	}
	if strings.HasPrefix(contentType, "text/event-stream") {
		return
	}
	if len(body) > 0 && !json.Valid(body) {
		t.Fatalf("status %d, not JSON: %.500s", status, body)
	}
}

func fuzzDo(t *testing.T, req *http.Request) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkAnswer(t, resp.StatusCode, resp.Header.Get("Content-Type"), body)
}

// FuzzHTTPBody posts arbitrary bodies: request JSON, variables, query
// text, as a plain request and as an event stream.
func FuzzHTTPBody(f *testing.F) {
	for _, s := range []string{
		`{"query":"{ viewer { tenant } }"}`,
		`{"query":"query($n: Int) { interactions(first: $n) { totalCount } }","variables":{"n":10}}`,
		`{"query":"mutation($in: RecordMessageInput!) { recordMessage(input: $in) { userErrors { field code } } }","variables":{"in":{"channel":"EMAIL","threadRef":"f","direction":"INBOUND","body":"hi","contact":{"address":"f@example.com"}}}}`,
		`{`, ``, `null`, `[]`,
	} {
		f.Add([]byte(s), false)
	}
	target := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, stream bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", target.url+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+target.key)
		if stream {
			req.Header.Set("Accept", "text/event-stream")
		}
		fuzzDo(t, req)
	})
}

// FuzzHTTPGet sends arbitrary GET query strings (query, variables,
// operationName, extensions parameters, encoded or not).
func FuzzHTTPGet(f *testing.F) {
	for _, s := range []string{
		`query=%7B+viewer+%7B+tenant+%7D+%7D`,
		`query=query(%24n%3A+Int)+%7B+interactions(first%3A+%24n)+%7B+totalCount+%7D+%7D&variables=%7B%22n%22%3A5%7D`,
		`query=mutation+%7B+setPreferences(input%3A+%7BshowRelated%3A+true%7D)+%7B+__typename+%7D+%7D`,
		``, `query=`, `%zz`,
	} {
		f.Add(s)
	}
	target := fuzzServer(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", target.url+"/graphql", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rawQuery) > 32<<10 {
			rawQuery = rawQuery[:32<<10] // a URL this long is refused before the gateway
		}
		// Bytes a request line cannot carry are escaped: net/http refuses
		// those itself, before the gateway sees the request.
		var q strings.Builder
		for i := 0; i < len(rawQuery); i++ {
			if c := rawQuery[i]; c <= ' ' || c >= 0x7f || c == '#' {
				fmt.Fprintf(&q, "%%%02X", c)
			} else {
				q.WriteByte(c)
			}
		}
		req.URL.RawQuery = q.String()
		req.Header.Set("Authorization", "Bearer "+target.key)
		fuzzDo(t, req)
	})
}

// FuzzWebSocketMessage sends an arbitrary message on an initialized
// graphql-transport-ws connection, then an ordinary query: the server
// either answers it or closes the connection as a protocol error, never
// with INTERNAL, and keeps serving.
func FuzzWebSocketMessage(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","type":"subscribe","payload":{"query":"{ viewer { tenant } }"}}`,
		`{"id":"1","type":"complete"}`,
		`{"type":"ping"}`,
		`{"id":"1","type":"subscribe","payload":{"query":"subscription { interactionUpdated(id: \"x\") { id } }"}}`,
		`{`, ``, `"x"`,
	} {
		f.Add([]byte(s))
	}
	target := fuzzServer(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(target.url, "http")+"/graphql", &websocket.DialOptions{
			Subprotocols: []string{"graphql-transport-ws"},
			HTTPHeader:   http.Header{"Authorization": {"Bearer " + target.key}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		c.SetReadLimit(4 << 20)
		init, _ := json.Marshal(map[string]any{"type": "connection_init"})
		if err := c.Write(ctx, websocket.MessageText, init); err != nil {
			t.Fatal(err)
		}
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			return // closed already: a malformed message may end the connection
		}
		probe := `{"id":"probe-` + time.Now().Format("150405.000000000") + `","type":"subscribe","payload":{"query":"{ viewer { tenant } }"}}`
		if err := c.Write(ctx, websocket.MessageText, []byte(probe)); err != nil {
			return
		}
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				if ctx.Err() != nil {
					t.Fatal("the server neither answered nor closed the connection")
				}
				return // closed by the server: the message was a protocol error
			}
			if int64(len(data)) > fuzzLimit+64<<10 {
				t.Fatalf("a %d-byte message", len(data))
			}
			if bytes.Contains(data, []byte(`"`+server.CodeInternal+`"`)) {
				t.Fatalf("INTERNAL: %.500s", data)
			}
			var m struct{ ID, Type string }
			json.Unmarshal(data, &m)
			if strings.HasPrefix(m.ID, "probe-") && (m.Type == "next" || m.Type == "error" || m.Type == "complete") {
				return
			}
		}
	})
}
