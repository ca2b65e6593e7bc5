package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
)

// scrape reads /metrics with a Prometheus text parser.
func (g *gateway) scrape() map[string]*dto.MetricFamily {
	g.t.Helper()
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		g.t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestPrometheusMetrics(t *testing.T) {
	g := newGateway(t, backends[0])
	r := g.record(message("EMAIL", "m1", "metrics@example.com", "hello", t0))
	g.must(`query Panel($id: ID!) { interaction(id: $id) { related { totalCount } } }`, map[string]any{"id": r.RecordMessage.Interaction.ID}, nil)
	g.must(`query Panel($id: ID!) { interaction(id: $id) { id } }`, map[string]any{"id": r.RecordMessage.Interaction.ID}, nil)
	g.do(`{ nope }`, nil, nil)
	// 250 distinct names: the first ones get series, the rest "other".
	for i := range 250 {
		g.must(fmt.Sprintf(`query Invented%d { viewer { tenant } }`, i), nil, nil)
	}
	g.must(`{ viewer { tenant } }`, nil, nil)
	fams := g.scrape()
	for _, name := range []string{
		"related_db_commands_total", "related_http_requests_total", "related_http_request_duration_seconds",
		"related_graphql_operation_duration_seconds", "related_db_command_duration_seconds",
		"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes",
	} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if got := fams["related_http_request_duration_seconds"].GetType(); got != dto.MetricType_HISTOGRAM {
		t.Fatalf("related_http_request_duration_seconds is a %s", got)
	}
	// The command counters agree with the store's.
	counted := map[string]float64{}
	for _, m := range fams["related_db_commands_total"].GetMetric() {
		counted[label(m, "command")] = m.GetCounter().GetValue()
	}
	for name, n := range g.cmds.Snapshot() {
		if counted[name] != float64(n) {
			t.Errorf("related_db_commands_total{command=%q} = %v, want %d", name, counted[name], n)
		}
	}
	var observed uint64
	for _, m := range fams["related_db_command_duration_seconds"].GetMetric() {
		observed += m.GetHistogram().GetSampleCount()
	}
	if total := g.cmds.Total(); observed == 0 || observed > uint64(total) {
		t.Fatalf("%d database commands timed, %d counted", observed, total)
	}
	// Operations by name, bounded.
	ops := map[string]uint64{}
	for _, m := range fams["related_graphql_operation_duration_seconds"].GetMetric() {
		ops[label(m, "operation")+"/"+label(m, "type")+"/"+label(m, "outcome")] += m.GetHistogram().GetSampleCount()
	}
	if ops["Panel/query/ok"] != 2 {
		t.Fatalf("Panel timed %d times: %v", ops["Panel/query/ok"], ops)
	}
	if len(ops) > 200+5 {
		t.Fatalf("%d operation series: the label is unbounded", len(ops))
	}
	if ops["other/query/ok"] < 50 {
		t.Fatalf("anonymous and late-named operations: other = %d", ops["other/query/ok"])
	}
	var graphql float64
	for _, m := range fams["related_http_requests_total"].GetMetric() {
		if label(m, "route") == "/graphql" && label(m, "code") == "2xx" {
			graphql = m.GetCounter().GetValue()
		}
	}
	if graphql < 254 {
		t.Fatalf("related_http_requests_total{route=/graphql,code=2xx} = %v", graphql)
	}
}

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes what an exporter
// posts to /v1/traces.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			o.spans = append(o.spans, ss.GetSpans()...)
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(out)
}

func TestTracingOverOTLP(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	tp, err := server.NewTracerProvider(context.Background(), func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			return collector.URL
		}
		return ""
	})
	if err != nil || tp == nil {
		t.Fatalf("provider %v, %v", tp, err)
	}
	g := newGatewayWith(t, backends[0], server.Options{Limits: server.Limits{RatePerSecond: -1}, TracerProvider: tp, DBSystem: "sqlite"})
	r := g.record(message("EMAIL", "tr", "trace@example.com", "hello", t0))
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	body := fmt.Sprintf(`{"query":"query Panel($id: ID!) { interaction(id: $id) { channel related { totalCount edges { node { id } } } } }","variables":{"id":%q}}`, r.RecordMessage.Interaction.ID)
	if res := g.raw("POST", "/graphql", map[string]string{"Authorization": "Bearer " + g.key, "Content-Type": "application/json", "traceparent": parent}, body); res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	byID := map[string]*tracepb.Span{}
	var inTrace []*tracepb.Span
	for _, s := range recv.spans {
		if fmt.Sprintf("%x", s.GetTraceId()) == "4bf92f3577b34da6a3ce929d0e0e4736" {
			inTrace = append(inTrace, s)
			byID[string(s.GetSpanId())] = s
		}
	}
	names := map[string]*tracepb.Span{}
	for _, s := range inTrace {
		names[s.GetName()] = s
	}
	for _, want := range []string{"POST /graphql", "query Panel", "Query.interaction", "Interaction.related", "sqlite select"} {
		if names[want] == nil {
			var got []string
			for n := range names {
				got = append(got, n)
			}
			t.Fatalf("no %q span in the caller's trace; spans: %s", want, strings.Join(got, ", "))
		}
	}
	for _, s := range inTrace {
		if strings.HasPrefix(s.GetName(), "Interaction.channel") {
			t.Fatalf("a span for a field without a resolver: %s", s.GetName())
		}
	}
	// The chain: caller -> HTTP -> operation -> field -> database.
	ancestors := func(s *tracepb.Span) []string {
		var out []string
		for p := byID[string(s.GetParentSpanId())]; p != nil; p = byID[string(p.GetParentSpanId())] {
			out = append(out, p.GetName())
		}
		return out
	}
	if fmt.Sprintf("%x", names["POST /graphql"].GetParentSpanId()) != "00f067aa0ba902b7" {
		t.Fatalf("the HTTP span's parent is %x, not the caller's", names["POST /graphql"].GetParentSpanId())
	}
	found := false
	for _, s := range inTrace {
		if s.GetName() == "sqlite select" {
			a := strings.Join(ancestors(s), " < ")
			if strings.HasSuffix(a, "query Panel < POST /graphql") && (strings.HasPrefix(a, "Query.interaction") || strings.HasPrefix(a, "Interaction.related")) {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no database span under a field span under the operation")
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTracingOffWhenUnset(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	tp, err := server.NewTracerProvider(context.Background(), func(string) string { return "" })
	if tp != nil || err != nil {
		t.Fatalf("tracing on without an endpoint: %v %v", tp, err)
	}
	// Unobserved, counting a command allocates nothing.
	var c store.Commands
	c.Add("select")
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { c.Start(ctx, "select")(nil) }); n != 0 {
		t.Fatalf("an unobserved command allocates %v times", n)
	}
}

// TestMetricsElsewhere: with /metrics moved to a listener of its own, the
// main handler does not serve it, and Metrics() does, with the main
// handler's requests counted.
func TestMetricsElsewhere(t *testing.T) {
	st, cmds := backends[0].open(t)
	s := server.New(server.Options{Store: st, Commands: cmds, MetricsElsewhere: true, Limits: server.Limits{RatePerSecond: -1}})
	main := httptest.NewServer(s)
	defer main.Close()
	aside := httptest.NewServer(s.Metrics())
	defer aside.Close()
	for _, c := range []struct {
		url  string
		want int
	}{{main.URL + "/healthz", 200}, {main.URL + "/metrics", 404}, {aside.URL, 200}} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("GET %s: %d, want %d", c.url, resp.StatusCode, c.want)
		}
		if c.url == aside.URL && !strings.Contains(string(body), `related_http_requests_total{code="2xx",route="/healthz"}`) {
			t.Fatalf("the metrics aside do not count the main port's requests:\n%.2000s", body)
		}
	}
}
