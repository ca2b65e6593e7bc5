package server_test

// Whose mistake it was (issue 13, items 6 and 9): a caller's mistake is a
// validation error that names the field, on every transport; a full disk
// or an unreachable database is UNAVAILABLE; never INTERNAL for either.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/mongo"
	"github.com/relatedhq/related/store/mongo/mongotest"
	"github.com/relatedhq/related/store/sqlite"
)

// logCount is a slog handler that counts records by level.
type logCount struct {
	mu     sync.Mutex
	errors []string
}

func (l *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCount) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		l.mu.Lock()
		l.errors = append(l.errors, r.Message)
		l.mu.Unlock()
	}
	return nil
}
func (l *logCount) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCount) WithGroup(string) slog.Handler      { return l }

func (l *logCount) errorLines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...)
}

// post sends a raw JSON body and returns the status, headers and body.
func (g *gateway) post(key string, body []byte, accept string) (int, http.Header, []byte) {
	g.t.Helper()
	req, _ := http.NewRequest("POST", g.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// TestCallerMistakesAreValidationErrors sends the mistakes that came back
// as INTERNAL (with an ERROR log line): an enum's value in the wrong case,
// a sentAt that is no RFC 3339 time, as a literal or a variable, and the
// Int variables gqlparser let through ("10") or misreported (1.5). Each is
// now GRAPHQL_VALIDATION_FAILED with HTTP 400, its message names the
// field, nothing is written and nothing is logged as an error.
func TestCallerMistakesAreValidationErrors(t *testing.T) {
	logs := &logCount{}
	g := newGatewayWith(t, backends[0], server.Options{Logger: slog.New(logs), KeyCacheTTL: time.Minute, Limits: server.Limits{RatePerSecond: -1}})
	iid := g.record(message("EMAIL", "mistakes", "m@example.com", "hi", t0)).RecordMessage.Interaction.ID
	withIn := func(change func(map[string]any)) map[string]any {
		in := message("EMAIL", "mistakes-2", "m@example.com", "hi", t0)
		change(in)
		return map[string]any{"in": in}
	}
	literal := func(sentAt string) string {
		return fmt.Sprintf(`mutation { recordMessage(input: {channel: EMAIL, threadRef: "lit", direction: INBOUND, body: "hi", contact: {address: "m@example.com"}, sentAt: %s}) { userErrors { code } } }`, sentAt)
	}
	for _, c := range []struct {
		name, query string
		vars        map[string]any
		want        []string // in the message
	}{
		{"enum in lower case", recordMutation, withIn(func(in map[string]any) { in["channel"] = "email" }), []string{"$in.channel", `"email"`, "EMAIL"}},
		{"direction in mixed case", recordMutation, withIn(func(in map[string]any) { in["direction"] = "Inbound" }), []string{"$in.direction"}},
		{"sentAt a word", recordMutation, withIn(func(in map[string]any) { in["sentAt"] = "yesterday" }), []string{"$in.sentAt", "RFC 3339"}},
		{"sentAt month 13", recordMutation, withIn(func(in map[string]any) { in["sentAt"] = "2026-13-01T00:00:00Z" }), []string{"$in.sentAt"}},
		{"sentAt a number", recordMutation, withIn(func(in map[string]any) { in["sentAt"] = 1700000000 }), []string{"$in.sentAt", "1700000000"}},
		{"sentAt literal word", literal(`"yesterday"`), nil, []string{"sentAt", "RFC 3339"}},
		{"sentAt literal month 13", literal(`"2026-13-01T00:00:00Z"`), nil, []string{"sentAt"}},
		{"sentAt literal number", literal(`1700000000`), nil, []string{"sentAt"}},
		{"sentAt default", `mutation($t: Time = "yesterday") { recordMessage(input: {channel: EMAIL, threadRef: "d", direction: INBOUND, body: "hi", contact: {address: "m@example.com"}, sentAt: $t}) { userErrors { code } } }`, nil, []string{"$t"}},
		{"Int as a string", `query($n: Int) { interactions(first: $n) { totalCount } }`, map[string]any{"n": "10"}, []string{"$n", `"10"`}},
		{"Int with a fraction", `query($n: Int) { interactions(first: $n) { totalCount } }`, map[string]any{"n": 1.5}, []string{"$n", "1.5"}},
		{"Int past 32 bits", `query($n: Int) { interactions(first: $n) { totalCount } }`, map[string]any{"n": int64(1) << 40}, []string{"$n", "32-bit"}},
		{"status in lower case", `query($s: InteractionStatus) { interactions(status: $s) { totalCount } }`, map[string]any{"s": "open"}, []string{"$s", "OPEN"}},
		{"closed state in lower case", `mutation($id: ID!, $s: ClosedState!) { closeInteraction(input: {id: $id, state: $s}) { userErrors { code } } }`, map[string]any{"id": iid, "s": "spam"}, []string{"$s", "SPAM"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := g.cmds.Snapshot()
			resp, status := g.doAs(g.key, c.query, c.vars, nil)
			if status != http.StatusBadRequest || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != server.CodeValidationFailed {
				t.Fatalf("status %d, errors %+v", status, resp.Errors)
			}
			for _, w := range c.want {
				if !strings.Contains(resp.Errors[0].Message, w) {
					t.Errorf("message %q does not mention %s", resp.Errors[0].Message, w)
				}
			}
			after := g.cmds.Snapshot()
			for _, verb := range []string{"insert", "update"} {
				if after[verb] != before[verb] {
					t.Errorf("the refused operation ran %s statements", verb)
				}
			}
		})
	}
	if lines := logs.errorLines(); len(lines) > 0 {
		t.Fatalf("caller mistakes logged errors: %q", lines)
	}
	// The right values still work.
	r := g.record(withIn(func(in map[string]any) { in["sentAt"] = "2026-05-04T08:00:00.123+02:00" })["in"].(map[string]any))
	if r.RecordMessage.Interaction == nil {
		t.Fatal("a valid message was not recorded")
	}
}

// TestTextThatIsNotUnicode: invalid UTF-8 and lone surrogate escapes were
// stored as U+FFFD, and a NUL was accepted in a body (item 9). Each is
// refused on every transport with GRAPHQL_VALIDATION_FAILED naming where
// it was, and nothing is written; a surrogate pair is a character.
func TestTextThatIsNotUnicode(t *testing.T) {
	g, _ := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: -1}}, nil)
	// Raw JSON: the broken text must reach the server as the client sent
	// it, which a JSON encoder would not do.
	recordWith := func(body string) []byte {
		return []byte(`{"query":` + jsonString(recordMutation) + `,"variables":{"in":{"channel":"EMAIL","threadRef":"t","direction":"INBOUND","contact":{"address":"text@example.com"},"body":"` + body + `"}}}`)
	}
	bad := map[string]string{
		"invalid UTF-8":            "caf\xe9",
		"a lone high surrogate":    `broken \ud83d here`,
		"a lone low surrogate":     `broken \ude00 here`,
		"a high surrogate at end":  `broken \ud83d`,
		"two high surrogates":      `\ud83d\ud83d`,
		"an escaped NUL":           `nul \u0000 here`,
		"an escaped NUL uppercase": `nul \U0000 here`,
	}
	delete(bad, "an escaped NUL uppercase") // not JSON: \U is no escape
	inserts := func() int64 { return g.cmds.Snapshot()["insert"] }
	for name, text := range bad {
		t.Run("post/"+name, func(t *testing.T) {
			before := inserts()
			status, _, raw := g.post(g.key, recordWith(text), "application/graphql-response+json")
			if status != http.StatusBadRequest || !strings.Contains(string(raw), server.CodeValidationFailed) || !strings.Contains(string(raw), "variables.in.body") {
				t.Fatalf("status %d: %s", status, raw)
			}
			if inserts() != before {
				t.Fatal("something was written")
			}
		})
		t.Run("websocket/"+name, func(t *testing.T) {
			c := g.wsOpen(g.key)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			msg := `{"id":"1","type":"subscribe","payload":` + string(recordWith(text)) + `}`
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			m, err := wsNext(c, 10*time.Second)
			if err != nil || m.Type != "error" || m.ID != "1" || !strings.Contains(string(m.Payload), server.CodeValidationFailed) || !strings.Contains(string(m.Payload), "variables.in.body") {
				t.Fatalf("%s %s %v", m.Type, m.Payload, err)
			}
			// The connection goes on serving.
			wsSubscribe(t, c, "2", `{ viewer { tenant } }`, nil)
			if m, err := wsNext(c, 10*time.Second); err != nil || m.Type != "next" || m.ID != "2" {
				t.Fatalf("after a refusal: %s %s %v", m.Type, m.Payload, err)
			}
		})
		t.Run("sse/"+name, func(t *testing.T) {
			before := inserts()
			status, _, raw := g.post(g.key, recordWith(text), "text/event-stream")
			if status != http.StatusBadRequest || !strings.Contains(string(raw), server.CodeValidationFailed) {
				t.Fatalf("status %d: %s", status, raw)
			}
			if inserts() != before {
				t.Fatal("something was written")
			}
		})
		t.Run("get/"+name, func(t *testing.T) {
			vars := `{"id":"` + text + `"}`
			resp, err := http.DefaultClient.Do(getRequest(g, `query($id: ID!) { interaction(id: $id) { id } }`, vars))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), server.CodeValidationFailed) || !strings.Contains(string(raw), "variables.id") {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
		})
	}
	// In the query text: GraphQL string escapes, in a literal.
	for name, lit := range map[string]string{
		"literal lone surrogate": `broken \\ud83d here`,
		"literal NUL":            `nul \\u0000 here`,
		"literal braced NUL":     `nul \\u{0} here`,
	} {
		t.Run(name, func(t *testing.T) {
			q := `mutation { recordMessage(input: {channel: EMAIL, threadRef: "lit", direction: INBOUND, contact: {address: "text@example.com"}, body: "` + lit + `"}) { userErrors { code } } }`
			before := inserts()
			status, _, raw := g.post(g.key, []byte(`{"query":"`+strings.ReplaceAll(q, `"`, `\"`)+`"}`), "application/graphql-response+json")
			if status != http.StatusBadRequest || !strings.Contains(string(raw), server.CodeValidationFailed) || !strings.Contains(string(raw), "line 1") {
				t.Fatalf("status %d: %s", status, raw)
			}
			if inserts() != before {
				t.Fatal("something was written")
			}
		})
	}
	// What is text goes through, surrogate pairs included.
	status, _, raw := g.post(g.key, recordWith(`smile \ud83d\ude00, caf\u00e9, tab\t`), "application/json")
	var r struct{ Data recorded }
	if status != 200 || strings.Contains(string(raw), "errors") || json.Unmarshal(raw, &r) != nil || r.Data.RecordMessage.Interaction == nil {
		t.Fatalf("valid text: %d %s", status, raw)
	}
	var v struct {
		Interaction struct{ LastMessage struct{ Body string } }
	}
	g.must(`query($id: ID!) { interaction(id: $id) { lastMessage { body } } }`, map[string]any{"id": r.Data.RecordMessage.Interaction.ID}, &v)
	if v.Interaction.LastMessage.Body != "smile 😀, café, tab\t" {
		t.Fatalf("stored %q", v.Interaction.LastMessage.Body)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func getRequest(g *gateway, query, vars string) *http.Request {
	q := url.Values{"query": {query}}
	if vars != "" {
		q.Set("variables", vars)
	}
	req, _ := http.NewRequest("GET", g.url+"/graphql?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+g.key)
	req.Header.Set("Accept", "application/graphql-response+json")
	return req
}

// TestGETMayOnlyQuery: a mutation sent with GET got 406 without a code
// (item 9); the GraphQL-over-HTTP spec asks 405. Nothing runs.
func TestGETMayOnlyQuery(t *testing.T) {
	g, _ := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: -1}}, nil)
	iid := g.record(message("EMAIL", "get", "get@example.com", "hi", t0)).RecordMessage.Interaction.ID
	for name, q := range map[string]string{
		"mutation":     `mutation { setPreferences(input: {showRelated: false}) { preferences { showRelated } } }`,
		"subscription": fmt.Sprintf(`subscription { interactionUpdated(id: %q) { id } }`, iid),
	} {
		t.Run(name, func(t *testing.T) {
			before := g.cmds.Total()
			resp, err := http.DefaultClient.Do(getRequest(g, q, ""))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" || !strings.Contains(string(raw), server.CodeMethodNotAllowed) {
				t.Fatalf("status %d, Allow %q: %s", resp.StatusCode, resp.Header.Get("Allow"), raw)
			}
			if n := g.cmds.Total() - before; n != 0 {
				t.Fatalf("%d database commands ran", n)
			}
		})
	}
	resp, err := http.DefaultClient.Do(getRequest(g, `{ viewer { tenant } }`, ""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a query over GET: %d", resp.StatusCode)
	}
}

// TestNodeResolvesEveryType: node(id:) returned null for Profile and
// ProfileRule ids although both implement Node (item 9). Every type that
// implements Node in the schema resolves through it.
func TestNodeResolvesEveryType(t *testing.T) {
	g := newGateway(t, backends[0])
	in := message("EMAIL", "node", "node@example.com", "hi", t0)
	in["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "email", "value": "node@example.com"}}
	g.record(in)
	var v struct {
		Interactions struct {
			Edges []struct {
				Node struct {
					ID          string
					Contact     struct{ ID string }
					Queue       struct{ ID string }
					LastMessage struct{ ID string }
					Profile     struct{ ID string }
				}
			}
		}
		ProfileRules []struct{ ID string }
	}
	g.must(`{ interactions(first: 1) { edges { node { id contact { id } queue { id } lastMessage { id } profile { id } } } } profileRules { id } }`, nil, &v)
	if len(v.Interactions.Edges) != 1 || len(v.ProfileRules) == 0 || v.Interactions.Edges[0].Node.Profile.ID == "" {
		t.Fatalf("setup: %+v", v)
	}
	n := v.Interactions.Edges[0].Node
	// A suggestion (a chat that typed the address) and a conflict (an
	// attested chat whose customer id the profile's limit refuses).
	g.must(`mutation { upsertProfileRule(input: {attribute: "customerId", normalizer: EXACT, maxPerProfile: 1}) { rule { id } } }`, nil, nil)
	mail := message("EMAIL", "node-c", "node@example.com", "hi", t0)
	mail["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "customerId", "value": "C1", "attested": true}}
	g.record(mail)
	typed := message("WEBCHAT", "node-s", "visitor-node", "hi", t0)
	typed["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "email", "value": "node@example.com"}}
	g.record(typed)
	other := message("WEBCHAT", "node-x", "visitor-other", "hi", t0)
	other["contact"].(map[string]any)["attributes"] = []any{map[string]any{"key": "email", "value": "node@example.com", "attested": true},
		map[string]any{"key": "customerId", "value": "C2", "attested": true}}
	g.record(other)
	var pairs struct {
		ProfileSuggestions, ProfileConflicts struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	g.must(`{ profileSuggestions { edges { node { id } } } profileConflicts { edges { node { id } } } }`, nil, &pairs)
	if len(pairs.ProfileSuggestions.Edges) == 0 || len(pairs.ProfileConflicts.Edges) == 0 {
		t.Fatalf("setup: %+v", pairs)
	}
	ids := map[string]string{
		"Interaction": n.ID, "Contact": n.Contact.ID, "Queue": n.Queue.ID, "Message": n.LastMessage.ID,
		"Profile": n.Profile.ID, "ProfileRule": v.ProfileRules[0].ID,
		"ProfileSuggestion": pairs.ProfileSuggestions.Edges[0].Node.ID, "ProfileConflict": pairs.ProfileConflicts.Edges[0].Node.ID,
	}
	schema := rootTypesImplementing(t, "Node")
	for _, typ := range schema {
		id, ok := ids[typ]
		if !ok {
			t.Errorf("no id of %s to test node(id:) with: add one", typ)
			continue
		}
		var out struct {
			Node *struct {
				Typename string `json:"__typename"`
				ID       string
			}
		}
		g.must(`query($id: ID!) { node(id: $id) { __typename id } }`, map[string]any{"id": id}, &out)
		if out.Node == nil || out.Node.Typename != typ || out.Node.ID != id {
			t.Errorf("node(%s id) = %+v", typ, out.Node)
		}
	}
}

// TestFullDiskIsUnavailable fills the embedded database to its MaxBytes,
// which fails writes exactly as a full disk does (SQLITE_FULL, "database
// or disk is full"), where the client got INTERNAL with HTTP 200 (item 6).
// A write is now UNAVAILABLE with 503 and Retry-After, reads go on, and
// nothing is lost: the refused write, retried once there is room, is
// stored once.
func TestFullDiskIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	open := func(maxBytes int64) (*gateway, func()) {
		cmds := new(store.Commands)
		st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir, Commands: cmds, MaxBytes: maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(server.New(server.Options{Store: st, Commands: cmds, KeyCacheTTL: time.Minute, Limits: server.Limits{RatePerSecond: -1}}))
		return &gateway{t: t, url: srv.URL, cmds: cmds, st: st}, func() { srv.Close(); st.Close() }
	}
	g, closeFull := open(600 << 10)
	g.key = g.newKey(server.DemoTenant, related.RoleAdmin)
	body := strings.Repeat("x", 30<<10)
	stored := 0
	var refused map[string]any
	for i := range 100 {
		in := message("EMAIL", fmt.Sprint("full-", i), "full@example.com", body, t0.Add(time.Duration(i)*time.Second))
		in["clientMutationId"] = fmt.Sprint("full-", i)
		reqBody, _ := json.Marshal(map[string]any{"query": recordMutation, "variables": map[string]any{"in": in}})
		status, header, raw := g.post(g.key, reqBody, "application/json")
		if status == 200 && !strings.Contains(string(raw), `"errors"`) {
			stored++
			continue
		}
		if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || !strings.Contains(string(raw), server.CodeUnavailable) || strings.Contains(string(raw), "disk is full") {
			t.Fatalf("write %d: status %d, Retry-After %q: %s", i, status, header.Get("Retry-After"), raw)
		}
		refused = in
		break
	}
	if refused == nil || stored == 0 {
		t.Fatalf("%d writes stored, none refused: the quota did not fill", stored)
	}
	t.Logf("%d writes of 30 KiB stored, the next refused", stored)
	count := func(g *gateway) int {
		var v struct{ Interactions struct{ TotalCount int } }
		g.must(`{ interactions { totalCount } }`, nil, &v)
		return v.Interactions.TotalCount
	}
	// Reads go on while the disk is full, and show every write that was
	// answered as stored, and none that was not.
	if n := count(g); n != stored {
		t.Fatalf("%d interactions readable, %d stored", n, stored)
	}
	closeFull()
	// Room again: the client's retry of the refused write succeeds, once.
	g2, closeRoomy := open(0)
	defer closeRoomy()
	g2.key = g.key
	for range 2 {
		var out recorded
		g2.must(recordMutation, map[string]any{"in": refused}, &out)
		if len(out.RecordMessage.UserErrors) > 0 {
			t.Fatalf("retry: %+v", out.RecordMessage.UserErrors)
		}
	}
	if n := count(g2); n != stored+1 {
		t.Fatalf("%d interactions after the retry, want %d", n, stored+1)
	}
}

// TestUnreachableDatabaseIsUnavailable stops the MongoDB server under a
// running gateway: requests are UNAVAILABLE (503, Retry-After), not
// INTERNAL, and work again once it is back.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	db, err := mongotest.StartRestartable(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	uri := db.URI
	if strings.Contains(uri, "?") {
		uri += "&serverSelectionTimeoutMS=300"
	} else {
		uri += "?serverSelectionTimeoutMS=300"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmds := new(store.Commands)
	st, err := mongo.Open(ctx, mongo.Options{URI: uri, Database: mongotest.FreshDB(), Commands: cmds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The key is cached, so the gateway authenticates without the database.
	srv := httptest.NewServer(server.New(server.Options{Store: st, Commands: cmds, KeyCacheTTL: time.Hour, Limits: server.Limits{RatePerSecond: -1}}))
	t.Cleanup(srv.Close)
	g := &gateway{t: t, url: srv.URL, cmds: cmds, st: st}
	g.key = g.newKey(server.DemoTenant, related.RoleAdmin)
	g.must(`{ interactions(first: 1) { totalCount } }`, nil, nil)
	uncached := g.newKey(server.DemoTenant, related.RoleAgent)
	if err := db.Stop(); err != nil {
		t.Fatal(err)
	}
	// A query, and a key the gateway has to look up: both wait for the
	// database, not for the client to mend its ways.
	for _, key := range []string{g.key, uncached} {
		status, header, raw := g.post(key, []byte(`{"query":"{ interactions(first: 1) { totalCount } }"}`), "application/json")
		if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || !strings.Contains(string(raw), server.CodeUnavailable) {
			t.Fatalf("status %d, Retry-After %q: %s", status, header.Get("Retry-After"), raw)
		}
	}
	if err := db.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		status, _, raw := g.post(g.key, []byte(`{"query":"{ interactions(first: 1) { totalCount } }"}`), "application/json")
		if status == 200 && !strings.Contains(string(raw), `"errors"`) {
			break
		}
		if i == 100 {
			t.Fatalf("the database is back but requests still fail: %d %s", status, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSubscriptionErrorsLeakNothing: a subscription ended by a store
// failure sent the failure's own text (item 7: "INTERNAL: ... context
// canceled", no request id). It gets INTERNAL with the request id.
func TestSubscriptionErrorsLeakNothing(t *testing.T) {
	g, hub := liveGateway(t, server.Options{Limits: server.Limits{RatePerSecond: -1}}, nil)
	iid := g.record(message("EMAIL", "leak", "leak@example.com", "hi", t0)).RecordMessage.Interaction.ID
	c := g.wsOpen(g.key)
	wsSubscribe(t, c, "1", `subscription($id: ID!) { interactionUpdated(id: $id) { id } }`, map[string]any{"id": iid})
	for hub.Stats().Subscriptions == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// The database goes away under the subscription.
	g.st.Close()
	id, _ := related.ParseTypedID(iid, related.NodeInteraction)
	hub.Publish(context.Background(), []store.Event{{ID: "leak-1", Tenant: server.DemoTenant, Kind: store.InteractionUpdated, InteractionID: id}})
	m, err := wsNext(c, 10*time.Second)
	if err != nil || m.Type != "error" {
		t.Fatalf("%s %s %v", m.Type, m.Payload, err)
	}
	var errs []struct {
		Message    string
		Extensions map[string]any
	}
	json.Unmarshal(m.Payload, &errs)
	if len(errs) != 1 || errs[0].Extensions["code"] != server.CodeInternal || errs[0].Extensions["requestId"] == nil || strings.Contains(errs[0].Message, "sql") || strings.Contains(errs[0].Message, "interaction "+id) {
		t.Fatalf("%s", m.Payload)
	}
}

// rootTypesImplementing lists the schema's object types implementing iface.
func rootTypesImplementing(t *testing.T, iface string) []string {
	t.Helper()
	var out []string
	for name, def := range schemaTypes() {
		for _, i := range def {
			if i == iface {
				out = append(out, name)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no type implements %s", iface)
	}
	return out
}

// schemaTypes maps the schema's object types to the interfaces they
// implement.
func schemaTypes() map[string][]string {
	out := map[string][]string{}
	for name, def := range graph.NewExecutableSchema(graph.Config{}).Schema().Types {
		if def.Kind == ast.Object {
			out[name] = def.Interfaces
		}
	}
	return out
}
