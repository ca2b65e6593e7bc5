package mongo

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// Canonical addresses: a contact is its channel's canonical address
// (related.Canonicalize, under the tenant's default region), and its id is
// a function of that address (related.ContactID). Contacts stored before
// an address had its canonical form (an upgrade, or a tenant that set its
// region) are merged into the contact of their canonical address by a
// resumable job: CanonicalizeContacts.
//
// Merging a contact into another is many writes. Without transactions it
// is made resumable: the merge is first recorded in contact_merges with a
// copy of the merged contact (its _id derived from the merged contact),
// then done step by step, each step idempotent, and the record deleted
// last. A merge a crash interrupted is finished by the job's next batch.

func canonicalizationID(tenant string) string { return related.DerivedID(tenant, "canonicalization") }

// settings returns a tenant's settings, from the cache when it is fresh
// (RecordMessage reads the region on every message).
func (s *Store) settings(ctx context.Context, tenant string) (related.TenantSettings, error) {
	if v, ok := getCached(&s.cache, s.cache.settings, tenant); ok {
		return v, nil
	}
	return s.freshSettings(ctx, tenant)
}

// freshSettings reads a tenant's settings (and refreshes the cache).
func (s *Store) freshSettings(ctx context.Context, tenant string) (related.TenantSettings, error) {
	v := related.TenantSettings{Tenant: tenant}
	var d settingsDoc
	err := s.coll(collSettings).FindOne(ctx, byID(tenant, settingsID(tenant))).Decode(&d)
	switch {
	case notFound(err):
	case err != nil:
		return v, fmt.Errorf("read tenant settings: %w", err)
	default:
		v.DefaultRegion, v.UpdatedAt = d.DefaultRegion, d.UpdatedAt.UTC()
	}
	putCached(&s.cache, s.cache.settings, tenant, v)
	return v, nil
}

// TenantSettings implements store.Store.
func (s *Store) TenantSettings(ctx context.Context, tenant string) (related.TenantSettings, error) {
	v, err := s.freshSettings(ctx, tenant)
	if err != nil {
		return v, fmt.Errorf("mongo: %w", err)
	}
	return v, nil
}

// SetTenantSettings implements store.Store. A change of region starts a
// canonicalization of the tenant's contacts and a re-evaluation of its
// rules (a PHONE rule without a region of its own uses the tenant's).
// Other replicas see the new region within cacheTTL.
func (s *Store) SetTenantSettings(ctx context.Context, tenant string, v related.TenantSettings) (related.TenantSettings, error) {
	ts := now()
	v.Tenant, v.UpdatedAt = tenant, ts
	defer s.cache.forget(tenant)
	cur, err := s.freshSettings(ctx, tenant)
	if err != nil {
		return related.TenantSettings{}, fmt.Errorf("mongo: %w", err)
	}
	doc := &settingsDoc{ID: settingsID(tenant), Tenant: tenant, DefaultRegion: v.DefaultRegion, UpdatedAt: ts}
	if _, err := s.coll(collSettings).ReplaceOne(ctx, byID(tenant, doc.ID), doc, options.Replace().SetUpsert(true)); err != nil && !isDuplicate(err) {
		return related.TenantSettings{}, fmt.Errorf("mongo: write tenant settings: %w", err)
	}
	if cur.DefaultRegion == v.DefaultRegion {
		return v, nil
	}
	if err := s.startJob(ctx, collCanonicalizations, canonicalizationID(tenant), tenant, ts); err != nil {
		return related.TenantSettings{}, err
	}
	if err := s.startEvaluation(ctx, tenant, store.EvaluationScope{All: true}, 0, ts); err != nil {
		return related.TenantSettings{}, err
	}
	return v, nil
}

// Canonicalization implements store.Store.
func (s *Store) Canonicalization(ctx context.Context, tenant string) (*related.Canonicalization, error) {
	var d evaluationDoc
	err := s.coll(collCanonicalizations).FindOne(ctx, byID(tenant, canonicalizationID(tenant))).Decode(&d)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read canonicalization: %w", err)
	}
	return &related.Canonicalization{Tenant: d.Tenant, State: related.JobState(d.State), Processed: d.Processed, Total: d.Total, Merged: d.Merged,
		StartedAt: d.StartedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}, nil
}

// PendingCanonicalizations implements store.Store.
func (s *Store) PendingCanonicalizations(ctx context.Context) ([]string, error) {
	return s.pendingJobs(ctx, collCanonicalizations)
}

// CanonicalizeContacts implements store.Store: the merges a crash left
// unfinished first, then one batch of contacts in _id order.
func (s *Store) CanonicalizeContacts(ctx context.Context, tenant string, batch int) (bool, error) {
	var d evaluationDoc
	err := s.coll(collCanonicalizations).FindOne(ctx, byID(tenant, canonicalizationID(tenant))).Decode(&d)
	if notFound(err) || err == nil && d.State != evaluationRunning {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("mongo: read canonicalization: %w", err)
	}
	settings, err := s.freshSettings(ctx, tenant)
	if err != nil {
		return false, fmt.Errorf("mongo: canonicalize: %w", err)
	}
	if err := s.finishContactMerges(ctx, tenant); err != nil {
		return false, err
	}
	return s.runJob(ctx, collCanonicalizations, canonicalizationID(tenant), tenant, batch, func(ids []string, ts time.Time) (identity.Summary, error) {
		var done identity.Summary // Merged: contacts merged into another
		for _, id := range ids {
			m, err := s.canonicalize(ctx, tenant, id, settings.DefaultRegion, ts)
			if err != nil {
				return done, err
			}
			if m {
				done.Merged++
			}
		}
		return done, nil
	})
}

// canonicalize brings one contact to its canonical address: in place when
// its id is already its canonical address's, else merged into the contact
// of that address (created if needed). It reports whether two contacts
// became one.
func (s *Store) canonicalize(ctx context.Context, tenant, id, region string, ts time.Time) (bool, error) {
	src, err := s.contactByID(ctx, tenant, id)
	if related.IsNotFound(err) {
		return false, nil // merged away by an earlier contact of the batch
	}
	if err != nil {
		return false, err
	}
	canon, err := related.Canonicalize(related.Channel(src.Channel), src.Address, region)
	if err != nil {
		// Stored before the limits of today: keep it as it is.
		s.log.WarnContext(ctx, "contact address cannot be canonicalized; kept", "tenant", tenant, "contact", id, "err", err)
		return false, nil
	}
	target := related.ContactID(tenant, related.Channel(src.Channel), canon.Address)
	if target != src.ID {
		return s.mergeContact(ctx, tenant, src, target, canon, ts)
	}
	if canon.Address == src.Address && canon.Status == src.domain().AddressStatus {
		return false, nil
	}
	marker := newMarker()
	if _, err := s.contacts.UpdateOne(ctx, byID(tenant, src.ID), bson.D{
		{Key: "$set", Value: bson.D{{Key: "address", Value: canon.Address}, {Key: "addressStatus", Value: string(canon.Status)}, {Key: "updatedAt", Value: ts}}},
		{Key: "$unset", Value: bson.D{{Key: "claimsSig", Value: ""}}},
		{Key: "$push", Value: bson.D{{Key: "dirty", Value: marker}}},
		{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}},
	}); err != nil {
		return false, fmt.Errorf("canonicalize contact: %w", err)
	}
	events, _, err := s.relink(ctx, tenant, []string{src.ID}, map[string][]string{src.ID: {marker}}, related.System, ts)
	s.publishEvents(ctx, events)
	return false, err
}

// contactMergeDoc is a document of the contact_merges collection: a merge
// of contact Src into Target under way.
type contactMergeDoc struct {
	ID        string     `bson:"_id"` // contactMergeID(tenant, src)
	Tenant    string     `bson:"tenant"`
	Src       contactDoc `bson:"src"`
	Target    string     `bson:"target"`
	Address   string     `bson:"address"`
	Status    string     `bson:"status"`
	Name      string     `bson:"name,omitempty"`
	Marker    string     `bson:"marker"`
	CreatedAt time.Time  `bson:"createdAt"`
}

func contactMergeID(tenant, src string) string {
	return related.DerivedID(tenant, "contact-merge", src)
}

// mergeContact records the merge of src into target, then does it.
func (s *Store) mergeContact(ctx context.Context, tenant string, src *contactDoc, target string, canon related.CanonicalAddress, ts time.Time) (bool, error) {
	md := &contactMergeDoc{ID: contactMergeID(tenant, src.ID), Tenant: tenant, Src: *src, Target: target, Address: canon.Address,
		Status: string(canon.Status), Name: canon.Name, Marker: newMarker(), CreatedAt: ts}
	if _, err := s.coll(collContactMerges).InsertOne(ctx, md); err != nil {
		if !isDuplicate(err) {
			return false, fmt.Errorf("record contact merge: %w", err)
		}
		// Under way already (a crash, or another replica): finish that one.
		if err := s.coll(collContactMerges).FindOne(ctx, byID(tenant, md.ID)).Decode(md); err != nil {
			return false, fmt.Errorf("read contact merge: %w", err)
		}
	}
	return s.finishContactMerge(ctx, md, ts)
}

// finishContactMerges finishes the tenant's merges a crash interrupted.
func (s *Store) finishContactMerges(ctx context.Context, tenant string) error {
	docs, err := findEvery[contactMergeDoc](ctx, s.coll(collContactMerges), bson.D{{Key: "tenant", Value: tenant}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return fmt.Errorf("mongo: read contact merges: %w", err)
	}
	for i := range docs {
		s.log.InfoContext(ctx, "mongo: finishing a contact merge a crash interrupted", "tenant", tenant, "contact", docs[i].Src.ID)
		if _, err := s.finishContactMerge(ctx, &docs[i], now()); err != nil {
			return fmt.Errorf("mongo: %w", err)
		}
	}
	return nil
}

// finishContactMerge does (or finishes) the merge md records: the target
// contact takes the older contact's creation, name and first interaction
// and both attribute sets (the newer's values win); the merged contact's
// interactions, decisions and names move to it, its pairs and values go,
// and its id becomes an alias of the target. Then the target, and what the
// merged contact's profile held, are relinked. It reports whether the
// target existed: whether two contacts became one.
func (s *Store) finishContactMerge(ctx context.Context, md *contactMergeDoc, ts time.Time) (bool, error) {
	tenant, src, target := md.Tenant, &md.Src, md.Target
	existed := false
	var (
		events  []store.Event
		flips   []flip
		members []string
	)
	err := s.withLeases(ctx, tenant, []string{src.ID, target}, func(l *leases) error {
		rules, err := s.freshRules(ctx, tenant)
		if err != nil {
			return err
		}
		dst, err := s.contactByID(ctx, tenant, target)
		if err != nil && !related.IsNotFound(err) {
			return err
		}
		// A target that carries this merge's marker was made by it (before
		// a crash): two contacts did not become one.
		existed = dst != nil && !slices.Contains(dst.Dirty, md.Marker)
		if src.Address == md.Address {
			// src holds the canonical address already (its id was derived
			// by an older version): it goes first, or the target could not
			// have its address. md keeps its copy.
			if _, err := s.contacts.DeleteOne(ctx, byID(tenant, src.ID)); err != nil {
				return fmt.Errorf("merge contact: %w", err)
			}
		}
		if err := s.mergeIntoTarget(ctx, md, dst, rules, ts); err != nil {
			return err
		}
		ev, err := s.moveContactRecords(ctx, tenant, src.ID, target, ts)
		events = append(events, ev...)
		if err != nil {
			return err
		}
		// src's values go, and their counts with them.
		values, err := s.valuesOf(ctx, tenant, []string{src.ID})
		if err != nil {
			return err
		}
		if len(values) > 0 {
			if _, err := s.coll(collValues).DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: src.ID}}); err != nil {
				return fmt.Errorf("release values: %w", err)
			}
			ids := make([]related.Identifier, len(values))
			for i, v := range values {
				ids[i] = related.Identifier{Key: v.Key, Value: v.Value}
			}
			f, err := s.countValues(ctx, tenant, rules, ids, ts)
			flips = append(flips, f...)
			if err != nil {
				return err
			}
		}
		if src.ProfileID != "" {
			if members, err = s.members(ctx, tenant, src.ProfileID); err != nil {
				return err
			}
		}
		if _, err := s.contacts.DeleteOne(ctx, byID(tenant, src.ID)); err != nil {
			return fmt.Errorf("merge contact: %w", err)
		}
		return nil
	})
	s.publishEvents(ctx, events)
	if err != nil {
		return false, fmt.Errorf("merge contact %s into %s: %w", src.ID, target, err)
	}
	// Relink: the merged contact, and what src's profile held.
	linkEvents, _, err := s.relink(ctx, tenant, append(members, target), map[string][]string{target: {md.Marker}}, related.System, ts)
	s.publishEvents(ctx, linkEvents)
	if err != nil {
		return false, fmt.Errorf("merge contact %s into %s: relink: %w", src.ID, target, err)
	}
	if len(flips) > 0 {
		if err := s.recomputeHolders(ctx, tenant, flips, related.System, ts); err != nil {
			return false, fmt.Errorf("merge contact %s into %s: %w", src.ID, target, err)
		}
	}
	if _, err := s.coll(collContactMerges).DeleteOne(ctx, byID(tenant, md.ID)); err != nil {
		return false, fmt.Errorf("forget contact merge: %w", err)
	}
	return existed, nil
}

// mergeIntoTarget creates the target contact from the merged one, or
// merges the merged one's name, attributes and creation into it, marking
// it dirty (md.Marker) and its claims to be synced.
func (s *Store) mergeIntoTarget(ctx context.Context, md *contactMergeDoc, dst *contactDoc, rules []identity.Rule, ts time.Time) error {
	tenant, src := md.Tenant, &md.Src
	for attempt := 0; ; attempt++ {
		if dst == nil {
			name := src.Name
			if name == "" {
				name = md.Name
			}
			doc := &contactDoc{ID: md.Target, Tenant: tenant, Channel: src.Channel, Address: md.Address, AddressStatus: md.Status, Name: name,
				Attributes: src.Attributes, FirstInteraction: src.FirstInteraction, Dirty: []string{md.Marker}, CreatedAt: src.CreatedAt, UpdatedAt: ts}
			if doc.Attributes == nil {
				doc.Attributes = []attributeDoc{}
			}
			_, err := s.contacts.InsertOne(ctx, doc)
			if err == nil {
				return nil
			}
			if !isDuplicate(err) || attempt > 0 {
				return fmt.Errorf("create canonical contact: %w", err)
			}
			// Created meanwhile (a message from the canonical address):
			// merge into it.
			if dst, err = s.contactByID(ctx, tenant, md.Target); err != nil {
				return err
			}
		}
		older, newer := dst, src
		if src.CreatedAt.Before(dst.CreatedAt) || src.CreatedAt.Equal(dst.CreatedAt) && src.ID < dst.ID {
			older, newer = src, dst
		}
		name := older.Name
		if name == "" {
			name = newer.Name
		}
		attrs := related.MergeAttributes(older.attributes(), newer.attributes())
		res, err := s.contacts.UpdateOne(ctx, bson.D{{Key: "_id", Value: dst.ID}, {Key: "tenant", Value: tenant}, {Key: "version", Value: dst.Version}}, bson.D{
			{Key: "$set", Value: bson.D{{Key: "name", Value: name}, {Key: "attributes", Value: attributeDocs(attrs)}, {Key: "createdAt", Value: older.CreatedAt},
				{Key: "firstInteraction", Value: older.FirstInteraction}, {Key: "updatedAt", Value: ts}}},
			{Key: "$unset", Value: bson.D{{Key: "claimsSig", Value: ""}}},
			{Key: "$addToSet", Value: bson.D{{Key: "dirty", Value: md.Marker}}},
			{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}},
		})
		if err != nil {
			return fmt.Errorf("merge contact: %w", err)
		}
		if res.MatchedCount == 1 || attempt == maxVersionRetries {
			if res.MatchedCount == 0 {
				return fmt.Errorf("merge contact: %s kept changing", dst.ID)
			}
			return nil
		}
		if dst, err = s.contactByID(ctx, tenant, md.Target); err != nil {
			return err
		}
	}
}

// moveContactRecords moves what names contact src to target: its
// interactions, decisions, name and aliases; its pairs are dropped (the
// target's recompute makes its own), and src becomes an alias of target.
// Each step is idempotent.
func (s *Store) moveContactRecords(ctx context.Context, tenant, src, target string, ts time.Time) ([]store.Event, error) {
	moved, err := findEvery[interactionDoc](ctx, s.interactions, bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: idIn([]string{src})}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "profileId", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read interactions: %w", err)
	}
	var events []store.Event
	if len(moved) > 0 {
		if _, err := s.interactions.UpdateMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: idIn([]string{src})}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "contactId", Value: target}, {Key: "updatedAt", Value: ts}}}}); err != nil {
			return nil, fmt.Errorf("move interactions: %w", err)
		}
		for _, it := range moved {
			events = append(events, store.Event{ID: related.NewID(), Tenant: tenant, Kind: store.InteractionUpdated, InteractionID: it.ID,
				ContactID: target, ProfileID: it.ProfileID, At: ts})
		}
	}
	// Decisions and names follow the contact; a decision about the two
	// contacts themselves means nothing any more.
	ds, err := s.decisions(ctx, tenant, []string{src})
	if err != nil {
		return events, err
	}
	var models []mongodriver.WriteModel
	for _, d := range ds {
		models = append(models, mongodriver.NewDeleteOneModel().SetFilter(byID(tenant, d.ID())))
		a, b := d.A, d.B
		if a == src {
			a = target
		}
		if b == src {
			b = target
		}
		if a == b {
			continue
		}
		nd := identity.NewDecision(d.Kind, a, b)
		nd.Into, nd.Reason, nd.By, nd.At = d.Into, d.Reason, d.By, d.At
		if nd.Into == src {
			nd.Into = target
		}
		doc := newDecisionDoc(tenant, nd)
		models = append(models, mongodriver.NewReplaceOneModel().SetFilter(byID(tenant, doc.ID)).SetReplacement(doc).SetUpsert(true))
	}
	if len(models) > 0 {
		if _, err := s.coll(collDecisions).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true)); err != nil {
			return events, fmt.Errorf("move decisions: %w", err)
		}
	}
	var name renameDoc
	err = s.coll(collRenames).FindOne(ctx, byID(tenant, renameID(tenant, src))).Decode(&name)
	switch {
	case notFound(err):
	case err != nil:
		return events, fmt.Errorf("read name: %w", err)
	default:
		name.ID, name.Anchor = renameID(tenant, target), target
		if _, err := s.coll(collRenames).InsertOne(ctx, &name); err != nil && !isDuplicate(err) {
			return events, fmt.Errorf("move name: %w", err) // the target's own name wins
		}
		if err := s.dropRenames(ctx, tenant, []string{src}); err != nil {
			return events, err
		}
	}
	if _, err := s.coll(collAliases).UpdateMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: src}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "contactId", Value: target}}}}); err != nil {
		return events, fmt.Errorf("move aliases: %w", err)
	}
	if _, err := s.coll(collPairs).DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "contacts", Value: idIn([]string{src})}}); err != nil {
		return events, fmt.Errorf("drop pairs: %w", err)
	}
	alias := &aliasDoc{ID: aliasID(tenant, "contact", src), Tenant: tenant, Kind: "contact", Alias: src, ContactID: target}
	if _, err := s.coll(collAliases).ReplaceOne(ctx, byID(tenant, alias.ID), alias, options.Replace().SetUpsert(true)); err != nil {
		return events, fmt.Errorf("alias contact: %w", err)
	}
	return events, nil
}
