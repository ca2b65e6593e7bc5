// Command relatedd is the Related gateway: a GraphQL API over contact-centre
// interactions and their Related panels.
//
// Usage:
//
//	relatedd [serve] [flags]   run the server (the default)
//	relatedd seed [flags]      load a sample data set
//
// With MONGODB_URI set it stores its documents in MongoDB; without, in an
// embedded SQLite database under --data-dir. It only wires: configuration
// in, the store, the HTTP server, and signals.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/export"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/seed"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/mongo"
	"github.com/relatedhq/related/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// config is the configuration every subcommand shares. A flag wins over
// its environment variable, which wins over the default.
type config struct {
	addr     string
	dataDir  string
	mongoURI string
	db       string
	logJSON  bool
	maxDB    int64
	mapDB    int64
}

func (c *config) register(fs *flag.FlagSet, getenv func(string) string) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.addr, "addr", env("RELATED_ADDR", ":8080"), "listen address (env RELATED_ADDR)")
	fs.StringVar(&c.dataDir, "data-dir", env("RELATED_DATA_DIR", "./data"), "embedded database directory, used when MONGODB_URI is unset (env RELATED_DATA_DIR)")
	fs.StringVar(&c.mongoURI, "mongodb-uri", env("MONGODB_URI", ""), "MongoDB connection string; unset means the embedded database (env MONGODB_URI)")
	fs.StringVar(&c.db, "db", env("RELATED_DB", "related"), "MongoDB database name (env RELATED_DB)")
	fs.BoolVar(&c.logJSON, "log-json", env("RELATED_LOG_FORMAT", "") == "json", "log as JSON lines instead of text (env RELATED_LOG_FORMAT=json)")
	maxDB, _ := strconv.ParseInt(env("RELATED_MAX_DB_BYTES", "0"), 10, 64)
	mapDB, _ := strconv.ParseInt(env("RELATED_SQLITE_MAP_BYTES", "0"), 10, 64)
	fs.Int64Var(&c.mapDB, "sqlite-map-bytes", mapDB, "how much of the embedded database file each reader connection reads through a memory map (0: 2 GiB, the most SQLite maps; negative: none); mapped pages count once per connection in the reported resident size (env RELATED_SQLITE_MAP_BYTES)")
	fs.Int64Var(&c.maxDB, "max-db-bytes", maxDB, "largest the embedded database file may grow, in bytes; past it writes fail with UNAVAILABLE and reads go on (0: the disk is the limit) (env RELATED_MAX_DB_BYTES)")
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, getenv, stdout, stderr)
	case "seed":
		err = seedCmd(ctx, args, getenv, stdout, stderr)
	case "keys":
		err = keysCmd(ctx, args, getenv, stdout, stderr)
	case "export":
		err = exportCmd(ctx, args, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: relatedd [serve|seed|keys|export] [flags]; relatedd CMD -h lists a command's flags")
		return 0
	default:
		fmt.Fprintf(stderr, "relatedd: unknown command %q (want serve, seed, keys or export)\n", cmd)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relatedd %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func newLogger(c config, w io.Writer) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(w, nil)
	if c.logJSON {
		h = slog.NewJSONHandler(w, nil)
	}
	if b, ok := w.(*batchWriter); ok {
		h = flushingHandler{h, b}
	}
	return slog.New(h)
}

// openStore opens MongoDB when a URI is configured, else the embedded
// database. pub receives the events of committed writes (nil: dropped).
func openStore(ctx context.Context, c config, log *slog.Logger, cmds *store.Commands, pub store.Publisher) (store.Store, error) {
	if c.mongoURI != "" {
		log.Info("opening MongoDB", "db", c.db)
		return mongo.Open(ctx, mongo.Options{URI: c.mongoURI, Database: c.db, Commands: cmds, Logger: log, Publisher: pub})
	}
	log.Info("opening embedded database", "dir", c.dataDir)
	return sqlite.Open(ctx, sqlite.Options{Dir: c.dataDir, Commands: cmds, Logger: log, Publisher: pub, MaxBytes: c.maxDB, MapBytes: c.mapDB})
}

// startLive makes the live hub over st. On MongoDB it also starts this
// replica's feed reader, which brings the other replicas' writes to the
// hub; the returned stop closes both, subscriptions first.
// maxLists bounds each key's interaction-list subscriptions.
func startLive(ctx context.Context, c config, log *slog.Logger, st store.Store, maxLists int, hub **live.Hub) (func(), error) {
	*hub = live.New(live.Options{Store: st, Logger: log, MaxListsPerKey: maxLists})
	var feed *mongo.Feed
	if c.mongoURI != "" {
		var err error
		feed, err = mongo.StartFeed(ctx, mongo.FeedOptions{URI: c.mongoURI, Database: c.db, Publisher: *hub, Logger: log})
		if err != nil {
			return nil, err
		}
		log.Info("events feed started", "change_stream", feed.Stream())
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := (*hub).Close(cctx); err != nil {
				log.Warn("closing subscriptions", "err", err)
			}
			if feed != nil {
				if err := feed.Close(); err != nil {
					log.Warn("closing the events feed", "err", err)
				}
			}
		})
	}, nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, getenv)
	demo := fs.Int("seed", 0, "when the database has no data yet, load a sample of this many customers first (0: none)")
	metricsAddr := fs.String("metrics-addr", getenv("RELATED_METRICS_ADDR"), "serve /metrics on this address instead of the main one, such as 127.0.0.1:9090: the main port then does not show every tenant's operation names (env RELATED_METRICS_ADDR)")
	debugAddr := fs.String("debug-addr", getenv("RELATED_DEBUG_ADDR"), "serve Go's profiler (/debug/pprof/) on this address, such as 127.0.0.1:6060; keep it off public interfaces (env RELATED_DEBUG_ADDR)")
	maxLists := fs.Int("max-list-subscriptions", live.DefaultMaxListsPerKey, "most interactionsChanged subscriptions per API key (each receives every interaction write of its tenant), within --max-subscriptions")
	var sec securityConfig
	sec.register(fs, getenv)
	var perf perfConfig
	perf.register(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *maxLists < 1 {
		return fmt.Errorf("--max-list-subscriptions %d: want at least 1", *maxLists)
	}
	if err := perf.check(); err != nil {
		return err
	}
	if err := sec.resolve(getenv); err != nil {
		return err
	}
	opts := server.Options{}
	if err := sec.options(&opts); err != nil {
		return err
	}
	perf.options(&opts, c.mongoURI != "")
	logOut := newBatchWriter(stderr)
	defer logOut.Close()
	log := newLogger(c, logOut)
	cmds := new(store.Commands)
	// The store publishes to the hub, and the hub reads the store: the
	// publisher forwards to the hub once it exists.
	var hub *live.Hub
	pub := store.PublisherFunc(func(ctx context.Context, events []store.Event) { hub.Publish(ctx, events) })
	st, err := openStore(ctx, c, log, cmds, pub)
	if err != nil {
		return err
	}
	defer st.Close()
	stopLive, err := startLive(ctx, c, log, st, *maxLists, &hub)
	if err != nil {
		return err
	}
	defer stopLive()
	// The embedded default's first start: an admin key, printed once.
	if ks, ok := st.(store.KeyStore); ok && c.mongoURI == "" && sec.env == envDevelopment {
		if err := firstStartKey(ctx, ks, stdout); err != nil {
			return err
		}
	}
	if *demo > 0 {
		if err := seedIfEmpty(ctx, st, *demo, log); err != nil {
			return err
		}
	}
	// Rule changes re-evaluate the tenant's contacts in the background.
	evalCtx, stopEval := context.WithCancel(ctx)
	evalDone := make(chan struct{})
	go func() {
		defer close(evalDone)
		store.RunEvaluations(evalCtx, st, time.Second, log)
	}()
	defer func() { stopEval(); <-evalDone }() // before the store closes
	if *debugAddr != "" {
		stopDebug, err := serveDebug(*debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	opts.Store, opts.Commands, opts.Logger, opts.Hub = st, cmds, log, hub
	opts.DBSystem = "sqlite"
	if c.mongoURI != "" {
		opts.DBSystem = "mongodb"
	}
	// Tracing: on when OTEL_EXPORTER_OTLP_ENDPOINT is set.
	tp, err := server.NewTracerProvider(ctx, getenv)
	if err != nil {
		return err
	}
	if tp != nil {
		opts.TracerProvider = tp
		log.Info("exporting traces over OTLP")
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(sctx); err != nil {
				log.Warn("flushing traces", "err", err)
			}
		}()
	}
	opts.MetricsElsewhere = *metricsAddr != ""
	handler := server.New(opts)
	if *metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", handler.Metrics())
		stopMetrics, err := serveAside(*metricsAddr, "metrics", mux, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	hardenServer(srv)
	errc := make(chan error, 1)
	go func() { errc <- sec.serve(srv, ln) }()
	fmt.Fprintf(stdout, "Related is serving on %s://%s\n", sec.scheme(), displayAddr(ln.Addr()))
	if sec.graphiql {
		fmt.Fprintf(stdout, "  GraphiQL: %s://%s/graphiql\n", sec.scheme(), displayAddr(ln.Addr()))
		fmt.Fprintf(stdout, "  Agent console: %s://%s/\n", sec.scheme(), displayAddr(ln.Addr()))
	}
	log.Info("serving", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Finish in-flight requests, then stop.
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Subscriptions first: Shutdown does not wait for hijacked WebSocket
	// connections, and ending their streams tells clients to reconnect.
	stopLive()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// seedIfEmpty loads the demo sample into a store whose demo tenant has no
// interactions yet.
func seedIfEmpty(ctx context.Context, st store.Store, customers int, log *slog.Logger) error {
	page, err := st.ListInteractions(ctx, server.DemoViewer.Tenant, store.InteractionFilter{}, store.Page{First: 1})
	if err != nil {
		return err
	}
	if len(page.Items) > 0 {
		log.Info("the database has data: not seeding", "tenant", server.DemoViewer.Tenant)
		return nil
	}
	log.Info("loading demo data", "customers", customers)
	stats, err := seed.Run(ctx, st, seed.Options{Tenant: server.DemoViewer.Tenant, Customers: customers, Seed: 1})
	if err != nil {
		return err
	}
	log.Info("demo data loaded", "interactions", stats.Interactions, "messages", stats.Messages,
		"try_interaction", related.GlobalID(related.NodeInteraction, stats.Sample))
	return nil
}

func seedCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, getenv)
	o := seed.Options{Progress: stdout}
	fs.StringVar(&o.Tenant, "tenant", server.DemoViewer.Tenant, "tenant to write into")
	fs.IntVar(&o.Customers, "customers", 300, "number of customers")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed: the same seed writes the same data")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(c, stderr)
	st, err := openStore(ctx, c, log, nil, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	stats, err := seed.Run(ctx, st, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded tenant %q: %d customers, %d contacts, %d interactions, %d messages in %s\ntry: { interaction(id: %q) { related { totalCount } } }\n",
		o.Tenant, stats.Customers, stats.Contacts, stats.Interactions, stats.Messages, time.Since(start).Round(time.Millisecond),
		related.GlobalID(related.NodeInteraction, stats.Sample))
	return nil
}

// exportCmd writes everything kept about one profile as NDJSON to stdout
// (or -o FILE): the command-line twin of GET /export/profiles/{id}.
func exportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, getenv)
	var tenant, profile, out string
	fs.StringVar(&tenant, "tenant", server.DemoViewer.Tenant, "tenant of the profile")
	fs.StringVar(&profile, "profile", "", "the profile's id, as the API gives it (required)")
	fs.StringVar(&out, "o", "", "write to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if profile == "" {
		return errors.New("export: --profile is required")
	}
	log := newLogger(c, stderr)
	st, err := openStore(ctx, c, log, nil, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	w := stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	if err := export.Profile(ctx, st, tenant, profile, time.Now(), bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	log.Info("profile exported", "tenant", tenant, "profile", profile)
	return nil
}
