package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related/store"
)

// Feed modes.
const (
	// FeedAuto uses a change stream when the server offers one (a replica
	// set or sharded cluster) and polls otherwise (a standalone server,
	// FerretDB).
	FeedAuto = ""
	// FeedPoll always polls.
	FeedPoll = "poll"
	// FeedChangeStream requires a change stream; Start fails without one.
	FeedChangeStream = "changestream"
)

// FeedOptions configure StartFeed. Zero durations take the defaults.
type FeedOptions struct {
	URI      string
	Database string
	// Publisher receives every event once, in _id order per read: the
	// live hub. Required.
	Publisher store.Publisher
	// Mode is FeedAuto, FeedPoll or FeedChangeStream.
	Mode string
	// Poll is the interval between polls (default 250 ms): the delivery
	// latency across replicas when polling.
	Poll time.Duration
	// Overlap is how far behind the newest event seen each poll re-reads
	// (default 2 s). Ids are time-ordered, but writers on several replicas
	// commit out of id order, and their clocks differ: an event that
	// commits more than Overlap after a newer-id event was read, or whose
	// replica's clock runs more than Overlap behind, is missed.
	Overlap time.Duration
	// Retention is how long events are kept (default 10 min): a replica
	// whose feed broke for longer misses what was written meanwhile.
	Retention time.Duration
	// Prune is the interval between deletions of expired events (default
	// 1 min). FerretDB has no TTL indexes and scans on every find, so the
	// collection is kept small by deleteMany.
	Prune time.Duration
	// Logger receives the feed's diagnostics (slog.Default() when nil).
	Logger *slog.Logger
}

// Backoff bounds of a broken feed's retries.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 5 * time.Second
	// feedBatch is the most events one find returns; a fuller window is
	// read in several finds.
	feedBatch = 1000
)

// Feed reads the events collection and publishes every event once, so
// each gateway replica's subscribers see the writes of all replicas. A
// replica runs one. It survives database restarts and network failures:
// it retries with backoff and resumes after the newest event it had read,
// delivering what was written meanwhile (within Retention) without
// repeating what it delivered.
type Feed struct {
	opts   FeedOptions
	client *mongodriver.Client
	coll   *mongodriver.Collection
	log    *slog.Logger
	stream bool // reading a change stream rather than polling

	cancel context.CancelFunc
	done   chan struct{}

	// Reader state, owned by the run goroutine.
	high time.Time            // time of the newest event read
	seen map[string]time.Time // ids read within Overlap of high, by time

	delivered atomic.Int64
	failures  atomic.Int64
	mu        sync.Mutex
	lastErr   error
}

// StartFeed connects its own client (so the feed's reads never queue
// behind requests), picks the mode and starts reading events written from
// now on. Close stops it.
func StartFeed(ctx context.Context, opts FeedOptions) (*Feed, error) {
	if opts.Publisher == nil {
		return nil, errors.New("mongo: feed: no publisher")
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.Overlap <= 0 {
		opts.Overlap = 2 * time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 10 * time.Minute
	}
	if opts.Prune <= 0 {
		opts.Prune = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client, err := mongodriver.Connect(options.Client().ApplyURI(opts.URI).SetAppName("related-feed"))
	if err != nil {
		return nil, fmt.Errorf("mongo: feed: connect: %w", err)
	}
	f := &Feed{
		opts: opts, client: client, coll: client.Database(opts.Database).Collection(collEvents),
		log: opts.Logger, done: make(chan struct{}), seen: map[string]time.Time{}, high: time.Now(),
	}
	if opts.Mode != FeedPoll {
		cs, err := f.watch(ctx)
		switch {
		case err == nil:
			f.stream = true
			_ = cs.Close(ctx)
		case opts.Mode == FeedChangeStream:
			return nil, errors.Join(fmt.Errorf("mongo: feed: change stream: %w", err), f.disconnect())
		default:
			f.log.Info("mongo: feed: no change streams on this server; polling", "interval", opts.Poll, "err", err)
		}
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	go f.run(rctx)
	return f, nil
}

// Stream reports whether the feed reads a change stream (else it polls).
func (f *Feed) Stream() bool { return f.stream }

// FeedStats are a feed's counters.
type FeedStats struct {
	Delivered int64 // events published
	Failures  int64 // failed reads (each followed by a retry)
	LastErr   error // the last failure, nil once a read succeeds again
}

// Stats returns the feed's counters.
func (f *Feed) Stats() FeedStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FeedStats{Delivered: f.delivered.Load(), Failures: f.failures.Load(), LastErr: f.lastErr}
}

// Close stops the feed and disconnects its client.
func (f *Feed) Close() error {
	f.cancel()
	<-f.done
	if err := f.disconnect(); err != nil {
		return fmt.Errorf("mongo: feed: close: %w", err)
	}
	return nil
}

func (f *Feed) disconnect() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.client.Disconnect(ctx)
}

// run reads until ctx ends, retrying failures with backoff. A retry goes
// through catchUp, which re-reads from Overlap before the newest event
// read, so nothing written while the feed was broken is skipped.
func (f *Feed) run(ctx context.Context) {
	defer close(f.done)
	prune := time.NewTicker(f.opts.Prune)
	defer prune.Stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.pruneLoop(ctx, prune.C) }()
	defer wg.Wait()
	backoff := minBackoff
	for ctx.Err() == nil {
		var err error
		if f.stream {
			err = f.runStream(ctx)
		} else {
			err = f.runPoll(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		f.failures.Add(1)
		f.mu.Lock()
		f.lastErr = err
		f.mu.Unlock()
		f.log.Warn("mongo: feed: read failed; retrying", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// ok records a successful read, which ends a failure streak.
func (f *Feed) ok() {
	f.mu.Lock()
	if f.lastErr != nil {
		f.log.Info("mongo: feed: reading again")
	}
	f.lastErr = nil
	f.mu.Unlock()
}

// runPoll polls until a read fails or ctx ends.
func (f *Feed) runPoll(ctx context.Context) error {
	t := time.NewTicker(f.opts.Poll)
	defer t.Stop()
	for {
		if err := f.catchUp(ctx); err != nil {
			return err
		}
		f.ok()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// catchUp reads every event from Overlap before the newest one read,
// and publishes those not read before, in _id order.
func (f *Feed) catchUp(ctx context.Context) error {
	after := idAt(f.high.Add(-f.opts.Overlap))
	findOpts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(feedBatch)
	for {
		cur, err := f.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}}, findOpts)
		if err != nil {
			return fmt.Errorf("mongo: feed: find: %w", err)
		}
		var docs []eventDoc
		if err := cur.All(ctx, &docs); err != nil {
			return fmt.Errorf("mongo: feed: read: %w", err)
		}
		f.deliver(ctx, docs)
		if len(docs) < feedBatch {
			return nil
		}
		after = docs[len(docs)-1].ID
	}
}

// deliver publishes the documents not delivered before and advances the
// read position, forgetting ids that no later read can return again.
func (f *Feed) deliver(ctx context.Context, docs []eventDoc) {
	events := make([]store.Event, 0, len(docs))
	for i := range docs {
		d := &docs[i]
		if _, dup := f.seen[d.ID]; dup {
			continue
		}
		at, ok := idTime(d.ID)
		if !ok {
			at = d.At
		}
		f.seen[d.ID] = at
		if at.After(f.high) {
			f.high = at
		}
		events = append(events, d.event())
	}
	if len(events) > 0 {
		f.opts.Publisher.Publish(ctx, events)
		f.delivered.Add(int64(len(events)))
	}
	// Everything older than the window is never read again (catchUp
	// starts at its edge), so the set stays as small as the window.
	edge := f.high.Add(-f.opts.Overlap - time.Millisecond)
	for id, at := range f.seen {
		if at.Before(edge) {
			delete(f.seen, id)
		}
	}
}

// watch opens a change stream of the inserts into the events collection.
func (f *Feed) watch(ctx context.Context) (*mongodriver.ChangeStream, error) {
	pipeline := mongodriver.Pipeline{{{Key: "$match", Value: bson.D{{Key: "operationType", Value: "insert"}}}}}
	return f.coll.Watch(ctx, pipeline)
}

// runStream reads a change stream until it fails or ctx ends. The stream
// is opened before the catch-up read, so an event inserted between the
// two comes through one or both, and the seen set drops the repeat.
func (f *Feed) runStream(ctx context.Context) error {
	cs, err := f.watch(ctx)
	if err != nil {
		return fmt.Errorf("mongo: feed: watch: %w", err)
	}
	defer cs.Close(context.WithoutCancel(ctx))
	if err := f.catchUp(ctx); err != nil {
		return err
	}
	f.ok()
	for cs.Next(ctx) {
		var change struct {
			Doc eventDoc `bson:"fullDocument"`
		}
		if err := cs.Decode(&change); err != nil {
			return fmt.Errorf("mongo: feed: decode change: %w", err)
		}
		f.deliver(ctx, []eventDoc{change.Doc})
	}
	if err := cs.Err(); err != nil {
		return fmt.Errorf("mongo: feed: change stream: %w", err)
	}
	return errors.New("mongo: feed: change stream ended")
}

// pruneLoop deletes expired events on every tick. Every replica prunes;
// the deletes are idempotent.
func (f *Feed) pruneLoop(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if _, err := f.PruneBefore(ctx, time.Now().Add(-f.opts.Retention)); err != nil && ctx.Err() == nil {
				f.log.Warn("mongo: feed: prune failed", "err", err)
			}
		}
	}
}

// PruneBefore deletes the events made before t and returns how many.
func (f *Feed) PruneBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := f.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: idAt(t)}}}})
	if err != nil {
		return 0, fmt.Errorf("mongo: feed: prune: %w", err)
	}
	return res.DeletedCount, nil
}
