package server

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/store"
)

// maxOperationLabels bounds the operation label of the GraphQL series:
// the first this many operation names seen get a series of their own,
// later ones count as "other", so a client inventing names cannot grow
// the series without bound.
const maxOperationLabels = 200

// otherOperation labels anonymous operations and names past the bound.
const otherOperation = "other"

// metrics is the /metrics endpoint, through the Prometheus client library:
// the gateway's own series, and the Go runtime's and the process's. Each
// Server has its own registry, so tests can run many servers in one
// process.
type metrics struct {
	reg *prometheus.Registry
	// hub and websockets feed the live-update gauges.
	hub        *live.Hub
	websockets atomic.Int64

	requests   *prometheus.CounterVec   // related_http_requests_total{route,code}
	reqSeconds *prometheus.HistogramVec // related_http_request_duration_seconds{route,code}
	operations *prometheus.HistogramVec // related_graphql_operation_duration_seconds{operation,type,outcome}
	dbSeconds  *prometheus.HistogramVec // related_db_command_duration_seconds{command}

	mu      sync.Mutex
	opNames map[string]bool // names with a series of their own

	handler http.Handler
}

func newMetrics(c *store.Commands) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), opNames: map[string]bool{}}
	start := time.Now()
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "related_http_requests_total",
		Help: "HTTP requests served, by route and status class.",
	}, []string{"route", "code"})
	m.reqSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "related_http_request_duration_seconds",
		Help:    "Time spent serving HTTP requests (WebSockets and event streams: their whole life), by route and status class.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "code"})
	m.operations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "related_graphql_operation_duration_seconds",
		Help: "Time to run a GraphQL query or mutation, by operation name (named operations, up to 200 names; others \"other\"), type and outcome (ok, error).",
		// Operations are mostly a few milliseconds; the timeout is 15s.
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15},
	}, []string{"operation", "type", "outcome"})
	m.dbSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "related_db_command_duration_seconds",
		Help:    "Time to run a database command, by command name (MongoDB command names; SQLite statements by verb).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	}, []string{"command"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.reqSeconds, m.operations, m.dbSeconds,
		commandsCollector{c},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "related_uptime_seconds", Help: "Seconds since the process started serving."},
			func() float64 { return time.Since(start).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "related_websocket_connections", Help: "Open WebSocket connections."},
			func() float64 { return float64(m.websockets.Load()) }),
		liveCollector{m},
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// routes bounds the route label to the paths the server serves, so a
// scanner probing random paths cannot grow the series without bound.
var routes = map[string]bool{"/graphql": true, "/healthz": true, "/readyz": true, "/metrics": true, "/": true}

func (m *metrics) request(path string, status int, d time.Duration) {
	route := routeOf(path)
	if status == 0 {
		status = http.StatusOK
	}
	class := statusClasses[min(max(status/100, 1), 5)]
	m.requests.WithLabelValues(route, class).Inc()
	m.reqSeconds.WithLabelValues(route, class).Observe(d.Seconds())
}

var statusClasses = [...]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// operationLabel is the operation label of name: the name while the
// bound allows, else "other".
func (m *metrics) operationLabel(name string) string {
	if name == "" || len(name) > 100 {
		return otherOperation
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.opNames[name] {
		return name
	}
	if len(m.opNames) >= maxOperationLabels {
		return otherOperation
	}
	m.opNames[name] = true
	return name
}

// observeOperations times every query and mutation to its response, by
// operation name. Subscriptions live as long as their client: they are
// counted by the live gauges instead.
func (m *metrics) observeOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	rc := graphql.GetOperationContext(ctx)
	if rc.Operation == nil || rc.Operation.Operation == ast.Subscription {
		return next(ctx)
	}
	start := time.Now()
	op, typ := m.operationLabel(rc.Operation.Name), string(rc.Operation.Operation)
	h := next(ctx)
	done := false
	return func(ctx context.Context) *graphql.Response {
		r := h(ctx)
		if !done {
			done = true
			outcome := "ok"
			if r == nil || len(r.Errors) > 0 {
				outcome = "error"
			}
			m.operations.WithLabelValues(op, typ, outcome).Observe(time.Since(start).Seconds())
		}
		return r
	}
}

// observeCommand times a database command for the histogram.
func (m *metrics) observeCommand(name string) func(error) {
	start := time.Now()
	return func(error) { m.dbSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds()) }
}

// commandsCollector exports the store's command counters as
// related_db_commands_total{command}, read at scrape time.
type commandsCollector struct{ c *store.Commands }

var commandsDesc = prometheus.NewDesc("related_db_commands_total",
	"Database commands sent, by command name (SQLite: statements by verb).", []string{"command"}, nil)

// Describe implements prometheus.Collector.
func (cc commandsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- commandsDesc }

// Collect implements prometheus.Collector.
func (cc commandsCollector) Collect(ch chan<- prometheus.Metric) {
	for name, n := range cc.c.Snapshot() {
		ch <- prometheus.MustNewConstMetric(commandsDesc, prometheus.CounterValue, float64(n), name)
	}
}

// liveCollector exports the hub's subscription series.
type liveCollector struct{ m *metrics }

var (
	subscriptionsDesc = prometheus.NewDesc("related_subscriptions", "Open GraphQL subscriptions (WebSocket and SSE).", nil, nil)
	deliveredDesc     = prometheus.NewDesc("related_subscription_events_total", "Subscription payloads handed to transports.", nil, nil)
	droppedDesc       = prometheus.NewDesc("related_subscriptions_dropped_total", "Subscriptions ended because their client fell too far behind.", nil, nil)
)

// Describe implements prometheus.Collector.
func (lc liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- subscriptionsDesc
	ch <- deliveredDesc
	ch <- droppedDesc
}

// Collect implements prometheus.Collector.
func (lc liveCollector) Collect(ch chan<- prometheus.Metric) {
	if lc.m.hub == nil {
		return
	}
	st := lc.m.hub.Stats()
	ch <- prometheus.MustNewConstMetric(subscriptionsDesc, prometheus.GaugeValue, float64(st.Subscriptions))
	ch <- prometheus.MustNewConstMetric(deliveredDesc, prometheus.CounterValue, float64(st.Delivered))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(st.Dropped))
}
