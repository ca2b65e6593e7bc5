// Package server is the gateway's HTTP surface: GraphQL over HTTP,
// WebSocket and SSE at /graphql, GraphiQL, health and readiness probes and
// Prometheus metrics, with request ids and structured logs around all of
// them. It wires the resolvers to HTTP; it holds no business rules.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"go.opentelemetry.io/otel/trace"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/resolvers"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/web"
)

// Options configure New.
type Options struct {
	Store store.Store
	// Keys authenticates requests; nil means Store, which then must
	// implement store.KeyStore (both adapters do).
	Keys store.KeyStore
	// Commands are the store's command counters, exported at /metrics.
	Commands *store.Commands
	Logger   *slog.Logger
	// Introspection and GraphiQL turn on schema introspection and the
	// GraphiQL page. Off unless set: a production server answers neither
	// unless the operator decides it should.
	Introspection bool
	GraphiQL      bool
	// MetricsElsewhere leaves /metrics off this handler: the operator
	// serves Metrics() on a listener of its own (relatedd --metrics-addr),
	// so the public port does not show every tenant's operation names.
	MetricsElsewhere bool
	// Limits bound each request's cost; zero fields take DefaultLimits.
	Limits Limits
	// AllowedOrigins are the origins, besides the server's own, whose
	// pages may open WebSockets to /graphql: host patterns such as
	// "app.example.com" or "*.example.com" (path.Match syntax).
	AllowedOrigins []string
	// CORSOrigins are the origins whose pages may call /graphql from a
	// browser (cors.go): "*", exact origins such as
	// "https://app.example.com", or patterns such as "https://*.example.com"
	// and "http://localhost:*". Empty: none (same-origin only).
	CORSOrigins []string
	// PersistedOnly runs only the operations of Persisted (sha256 hex of
	// the query text -> the query): the allow-list mode. Automatic
	// persisted queries are off in it, since they would let any client
	// register any query.
	PersistedOnly bool
	Persisted     map[string]string
	// BehindProxy trusts the last X-Forwarded-For entry as the client's
	// address (for the limits on unauthenticated requests).
	BehindProxy bool
	// KeyCacheTTL is how long a key lookup is reused (default 3s): the
	// longest a revoked key keeps working on a replica.
	KeyCacheTTL time.Duration
	// KeyRecheck is how often an open WebSocket's key is checked again
	// (default 2s).
	KeyRecheck time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// TracerProvider receives the gateway's spans (HTTP requests, GraphQL
	// operations, resolvers, database commands); nil turns tracing off
	// and installs none of its hooks. NewTracerProvider makes the OTLP one.
	TracerProvider trace.TracerProvider
	// DBSystem names the database in spans: "sqlite" or "mongodb".
	DBSystem string
	// Hub serves subscriptions (live updates); nil refuses them. The
	// caller owns it: close it (Hub.Close) before shutting the server down,
	// so subscriptions end cleanly.
	Hub *live.Hub
	// Admission bounds the GraphQL requests running at once and waiting
	// (admission.go); the zero value takes the defaults.
	Admission Admission
	// NoPlans turns the compiled plans of registered operations off
	// (plan.go): every operation then runs through gqlgen's execution, as
	// the plans' differential test needs for its reference answers.
	NoPlans bool
}

// DemoTenant is the tenant of the embedded default mode's first-start key
// and of its demo data.
const DemoTenant = "demo"

// DemoViewer names the demo tenant for the seed commands. It no longer
// authenticates anything: every request needs an API key.
var DemoViewer = related.Viewer{Tenant: DemoTenant, Role: related.RoleAdmin, Name: "Demo admin"}

// Server is the gateway's http.Handler.
type Server struct {
	opts       Options
	limits     Limits
	log        *slog.Logger
	mux        *http.ServeMux
	metrics    *metrics
	handler    http.Handler
	auth       *authenticator
	keyLimit   *limiter
	anonLimit  *limiter
	subs       *perKey  // open subscriptions per key
	conns      *perKey  // open WebSockets and event streams per key
	inflight   *perKey  // operations running per key
	keyWatch   keyWatch // open WebSockets and event streams whose keys are re-checked
	corsPolicy *cors
	tracer     trace.Tracer // nil: tracing off
	dbSystem   string
	admission  *admission
}

// New returns the gateway's handler over opts.Store.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Commands == nil {
		opts.Commands = new(store.Commands)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeyCacheTTL <= 0 {
		opts.KeyCacheTTL = 3 * time.Second
	}
	if opts.KeyRecheck <= 0 {
		opts.KeyRecheck = 2 * time.Second
	}
	if opts.Keys == nil {
		if ks, ok := opts.Store.(store.KeyStore); ok {
			opts.Keys = ks
		} else {
			opts.Logger.Error("the store keeps no API keys: every request will be refused")
			opts.Keys = noKeys{}
		}
	}
	l := opts.Limits.withDefaults()
	s := &Server{
		opts: opts, limits: l, log: opts.Logger, mux: http.NewServeMux(), metrics: newMetrics(opts.Commands),
		auth:      &authenticator{keys: opts.Keys, ttl: opts.KeyCacheTTL, log: opts.Logger, now: opts.Now, cache: map[string]cachedKey{}},
		keyLimit:  newLimiter(l.RatePerSecond, l.RateBurst, opts.Now),
		anonLimit: newLimiter(l.AnonPerSecond, l.AnonBurst, opts.Now),
		subs:      newPerKey(l.MaxSubscriptions),
		conns:     newPerKey(l.MaxConnections),
		inflight:  newPerKey(l.MaxInFlight),
	}
	s.metrics.hub = opts.Hub
	s.admission = newAdmission(opts.Admission, s.metrics.reg)
	if opts.TracerProvider != nil {
		s.tracer = opts.TracerProvider.Tracer(tracerName)
	}
	s.dbSystem = opts.DBSystem
	if s.dbSystem == "" {
		s.dbSystem = "db"
	}
	opts.Commands.Observe(s.observeCommand)
	cp, err := newCORS(opts.CORSOrigins)
	if err != nil {
		// The command line checks the list first (CheckCORSOrigins); a
		// bad entry from elsewhere allows nothing rather than too much.
		opts.Logger.Error("CORS origins refused: cross-origin requests are not allowed", "err", err)
		cp = &cors{}
	}
	s.corsPolicy = cp
	// The body deadline is set before anything waits on the client; the
	// body is read (and its text checked) only once the key is known, and
	// an event stream is told from a plain request once it is in.
	s.mux.Handle("/graphql", s.cors(s.statusOverride(s.checkOrigin(s.deadlines(s.requireKey(s.limitBody(s.streams(s.graphQL()))))))))
	if opts.GraphiQL {
		s.mux.Handle(web.Prefix, web.GraphiQL())
		s.mux.Handle(web.Prefix+"/", web.GraphiQL())
		s.mux.Handle("GET /{$}", web.Console())
		s.mux.Handle(web.ConsolePrefix+"/", web.Console())
	}
	s.mux.Handle("GET /export/profiles/{id}", s.requireKey(http.HandlerFunc(s.exportProfile)))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if !opts.MetricsElsewhere {
		s.mux.Handle("GET /metrics", s.metrics)
	}
	var h http.Handler = s.mux
	if s.tracer != nil {
		h = s.traceHTTP(h)
	}
	s.handler = s.requestID(s.accessLog(h))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Metrics is the Prometheus handler /metrics serves, for a listener of its
// own (Options.MetricsElsewhere).
func (s *Server) Metrics() http.Handler { return s.metrics }

// graphQL builds the gqlgen handler with every transport the contract
// names: POST and GET, WebSocket (graphql-transport-ws and the legacy
// graphql-ws protocol), and server-sent events; and the limits around
// them (limits.go).
func (s *Server) graphQL() http.Handler {
	res := resolvers.New(s.opts.Store, s.log)
	res.Hub = s.opts.Hub
	res.PresentError = s.presentError
	srv := handler.New(s.withPlans(graph.NewExecutableSchema(graph.Config{Resolvers: res, Schema: servedSchema()}), res))
	srv.AddTransport(sseTransport{s: s, maxTokens: s.limits.MaxTokens})
	readLimit := s.limits.MaxBodyBytes
	srv.AddTransport(transport.Websocket{
		// Keepalive: legacy graphql-ws clients get "ka" messages;
		// graphql-transport-ws clients are pinged and dropped when no pong
		// comes back within two intervals. Writes time out (websocket.go).
		// Origins are checked before the upgrade (checkOrigin).
		Implementation:        websockets{open: &s.metrics.websockets, writeTimeout: wsWriteTimeout},
		KeepAlivePingInterval: 15 * time.Second,
		PingPongInterval:      15 * time.Second,
		InitTimeout:           wsInitTimeout,
		InitFunc:              s.wsInit,
		PayloadReadLimit:      &readLimit,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(httpTransport{s: s}) // GET and POST (http.go)
	srv.SetQueryCache(parsedQueryCache(s.limits.QueryCacheBytes))
	// First: a WebSocket's operations pay the rate limit before any work.
	srv.Use(operationRate{s})
	srv.SetParserTokenLimit(s.limits.MaxTokens)
	if s.opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	if s.opts.PersistedOnly {
		srv.Use(persisted{ops: s.opts.Persisted})
	} else {
		srv.Use(extension.AutomaticPersistedQuery{Cache: persistedQueryCache(persistedCacheBytes)})
	}
	// After the persisted-query extensions, which may fill in the query.
	srv.Use(newPrecheck(s.limits))
	srv.Use(operationGuard{maxComplexity: s.limits.MaxComplexity})
	srv.AroundOperations(s.metrics.observeOperations)
	if s.tracer != nil {
		srv.AroundOperations(s.traceOperations)
		srv.AroundFields(s.traceFields)
	}
	srv.AroundOperations(s.aroundOperations)
	srv.AroundOperations(res.AroundOperations)
	srv.AroundResponses(s.aroundResponses)   // the byte budget, per response
	srv.AroundResponses(res.AroundResponses) // fresh loaders per subscription event
	srv.AroundResponses(s.reportCost)
	srv.AroundRootFields(s.aroundRootFields)
	srv.AroundFields(s.aroundFields)
	srv.SetErrorPresenter(s.presentError)
	srv.SetRecoverFunc(s.recoverPanic)
	return srv
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 only once the database answers and its schema and
// indexes are in place, so a load balancer sends no traffic before.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.opts.Store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("database not ready\n"))
		return
	}
	w.Write([]byte("ready\n"))
}

// operationName is the GraphQL operation name for logs, if any.
func operationName(ctx context.Context) string {
	if !graphql.HasOperationContext(ctx) {
		return ""
	}
	return graphql.GetOperationContext(ctx).OperationName
}
