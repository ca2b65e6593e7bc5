package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relatedhq/related/operation"
)

// pageRelated is the panel's "more": the next page after the first, with
// the same fields as operation.OpenInteraction's rows.
const pageRelated = `query Page($id: ID!, $first: Int, $after: String) {
  interaction(id: $id) {
    id
    related(first: $first, after: $after) {
      scope totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges {
        cursor
        node {
          id channel status closedState closedAt
          contact { id name }
          queue { id name }
          lastMessage { preview sentAt direction }
        }
      }
    }
  }
}`

// readMessages is the conversation view: the newest 50 messages.
const readMessages = `query Messages($id: ID!) {
  interaction(id: $id) {
    id
    messages(last: 50) {
      pageInfo { hasPreviousPage startCursor endCursor }
      edges { cursor node { id direction body sentAt author } }
    }
  }
}`

// recordMessage appends a message to a thread.
const recordMessage = `mutation Record($input: RecordMessageInput!) {
  recordMessage(input: $input) {
    clientMutationId
    interaction { id status }
    message { id sentAt }
    userErrors { field message code }
  }
}`

// closeInteraction closes an interaction.
const closeInteraction = `mutation Close($input: CloseInteractionInput!) {
  closeInteraction(input: $input) {
    interaction { id status closedState closedAt }
    userErrors { field message code }
  }
}`

// sampleInteractions pages through the tenant's interactions, with what
// the operations need of each: the thread to record on and whether the
// Related panel has a second page.
const sampleInteractions = `query Sample($after: String, $first: Int) {
  interactions(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id channel threadRef status
        contact { address }
        related(first: $first) { totalCount pageInfo { hasNextPage endCursor } }
      }
    }
  }
}`

// maxResponse bounds a response body the tool reads.
const maxResponse = 16 << 20

// gateway is an HTTP client of one gateway.
type gateway struct {
	base     string // scheme://host:port, no trailing slash
	endpoint string // base + "/graphql"
	key      string
	hc       *http.Client
	peer     bool // the Node peer: no key, no /metrics
}

// newGateway returns a client of the gateway at rawURL (with or without
// the /graphql path) that keeps up to conns connections open. Unless
// allowRemote, the host must be a loopback address. A peer (bench/peer)
// takes no key.
func newGateway(rawURL, key string, conns int, allowRemote, peer bool) (*gateway, error) {
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("-url %q: want http:// or https://", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("-url %q: no host", rawURL)
	}
	if !allowRemote && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("-url %q is not a loopback address; pass -allow-remote to load another host", rawURL)
	}
	if key == "" && !peer {
		return nil, errors.New("no API key: pass -key or set RELATED_KEY")
	}
	u.Path = strings.TrimSuffix(u.Path, "/graphql")
	u.RawQuery, u.Fragment = "", ""
	base := u.String()
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy: the target is the given URL
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &gateway{
		base:     base,
		endpoint: base + "/graphql",
		key:      key,
		peer:     peer,
		hc: &http.Client{
			Transport: tr,
			// Requests go to the given URL only.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// isLoopback reports whether host names this machine's loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// gqlError is one entry of a GraphQL response's errors.
type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// userError is a mutation payload's userErrors entry.
type userError struct {
	Field   []string `json:"field"`
	Message string   `json:"message"`
	Code    string   `json:"code"`
}

// do sends one GraphQL operation and decodes its data into out (nil:
// discarded). It returns the error kind ("" for success) and, for a
// failure, an error saying what happened.
func (g *gateway) do(ctx context.Context, query string, vars map[string]any, out any) (string, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return "encode", fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.endpoint, bytes.NewReader(body))
	if err != nil {
		return "request", fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if g.key != "" {
		req.Header.Set("Authorization", "Bearer "+g.key)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return transportKind(ctx, err), fmt.Errorf("post %s: %w", g.endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return transportKind(ctx, err), fmt.Errorf("read response: %w", err)
	}
	// One pass: data goes straight into out.
	var r struct {
		Data   any        `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if out != nil {
		r.Data = out
	}
	decodeErr := json.Unmarshal(raw, &r)
	if resp.StatusCode != http.StatusOK {
		kind := "http_" + strconv.Itoa(resp.StatusCode)
		msg := strings.TrimSpace(string(raw))
		if decodeErr == nil && len(r.Errors) > 0 {
			if c := r.Errors[0].Extensions.Code; c != "" {
				kind += ":" + c
			}
			msg = r.Errors[0].Message
		}
		return kind, fmt.Errorf("%s: %s", resp.Status, truncate(msg, 200))
	}
	if decodeErr != nil {
		return "decode", fmt.Errorf("decode response: %w", decodeErr)
	}
	if len(r.Errors) > 0 {
		kind := "graphql"
		if c := r.Errors[0].Extensions.Code; c != "" {
			kind += ":" + c
		}
		return kind, fmt.Errorf("graphql error: %s", r.Errors[0].Message)
	}
	return "", nil
}

// transportKind classifies a failure to get a response.
func transportKind(ctx context.Context, err error) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(ctx.Err(), context.Canceled):
		return "canceled"
	}
	return "transport"
}

// truncate shortens s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// target is a sampled interaction.
type target struct {
	ID        string // global id
	Channel   string
	ThreadRef string
	Address   string
	Open      bool
	Related   int    // its Related panel's totalCount
	After     string // its first page's endCursor when there is a second page
}

// pool is the sampled interactions, indexed for each operation.
type pool struct {
	all   []target
	paged []int // indexes of targets whose panel has a second page
	open  []int // indexes of open targets: recording on their thread appends
}

func (p *pool) add(t target) {
	p.all = append(p.all, t)
	if t.After != "" {
		p.paged = append(p.paged, len(p.all)-1)
	}
	if t.Open {
		p.open = append(p.open, len(p.all)-1)
	}
}

// sample reads up to limit interactions, 100 a page, newest first, noting
// for each whether its Related panel (pages of first) has a second page.
func (g *gateway) sample(ctx context.Context, limit, first int) (*pool, error) {
	p := &pool{}
	var after any
	for len(p.all) < limit {
		var v struct {
			Interactions struct {
				PageInfo struct {
					HasNextPage bool   `json:"hasNextPage"`
					EndCursor   string `json:"endCursor"`
				} `json:"pageInfo"`
				Edges []struct {
					Node struct {
						ID        string `json:"id"`
						Channel   string `json:"channel"`
						ThreadRef string `json:"threadRef"`
						Status    string `json:"status"`
						Contact   struct {
							Address string `json:"address"`
						} `json:"contact"`
						Related struct {
							TotalCount int `json:"totalCount"`
							PageInfo   struct {
								HasNextPage bool   `json:"hasNextPage"`
								EndCursor   string `json:"endCursor"`
							} `json:"pageInfo"`
						} `json:"related"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"interactions"`
		}
		if kind, err := g.do(ctx, sampleInteractions, map[string]any{"after": after, "first": first}, &v); err != nil {
			return nil, fmt.Errorf("sample interactions (%s): %w%s", kind, err, hint(kind))
		}
		for _, e := range v.Interactions.Edges {
			if len(p.all) >= limit {
				break
			}
			n := e.Node
			t := target{ID: n.ID, Channel: n.Channel, ThreadRef: n.ThreadRef, Address: n.Contact.Address, Open: n.Status == "OPEN", Related: n.Related.TotalCount}
			if n.Related.PageInfo.HasNextPage {
				t.After = n.Related.PageInfo.EndCursor
			}
			p.add(t)
		}
		if !v.Interactions.PageInfo.HasNextPage {
			break
		}
		after = v.Interactions.PageInfo.EndCursor
	}
	return p, nil
}

// hint suggests a fix for the error kinds a misconfigured run meets.
func hint(kind string) string {
	switch {
	case strings.HasPrefix(kind, "http_401"):
		return " (is -key a valid key of the tenant?)"
	case strings.HasPrefix(kind, "http_429"):
		return " (start the server with --rate-limit -1 --max-inflight -1)"
	case kind == "transport":
		return " (is the server running at -url?)"
	}
	return ""
}

// closedStates are the states close picks from.
var closedStates = []string{"CLOSED", "IGNORED", "SPAM"}

// gatewayJobs builds the gateway's operations over a sampled pool.
type gatewayJobs struct {
	g         *gateway
	p         *pool
	first     int
	newThread float64 // probability that record starts a new thread
	runID     string  // makes clientMutationIds and new threads unique per run
	seq       int
}

// build returns the job of one arrival of op, drawing its target from r.
// It is called from one goroutine at a time.
func (b *gatewayJobs) build(op string, r *rand.Rand) job {
	b.seq++
	seq := b.seq
	switch op {
	case opOpen:
		t := b.p.all[r.IntN(len(b.p.all))]
		body, _ := json.Marshal(map[string]any{"query": operation.OpenInteraction, "variables": map[string]any{"id": t.ID, "first": b.first}})
		return job{op: op, run: func(ctx context.Context) string {
			return b.g.open(ctx, body)
		}}
	case opPage:
		t := b.p.all[b.p.paged[r.IntN(len(b.p.paged))]]
		return job{op: op, run: func(ctx context.Context) string {
			var v struct {
				Interaction *struct {
					ID string `json:"id"`
				} `json:"interaction"`
			}
			kind, _ := b.g.do(ctx, pageRelated, map[string]any{"id": t.ID, "first": b.first, "after": t.After}, &v)
			if kind == "" && v.Interaction == nil {
				kind = "not_found"
			}
			return kind
		}}
	case opMessages:
		t := b.p.all[r.IntN(len(b.p.all))]
		return job{op: op, run: func(ctx context.Context) string {
			var v struct {
				Interaction *struct {
					ID string `json:"id"`
				} `json:"interaction"`
			}
			kind, _ := b.g.do(ctx, readMessages, map[string]any{"id": t.ID}, &v)
			if kind == "" && v.Interaction == nil {
				kind = "not_found"
			}
			return kind
		}}
	case opRecord:
		var t target
		if len(b.p.open) > 0 {
			t = b.p.all[b.p.open[r.IntN(len(b.p.open))]]
		} else {
			t = b.p.all[r.IntN(len(b.p.all))]
		}
		thread := t.ThreadRef
		if r.Float64() < b.newThread {
			thread = fmt.Sprintf("relatedload-%s-%d", b.runID, seq)
		}
		direction := "INBOUND"
		if r.IntN(2) == 0 {
			direction = "OUTBOUND"
		}
		input := map[string]any{
			"channel":          t.Channel,
			"threadRef":        thread,
			"contact":          map[string]any{"address": t.Address},
			"direction":        direction,
			"body":             fmt.Sprintf("relatedload message %d of run %s", seq, b.runID),
			"clientMutationId": fmt.Sprintf("relatedload-%s-%d", b.runID, seq),
		}
		return job{op: op, run: func(ctx context.Context) string {
			var v struct {
				RecordMessage struct {
					UserErrors []userError `json:"userErrors"`
				} `json:"recordMessage"`
			}
			kind, _ := b.g.do(ctx, recordMessage, map[string]any{"input": input}, &v)
			if kind == "" && len(v.RecordMessage.UserErrors) > 0 {
				kind = "userError:" + v.RecordMessage.UserErrors[0].Code
			}
			return kind
		}}
	case opClose:
		t := b.p.all[r.IntN(len(b.p.all))]
		state := closedStates[r.IntN(len(closedStates))]
		return job{op: op, run: func(ctx context.Context) string {
			var v struct {
				CloseInteraction struct {
					UserErrors []userError `json:"userErrors"`
				} `json:"closeInteraction"`
			}
			kind, _ := b.g.do(ctx, closeInteraction, map[string]any{"input": map[string]any{"id": t.ID, "state": state}}, &v)
			if kind == "" && len(v.CloseInteraction.UserErrors) > 0 {
				kind = "userError:" + v.CloseInteraction.UserErrors[0].Code
			}
			return kind
		}}
	}
	panic("relatedload: unknown operation " + op)
}

// Calibration is the database cost of one operation, measured by sending
// it serially and reading /metrics before and after each request.
type Calibration struct {
	Op       string `json:"op"`
	Requests int    `json:"requests"`
	Errors   int    `json:"errors"`
	// Median is the commands of the median request: the operation's usual
	// cost, unaffected by the server's background reads (a rule-evaluation
	// poll each second, a key lookup every few seconds) that land in a few
	// requests' windows.
	Median int64   `json:"median"`
	Mean   float64 `json:"mean"`
	Min    int64   `json:"min"`
	Max    int64   `json:"max"`
	// ByCommand is the mean per request of each command name.
	ByCommand map[string]float64 `json:"by_command"`
}

// calibrate sends n requests of op one at a time, reading the command
// counters around each, and returns the commands per request.
func calibrate(ctx context.Context, g *gateway, b *gatewayJobs, op string, n int, r *rand.Rand, timeout time.Duration) (Calibration, error) {
	c := Calibration{Op: op, ByCommand: map[string]float64{}}
	var per []int64
	sums := map[string]int64{}
	for range n {
		j := b.build(op, r)
		before, err := fetchCounters(ctx, g.hc, g.base)
		if err != nil {
			return c, err
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		kind := j.run(rctx)
		cancel()
		if ctx.Err() != nil {
			return c, fmt.Errorf("calibrate %s: %w", op, ctx.Err())
		}
		after, err := fetchCounters(ctx, g.hc, g.base)
		if err != nil {
			return c, err
		}
		c.Requests++
		if kind != "" {
			c.Errors++
			continue
		}
		d, total := delta(before.Commands, after.Commands)
		per = append(per, total)
		for k, v := range d {
			sums[k] += v
		}
	}
	if len(per) == 0 {
		return c, nil
	}
	var sum int64
	for _, v := range per {
		sum += v
	}
	c.Mean = round2(float64(sum) / float64(len(per)))
	c.Median = median(per) // sorts per
	c.Min, c.Max = per[0], per[len(per)-1]
	for k, v := range sums {
		c.ByCommand[k] = round2(float64(v) / float64(len(per)))
	}
	return c, nil
}

// The answers of open are checked by their shape, not decoded: decoding
// every answer (about 8 KB) costs the client more CPU than the gateway
// spends producing it, and client and server share the machine's cores.
var (
	openFound    = []byte(`{"data":{"interaction":{`)
	openNotFound = []byte(`{"data":{"interaction":null`)
	errorsKey    = []byte(`"errors":`)
)

// bodies are reused response buffers.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// open sends one prepared open request and returns its error kind: ""
// for an answer with data and no errors.
func (g *gateway) open(ctx context.Context, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.endpoint, bytes.NewReader(body))
	if err != nil {
		return "request"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if g.key != "" {
		req.Header.Set("Authorization", "Bearer "+g.key)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return transportKind(ctx, err)
	}
	defer resp.Body.Close()
	buf := bodies.Get().(*bytes.Buffer)
	defer bodies.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxResponse)); err != nil {
		return transportKind(ctx, err)
	}
	raw := buf.Bytes()
	if resp.StatusCode != http.StatusOK {
		kind := "http_" + strconv.Itoa(resp.StatusCode)
		var r struct {
			Errors []gqlError `json:"errors"`
		}
		if json.Unmarshal(raw, &r) == nil && len(r.Errors) > 0 && r.Errors[0].Extensions.Code != "" {
			kind += ":" + r.Errors[0].Extensions.Code
		}
		return kind
	}
	switch {
	case bytes.HasPrefix(raw, openNotFound):
		return "not_found"
	case !bytes.HasPrefix(raw, openFound):
		var r struct {
			Errors []gqlError `json:"errors"`
		}
		if json.Unmarshal(raw, &r) == nil && len(r.Errors) > 0 {
			if c := r.Errors[0].Extensions.Code; c != "" {
				return "graphql:" + c
			}
			return "graphql"
		}
		return "decode"
	case bytes.Contains(raw, errorsKey):
		return "graphql"
	}
	return ""
}
