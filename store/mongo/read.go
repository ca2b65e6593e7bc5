package mongo

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// Interactions returns the interactions with the given ids.
func (s *Store) Interactions(ctx context.Context, tenant string, ids []string) ([]*related.Interaction, error) {
	return byIDs(ctx, s.interactions, tenant, ids, (*interactionDoc).domain)
}

// Messages returns the messages with the given ids.
func (s *Store) Messages(ctx context.Context, tenant string, ids []string) ([]*related.Message, error) {
	return byIDs(ctx, s.messages, tenant, ids, (*messageDoc).domain)
}

// Contacts returns the contacts with the given ids.
func (s *Store) Contacts(ctx context.Context, tenant string, ids []string) ([]*related.Contact, error) {
	return byIDs(ctx, s.contacts, tenant, ids, (*contactDoc).domain)
}

// ContactAliases implements store.Store: one find on the aliases' _id.
func (s *Store) ContactAliases(ctx context.Context, tenant string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = aliasID(tenant, "contact", id)
	}
	docs, err := findEvery[aliasDoc](ctx, s.coll(collAliases), bson.D{{Key: "_id", Value: idIn(uniqSorted(keys))}, {Key: "tenant", Value: tenant}}, nil)
	if err != nil {
		return nil, fmt.Errorf("mongo: read contact aliases: %w", err)
	}
	for _, a := range docs {
		if a.Kind == "contact" {
			out[a.Alias] = a.ContactID
		}
	}
	return out, nil
}

// Queues returns the queues with the given ids.
func (s *Store) Queues(ctx context.Context, tenant string, ids []string) ([]*related.Queue, error) {
	return byIDs(ctx, s.queues, tenant, ids, (*queueDoc).domain)
}

// byIDs is the dataloaders' batch read: one find with _id $in ids.
func byIDs[D any, T any](ctx context.Context, c *mongodriver.Collection, tenant string, ids []string, conv func(*D) *T) ([]*T, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return nil, nil
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "tenant", Value: tenant}}
	docs, err := findAll[D](ctx, c, filter, options.Find(), len(ids))
	if err != nil {
		return nil, fmt.Errorf("mongo: read %s by id: %w", c.Name(), err)
	}
	out := make([]*T, len(docs))
	for i := range docs {
		out[i] = conv(&docs[i])
	}
	return out, nil
}

// findAll runs one find that returns at most limit documents and decodes
// them all.
//
// The batch size is one more than the limit. MongoDB closes the cursor when
// the limit is reached, but FerretDB closes it only when a batch comes back
// short of the batch size: with batch size = limit it would leave the
// cursor open and the driver would spend a getMore (and maybe a
// killCursors) learning that nothing follows. With limit+1 the first batch
// is always short, so the read is one command on both. (A single-batch
// find, a negative limit, would also be one command, but MongoDB truncates
// it at 16 MiB without saying so; this way an oversized answer costs a
// getMore instead of losing documents.)
func findAll[D any](ctx context.Context, c *mongodriver.Collection, filter bson.D, opts *options.FindOptionsBuilder, limit int) ([]D, error) {
	opts.SetLimit(int64(limit)).SetBatchSize(int32(min(limit+1, math.MaxInt32)))
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

// ListMessages pages through an interaction's messages, oldest first.
func (s *Store) ListMessages(ctx context.Context, tenant, interactionID string, p store.Page, bodies bool) (*store.MessagePage, error) {
	base := bson.D{{Key: "tenant", Value: tenant}, {Key: "interactionId", Value: interactionID}}
	var projection bson.D
	if !bodies {
		projection = bson.D{{Key: "body", Value: 0}}
	}
	docs, next, prev, err := pageBy[messageDoc](ctx, s.messages, base, "sentAt", "_id", false, p, projection)
	if err != nil {
		return nil, fmt.Errorf("mongo: list messages of %s: %w", interactionID, err)
	}
	out := &store.MessagePage{Items: make([]*related.Message, len(docs)), HasNextPage: next, HasPreviousPage: prev}
	for i := range docs {
		out.Items[i] = docs[i].domain()
	}
	return out, nil
}

// CountMessages counts an interaction's messages.
func (s *Store) CountMessages(ctx context.Context, tenant, interactionID string) (int, error) {
	n, err := s.messages.CountDocuments(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "interactionId", Value: interactionID}})
	if err != nil {
		return 0, fmt.Errorf("mongo: count messages of %s: %w", interactionID, err)
	}
	return int(n), nil
}

// ListRelated pages through the interactions q selects, newest last
// message first.
func (s *Store) ListRelated(ctx context.Context, tenant string, q store.RelatedQuery, p store.Page) (*store.InteractionPage, error) {
	base, err := relatedFilter(tenant, q)
	if err != nil {
		return nil, err
	}
	docs, next, prev, err := page[interactionDoc](ctx, s.interactions, base, "lastAt", true, p)
	if err != nil {
		return nil, fmt.Errorf("mongo: list related: %w", err)
	}
	out := &store.InteractionPage{Items: make([]*related.Interaction, len(docs)), HasNextPage: next, HasPreviousPage: prev}
	for i := range docs {
		out.Items[i] = docs[i].domain()
	}
	return out, nil
}

// CountRelated counts the interactions q selects.
func (s *Store) CountRelated(ctx context.Context, tenant string, q store.RelatedQuery) (int, error) {
	filter, err := relatedFilter(tenant, q)
	if err != nil {
		return 0, err
	}
	n, err := s.interactions.CountDocuments(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("mongo: count related: %w", err)
	}
	return int(n), nil
}

// ListInteractions pages through a tenant's interactions, newest last
// message first.
func (s *Store) ListInteractions(ctx context.Context, tenant string, f store.InteractionFilter, p store.Page) (*store.InteractionPage, error) {
	base, err := interactionFilter(tenant, f)
	if err != nil {
		return nil, err
	}
	docs, next, prev, err := page[interactionDoc](ctx, s.interactions, base, "lastAt", true, p)
	if err != nil {
		return nil, fmt.Errorf("mongo: list interactions: %w", err)
	}
	out := &store.InteractionPage{Items: make([]*related.Interaction, len(docs)), HasNextPage: next, HasPreviousPage: prev}
	for i := range docs {
		out.Items[i] = docs[i].domain()
	}
	return out, nil
}

// CountInteractions counts the interactions f selects.
func (s *Store) CountInteractions(ctx context.Context, tenant string, f store.InteractionFilter) (int, error) {
	filter, err := interactionFilter(tenant, f)
	if err != nil {
		return 0, err
	}
	n, err := s.interactions.CountDocuments(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("mongo: count interactions: %w", err)
	}
	return int(n), nil
}

// interactionFilter is the filter of a tenant's interaction list.
func interactionFilter(tenant string, f store.InteractionFilter) (bson.D, error) {
	filter := bson.D{{Key: "tenant", Value: tenant}}
	if f.Status != "" {
		if !f.Status.Valid() {
			return nil, related.Invalid(fmt.Sprintf("unknown status %q", f.Status), "status")
		}
		filter = append(filter, bson.E{Key: "status", Value: string(f.Status)})
	}
	return filter, nil
}

// relatedFilter is the filter of a Related panel: its scope's equality
// keys (served by the matching index) and the excluded interaction.
func relatedFilter(tenant string, q store.RelatedQuery) (bson.D, error) {
	f := bson.D{{Key: "tenant", Value: tenant}}
	switch {
	case q.ContactID != "" && q.ProfileID == "":
		f = append(f, bson.E{Key: "contactId", Value: q.ContactID})
	case q.ProfileID != "" && q.ContactID == "":
		f = append(f, bson.E{Key: "profileId", Value: q.ProfileID})
	default:
		return nil, related.Invalid("a related query needs exactly one of a contact and a profile", "scope")
	}
	if q.Exclude != "" {
		f = append(f, bson.E{Key: "_id", Value: bson.D{{Key: "$ne", Value: q.Exclude}}})
	}
	return f, nil
}

// page reads one keyset page of the documents base selects, in the order
// (field, _id), descending when desc. It is one find: the page's items plus
// one more, whose presence says another page lies beyond.
//
// After and Before bound the page strictly; with both, the page is the
// window between them. A backward page (p.Last) reads the list in reverse
// from its end (or from Before) and flips the result back.
func page[D any](ctx context.Context, c *mongodriver.Collection, base bson.D, field string, desc bool, p store.Page) (docs []D, hasNext, hasPrev bool, err error) {
	return pageBy[D](ctx, c, base, field, "_id", desc, p, nil)
}

// pageBy is page with another tie-breaking field than _id (unique within
// base's documents), and the fields projection names left out or kept
// (nil: all of them).
func pageBy[D any](ctx context.Context, c *mongodriver.Collection, base bson.D, field, tie string, desc bool, p store.Page, projection bson.D) (docs []D, hasNext, hasPrev bool, err error) {
	n := max(p.Limit(), 0)
	backward := p.Backward()
	filter := slices.Clone(base)
	var bounds []bson.D
	if p.After != nil {
		bounds = append(bounds, beyond(field, tie, *p.After, !desc)) // later in the list's order
	}
	if p.Before != nil {
		bounds = append(bounds, beyond(field, tie, *p.Before, desc)) // earlier in the list's order
	}
	switch len(bounds) {
	case 1:
		filter = append(filter, bounds[0]...)
	case 2:
		filter = append(filter, bson.E{Key: "$and", Value: bson.A{bounds[0], bounds[1]}})
	}
	dir := 1
	if desc != backward {
		dir = -1
	}
	sort := bson.D{{Key: field, Value: dir}, {Key: tie, Value: dir}}
	// First: 0 still reads one document: HasNextPage says whether the
	// list has anything at all.
	opts := options.Find().SetSort(sort)
	if projection != nil {
		opts.SetProjection(projection)
	}
	docs, err = findAll[D](ctx, c, filter, opts, n+1)
	if err != nil {
		return nil, false, false, err
	}
	more := len(docs) > n
	if more {
		docs = docs[:n]
	}
	if backward {
		slices.Reverse(docs)
		return docs, p.Before != nil, more, nil
	}
	return docs, more, p.After != nil, nil
}

// beyond is the keyset condition "(field, tie) after c": strictly greater
// when greater, else strictly less. It is written as
//
//	field <= at AND (field < at OR tie < id)
//
// rather than the plainer (field < at) OR (field = at AND tie < id): the
// top-level bound on field lets the planner seek the list's index to the
// cursor and scan from there, while the $or only trims the ties at the
// cursor's own time.
func beyond(field, tie string, c store.Cursor, greater bool) bson.D {
	op, incl := "$lt", "$lte"
	if greater {
		op, incl = "$gt", "$gte"
	}
	at := c.At.UTC().Truncate(time.Millisecond)
	return bson.D{
		{Key: field, Value: bson.D{{Key: incl, Value: at}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: field, Value: bson.D{{Key: op, Value: at}}}},
			bson.D{{Key: tie, Value: bson.D{{Key: op, Value: c.ID}}}},
		}},
	}
}

// Preferences returns an agent's preferences, or the defaults when the
// agent never set any.
func (s *Store) Preferences(ctx context.Context, tenant, principal string) (related.Preferences, error) {
	var d preferencesDoc
	err := s.preferences.FindOne(ctx, byID(tenant, preferencesID(tenant, principal))).Decode(&d)
	if notFound(err) {
		return related.DefaultPreferences, nil
	}
	if err != nil {
		return related.Preferences{}, fmt.Errorf("mongo: preferences: %w", err)
	}
	return related.Preferences{ShowRelated: d.ShowRelated}, nil
}

// SetPreferences stores an agent's preferences: one upsert on the agent's
// derived _id.
func (s *Store) SetPreferences(ctx context.Context, tenant, principal string, p related.Preferences) error {
	filter := byID(tenant, preferencesID(tenant, principal))
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "showRelated", Value: p.ShowRelated}, {Key: "updatedAt", Value: now()}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "principal", Value: principal}}},
	}
	opts := options.UpdateOne().SetUpsert(true)
	_, err := s.preferences.UpdateOne(ctx, filter, update, opts)
	if isDuplicate(err) {
		// A concurrent first save inserted it: now it is an update.
		_, err = s.preferences.UpdateOne(ctx, filter, update, opts)
	}
	if err != nil {
		return fmt.Errorf("mongo: set preferences: %w", err)
	}
	return nil
}

// preferencesID is the _id of an agent's preferences document.
func preferencesID(tenant, principal string) string {
	return related.DerivedID(tenant, "preferences", principal)
}
