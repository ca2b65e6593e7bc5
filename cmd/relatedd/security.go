package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/relatedhq/related/server"
)

// Environments --env takes.
const (
	envDevelopment = "development"
	envProduction  = "production"
)

// securityConfig is serve's exposure settings: TLS, proxy, what is
// public, and the abuse limits. Development (the default) turns
// introspection and GraphiQL on; production turns them off unless asked
// and refuses to serve plain HTTP unless a proxy in front says it
// terminates TLS.
type securityConfig struct {
	env            string
	tlsCert        string
	tlsKey         string
	behindProxy    bool
	introspection  bool
	graphiql       bool
	allowedOrigins string
	corsOrigins    string
	persistedOnly  bool
	persistedFile  string
	limits         server.Limits
	fs             *flag.FlagSet
}

func (sc *securityConfig) register(fs *flag.FlagSet, getenv func(string) string) {
	sc.fs = fs
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envBool := func(name string) bool {
		b, _ := strconv.ParseBool(getenv(name))
		return b
	}
	d := server.DefaultLimits
	fs.StringVar(&sc.env, "env", env("RELATED_ENV", envDevelopment), "development or production: production needs TLS or --behind-proxy and turns introspection and GraphiQL off unless enabled (env RELATED_ENV)")
	fs.StringVar(&sc.tlsCert, "tls-cert", env("RELATED_TLS_CERT", ""), "TLS certificate file (PEM); with --tls-key serves HTTPS (env RELATED_TLS_CERT)")
	fs.StringVar(&sc.tlsKey, "tls-key", env("RELATED_TLS_KEY", ""), "TLS private key file (PEM) (env RELATED_TLS_KEY)")
	fs.BoolVar(&sc.behindProxy, "behind-proxy", envBool("RELATED_BEHIND_PROXY"), "a reverse proxy in front terminates TLS and appends X-Forwarded-For (env RELATED_BEHIND_PROXY)")
	fs.BoolVar(&sc.introspection, "introspection", envBool("RELATED_INTROSPECTION"), "answer schema introspection (default on in development) (env RELATED_INTROSPECTION)")
	fs.BoolVar(&sc.graphiql, "graphiql", envBool("RELATED_GRAPHIQL"), "serve GraphiQL at /graphiql (default on in development) (env RELATED_GRAPHIQL)")
	fs.StringVar(&sc.allowedOrigins, "allowed-origins", env("RELATED_ALLOWED_ORIGINS", ""), "comma-separated hosts (patterns like *.example.com) whose pages may open WebSockets; the server's own origin always may (env RELATED_ALLOWED_ORIGINS)")
	fs.StringVar(&sc.corsOrigins, "cors-origins", env("RELATED_CORS_ORIGINS", ""), "comma-separated origins whose pages may call /graphql from a browser: https://app.example.com, https://*.example.com, http://localhost:*, * (any, without credentials) or none (default: localhost origins in development, none in production) (env RELATED_CORS_ORIGINS)")
	fs.BoolVar(&sc.persistedOnly, "persisted-only", envBool("RELATED_PERSISTED_ONLY"), "run only the operations registered in --persisted-queries (env RELATED_PERSISTED_ONLY)")
	fs.StringVar(&sc.persistedFile, "persisted-queries", env("RELATED_PERSISTED_QUERIES", ""), "JSON file of registered operations: an array of query texts, or an object of sha256 hex -> query text (env RELATED_PERSISTED_QUERIES)")
	fs.Float64Var(&sc.limits.RatePerSecond, "rate-limit", d.RatePerSecond, "requests per second per API key (token bucket; negative disables)")
	fs.IntVar(&sc.limits.RateBurst, "rate-burst", d.RateBurst, "burst of the per-key token bucket")
	fs.Int64Var(&sc.limits.MaxBodyBytes, "max-body", d.MaxBodyBytes, "largest request body in bytes (413 above)")
	fs.IntVar(&sc.limits.MaxDepth, "max-depth", d.MaxDepth, "deepest field nesting of a query")
	fs.IntVar(&sc.limits.MaxComplexity, "max-complexity", d.MaxComplexity, "highest query cost (1 per field, connection items times first/last)")
	fs.IntVar(&sc.limits.MaxAliases, "max-aliases", d.MaxAliases, "most aliases in one document")
	fs.IntVar(&sc.limits.MaxSubscriptions, "max-subscriptions", d.MaxSubscriptions, "most open subscriptions per API key")
	fs.IntVar(&sc.limits.MaxConnections, "max-connections", d.MaxConnections, "most open WebSockets and event streams per API key")
	fs.IntVar(&sc.limits.MaxInFlight, "max-inflight", d.MaxInFlight, "most operations per API key running at once (HTTP requests, WebSocket queries and mutations, subscription events)")
	fs.Int64Var(&sc.limits.MaxResponseBytes, "max-response-bytes", d.MaxResponseBytes, "largest response (or subscription event) in bytes, counted as it is produced; an operation reads at most twice that of message bodies")
	fs.DurationVar(&sc.limits.BodyTimeout, "body-timeout", d.BodyTimeout, "longest a client may take to send a request body (408 past it)")
	fs.Int64Var(&sc.limits.QueryCacheBytes, "query-cache-bytes", d.QueryCacheBytes, "bytes of parsed queries kept for reuse")
	fs.IntVar(&sc.limits.MaxBatch, "max-batch", d.MaxBatch, "most operations in one batched request (a JSON array body); each counts against the rate limit; negative refuses batches")
	fs.DurationVar(&sc.limits.OperationTimeout, "operation-timeout", d.OperationTimeout, "longest a query or mutation may run")
}

// set reports whether the flag name was given on the command line or by
// its environment variable.
func (sc *securityConfig) set(name, envName string, getenv func(string) string) bool {
	found := getenv(envName) != ""
	sc.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// resolve applies the environment's defaults and checks the combination,
// after the flags are parsed.
func (sc *securityConfig) resolve(getenv func(string) string) error {
	switch sc.env {
	case envDevelopment:
		if !sc.set("introspection", "RELATED_INTROSPECTION", getenv) {
			sc.introspection = true
		}
		if !sc.set("graphiql", "RELATED_GRAPHIQL", getenv) {
			sc.graphiql = true
		}
		if !sc.set("cors-origins", "RELATED_CORS_ORIGINS", getenv) {
			sc.corsOrigins = strings.Join(server.DevCORSOrigins, ",")
		}
	case envProduction:
		if (sc.tlsCert == "") != (sc.tlsKey == "") {
			return errors.New("--tls-cert and --tls-key go together")
		}
		if sc.tlsCert == "" && !sc.behindProxy {
			return errors.New("production refuses plain HTTP: give --tls-cert and --tls-key, or --behind-proxy when a proxy in front terminates TLS")
		}
		// Introspection and GraphiQL stay as given: off unless the
		// operator enabled them explicitly.
	default:
		return fmt.Errorf("--env %q: want %s or %s", sc.env, envDevelopment, envProduction)
	}
	if (sc.tlsCert == "") != (sc.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if sc.persistedOnly && sc.persistedFile == "" {
		return errors.New("--persisted-only needs --persisted-queries FILE")
	}
	return nil
}

// options fills in opts' exposure settings.
func (sc *securityConfig) options(opts *server.Options) error {
	opts.Introspection, opts.GraphiQL = sc.introspection, sc.graphiql
	opts.BehindProxy = sc.behindProxy
	opts.Limits = sc.limits
	for _, o := range strings.Split(sc.allowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			opts.AllowedOrigins = append(opts.AllowedOrigins, o)
		}
	}
	if !strings.EqualFold(strings.TrimSpace(sc.corsOrigins), "none") {
		for _, o := range strings.Split(sc.corsOrigins, ",") {
			if o = strings.TrimSpace(o); o != "" {
				opts.CORSOrigins = append(opts.CORSOrigins, o)
			}
		}
	}
	if err := server.CheckCORSOrigins(opts.CORSOrigins); err != nil {
		return fmt.Errorf("--cors-origins: %w", err)
	}
	if sc.persistedFile != "" {
		data, err := os.ReadFile(sc.persistedFile)
		if err != nil {
			return fmt.Errorf("persisted queries: %w", err)
		}
		ops, err := parsePersisted(data)
		if err != nil {
			return fmt.Errorf("persisted queries %s: %w", sc.persistedFile, err)
		}
		opts.Persisted = ops
		opts.PersistedOnly = sc.persistedOnly
	}
	return nil
}

// parsePersisted reads a registry of operations: a JSON array of query
// texts, or an object of sha256 hex -> query text (the hashes are checked,
// so a registry cannot map a hash to another query).
func parsePersisted(data []byte) (map[string]string, error) {
	out := map[string]string{}
	add := func(q string) string {
		sum := sha256.Sum256([]byte(q))
		h := hex.EncodeToString(sum[:])
		out[h] = q
		return h
	}
	var list []string
	if err := json.Unmarshal(data, &list); err == nil {
		for _, q := range list {
			if strings.TrimSpace(q) == "" {
				return nil, errors.New("an empty query")
			}
			add(q)
		}
		return out, nil
	}
	var byHash map[string]string
	if err := json.Unmarshal(data, &byHash); err != nil {
		return nil, fmt.Errorf("want a JSON array of queries or an object of sha256 -> query: %w", err)
	}
	for h, q := range byHash {
		if strings.TrimSpace(q) == "" {
			return nil, fmt.Errorf("%s: an empty query", h)
		}
		if got := add(q); !strings.EqualFold(got, h) {
			return nil, fmt.Errorf("%s: the query's sha256 is %s", h, got)
		}
	}
	return out, nil
}

// listen serves srv on ln, over TLS when configured.
func (sc *securityConfig) serve(srv *http.Server, ln net.Listener) error {
	if sc.tlsCert != "" {
		return srv.ServeTLS(ln, sc.tlsCert, sc.tlsKey)
	}
	return srv.Serve(ln)
}

// scheme is the URL scheme the server answers on.
func (sc *securityConfig) scheme() string {
	if sc.tlsCert != "" {
		return "https"
	}
	return "http"
}

// hardenServer sets the http.Server limits that do not cut long-lived
// WebSockets and event streams (the handler bounds request bodies and
// plain requests itself: server.deadlines).
func hardenServer(srv *http.Server) {
	srv.ReadHeaderTimeout = 10 * time.Second
	srv.IdleTimeout = 2 * time.Minute
	srv.MaxHeaderBytes = 256 << 10 // room for a GET query, no more
}
