package mongo

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// clusterReader reads the facts store.Gather asks for: every method is one
// find (ClusterContacts two), whatever the batch.
type clusterReader struct {
	s *Store
	// memo holds contacts the caller read (and synced) under its leases:
	// no recompute changes them while it holds them, so gathers take them
	// from here.
	memo map[string]identity.ContactFacts
}

var _ store.ClusterReader = clusterReader{}

func idIn(ids []string) bson.D { return bson.D{{Key: "$in", Value: ids}} }

func uniqSorted(ids []string) []string { return slices.Compact(slices.Sorted(slices.Values(ids))) }

// ClusterContacts implements store.ClusterReader.
func (r clusterReader) ClusterContacts(ctx context.Context, tenant string, ids []string) ([]identity.ContactFacts, error) {
	var (
		known []identity.ContactFacts
		rest  []string
	)
	for _, id := range uniqSorted(ids) {
		if c, ok := r.memo[id]; ok {
			c.Claims = slices.Clone(c.Claims)
			known = append(known, c)
		} else {
			rest = append(rest, id)
		}
	}
	read, err := r.readContacts(ctx, tenant, rest)
	return append(known, read...), err
}

// readContacts reads contacts and their stored values.
func (r clusterReader) readContacts(ctx context.Context, tenant string, ids []string) ([]identity.ContactFacts, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	docs, err := findEvery[contactDoc](ctx, r.s.contacts, bson.D{{Key: "_id", Value: idIn(ids)}, {Key: "tenant", Value: tenant}},
		options.Find().SetProjection(bson.D{{Key: "channel", Value: 1}, {Key: "name", Value: 1}, {Key: "address", Value: 1}, {Key: "profileId", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read cluster contacts: %w", err)
	}
	if len(docs) == 0 {
		return nil, nil
	}
	out := make([]identity.ContactFacts, len(docs))
	index := make(map[string]int, len(docs))
	found := make([]string, len(docs))
	for i, d := range docs {
		out[i] = identity.ContactFacts{ID: d.ID, Channel: related.Channel(d.Channel), Name: d.Name, Address: d.Address, Profile: d.ProfileID}
		index[d.ID] = i
		found[i] = d.ID
	}
	values, err := r.s.valuesOf(ctx, tenant, found)
	if err != nil {
		return nil, err
	}
	for _, v := range values {
		c := &out[index[v.ContactID]]
		c.Claims = append(c.Claims, v.holder().Claim)
	}
	return out, nil
}

// valuesOf reads the stored values of contacts.
func (s *Store) valuesOf(ctx context.Context, tenant string, contacts []string) ([]valueDoc, error) {
	if len(contacts) == 0 {
		return nil, nil
	}
	docs, err := findEvery[valueDoc](ctx, s.coll(collValues), bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: idIn(contacts)}}, nil)
	if err != nil {
		return nil, fmt.Errorf("read contact values: %w", err)
	}
	return docs, nil
}

// ProfileMembers implements store.ClusterReader.
func (r clusterReader) ProfileMembers(ctx context.Context, tenant string, profileIDs []string) ([]string, error) {
	return r.s.members(ctx, tenant, profileIDs...)
}

// members returns the ids of the contacts in the profiles.
func (s *Store) members(ctx context.Context, tenant string, profileIDs ...string) ([]string, error) {
	profileIDs = slices.DeleteFunc(uniqSorted(profileIDs), func(p string) bool { return p == "" })
	if len(profileIDs) == 0 {
		return nil, nil
	}
	docs, err := findEvery[idDoc](ctx, s.contacts, bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: idIn(profileIDs)}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read profile members: %w", err)
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	slices.Sort(out)
	return out, nil
}

// idDoc decodes only a document's _id.
type idDoc struct {
	ID string `bson:"_id"`
}

// Holders implements store.ClusterReader.
func (r clusterReader) Holders(ctx context.Context, tenant string, values []related.Identifier) ([]identity.Holder, error) {
	return r.s.holders(ctx, tenant, values)
}

// holders reads every stored claim of the values: one find on {tenant,
// vid}.
func (s *Store) holders(ctx context.Context, tenant string, values []related.Identifier) ([]identity.Holder, error) {
	if len(values) == 0 {
		return nil, nil
	}
	vids := make([]string, len(values))
	for i, v := range values {
		vids[i] = valueID(v)
	}
	docs, err := findEvery[valueDoc](ctx, s.coll(collValues), bson.D{{Key: "tenant", Value: tenant}, {Key: "vid", Value: idIn(uniqSorted(vids))}}, nil)
	if err != nil {
		return nil, fmt.Errorf("read holders: %w", err)
	}
	out := make([]identity.Holder, len(docs))
	for i := range docs {
		out[i] = docs[i].holder()
	}
	return out, nil
}

// ValueFacts implements store.ClusterReader: the counts and states of
// value_stats.
func (r clusterReader) ValueFacts(ctx context.Context, tenant string, values []related.Identifier) (map[related.Identifier]identity.ValueFacts, error) {
	docs, err := r.s.stats(ctx, tenant, values)
	if err != nil {
		return nil, err
	}
	out := make(map[related.Identifier]identity.ValueFacts, len(docs))
	for _, d := range docs {
		out[related.Identifier{Key: d.Key, Value: d.Value}] = d.facts()
	}
	return out, nil
}

// stats reads the value_stats documents of values.
func (s *Store) stats(ctx context.Context, tenant string, values []related.Identifier) ([]statDoc, error) {
	if len(values) == 0 {
		return nil, nil
	}
	ids := make([]string, len(values))
	for i, v := range values {
		ids[i] = statID(tenant, v)
	}
	docs, err := findEvery[statDoc](ctx, s.coll(collValueStats), bson.D{{Key: "_id", Value: idIn(uniqSorted(ids))}, {Key: "tenant", Value: tenant}}, nil)
	if err != nil {
		return nil, fmt.Errorf("read value stats: %w", err)
	}
	return docs, nil
}

// Decisions implements store.ClusterReader.
func (r clusterReader) Decisions(ctx context.Context, tenant string, contactIDs []string) ([]identity.Decision, error) {
	return r.s.decisions(ctx, tenant, contactIDs)
}

func (s *Store) decisions(ctx context.Context, tenant string, contactIDs []string) ([]identity.Decision, error) {
	if len(contactIDs) == 0 {
		return nil, nil
	}
	docs, err := findEvery[decisionDoc](ctx, s.coll(collDecisions), bson.D{{Key: "tenant", Value: tenant}, {Key: "contacts", Value: idIn(uniqSorted(contactIDs))}}, nil)
	if err != nil {
		return nil, fmt.Errorf("read decisions: %w", err)
	}
	out := make([]identity.Decision, len(docs))
	for i := range docs {
		out[i] = docs[i].decision()
	}
	return out, nil
}

// CurrentProfiles implements store.ClusterReader.
func (r clusterReader) CurrentProfiles(ctx context.Context, tenant string, contactIDs []string) (map[string]string, error) {
	return r.s.currentProfiles(ctx, tenant, contactIDs)
}

func (s *Store) currentProfiles(ctx context.Context, tenant string, contactIDs []string) (map[string]string, error) {
	out := map[string]string{}
	contactIDs = slices.DeleteFunc(uniqSorted(contactIDs), func(c string) bool { return c == "" })
	if len(contactIDs) == 0 {
		return out, nil
	}
	docs, err := findEvery[contactDoc](ctx, s.contacts, bson.D{{Key: "_id", Value: idIn(contactIDs)}, {Key: "tenant", Value: tenant}},
		options.Find().SetProjection(bson.D{{Key: "profileId", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read current profiles: %w", err)
	}
	for _, d := range docs {
		out[d.ID] = d.ProfileID
	}
	return out, nil
}

// Renames implements store.ClusterReader.
func (r clusterReader) Renames(ctx context.Context, tenant string, contactIDs []string) ([]identity.Rename, error) {
	if len(contactIDs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(contactIDs))
	for i, c := range contactIDs {
		ids[i] = renameID(tenant, c)
	}
	docs, err := findEvery[renameDoc](ctx, r.s.coll(collRenames), bson.D{{Key: "_id", Value: idIn(uniqSorted(ids))}, {Key: "tenant", Value: tenant}}, nil)
	if err != nil {
		return nil, fmt.Errorf("read renames: %w", err)
	}
	out := make([]identity.Rename, len(docs))
	for i, d := range docs {
		out[i] = identity.Rename{Anchor: d.Anchor, Name: d.Name, By: related.Actor{Name: d.ByName, Role: d.ByRole}, At: d.At.UTC()}
	}
	return out, nil
}

// Pairs implements store.ClusterReader.
func (r clusterReader) Pairs(ctx context.Context, tenant string, contactIDs []string) ([]identity.Pair, error) {
	recs, err := r.s.pairsNaming(ctx, tenant, contactIDs)
	if err != nil {
		return nil, err
	}
	out := make([]identity.Pair, len(recs))
	for i, p := range recs {
		out[i] = p.Pair
	}
	return out, nil
}

// pairsNaming reads the stored pairs naming any of the contacts.
func (s *Store) pairsNaming(ctx context.Context, tenant string, contactIDs []string) ([]*store.PairRecord, error) {
	if len(contactIDs) == 0 {
		return nil, nil
	}
	docs, err := findEvery[pairDoc](ctx, s.coll(collPairs), bson.D{{Key: "tenant", Value: tenant}, {Key: "contacts", Value: idIn(uniqSorted(contactIDs))}}, nil)
	if err != nil {
		return nil, fmt.Errorf("read pairs: %w", err)
	}
	out := make([]*store.PairRecord, len(docs))
	for i := range docs {
		out[i] = docs[i].record()
	}
	return out, nil
}

// Profiles reads stored profiles, for a preview's samples.
func (r clusterReader) Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error) {
	return r.s.profiles(ctx, tenant, ids)
}
