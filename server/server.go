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
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

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
	// Commands are the store's command counters, exported at /metrics.
	Commands *store.Commands
	Logger   *slog.Logger
	// Viewer is who every request acts for until API keys authenticate
	// callers: the demo tenant's agent.
	Viewer related.Viewer
	// Hub serves subscriptions (live updates); nil refuses them. The
	// caller owns it: close it (Hub.Close) before shutting the server down,
	// so subscriptions end cleanly.
	Hub *live.Hub
}

// DemoViewer is the viewer of an unauthenticated development server.
var DemoViewer = related.Viewer{Tenant: "demo", Role: related.RoleAdmin, Name: "Demo agent", Principal: "demo"}

// Server is the gateway's http.Handler.
type Server struct {
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
	handler http.Handler
}

// New returns the gateway's handler over opts.Store.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Commands == nil {
		opts.Commands = new(store.Commands)
	}
	if opts.Viewer.Tenant == "" {
		opts.Viewer = DemoViewer
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux(), metrics: newMetrics(opts.Commands)}
	s.metrics.hub = opts.Hub
	s.mux.Handle("/graphql", s.graphQL())
	s.mux.Handle(web.Prefix, web.GraphiQL())
	s.mux.Handle(web.Prefix+"/", web.GraphiQL())
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.metrics)
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, web.Prefix, http.StatusFound)
	})
	s.handler = s.requestID(s.accessLog(s.mux))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// graphQL builds the gqlgen handler with every transport the contract
// names: POST and GET, WebSocket (graphql-transport-ws and the legacy
// graphql-ws protocol), and server-sent events.
func (s *Server) graphQL() http.Handler {
	res := resolvers.New(s.opts.Store, s.log)
	res.Hub = s.opts.Hub
	srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: res}))
	srv.AddTransport(transport.SSE{})
	srv.AddTransport(transport.Websocket{
		// Keepalive: legacy graphql-ws clients get "ka" messages;
		// graphql-transport-ws clients are pinged and dropped when no pong
		// comes back within two intervals. Writes time out (websocket.go).
		Implementation:        websockets{open: &s.metrics.websockets},
		KeepAlivePingInterval: 15 * time.Second,
		PingPongInterval:      15 * time.Second,
		InitFunc: func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			return related.WithViewer(ctx, s.opts.Viewer), nil, nil
		},
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	srv.AroundOperations(res.AroundOperations)
	srv.AroundResponses(res.AroundResponses) // fresh loaders per subscription event
	srv.SetErrorPresenter(s.presentError)
	srv.SetRecoverFunc(s.recoverPanic)
	return s.withViewer(srv)
}

// withViewer puts the viewer every request acts for in its context.
func (s *Server) withViewer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(related.WithViewer(r.Context(), s.opts.Viewer)))
	})
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
