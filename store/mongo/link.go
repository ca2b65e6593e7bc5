package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// Linking on MongoDB, without multi-document transactions (DESIGN.md
// section 2). A tenant's profiles are a function of its facts
// (identity.Partition); this file keeps the stored profiles equal to that
// function while any number of writers on any number of replicas change
// facts at the same time.
//
// The facts are the contacts' documents (address, name, attributes), the
// decisions and renames, the rules and the admins' value states. The rest
// is derived from them: a contact's stored values (contact_values: its
// claims under the rules), the counts of value_stats, the profileId of
// contacts and interactions, and the profiles, pairs and history.
//
//  1. A writer writes its facts first, then recomputes (relink): it takes
//     leases on the contacts whose facts it changed; reads their documents
//     and syncs contact_values to them; counts the values whose holders
//     changed; gathers the clusters of those contacts (store.Gather) and
//     leases every contact the gather read (the clusters, the other holders
//     of their values, the partners of their decisions), gathering again
//     until a gather reads nothing it did not hold before it started; then
//     plans (identity.Partition, store.Plan), applies, and releases.
//  2. Leases serialize overlapping recomputes (leases.go): two recomputes
//     that read or write a common contact never run at once, so each reads
//     every write of the ones before it. Two recomputes without a common
//     contact write disjoint documents: the contacts and interactions they
//     move, the profiles anchored at their contacts, the pairs naming them.
//  3. The last recompute of a cluster sees every fact of it. Take a fact f
//     of a final cluster K, written by writer W at time t. W's recompute
//     R_W runs after t, seeded with the contacts f names, and reads f. Any
//     recompute R that applies K after R_W leased a contact f names, which
//     R_W held too, so R made its last gather after R_W released it, after
//     t: R reads f as well. So whichever recompute applies K last read
//     every fact of K, and every stored state it replaced (under its
//     leases), and leaves K as Partition says. A fact written between R's
//     gather and R's apply is no exception: its writer recomputes after R.
//     Rules are read inside the leases too, not from the cache: a rule
//     change's re-evaluation syncs every contact's values, then recomputes
//     every cluster holding a value of the rule's attribute (or that held
//     one; store.EvaluationScope), after the change.
//  4. Counts without $inc. value_stats.contacts is written only by a
//     compare-and-set on the document's version, after a countDocuments
//     of contact_values: each writer that changed a value's holders counts
//     after its change and retries until its set succeeds, so the last
//     successful set counted after every change. A set that changes
//     whether the value is quarantined (a flip) marks the document, and
//     its writer recomputes every holder after it (a re-evaluation, in its
//     second phase, once every count is final); since recomputes read
//     the stored count, the last flip's recomputes and all later ones
//     decide with the final state. (On FerretDB, whose updates of one
//     document are not atomic, this holds for one writer at a time, which
//     is how its tests run.)
//  5. Crash recovery. Before a write changes a contact's facts it adds a
//     dirty marker to the contact (in the same document write when the
//     fact is the contact's own) and its recompute removes the marker once
//     applied; a flip marks its value_stats document the same way. On
//     start and from the background worker (PendingEvaluations), the
//     contacts and values with markers older than the lease time, whose
//     writer would be done if alive, are recomputed again and unmarked.
//     Applying a plan is idempotent (derived ids, upserts, updateMany by
//     contact ids), so a recompute a crash cut short is finished by
//     running it again; its leases expire and are taken over.
//
// A contact's interactions follow it: a recompute moves the contact, then
// its interactions by contactId. A message that creates an interaction
// inserts it without a profile and, after reading its contact, sets the
// contact's profile on it only where it still has none; whichever of that
// set and a concurrent recompute's move comes last, the interaction ends
// in the profile its contact ends in.

// cacheTTL is how long a replica trusts its copy of a tenant's rules and
// settings for the fast path of a write. Recomputes read them afresh.
const cacheTTL = 5 * time.Second

// caches holds each tenant's rules and settings.
type caches struct {
	mu       sync.Mutex
	rules    map[string]cached[[]identity.Rule]
	settings map[string]cached[related.TenantSettings]
}

type cached[T any] struct {
	v  T
	at time.Time
}

func getCached[T any](c *caches, m map[string]cached[T], tenant string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := m[tenant]
	if !ok || time.Since(v.at) > cacheTTL {
		var zero T
		return zero, false
	}
	return v.v, true
}

func putCached[T any](c *caches, m map[string]cached[T], tenant string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m[tenant] = cached[T]{v: v, at: time.Now()}
}

// forget drops a tenant's cached rules and settings.
func (c *caches) forget(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rules, tenant)
	delete(c.settings, tenant)
}

func (s *Store) coll(name string) *mongodriver.Collection { return s.db.Collection(name) }

// everyBatch is the batch size of findEvery: its reads return a cluster's
// contacts, values or interactions, which a batch this size holds in one
// command on both backends (FerretDB closes a cursor only when a batch
// comes back short of the batch size; see findAll).
const everyBatch = 1000

// findEvery runs one find and decodes every document it returns.
func findEvery[D any](ctx context.Context, c *mongodriver.Collection, filter bson.D, opts *options.FindOptionsBuilder) ([]D, error) {
	if opts == nil {
		opts = options.Find()
	}
	opts.SetBatchSize(everyBatch)
	cur, err := c.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	var docs []D
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	return docs, nil
}

// onlyDuplicates reports whether err is a bulk write's refusal of some
// inserts as duplicates and nothing else.
func onlyDuplicates(err error) bool {
	var bwe mongodriver.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

// storedRules reads a tenant's rule documents, deleted ones included.
func (s *Store) storedRules(ctx context.Context, tenant string) ([]identity.Rule, error) {
	docs, err := findEvery[ruleDoc](ctx, s.coll(collProfileRules), bson.D{{Key: "tenant", Value: tenant}}, nil)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	out := make([]identity.Rule, len(docs))
	for i := range docs {
		out[i] = docs[i].rule()
	}
	return out, nil
}

// rules returns the tenant's effective rules, from the cache when it is
// fresh: for the fast path of writes and for reads.
func (s *Store) rules(ctx context.Context, tenant string) ([]identity.Rule, error) {
	if r, ok := getCached(&s.cache, s.cache.rules, tenant); ok {
		return r, nil
	}
	return s.freshRules(ctx, tenant)
}

// freshRules reads the tenant's effective rules, with its region, from the
// database (and refreshes the cache).
func (s *Store) freshRules(ctx context.Context, tenant string) ([]identity.Rule, error) {
	stored, err := s.storedRules(ctx, tenant)
	if err != nil {
		return nil, err
	}
	settings, err := s.freshSettings(ctx, tenant)
	if err != nil {
		return nil, err
	}
	r := identity.WithDefaults(tenant, stored)
	for i := range r {
		r[i].TenantRegion = settings.DefaultRegion
	}
	putCached(&s.cache, s.cache.rules, tenant, r)
	return r, nil
}

// claimsSig is a digest of the facts claims state (not their provenance):
// a write whose contact's digest is unchanged has nothing to relink. It is
// SQLite's digest.
func claimsSig(claims []identity.Claim) string {
	if len(claims) == 0 {
		return ""
	}
	h := sha256.New()
	for _, c := range claims {
		fmt.Fprintf(h, "%d:%s%d:%s%s/%t/%s;", len(c.Key), c.Key, len(c.Value), c.Value, c.Source, c.Agent, c.RuleID)
	}
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil)[:12])
}

// sigOf is the claims digest of a contact document under rules.
func sigOf(rules []identity.Rule, d *contactDoc) string {
	return claimsSig(identity.Claims(rules, d.domain()))
}

// newMarker returns a dirty marker made now: its time, so markers sort by
// age, and a token no other write has.
func newMarker() string { return markerAt(time.Now()) + related.NewID() }

// markerAt is the prefix of the markers made at t; every marker made
// before t sorts before it.
func markerAt(t time.Time) string { return fmt.Sprintf("%015d/", max(t.UnixMilli(), 0)) }

// flip is a value whose quarantine a count (or an admin) changed.
type flip struct {
	id          related.Identifier
	quarantined bool
	marker      string
}

// relink brings the stored values of contacts ids up to date with their
// documents and recomputes their clusters, under leases (see the top of
// this file). markers are the dirty markers to remove from each contact
// once done. It returns the live events of the interactions whose profile
// changed, and the profile each of ids ends in.
func (s *Store) relink(ctx context.Context, tenant string, ids []string, markers map[string][]string, by related.Actor, ts time.Time) ([]store.Event, map[string]string, error) {
	ids = uniqSorted(ids)
	var (
		events  []store.Event
		assign  map[string]string
		flips   []flip // kept across rounds: a round's flips need their holders recomputed even if a later round counts nothing new
		history []identity.Event
	)
	err := s.withLeases(ctx, tenant, ids, func(l *leases) error {
		rules, err := s.freshRules(ctx, tenant)
		if err != nil {
			return err
		}
		docs, err := findEvery[contactDoc](ctx, s.contacts, bson.D{{Key: "_id", Value: idIn(ids)}, {Key: "tenant", Value: tenant}}, nil)
		if err != nil {
			return fmt.Errorf("read contacts: %w", err)
		}
		f, memo, err := s.syncValues(ctx, tenant, rules, docs, ts)
		if err != nil {
			return err
		}
		l.memo = memo
		h, err := s.flipHistory(ctx, tenant, f)
		if err != nil {
			return err
		}
		flips, history = append(flips, f...), append(history, h...)
		seeds, err := s.flipSeeds(ctx, tenant, ids, flips)
		if err != nil {
			return err
		}
		if events, assign, err = s.recompute(ctx, l, rules, seeds, by, ts); err != nil {
			return err
		}
		return s.finishRelink(ctx, tenant, rules, docs, markers, flips, history, by, ts)
	})
	return events, assign, err
}

// flipHistory returns the history of flips: each value's change, naming
// the profiles its holders are in before the recompute.
func (s *Store) flipHistory(ctx context.Context, tenant string, flips []flip) ([]identity.Event, error) {
	var out []identity.Event
	for _, f := range flips {
		hs, err := s.holders(ctx, tenant, []related.Identifier{f.id})
		if err != nil {
			return nil, err
		}
		contacts := make([]string, len(hs))
		for i, h := range hs {
			contacts[i] = h.Contact
		}
		cur, err := s.currentProfiles(ctx, tenant, contacts)
		if err != nil {
			return nil, err
		}
		kind := identity.EventReleased
		if f.quarantined {
			kind = identity.EventQuarantined
		}
		out = append(out, identity.Event{Kind: kind, Profiles: distinctValues(cur), Identifier: f.id})
	}
	return out, nil
}

// flipSeeds returns ids and the holders of the flipped values.
func (s *Store) flipSeeds(ctx context.Context, tenant string, ids []string, flips []flip) ([]string, error) {
	seeds := slices.Clone(ids)
	if len(flips) == 0 {
		return seeds, nil
	}
	values := make([]related.Identifier, len(flips))
	for i, f := range flips {
		values[i] = f.id
	}
	hs, err := s.holders(ctx, tenant, values)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		seeds = append(seeds, h.Contact)
	}
	return uniqSorted(seeds), nil
}

// finishRelink records that the contacts' values are synced and their
// clusters recomputed: each contact's claims digest is set and its dirty
// markers removed (one bulk write), the flips' marks are removed, and the
// flips' history is recorded.
func (s *Store) finishRelink(ctx context.Context, tenant string, rules []identity.Rule, docs []contactDoc, markers map[string][]string, flips []flip, history []identity.Event, by related.Actor, ts time.Time) error {
	var models []mongodriver.WriteModel
	for i := range docs {
		d := &docs[i]
		update := bson.D{{Key: "$set", Value: bson.D{{Key: "claimsSig", Value: sigOf(rules, d)}}}}
		if m := markers[d.ID]; len(m) > 0 {
			update = append(update, bson.E{Key: "$pullAll", Value: bson.D{{Key: "dirty", Value: m}}})
		}
		models = append(models, mongodriver.NewUpdateOneModel().SetFilter(byID(tenant, d.ID)).SetUpdate(update))
	}
	if len(models) > 0 {
		if _, err := s.contacts.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
			return fmt.Errorf("record linked contacts: %w", err)
		}
	}
	if len(flips) > 0 {
		if err := s.clearFlips(ctx, tenant, flips); err != nil {
			return err
		}
	}
	return s.recordEvents(ctx, tenant, history, by, ts)
}

// clearFlips removes the flips' marks from their value_stats documents,
// where no later flip replaced them.
func (s *Store) clearFlips(ctx context.Context, tenant string, flips []flip) error {
	models := make([]mongodriver.WriteModel, len(flips))
	for i, f := range flips {
		models[i] = mongodriver.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: statID(tenant, f.id)}, {Key: "tenant", Value: tenant}, {Key: "flip", Value: f.marker}}).
			SetUpdate(bson.D{{Key: "$unset", Value: bson.D{{Key: "flip", Value: ""}}}})
	}
	if _, err := s.coll(collValueStats).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return fmt.Errorf("clear value flips: %w", err)
	}
	return nil
}

// distinctValues returns the non-empty values of m, sorted, once each.
func distinctValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		if v != "" {
			out = append(out, v)
		}
	}
	return uniqSorted(out)
}

// syncValues stores each contact's claims under rules in contact_values
// (one read, one bulk write), then counts the values whose holders changed
// and returns the flips of their quarantine, and the contacts' facts as
// now stored (for the gathers of the caller's hold).
func (s *Store) syncValues(ctx context.Context, tenant string, rules []identity.Rule, docs []contactDoc, ts time.Time) ([]flip, map[string]identity.ContactFacts, error) {
	memo := make(map[string]identity.ContactFacts, len(docs))
	if len(docs) == 0 {
		return nil, memo, nil
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	stored, err := s.valuesOf(ctx, tenant, ids)
	if err != nil {
		return nil, nil, err
	}
	byContact := map[string][]valueDoc{}
	for _, v := range stored {
		byContact[v.ContactID] = append(byContact[v.ContactID], v)
	}
	var (
		models  []mongodriver.WriteModel
		changed []related.Identifier
	)
	for i := range docs {
		d := &docs[i]
		claims := identity.Claims(rules, d.domain())
		old := byContact[d.ID]
		facts := identity.ContactFacts{ID: d.ID, Channel: related.Channel(d.Channel), Name: d.Name, Address: d.Address, Profile: d.ProfileID}
		for _, v := range old {
			id := related.Identifier{Key: v.Key, Value: v.Value}
			if !slices.ContainsFunc(claims, func(cl identity.Claim) bool { return cl.Identifier == id }) {
				models = append(models, mongodriver.NewDeleteOneModel().SetFilter(byID(tenant, v.ID)))
				changed = append(changed, id)
			}
		}
		for _, cl := range claims {
			j := slices.IndexFunc(old, func(v valueDoc) bool { return v.Key == cl.Key && v.Value == cl.Value })
			if j >= 0 && old[j].Source == string(cl.Source) && old[j].Agent == cl.Agent && old[j].RuleID == cl.RuleID {
				facts.Claims = append(facts.Claims, old[j].holder().Claim)
				continue
			}
			if j < 0 {
				changed = append(changed, cl.Identifier)
			}
			doc := newValueDoc(tenant, d.ID, cl, ts)
			facts.Claims = append(facts.Claims, doc.holder().Claim)
			models = append(models, mongodriver.NewReplaceOneModel().SetFilter(byID(tenant, doc.ID)).SetReplacement(doc).SetUpsert(true))
		}
		memo[d.ID] = facts
	}
	if len(models) > 0 {
		if _, err := s.coll(collValues).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
			return nil, nil, fmt.Errorf("store contact values: %w", err)
		}
	}
	flips, err := s.countValues(ctx, tenant, rules, changed, ts)
	return flips, memo, err
}

// countValues counts the holders of values in contact_values and stores
// each count in value_stats by a compare-and-set on the document's
// version, retried until it succeeds (see the top of this file). It
// returns the values whose quarantine changed, each marked for recovery.
func (s *Store) countValues(ctx context.Context, tenant string, rules []identity.Rule, values []related.Identifier, ts time.Time) ([]flip, error) {
	values = slices.CompactFunc(slices.SortedFunc(slices.Values(values), func(a, b related.Identifier) int {
		return compareIdentifiers(a, b)
	}), func(a, b related.Identifier) bool { return a == b })
	byKey := map[string]identity.Rule{}
	for _, r := range rules {
		byKey[r.Attribute] = r
	}
	var flips []flip
	coll := s.coll(collValueStats)
	for attempt := 0; len(values) > 0; attempt++ {
		if attempt == maxCASAttempts {
			return flips, fmt.Errorf("count values: %d values kept changing over %d attempts", len(values), attempt)
		}
		docs, err := s.stats(ctx, tenant, values)
		if err != nil {
			return flips, err
		}
		cur := map[related.Identifier]*statDoc{}
		for i := range docs {
			cur[related.Identifier{Key: docs[i].Key, Value: docs[i].Value}] = &docs[i]
		}
		var again []related.Identifier
		for _, id := range values {
			n, err := s.coll(collValues).CountDocuments(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "vid", Value: valueID(id)}})
			if err != nil {
				return flips, fmt.Errorf("count holders: %w", err)
			}
			d := cur[id]
			state := identity.QuarantineAutomatic
			before := false
			if d != nil {
				state, before = identity.Quarantine(d.State), d.Quarantined
			}
			if n == 0 && state == identity.QuarantineAutomatic {
				// Nobody holds it any more: forget it (it may be an erased
				// person's), unless an admin set a state for it.
				won, err := s.forgetStat(ctx, coll, tenant, d)
				if err != nil {
					return flips, err
				}
				if !won {
					again = append(again, id)
				}
				continue
			}
			after := byKey[id.Key].Quarantined(identity.ValueFacts{Contacts: int(n), State: state})
			set := bson.D{{Key: "contacts", Value: int(n)}, {Key: "quarantined", Value: after}, {Key: "listed", Value: listed(after, state)}}
			var f *flip
			if before != after {
				f = &flip{id: id, quarantined: after, marker: newMarker()}
				set = append(set, bson.E{Key: "flip", Value: f.marker}, bson.E{Key: "updatedAt", Value: ts})
			}
			won, err := s.casStat(ctx, coll, tenant, id, d, set, ts)
			if err != nil {
				return flips, err
			}
			if !won {
				again = append(again, id)
				continue
			}
			if f != nil {
				flips = append(flips, *f)
			}
		}
		values = again
	}
	return flips, nil
}

// maxCASAttempts bounds the retries of a compare-and-set: more means
// something keeps changing one document, which is worth an error.
const maxCASAttempts = 32

// casStat writes set on the value_stats document of id if it is still at
// the version of d (or, for d nil, if it does not exist), and reports
// whether it did.
func (s *Store) casStat(ctx context.Context, coll *mongodriver.Collection, tenant string, id related.Identifier, d *statDoc, set bson.D, ts time.Time) (bool, error) {
	if d == nil {
		doc := bson.D{{Key: "_id", Value: statID(tenant, id)}, {Key: "tenant", Value: tenant}, {Key: "key", Value: id.Key},
			{Key: "value", Value: id.Value}, {Key: "vid", Value: valueID(id)}, {Key: "state", Value: string(identity.QuarantineAutomatic)},
			{Key: "version", Value: int64(1)}, {Key: "updatedAt", Value: ts}}
	fields:
		for _, e := range set {
			for i := range doc {
				if doc[i].Key == e.Key {
					doc[i].Value = e.Value
					continue fields
				}
			}
			doc = append(doc, e)
		}
		_, err := coll.InsertOne(ctx, doc)
		if isDuplicate(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("store value count: %w", err)
		}
		return true, nil
	}
	res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "tenant", Value: tenant}, {Key: "version", Value: d.Version}},
		bson.D{{Key: "$set", Value: set}, {Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}})
	if err != nil {
		return false, fmt.Errorf("store value count: %w", err)
	}
	return res.MatchedCount == 1, nil
}

// forgetStat deletes the value_stats document d if it is still at its
// version (and reports success when there is none).
func (s *Store) forgetStat(ctx context.Context, coll *mongodriver.Collection, tenant string, d *statDoc) (bool, error) {
	if d == nil {
		return true, nil
	}
	res, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "tenant", Value: tenant}, {Key: "version", Value: d.Version}})
	if err != nil {
		return false, fmt.Errorf("forget value: %w", err)
	}
	return res.DeletedCount == 1, nil
}

func compareIdentifiers(a, b related.Identifier) int {
	if a.Key != b.Key {
		if a.Key < b.Key {
			return -1
		}
		return 1
	}
	switch {
	case a.Value < b.Value:
		return -1
	case a.Value > b.Value:
		return 1
	}
	return 0
}

// recompute gathers the clusters of seeds under leases l, decides them and
// applies the result. It returns the live events of the interactions that
// changed profile and the profile of every contact of the clusters.
func (s *Store) recompute(ctx context.Context, l *leases, rules []identity.Rule, seeds []string, by related.Actor, ts time.Time) ([]store.Event, map[string]string, error) {
	in, err := s.cover(ctx, l, rules, seeds)
	if err != nil {
		return nil, nil, err
	}
	if err := l.renew(ctx); err != nil {
		return nil, nil, err
	}
	res := identity.Partition(in)
	events, err := s.apply(ctx, l.tenant, in, store.Plan(in, res), by, ts)
	return events, res.Assignment, err
}

// maxCoverRounds bounds the gathers of one cover: each round leases more
// of a cluster that grows under concurrent writes.
const maxCoverRounds = 32

// cover gathers the clusters of seeds and leases every contact the gather
// read, gathering again until a gather read only contacts held before it
// started: that gather's facts and stored state are what the caller may
// act on. A contact held by another writer fails it with errContended.
func (s *Store) cover(ctx context.Context, l *leases, rules []identity.Rule, seeds []string) (identity.Input, error) {
	for range maxCoverRounds {
		held := make(map[string]bool, len(l.held))
		for id := range l.held {
			held[id] = true
		}
		in, err := store.Gather(ctx, clusterReader{s: s, memo: l.memo}, l.tenant, rules, seeds)
		if err != nil {
			return in, err
		}
		need := neighbourhood(in)
		if !slices.ContainsFunc(need, func(id string) bool { return !held[id] }) {
			return in, nil
		}
		if err := l.try(ctx, need); err != nil {
			return in, err
		}
	}
	return identity.Input{}, fmt.Errorf("mongo: the clusters of %d contacts kept growing over %d gathers", len(seeds), maxCoverRounds)
}

// neighbourhood is every contact a gather read: the clusters, the other
// holders of their values and the partners of their decisions.
func neighbourhood(in identity.Input) []string {
	out := make([]string, 0, len(in.Contacts)+len(in.Outside)+len(in.Partners))
	for _, c := range in.Contacts {
		out = append(out, c.ID)
	}
	for _, h := range in.Outside {
		out = append(out, h.Contact)
	}
	for c := range in.Partners {
		out = append(out, c)
	}
	return uniqSorted(out)
}

// apply writes a recompute's changes, each step idempotent, in an order
// readers can live with: the decided profiles first (so a contact never
// points at a profile that is not written), then the contacts and their
// interactions, then the deletion of profiles no longer current (an id of
// one leads to its anchor's profile), the pairs and the history. It
// returns the live events of the interactions that changed profile.
func (s *Store) apply(ctx context.Context, tenant string, in identity.Input, ch store.Changes, by related.Actor, ts time.Time) ([]store.Event, error) {
	if err := s.writeProfiles(ctx, tenant, ch.Profiles, ts); err != nil {
		return nil, err
	}
	events, err := s.moveContacts(ctx, tenant, ch.Moves, ts)
	if err != nil {
		return events, err
	}
	if len(ch.Deleted) > 0 {
		if _, err := s.coll(collProfiles).DeleteMany(ctx, bson.D{{Key: "_id", Value: idIn(ch.Deleted)}, {Key: "tenant", Value: tenant}}); err != nil {
			return events, fmt.Errorf("delete profiles: %w", err)
		}
	}
	if len(ch.DeletePairs) > 0 || len(ch.InsertPairs) > 0 {
		var models []mongodriver.WriteModel
		if len(ch.DeletePairs) > 0 {
			models = append(models, mongodriver.NewDeleteManyModel().SetFilter(bson.D{{Key: "_id", Value: idIn(ch.DeletePairs)}, {Key: "tenant", Value: tenant}}))
		}
		for _, p := range ch.InsertPairs {
			models = append(models, mongodriver.NewInsertOneModel().SetDocument(newPairDoc(tenant, p, ts)))
		}
		// A pair stored already (a plan applied again) stays as it is.
		// Unordered: the pairs deleted and inserted are never the same.
		if _, err := s.coll(collPairs).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil && !onlyDuplicates(err) {
			return events, fmt.Errorf("write pairs: %w", err)
		}
	}
	return events, s.recordEvents(ctx, tenant, ch.Events, by, ts)
}

// writeProfiles writes the decided profiles that are new or changed: one
// read of those stored, one bulk of upserts.
func (s *Store) writeProfiles(ctx context.Context, tenant string, ps []identity.ProfileResult, ts time.Time) error {
	if len(ps) == 0 {
		return nil
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	docs, err := findEvery[profileDoc](ctx, s.coll(collProfiles), bson.D{{Key: "_id", Value: idIn(ids)}, {Key: "tenant", Value: tenant}}, nil)
	if err != nil {
		return fmt.Errorf("read profiles: %w", err)
	}
	stored := map[string]*profileDoc{}
	for i := range docs {
		stored[docs[i].ID] = &docs[i]
	}
	var models []mongodriver.WriteModel
	for _, p := range ps {
		if d := stored[p.ID]; d != nil && sameProfile(d, p) {
			continue
		}
		chans, idents := profileFields(p)
		models = append(models, mongodriver.NewUpdateOneModel().SetFilter(byID(tenant, p.ID)).SetUpsert(true).SetUpdate(bson.D{
			{Key: "$set", Value: bson.D{{Key: "anchor", Value: p.Anchor}, {Key: "customName", Value: p.CustomName},
				{Key: "autoName", Value: p.AutoName}, {Key: "channels", Value: chans}, {Key: "identifiers", Value: idents},
				{Key: "contactCount", Value: len(p.Contacts)}, {Key: "updatedAt", Value: ts}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "createdAt", Value: ts}}},
		}))
	}
	if len(models) == 0 {
		return nil
	}
	_, err = s.coll(collProfiles).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if maybeDuplicate(err) {
		// An upsert raced the insert of the same profile (a recompute a
		// crash interrupted, redone while its leases were taken over):
		// now both are updates.
		_, err = s.coll(collProfiles).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	}
	if err != nil {
		return fmt.Errorf("write profiles: %w", err)
	}
	return nil
}

// moveContacts sets the contacts' profiles, then their interactions',
// and returns an event for each interaction that changed profile: one
// read and two bulk writes, whatever the number of contacts.
func (s *Store) moveContacts(ctx context.Context, tenant string, moves []store.Move, ts time.Time) ([]store.Event, error) {
	if len(moves) == 0 {
		return nil, nil
	}
	to := map[string]string{}
	byTarget := map[string][]string{}
	var targets, contacts []string
	for _, m := range moves {
		to[m.Contact] = m.To
		if _, ok := byTarget[m.To]; !ok {
			targets = append(targets, m.To)
		}
		byTarget[m.To] = append(byTarget[m.To], m.Contact)
		contacts = append(contacts, m.Contact)
	}
	slices.Sort(targets)
	refs, err := findEvery[interactionDoc](ctx, s.interactions, bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: idIn(contacts)}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "contactId", Value: 1}, {Key: "profileId", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read interactions of moved contacts: %w", err)
	}
	set := func(target string) bson.D {
		if target == "" {
			return bson.D{{Key: "$unset", Value: bson.D{{Key: "profileId", Value: ""}}}, {Key: "$set", Value: bson.D{{Key: "updatedAt", Value: ts}}}}
		}
		return bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: target}, {Key: "updatedAt", Value: ts}}}}
	}
	var cms, ims []mongodriver.WriteModel
	for _, target := range targets {
		ids := byTarget[target]
		cms = append(cms, mongodriver.NewUpdateManyModel().SetFilter(bson.D{{Key: "_id", Value: idIn(ids)}, {Key: "tenant", Value: tenant}}).SetUpdate(set(target)))
		ims = append(ims, mongodriver.NewUpdateManyModel().SetFilter(bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: idIn(ids)}}).SetUpdate(set(target)))
	}
	// The contacts first: a message creating an interaction reads its
	// contact after inserting it (see the top of this file).
	if _, err := s.contacts.BulkWrite(ctx, cms, options.BulkWrite().SetOrdered(false)); err != nil {
		return nil, fmt.Errorf("move contacts: %w", err)
	}
	if len(refs) > 0 {
		if _, err := s.interactions.BulkWrite(ctx, ims, options.BulkWrite().SetOrdered(false)); err != nil {
			return nil, fmt.Errorf("move interactions: %w", err)
		}
	}
	var events []store.Event
	for _, r := range refs {
		if t := to[r.ContactID]; t != r.ProfileID {
			events = append(events, profileChanged(tenant, r.ID, r.ContactID, r.ProfileID, t, ts))
		}
	}
	return events, nil
}

func profileChanged(tenant, interactionID, contactID, from, to string, at time.Time) store.Event {
	return store.Event{ID: related.NewID(), Tenant: tenant, Kind: store.ProfileChanged, InteractionID: interactionID,
		ContactID: contactID, ProfileID: to, FromProfileID: from, At: at}
}

// recordEvents appends history entries, one insert for all.
func (s *Store) recordEvents(ctx context.Context, tenant string, evs []identity.Event, by related.Actor, ts time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	docs := make([]any, len(evs))
	for i, e := range evs {
		profiles := slices.DeleteFunc(slices.Clone(e.Profiles), func(p string) bool { return p == "" })
		if profiles == nil {
			profiles = []string{}
		}
		docs[i] = &historyDoc{ID: related.NewID(), Tenant: tenant, Kind: string(e.Kind), Profiles: profiles, ContactID: e.Contact,
			Key: e.Identifier.Key, Value: e.Identifier.Value, ByName: by.Name, ByRole: by.Role, At: ts}
	}
	if _, err := s.coll(collHistory).InsertMany(ctx, docs); err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	return nil
}

// markContacts adds a dirty marker to contacts before a write changes
// facts naming them (a decision, a quarantine), so a crash before their
// recompute is repaired (see the top of this file).
func (s *Store) markContacts(ctx context.Context, tenant string, ids []string, marker string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.contacts.UpdateMany(ctx, bson.D{{Key: "_id", Value: idIn(uniqSorted(ids))}, {Key: "tenant", Value: tenant}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "dirty", Value: marker}}}}); err != nil {
		return fmt.Errorf("mark contacts: %w", err)
	}
	return nil
}

// unmarkContacts removes a dirty marker once the recompute it stood for
// is applied.
func (s *Store) unmarkContacts(ctx context.Context, tenant string, ids []string, marker string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.contacts.UpdateMany(ctx, bson.D{{Key: "_id", Value: idIn(uniqSorted(ids))}, {Key: "tenant", Value: tenant}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "dirty", Value: marker}}}}); err != nil {
		return fmt.Errorf("unmark contacts: %w", err)
	}
	return nil
}

// recoveryBatch bounds the contacts one recovery pass relinks.
const recoveryBatch = 500

// recover relinks the contacts and values whose dirty markers are older
// than the lease time: their writers crashed (or stalled) before their
// recompute was applied (see the top of this file). It runs at start and
// from the background worker.
func (s *Store) recover(ctx context.Context) error {
	cutoff := markerAt(time.Now().Add(-s.leaseTTL))
	docs, err := findAll[contactDoc](ctx, s.contacts, bson.D{{Key: "dirty", Value: bson.D{{Key: "$lt", Value: cutoff}}}},
		options.Find().SetProjection(bson.D{{Key: "tenant", Value: 1}, {Key: "dirty", Value: 1}}), recoveryBatch)
	if err != nil {
		return fmt.Errorf("mongo: find unfinished linking: %w", err)
	}
	type work struct {
		ids     []string
		markers map[string][]string
	}
	byTenant := map[string]*work{}
	var tenants []string
	for _, d := range docs {
		w := byTenant[d.Tenant]
		if w == nil {
			w = &work{markers: map[string][]string{}}
			byTenant[d.Tenant] = w
			tenants = append(tenants, d.Tenant)
		}
		w.ids = append(w.ids, d.ID)
		for _, m := range d.Dirty {
			if m < cutoff {
				w.markers[d.ID] = append(w.markers[d.ID], m)
			}
		}
	}
	ts := now()
	var errs []error
	for _, tenant := range tenants {
		w := byTenant[tenant]
		s.log.InfoContext(ctx, "mongo: relinking contacts a crash left unfinished", "tenant", tenant, "contacts", len(w.ids))
		events, _, err := s.relink(ctx, tenant, w.ids, w.markers, related.System, ts)
		s.publishEvents(ctx, events)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", tenant, err))
		}
	}
	stale, err := findAll[statDoc](ctx, s.coll(collValueStats), bson.D{{Key: "flip", Value: bson.D{{Key: "$lt", Value: cutoff}}}}, options.Find(), recoveryBatch)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("mongo: find unfinished quarantine changes: %w", err))...)
	}
	for _, d := range stale {
		id := related.Identifier{Key: d.Key, Value: d.Value}
		s.log.InfoContext(ctx, "mongo: recomputing the holders of a value whose quarantine changed before a crash", "tenant", d.Tenant, "key", d.Key)
		if err := s.recomputeHolders(ctx, d.Tenant, []flip{{id: id, quarantined: d.Quarantined, marker: d.Flip}}, related.System, ts); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", d.Tenant, err))
		}
	}
	if err := s.finishErasures(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("mongo: recovery: %w", errors.Join(errs...))
	}
	return nil
}

// recomputeHolders recomputes the clusters of the holders of flipped
// values, then removes the flips' marks and records them in the history.
func (s *Store) recomputeHolders(ctx context.Context, tenant string, flips []flip, by related.Actor, ts time.Time) error {
	seeds, err := s.flipSeeds(ctx, tenant, nil, flips)
	if err != nil {
		return err
	}
	history, err := s.flipHistory(ctx, tenant, flips)
	if err != nil {
		return err
	}
	var events []store.Event
	err = s.withLeases(ctx, tenant, seeds, func(l *leases) error {
		rules, err := s.freshRules(ctx, tenant)
		if err != nil {
			return err
		}
		if events, _, err = s.recompute(ctx, l, rules, seeds, by, ts); err != nil {
			return err
		}
		return s.finishRelink(ctx, tenant, rules, nil, nil, flips, history, by, ts)
	})
	s.publishEvents(ctx, events)
	return err
}
