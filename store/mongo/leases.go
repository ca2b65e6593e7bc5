package mongo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// Leases serialize the recomputes of overlapping clusters (link.go). A
// writer holds a contact by inserting the lease document whose _id is
// derived from (tenant, contact): the unique _id index makes the insert
// the single-winner decision, on MongoDB and FerretDB alike. A lease
// names its holder (a random token) and expires; a writer that finds an
// expired lease deletes it by {_id, token} (so of several writers only
// the one whose delete matched removed it) and inserts its own: the
// insert decides who holds it.
//
// A writer takes the leases it needs all at once or not at all: when a
// live holder has one, it releases what it took, backs off with jitter
// and tries again, so two writers never wait on each other while holding
// something (no deadlock), and the jitter breaks ties (no livelock in
// practice). Leases expire after leaseTTL; a holder renews them before
// it applies a plan when it has held them for a third of that. Expiry
// compares the lease's time, written by its holder's clock, with the
// reader's clock: replicas' clocks must agree within a few seconds, which
// NTP gives.

// defaultLeaseTTL is how long a lease lasts unless renewed: far longer
// than a recompute takes (milliseconds to a second for the largest
// clusters), short enough that a crashed writer's contacts are free again
// soon.
const defaultLeaseTTL = 30 * time.Second

// errContended says a lease the caller needs is held by another live
// writer. The caller releases what it holds, waits and starts over.
var errContended = errors.New("mongo: contacts are being relinked by another writer")

// errLeaseLost says a lease expired and another writer took it over
// before the holder applied its plan: the holder starts over.
var errLeaseLost = errors.New("mongo: a lease expired before its holder was done")

func leaseID(tenant, contact string) string { return related.DerivedID(tenant, "lease", contact) }

// leases is one writer's set of held leases in one tenant.
type leases struct {
	s      *Store
	tenant string
	token  string
	held   map[string]bool // contact ids
	// wanted are every contact the writer asked for: after a contention
	// it waits for all of them at once.
	wanted map[string]bool
	since  time.Time // when the oldest held lease was taken or renewed
	// memo holds contacts read and synced under these leases, for the
	// gathers of the same hold (clusterReader.memo); release forgets it.
	memo map[string]identity.ContactFacts
}

func (s *Store) newLeases(tenant string) *leases {
	return &leases{s: s, tenant: tenant, token: related.NewID(), held: map[string]bool{}, wanted: map[string]bool{}}
}

// covers reports whether every id is held.
func (l *leases) covers(ids []string) bool {
	for _, id := range ids {
		if !l.held[id] {
			return false
		}
	}
	return true
}

// try takes the leases of the ids not held yet, all or none: when a live
// writer holds one, it takes none of them and returns errContended.
func (l *leases) try(ctx context.Context, ids []string) error {
	var missing []string
	for _, id := range ids {
		l.wanted[id] = true
		if !l.held[id] {
			missing = append(missing, id)
		}
	}
	missing = slices.Compact(slices.Sorted(slices.Values(missing)))
	if len(missing) == 0 {
		return nil
	}
	coll := l.s.coll(collLeases)
	ts := time.Now()
	docs := func(ids []string) []any {
		out := make([]any, len(ids))
		for i, id := range ids {
			out[i] = &leaseDoc{ID: leaseID(l.tenant, id), Tenant: l.tenant, ContactID: id, Token: l.token, Expires: ts.Add(l.s.leaseTTL)}
		}
		return out
	}
	taken, busy, err := insertTaking(ctx, coll, missing, docs(missing))
	if err != nil {
		l.drop(ctx, taken)
		return fmt.Errorf("take leases: %w", err)
	}
	if len(busy) > 0 {
		// Leases whose holder's time ran out are taken over: deleted by
		// their holder's token, so one writer's delete matches, and the
		// insert after decides.
		busyIDs := make([]string, len(busy))
		for i, id := range busy {
			busyIDs[i] = leaseID(l.tenant, id)
		}
		cur, err := findEvery[leaseDoc](ctx, coll, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: busyIDs}}}, {Key: "tenant", Value: l.tenant}}, nil)
		if err != nil {
			l.drop(ctx, taken)
			return fmt.Errorf("read leases: %w", err)
		}
		// A lease released meanwhile is missing here: it is free, and
		// the insert below retries it with the expired ones.
		var expired []mongodriver.WriteModel
		for _, d := range cur {
			if !d.Expires.Before(ts) {
				l.drop(ctx, taken)
				return errContended
			}
			expired = append(expired, mongodriver.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: d.ID}, {Key: "tenant", Value: l.tenant}, {Key: "token", Value: d.Token}}))
			l.s.log.InfoContext(ctx, "mongo: taking over an expired lease", "tenant", l.tenant, "contact", d.ContactID)
		}
		if len(expired) > 0 {
			if _, err := coll.BulkWrite(ctx, expired, options.BulkWrite().SetOrdered(false)); err != nil {
				l.drop(ctx, taken)
				return fmt.Errorf("take over leases: %w", err)
			}
		}
		again, still, err := insertTaking(ctx, coll, busy, docs(busy))
		taken = append(taken, again...)
		if err != nil || len(still) > 0 {
			l.drop(ctx, taken)
			if err != nil {
				return fmt.Errorf("take leases: %w", err)
			}
			return errContended
		}
	}
	if len(l.held) == 0 {
		l.since = ts
	}
	for _, id := range taken {
		l.held[id] = true
	}
	return nil
}

// insertTaking inserts the lease documents of ids (docs, in the same
// order) and returns the ids whose insert went through and those another
// lease holds.
func insertTaking(ctx context.Context, coll *mongodriver.Collection, ids []string, docs []any) (taken, busy []string, err error) {
	_, err = coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return ids, nil, nil
	}
	var bwe mongodriver.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, nil, err
	}
	failed := map[int]bool{}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return nil, nil, err
		}
		failed[we.Index] = true
	}
	for i, id := range ids {
		if failed[i] {
			busy = append(busy, id)
		} else {
			taken = append(taken, id)
		}
	}
	return taken, busy, nil
}

// drop deletes the caller's leases of ids. It runs detached from ctx's
// cancellation: a lease left behind holds its contacts until it expires.
func (l *leases) drop(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = leaseID(l.tenant, id)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	if _, err := l.s.coll(collLeases).DeleteMany(dctx, bson.D{{Key: "_id", Value: idIn(keys)}, {Key: "tenant", Value: l.tenant}, {Key: "token", Value: l.token}}); err != nil {
		l.s.log.WarnContext(ctx, "mongo: releasing leases failed; they expire on their own", "tenant", l.tenant, "err", err)
	}
}

// release gives back every held lease.
func (l *leases) release(ctx context.Context) {
	ids := make([]string, 0, len(l.held))
	for id := range l.held {
		ids = append(ids, id)
	}
	l.drop(ctx, ids)
	clear(l.held)
	l.memo = nil
}

// renew extends the held leases when they have been held for a third of
// their time, and fails with errLeaseLost when one was taken over: the
// caller must not apply what it read under it.
func (l *leases) renew(ctx context.Context) error {
	if len(l.held) == 0 || time.Since(l.since) < l.s.leaseTTL/3 {
		return nil
	}
	ts := time.Now()
	keys := make([]string, 0, len(l.held))
	for id := range l.held {
		keys = append(keys, leaseID(l.tenant, id))
	}
	res, err := l.s.coll(collLeases).UpdateMany(ctx, bson.D{{Key: "_id", Value: idIn(keys)}, {Key: "tenant", Value: l.tenant}, {Key: "token", Value: l.token}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: ts.Add(l.s.leaseTTL)}}}})
	if err != nil {
		return fmt.Errorf("renew leases: %w", err)
	}
	if int(res.MatchedCount) != len(keys) {
		return errLeaseLost
	}
	l.since = ts
	return nil
}

// acquire takes the leases of ids, waiting (with backoff and jitter) while
// other writers hold some, up to twice the lease time: by then every
// holder has finished or its lease has expired and been taken over.
func (l *leases) acquire(ctx context.Context, ids []string) error {
	deadline := time.Now().Add(2 * l.s.leaseTTL)
	wait := time.Millisecond
	for {
		err := l.try(ctx, ids)
		if !errors.Is(err, errContended) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mongo: %d contacts stayed leased by other writers for %v: %w", len(ids), 2*l.s.leaseTTL, err)
		}
		if err := sleep(ctx, wait/2+rand.N(wait)); err != nil {
			return err
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// withLeases runs body holding leases on seeds (and whatever body takes
// with try), and releases them after. When body meets a contended lease
// (errContended) or loses one (errLeaseLost), everything is released and
// body runs again, once the leases it wanted are all free: body must
// read what it acts on afresh each run, and what it wrote before failing
// must be safe to write again.
func (s *Store) withLeases(ctx context.Context, tenant string, seeds []string, body func(l *leases) error) error {
	l := s.newLeases(tenant)
	defer l.release(ctx)
	want := seeds
	for attempt := 0; ; attempt++ {
		if err := l.acquire(ctx, want); err != nil {
			return err
		}
		err := body(l)
		if !errors.Is(err, errContended) && !errors.Is(err, errLeaseLost) {
			return err
		}
		if attempt == maxLeaseRounds {
			return fmt.Errorf("mongo: relinking kept meeting other writers over %d rounds: %w", attempt, err)
		}
		want = make([]string, 0, len(l.wanted)) // not want[:0]: it is the caller's seeds
		for id := range l.wanted {
			want = append(want, id)
		}
		l.release(ctx)
		if err := sleep(ctx, time.Duration(1+rand.IntN(1+4*attempt))*time.Millisecond); err != nil {
			return err
		}
	}
}

// maxLeaseRounds bounds how often withLeases starts over: each round waits
// for everything the last one wanted, so more rounds mean the clusters
// keep growing under concurrent writes.
const maxLeaseRounds = 16
