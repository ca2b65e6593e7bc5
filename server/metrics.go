package server

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/store"
)

// metrics is the /metrics endpoint in the Prometheus text format. The
// gateway's few series do not justify a metrics library: database commands
// by name, and HTTP requests by route and status class with their total
// duration.
type metrics struct {
	commands *store.Commands
	start    time.Time
	// hub and websockets feed the live-update gauges.
	hub        *live.Hub
	websockets atomic.Int64

	mu       sync.Mutex
	requests map[requestKey]*requestStat
}

type requestKey struct {
	route string
	class string // "2xx", "4xx", ...
}

type requestStat struct {
	count   int64
	seconds float64
}

func newMetrics(c *store.Commands) *metrics {
	return &metrics{commands: c, start: time.Now(), requests: map[requestKey]*requestStat{}}
}

// routes bounds the route label to the paths the server serves, so a
// scanner probing random paths cannot grow the series without bound.
var routes = map[string]bool{"/graphql": true, "/healthz": true, "/readyz": true, "/metrics": true, "/": true}

func (m *metrics) request(path string, status int, d time.Duration) {
	route := path
	switch {
	case strings.HasPrefix(path, "/graphiql"):
		route = "/graphiql"
	case !routes[path]:
		route = "other"
	}
	if status == 0 {
		status = http.StatusOK
	}
	k := requestKey{route, fmt.Sprintf("%dxx", status/100)}
	m.mu.Lock()
	st := m.requests[k]
	if st == nil {
		st = &requestStat{}
		m.requests[k] = st
	}
	st.count++
	st.seconds += d.Seconds()
	m.mu.Unlock()
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	b.WriteString("# HELP related_db_commands_total Database commands sent, by command name (SQLite: statements by verb).\n")
	b.WriteString("# TYPE related_db_commands_total counter\n")
	snap := m.commands.Snapshot()
	names := make([]string, 0, len(snap))
	for n := range snap {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "related_db_commands_total{command=%q} %d\n", n, snap[n])
	}
	m.mu.Lock()
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].route != keys[j].route {
			return keys[i].route < keys[j].route
		}
		return keys[i].class < keys[j].class
	})
	b.WriteString("# HELP related_http_requests_total HTTP requests served, by route and status class.\n")
	b.WriteString("# TYPE related_http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "related_http_requests_total{route=%q,code=%q} %d\n", k.route, k.class, m.requests[k].count)
	}
	b.WriteString("# HELP related_http_request_duration_seconds_sum Total time spent serving HTTP requests, by route and status class.\n")
	b.WriteString("# TYPE related_http_request_duration_seconds_sum counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "related_http_request_duration_seconds_sum{route=%q,code=%q} %g\n", k.route, k.class, m.requests[k].seconds)
	}
	m.mu.Unlock()
	m.writeLive(&b)
	b.WriteString("# HELP related_uptime_seconds Seconds since the process started serving.\n")
	b.WriteString("# TYPE related_uptime_seconds gauge\n")
	fmt.Fprintf(&b, "related_uptime_seconds %g\n", time.Since(m.start).Seconds())
	w.Write([]byte(b.String()))
}

// writeLive writes the live-update series: open WebSocket connections and
// subscriptions, and the hub's delivery counters.
func (m *metrics) writeLive(b *strings.Builder) {
	b.WriteString("# HELP related_websocket_connections Open WebSocket connections.\n")
	b.WriteString("# TYPE related_websocket_connections gauge\n")
	fmt.Fprintf(b, "related_websocket_connections %d\n", m.websockets.Load())
	if m.hub == nil {
		return
	}
	st := m.hub.Stats()
	b.WriteString("# HELP related_subscriptions Open GraphQL subscriptions (WebSocket and SSE).\n")
	b.WriteString("# TYPE related_subscriptions gauge\n")
	fmt.Fprintf(b, "related_subscriptions %d\n", st.Subscriptions)
	b.WriteString("# HELP related_subscription_events_total Subscription payloads handed to transports.\n")
	b.WriteString("# TYPE related_subscription_events_total counter\n")
	fmt.Fprintf(b, "related_subscription_events_total %d\n", st.Delivered)
	b.WriteString("# HELP related_subscriptions_dropped_total Subscriptions ended because their client fell too far behind.\n")
	b.WriteString("# TYPE related_subscriptions_dropped_total counter\n")
	fmt.Fprintf(b, "related_subscriptions_dropped_total %d\n", st.Dropped)
}
