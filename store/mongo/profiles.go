package mongo

import (
	"context"
	"errors"
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

// The store.ProfileStore methods: rules, reads, manual control and rule
// re-evaluation, with the SQLite adapter's semantics. Linking itself is in
// link.go. Manual control (LinkContact, UnlinkContact, MergeProfiles) is
// an admin's rare act; it uses the same primitives as linking but, unlike
// rule linking, is not built to interleave safely with concurrent writes
// to the same contacts.

var _ store.ProfileStore = (*Store)(nil)

// Evaluation states.
const (
	evaluationRunning = "RUNNING"
	evaluationDone    = "DONE"
)

// ProfileRules implements store.ProfileStore.
func (s *Store) ProfileRules(ctx context.Context, tenant string) ([]identity.Rule, error) {
	r, err := s.rules(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("mongo: profile rules: %w", err)
	}
	return slices.Clone(r), nil
}

// SaveProfileRule implements store.ProfileStore.
func (s *Store) SaveProfileRule(ctx context.Context, tenant string, r identity.Rule) (identity.Rule, error) {
	ts := now()
	defer s.profileState().drop(tenant)
	stored, err := s.storedRules(ctx, tenant)
	if err != nil {
		return r, fmt.Errorf("mongo: save rule: %w", err)
	}
	current := identity.WithDefaults(tenant, stored)
	var prev *identity.Rule
	if r.ID != "" {
		i := slices.IndexFunc(current, func(x identity.Rule) bool { return x.ID == r.ID })
		if i < 0 {
			return r, related.NotFound("no such rule", "id")
		}
		prev = &current[i]
	} else {
		if len(current) >= identity.MaxRules {
			return r, related.Invalid(fmt.Sprintf("a tenant has at most %d rules", identity.MaxRules), "attribute")
		}
		r.ID = related.NewID()
	}
	conflict := func() error {
		return &related.Error{Code: related.CodeConflict, Field: []string{"attribute"},
			Message: fmt.Sprintf("a rule for %q exists already; update it instead", r.Attribute)}
	}
	for _, x := range current {
		if x.Attribute == r.Attribute && x.ID != r.ID {
			return r, conflict()
		}
	}
	r.Tenant, r.UpdatedAt, r.CreatedAt, r.Deleted = tenant, ts, ts, false
	if prev != nil && !prev.CreatedAt.IsZero() {
		r.CreatedAt = prev.CreatedAt
	}
	rules := s.coll(collProfileRules)
	// A deleted rule of the same attribute (a deleted default) makes room
	// for the new one.
	for _, x := range stored {
		if x.Deleted && x.Attribute == r.Attribute && x.ID != r.ID {
			if _, err := rules.DeleteOne(ctx, byID(tenant, x.ID)); err != nil {
				return r, fmt.Errorf("mongo: save rule: %w", err)
			}
		}
	}
	blocked := r.BlockedValues
	if blocked == nil {
		blocked = []string{}
	}
	doc := &ruleDoc{
		ID: r.ID, Tenant: tenant, Attribute: r.Attribute, Normalizer: string(r.Normalizer), Enabled: r.Enabled,
		Priority: r.Priority, MaxPerProfile: r.MaxPerProfile, BlockedValues: blocked, DefaultRegion: r.DefaultRegion,
		CreatedAt: r.CreatedAt, UpdatedAt: ts,
	}
	if _, err := rules.ReplaceOne(ctx, byID(tenant, r.ID), doc, options.Replace().SetUpsert(true)); err != nil {
		if maybeDuplicate(err) {
			// The unique {tenant, attribute}: a concurrent save of another
			// rule for the attribute won.
			if again, rerr := s.storedRules(ctx, tenant); rerr == nil && slices.ContainsFunc(again, func(x identity.Rule) bool {
				return x.Attribute == r.Attribute && x.ID != r.ID && !x.Deleted
			}) {
				return r, conflict()
			}
		}
		return r, fmt.Errorf("mongo: save rule: %w", err)
	}
	if err := s.startEvaluation(ctx, tenant, ts); err != nil {
		return r, err
	}
	return r, nil
}

// DeleteProfileRule implements store.ProfileStore.
func (s *Store) DeleteProfileRule(ctx context.Context, tenant, id string) error {
	ts := now()
	defer s.profileState().drop(tenant)
	stored, err := s.storedRules(ctx, tenant)
	if err != nil {
		return fmt.Errorf("mongo: delete rule: %w", err)
	}
	current := identity.WithDefaults(tenant, stored)
	i := slices.IndexFunc(current, func(x identity.Rule) bool { return x.ID == id })
	if i < 0 {
		return related.NotFound("no such rule", "id")
	}
	r := current[i]
	// Keep a deleted document, so a deleted default rule stays deleted.
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "deleted", Value: true}, {Key: "enabled", Value: false}, {Key: "updatedAt", Value: ts}}},
		{Key: "$setOnInsert", Value: bson.D{
			{Key: "attribute", Value: r.Attribute}, {Key: "normalizer", Value: string(r.Normalizer)}, {Key: "priority", Value: r.Priority},
			{Key: "maxPerProfile", Value: 0}, {Key: "blockedValues", Value: []string{}}, {Key: "defaultRegion", Value: ""},
			{Key: "createdAt", Value: ts},
		}},
	}
	if _, err := s.coll(collProfileRules).UpdateOne(ctx, byID(tenant, r.ID), update, options.UpdateOne().SetUpsert(true)); err != nil {
		return fmt.Errorf("mongo: delete rule: %w", err)
	}
	return s.startEvaluation(ctx, tenant, ts)
}

// startEvaluation (re)starts the re-evaluation of a tenant's contacts from
// the first contact, as a new run.
func (s *Store) startEvaluation(ctx context.Context, tenant string, ts time.Time) error {
	total, err := s.contacts.CountDocuments(ctx, bson.D{{Key: "tenant", Value: tenant}})
	if err != nil {
		return fmt.Errorf("mongo: start rule evaluation: count contacts: %w", err)
	}
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "run", Value: related.NewID()}, {Key: "state", Value: evaluationRunning}, {Key: "processed", Value: 0},
		{Key: "total", Value: int(total)}, {Key: "afterId", Value: ""}, {Key: "startedAt", Value: ts}, {Key: "updatedAt", Value: ts},
	}}}
	for attempt := 0; ; attempt++ {
		_, err = s.coll(collEvaluations).UpdateOne(ctx, byID(tenant, evaluationID(tenant)), update, options.UpdateOne().SetUpsert(true))
		if err == nil || !isDuplicate(err) || attempt > 0 {
			break
		}
		// A concurrent start inserted it first: update that one.
	}
	if err != nil {
		return fmt.Errorf("mongo: start rule evaluation: %w", err)
	}
	return nil
}

// RuleEvaluation implements store.ProfileStore.
func (s *Store) RuleEvaluation(ctx context.Context, tenant string) (*related.RuleEvaluation, error) {
	var d evaluationDoc
	err := s.coll(collEvaluations).FindOne(ctx, byID(tenant, evaluationID(tenant))).Decode(&d)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read rule evaluation: %w", err)
	}
	return d.domain(), nil
}

// PendingEvaluations implements store.ProfileStore. The background worker
// calls it first thing after a start, so it also finishes the merges of
// every tenant that a crash left half-done.
func (s *Store) PendingEvaluations(ctx context.Context) ([]string, error) {
	if err := s.recoverAll(ctx); err != nil {
		return nil, err
	}
	docs, err := findEvery[evaluationDoc](ctx, s.coll(collEvaluations), bson.D{{Key: "state", Value: evaluationRunning}},
		options.Find().SetProjection(bson.D{{Key: "tenant", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: list rule evaluations: %w", err)
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Tenant
	}
	return out, nil
}

// EvaluateRules implements store.ProfileStore: it re-links one batch of
// contacts in _id order and records where it stopped, filtered on the run
// and position it read, so a restart resumes there and a batch of an
// older run (or one another replica did first) records nothing.
func (s *Store) EvaluateRules(ctx context.Context, tenant string, batch int) (bool, error) {
	ts := now()
	batch = max(batch, 1)
	if err := s.recoverTenant(ctx, tenant); err != nil {
		return false, err
	}
	evaluations := s.coll(collEvaluations)
	var ev evaluationDoc
	err := evaluations.FindOne(ctx, byID(tenant, evaluationID(tenant))).Decode(&ev)
	if notFound(err) || err == nil && ev.State != evaluationRunning {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("mongo: read rule evaluation: %w", err)
	}
	contacts, err := findAll[contactDoc](ctx, s.contacts,
		bson.D{{Key: "tenant", Value: tenant}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: ev.AfterID}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}), batch)
	if err != nil {
		return false, fmt.Errorf("mongo: rule evaluation: read contacts: %w", err)
	}
	// The rules may have changed through another replica, whose change
	// this replica's cache may not show yet: every batch reads them.
	s.profileState().drop(tenant)
	var events []store.Event
	defer func() { s.publishEvents(ctx, events) }()
	after := ev.AfterID
	for _, c := range contacts {
		// Earlier contacts of the batch may have moved this one.
		cur, err := s.contactByID(ctx, tenant, c.ID)
		if err != nil {
			return false, fmt.Errorf("mongo: rule evaluation: %w", err)
		}
		evs, err := s.relink(ctx, cur, ts)
		events = append(events, evs...)
		if err != nil {
			return false, fmt.Errorf("mongo: rule evaluation: %w", err)
		}
		after = c.ID
	}
	state, done := evaluationRunning, false
	if len(contacts) < batch {
		state, done = evaluationDone, true
	}
	res, err := evaluations.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: ev.ID}, {Key: "tenant", Value: tenant}, {Key: "run", Value: ev.Run}, {Key: "afterId", Value: ev.AfterID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: state}, {Key: "processed", Value: ev.Processed + len(contacts)},
			{Key: "afterId", Value: after}, {Key: "updatedAt", Value: ts}}}})
	if err != nil {
		return false, fmt.Errorf("mongo: record rule evaluation: %w", err)
	}
	if res.MatchedCount == 0 {
		return false, nil // restarted or advanced meanwhile: read it again
	}
	return done, nil
}

// relink re-evaluates one contact under the current rules: links whose
// value no rule accepts any more are removed (splitting its profile where
// they held it together), then the contact is linked as a new write would.
func (s *Store) relink(ctx context.Context, c *contactDoc, ts time.Time) ([]store.Event, error) {
	tenant := c.Tenant
	rules, err := s.rules(ctx, tenant)
	if err != nil {
		return nil, err
	}
	claims := identity.Claims(rules, c.domain())
	var keep []identDoc
	var stale bson.A
	for _, id := range c.Identifiers {
		if slices.ContainsFunc(claims, func(cl identity.Claim) bool { return cl.Key == id.Key && cl.Value == id.Value }) {
			keep = append(keep, id)
		} else {
			stale = append(stale, bson.D{{Key: "key", Value: id.Key}, {Key: "value", Value: id.Value}})
		}
	}
	var events []store.Event
	if len(stale) > 0 && c.ProfileID != "" {
		if _, err := s.coll(collProfileLinks).DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: c.ID},
			{Key: "reason", Value: string(related.LinkRule)}, {Key: "$or", Value: stale}}); err != nil {
			return nil, fmt.Errorf("remove links: %w", err)
		}
		if keep == nil {
			keep = []identDoc{}
		}
		if _, err := s.contacts.UpdateOne(ctx, byID(tenant, c.ID), bson.D{
			{Key: "$set", Value: bson.D{{Key: "identifiers", Value: keep}, {Key: "updatedAt", Value: ts}}},
			{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}},
		}); err != nil {
			return nil, fmt.Errorf("update contact %s: %w", c.ID, err)
		}
		ev, err := s.resplit(ctx, tenant, c.ProfileID, ts)
		events = append(events, ev...)
		if err != nil {
			return events, err
		}
		if c, err = s.contactByID(ctx, tenant, c.ID); err != nil {
			return events, err
		}
	}
	_, _, ev, err := s.linkContact(ctx, c, linkRun{by: "rules", ts: ts})
	return append(events, ev...), err
}

// resplit recomputes which identifiers a profile still holds (those some
// member's links hold) and splits it into the components its members'
// links connect: the first keeps the profile, the others get new ones.
func (s *Store) resplit(ctx context.Context, tenant, profileID string, ts time.Time) ([]store.Event, error) {
	byProfile := bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: profileID}}
	members, err := findEvery[contactDoc](ctx, s.contacts, byProfile, options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read members of profile %s: %w", profileID, err)
	}
	manualLinks, err := findEvery[linkDoc](ctx, s.coll(collProfileLinks), append(slices.Clone(byProfile), bson.E{Key: "reason", Value: string(related.LinkManual)}),
		options.Find().SetProjection(bson.D{{Key: "contactId", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read manual links of profile %s: %w", profileID, err)
	}
	manual := map[string]bool{}
	for _, l := range manualLinks {
		manual[l.ContactID] = true
	}
	held := map[identDoc]bool{}
	ms := make([]identity.Member, len(members))
	byID := map[string]*contactDoc{}
	for i := range members {
		m := &members[i]
		byID[m.ID] = m
		ms[i] = identity.Member{ContactID: m.ID, Identifiers: identifiers(m.Identifiers), Manual: manual[m.ID]}
		for _, id := range m.Identifiers {
			held[id] = true
		}
	}
	// Identifiers no member links any more are released.
	owned, err := findEvery[identifierDoc](ctx, s.coll(collIdentifiers), byProfile,
		options.Find().SetProjection(bson.D{{Key: "key", Value: 1}, {Key: "value", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read identifiers of profile %s: %w", profileID, err)
	}
	var release []string
	for _, d := range owned {
		if !held[identDoc{Key: d.Key, Value: d.Value}] {
			release = append(release, d.ID)
		}
	}
	if len(release) > 0 {
		if _, err := s.coll(collIdentifiers).DeleteMany(ctx, append(bson.D{{Key: "_id", Value: idIn(release)}}, byProfile...)); err != nil {
			return nil, fmt.Errorf("release identifiers: %w", err)
		}
	}
	var events []store.Event
	for gi, g := range identity.Components(ms) {
		if gi == 0 {
			continue
		}
		// A member without links of its own leaves the profile alone.
		if len(g) == 1 && len(byID[g[0]].Identifiers) == 0 {
			ev, err := s.moveContact(ctx, byID[g[0]], "", nil, nil, ts)
			events = append(events, ev...)
			if err != nil {
				return events, err
			}
			continue
		}
		np := &profileDoc{ID: related.NewID(), Tenant: tenant, Channels: []string{}, Identifiers: []identDoc{}, CreatedAt: ts, UpdatedAt: ts}
		if _, err := s.coll(collProfiles).InsertOne(ctx, np); err != nil {
			return events, fmt.Errorf("create profile: %w", err)
		}
		for _, cid := range g {
			c := byID[cid]
			if len(c.Identifiers) > 0 {
				keys := make([]string, len(c.Identifiers))
				for i, id := range c.Identifiers {
					keys[i] = identifierID(tenant, related.Identifier{Key: id.Key, Value: id.Value})
				}
				if _, err := s.coll(collIdentifiers).UpdateMany(ctx, bson.D{{Key: "_id", Value: idIn(keys)}, {Key: "tenant", Value: tenant}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: np.ID}}}}); err != nil {
					return events, fmt.Errorf("move identifiers: %w", err)
				}
			}
			if _, err := s.coll(collProfileLinks).UpdateMany(ctx,
				bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: cid}, {Key: "profileId", Value: profileID}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: np.ID}}}}); err != nil {
				return events, fmt.Errorf("move links: %w", err)
			}
			ev, err := s.moveContact(ctx, c, np.ID, identifiers(c.Identifiers), nil, ts)
			events = append(events, ev...)
			if err != nil {
				return events, err
			}
		}
		_, ev, err := s.refreshProfile(ctx, tenant, np.ID, nil, false, true, ts)
		events = append(events, ev...)
		if err != nil {
			return events, err
		}
	}
	_, ev, err := s.refreshProfile(ctx, tenant, profileID, nil, false, true, ts)
	return append(events, ev...), err
}

// moveContact puts c into profile target ("" for none) with the given
// link identifiers, and its interactions along with it (manual control and
// splits). extra are more fields to set on the contact. c is updated.
func (s *Store) moveContact(ctx context.Context, c *contactDoc, target string, linked []related.Identifier, extra bson.D, ts time.Time) ([]store.Event, error) {
	from := c.ProfileID
	set := append(bson.D{{Key: "profileId", Value: target}, {Key: "identifiers", Value: identDocs(linked)}, {Key: "updatedAt", Value: ts}}, extra...)
	var next contactDoc
	err := s.contacts.FindOneAndUpdate(ctx, byID(c.Tenant, c.ID),
		bson.D{{Key: "$set", Value: set}, {Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&next)
	if err != nil {
		return nil, fmt.Errorf("move contact %s: %w", c.ID, err)
	}
	*c = next
	if from == target {
		return nil, nil
	}
	filter := bson.D{{Key: "tenant", Value: c.Tenant}, {Key: "contactId", Value: c.ID}, {Key: "profileId", Value: bson.D{{Key: "$ne", Value: target}}}}
	refs, err := findEvery[interactionRef](ctx, s.interactions, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "profileId", Value: 1}}))
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	if _, err := s.interactions.UpdateMany(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: target}, {Key: "updatedAt", Value: ts}}}}); err != nil {
		return nil, fmt.Errorf("move interactions of contact %s: %w", c.ID, err)
	}
	events := make([]store.Event, len(refs))
	for i, r := range refs {
		events[i] = profileChanged(c.Tenant, r.ID, c.ID, r.ProfileID, target, ts)
	}
	return events, nil
}

// Profiles implements store.ProfileStore.
func (s *Store) Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error) {
	return byIDs(ctx, s.coll(collProfiles), tenant, ids, (*profileDoc).domain)
}

// ProfileByIdentifier implements store.ProfileStore. It follows the
// holder's merge chain to the profile that holds the identifier now.
func (s *Store) ProfileByIdentifier(ctx context.Context, tenant string, id related.Identifier) (*related.Profile, error) {
	var d identifierDoc
	err := s.coll(collIdentifiers).FindOne(ctx, byID(tenant, identifierID(tenant, id))).Decode(&d)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: profile by identifier: %w", err)
	}
	p, err := s.rootProfile(ctx, tenant, d.ProfileID)
	if related.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: profile by identifier: %w", err)
	}
	return p.domain(), nil
}

// ProfileContacts implements store.ProfileStore.
func (s *Store) ProfileContacts(ctx context.Context, tenant string, profileIDs []string) ([]*related.Contact, error) {
	if len(profileIDs) == 0 {
		return nil, nil
	}
	docs, err := findEvery[contactDoc](ctx, s.contacts, bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: idIn(profileIDs)}},
		options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: profile contacts: %w", err)
	}
	out := make([]*related.Contact, len(docs))
	for i := range docs {
		out[i] = docs[i].domain()
	}
	return out, nil
}

// ProfileLinks implements store.ProfileStore.
func (s *Store) ProfileLinks(ctx context.Context, tenant, profileID string) ([]*related.ProfileLink, error) {
	docs, err := findEvery[linkDoc](ctx, s.coll(collProfileLinks), bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: profileID}},
		options.Find().SetSort(bson.D{{Key: "linkedAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: profile links: %w", err)
	}
	out := make([]*related.ProfileLink, len(docs))
	for i := range docs {
		out[i] = docs[i].domain()
	}
	return out, nil
}

// ProfileConflicts implements store.ProfileStore.
func (s *Store) ProfileConflicts(ctx context.Context, tenant string, resolved bool, limit int) ([]*related.ProfileConflict, error) {
	if limit <= 0 {
		return nil, nil
	}
	filter := bson.D{{Key: "tenant", Value: tenant}}
	if !resolved {
		filter = append(filter, bson.E{Key: "resolved", Value: false})
	}
	docs, err := findAll[conflictDoc](ctx, s.coll(collConflicts), filter,
		options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}), limit)
	if err != nil {
		return nil, fmt.Errorf("mongo: profile conflicts: %w", err)
	}
	out := make([]*related.ProfileConflict, len(docs))
	for i := range docs {
		out[i] = docs[i].domain()
	}
	return out, nil
}

// LinkContact implements store.ProfileStore.
func (s *Store) LinkContact(ctx context.Context, tenant, profileID, contactID, by string) (*related.Profile, error) {
	ts := now()
	if err := s.recoverTenant(ctx, tenant); err != nil {
		return nil, err
	}
	target, err := s.rootProfile(ctx, tenant, profileID)
	if err != nil {
		return nil, at(err, "profileId")
	}
	c, err := s.contactByID(ctx, tenant, contactID)
	if err != nil {
		return nil, err
	}
	if _, err := s.coll(collDoNotLink).DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: c.ID}, {Key: "profileId", Value: target.ID}}); err != nil {
		return nil, fmt.Errorf("mongo: link contact: lift do-not-link: %w", err)
	}
	var events []store.Event
	defer func() { s.publishEvents(ctx, events) }()
	if c.ProfileID != target.ID {
		// The contact leaves its profile with the identifiers only it
		// brought, and they come along into the target.
		taken, ev, err := s.detach(ctx, c, nil, ts)
		events = append(events, ev...)
		if err != nil {
			return nil, fmt.Errorf("mongo: link contact: %w", err)
		}
		if len(taken) > 0 {
			models := make([]mongodriver.WriteModel, len(taken))
			for i, id := range taken {
				models[i] = mongodriver.NewUpdateOneModel().SetFilter(byID(tenant, identifierID(tenant, id))).SetUpsert(true).
					SetUpdate(bson.D{
						{Key: "$set", Value: bson.D{{Key: "key", Value: id.Key}, {Key: "value", Value: id.Value}, {Key: "profileId", Value: target.ID}}},
						{Key: "$setOnInsert", Value: bson.D{{Key: "createdAt", Value: ts}}},
					})
			}
			if _, err := s.coll(collIdentifiers).BulkWrite(ctx, models); err != nil {
				return nil, fmt.Errorf("mongo: link contact: move identifiers: %w", err)
			}
		}
		link := &linkDoc{ID: related.NewID(), Tenant: tenant, ProfileID: target.ID, ContactID: c.ID, Reason: string(related.LinkManual), By: by, LinkedAt: ts}
		if _, err := s.coll(collProfileLinks).InsertOne(ctx, link); err != nil {
			return nil, fmt.Errorf("mongo: link contact: record link: %w", err)
		}
		ev, err = s.moveContact(ctx, c, target.ID, taken, nil, ts)
		events = append(events, ev...)
		if err != nil {
			return nil, fmt.Errorf("mongo: link contact: %w", err)
		}
		p, ev, err := s.refreshProfile(ctx, tenant, target.ID, nil, false, true, ts)
		events = append(events, ev...)
		if err != nil {
			return nil, fmt.Errorf("mongo: link contact: %w", err)
		}
		if p != nil {
			return p.domain(), nil
		}
	}
	p, err := s.rootProfile(ctx, tenant, target.ID)
	if err != nil {
		return nil, at(err, "profileId")
	}
	return p.domain(), nil
}

// detach takes c out of its profile: its links there are removed, the
// identifiers only it held are released and returned, and the rest of the
// profile is split along what still connects it. extra are more fields to
// set on the contact.
func (s *Store) detach(ctx context.Context, c *contactDoc, extra bson.D, ts time.Time) ([]related.Identifier, []store.Event, error) {
	if c.ProfileID == "" {
		if len(extra) > 0 {
			_, err := s.contacts.UpdateOne(ctx, byID(c.Tenant, c.ID), bson.D{{Key: "$set", Value: extra}})
			return nil, nil, err
		}
		return nil, nil, nil
	}
	tenant, from := c.Tenant, c.ProfileID
	others, err := findEvery[contactDoc](ctx, s.contacts,
		bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: from}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: c.ID}}}},
		options.Find().SetProjection(bson.D{{Key: "identifiers", Value: 1}}))
	if err != nil {
		return nil, nil, fmt.Errorf("read members of profile %s: %w", from, err)
	}
	shared := map[identDoc]bool{}
	for _, o := range others {
		for _, id := range o.Identifiers {
			shared[id] = true
		}
	}
	var taken []related.Identifier
	var release []string
	for _, id := range c.Identifiers {
		if !shared[id] {
			i := related.Identifier{Key: id.Key, Value: id.Value}
			taken = append(taken, i)
			release = append(release, identifierID(tenant, i))
		}
	}
	if len(release) > 0 {
		if _, err := s.coll(collIdentifiers).DeleteMany(ctx, bson.D{{Key: "_id", Value: idIn(release)}, {Key: "tenant", Value: tenant}, {Key: "profileId", Value: from}}); err != nil {
			return nil, nil, fmt.Errorf("release identifiers: %w", err)
		}
	}
	if _, err := s.coll(collProfileLinks).DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: c.ID}, {Key: "profileId", Value: from}}); err != nil {
		return nil, nil, fmt.Errorf("remove links: %w", err)
	}
	events, err := s.moveContact(ctx, c, "", nil, extra, ts)
	if err != nil {
		return nil, events, err
	}
	ev, err := s.resplit(ctx, tenant, from, ts)
	return taken, append(events, ev...), err
}

// UnlinkContact implements store.ProfileStore.
func (s *Store) UnlinkContact(ctx context.Context, tenant, contactID, by string) (*related.Contact, error) {
	ts := now()
	if err := s.recoverTenant(ctx, tenant); err != nil {
		return nil, err
	}
	c, err := s.contactByID(ctx, tenant, contactID)
	if err != nil {
		return nil, err
	}
	if c.ProfileID == "" {
		return nil, &related.Error{Code: related.CodeConflict, Field: []string{"contactId"}, Message: "the contact is in no profile"}
	}
	from := c.ProfileID
	// The do-not-link record first: from here on, the rules cannot link
	// the contact back while it leaves.
	dnl := bson.D{{Key: "$set", Value: bson.D{{Key: "contactId", Value: c.ID}, {Key: "profileId", Value: from}, {Key: "by", Value: by}, {Key: "createdAt", Value: ts}}}}
	if _, err := s.coll(collDoNotLink).UpdateOne(ctx, byID(tenant, doNotLinkID(tenant, c.ID, from)), dnl, options.UpdateOne().SetUpsert(true)); err != nil {
		return nil, fmt.Errorf("mongo: unlink contact: record do-not-link: %w", err)
	}
	taken, events, err := s.detach(ctx, c, bson.D{{Key: "unlinked", Value: true}}, ts)
	defer func() { s.publishEvents(ctx, events) }()
	if err != nil {
		return nil, fmt.Errorf("mongo: unlink contact: %w", err)
	}
	if len(taken) > 0 {
		// It leaves with its own identifiers, in a profile of its own.
		np := &profileDoc{ID: related.NewID(), Tenant: tenant, Channels: []string{}, Identifiers: []identDoc{}, CreatedAt: ts, UpdatedAt: ts}
		if _, err := s.coll(collProfiles).InsertOne(ctx, np); err != nil {
			return nil, fmt.Errorf("mongo: unlink contact: create profile: %w", err)
		}
		claims := make([]any, len(taken))
		links := make([]any, len(taken))
		for i, id := range taken {
			claims[i] = &identifierDoc{ID: identifierID(tenant, id), Tenant: tenant, Key: id.Key, Value: id.Value, ProfileID: np.ID, CreatedAt: ts}
			links[i] = &linkDoc{ID: linkID(tenant, np.ID, c.ID, id), Tenant: tenant, ProfileID: np.ID, ContactID: c.ID,
				Reason: string(related.LinkRule), Key: id.Key, Value: id.Value, By: by, LinkedAt: ts}
		}
		// An identifier claimed by another profile since it was released
		// stays there.
		if err := insertIgnoringDuplicates(ctx, s.coll(collIdentifiers), claims); err != nil {
			return nil, fmt.Errorf("mongo: unlink contact: claim identifiers: %w", err)
		}
		if err := insertIgnoringDuplicates(ctx, s.coll(collProfileLinks), links); err != nil {
			return nil, fmt.Errorf("mongo: unlink contact: record links: %w", err)
		}
		ev, err := s.moveContact(ctx, c, np.ID, taken, nil, ts)
		events = append(events, ev...)
		if err != nil {
			return nil, fmt.Errorf("mongo: unlink contact: %w", err)
		}
		_, ev, err = s.refreshProfile(ctx, tenant, np.ID, nil, false, true, ts)
		events = append(events, ev...)
		if err != nil {
			return nil, fmt.Errorf("mongo: unlink contact: %w", err)
		}
	}
	return c.domain(), nil
}

// MergeProfiles implements store.ProfileStore. The older of the two
// profiles survives (DESIGN.md section 5: merge pointers only ever point
// at an older profile, so they never form a cycle), with into's name: when
// from is the older, the result has from's id and into's custom name.
func (s *Store) MergeProfiles(ctx context.Context, tenant, intoID, fromID, by string) (*related.Profile, error) {
	ts := now()
	if err := s.recoverTenant(ctx, tenant); err != nil {
		return nil, err
	}
	var events []store.Event
	defer func() { s.publishEvents(ctx, events) }()
	for attempt := 0; ; attempt++ {
		into, err := s.rootProfile(ctx, tenant, intoID)
		if err != nil {
			return nil, at(err, "intoId")
		}
		from, err := s.rootProfile(ctx, tenant, fromID)
		if err != nil {
			return nil, at(err, "fromId")
		}
		if into.ID == from.ID {
			return into.domain(), nil
		}
		winner, loser := into, from
		if olderDoc(from, into) {
			winner, loser = from, into
		}
		// An explicit merge overrides the guards between the two profiles.
		members, err := findEvery[contactDoc](ctx, s.contacts, bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: idIn([]string{into.ID, from.ID})}},
			options.Find().SetProjection(bson.D{{Key: "profileId", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("mongo: merge profiles: %w", err)
		}
		of := map[string][]string{into.ID: {}, from.ID: {}}
		for _, m := range members {
			of[m.ProfileID] = append(of[m.ProfileID], m.ID)
		}
		if len(members) > 0 {
			if _, err := s.coll(collDoNotLink).DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "$or", Value: bson.A{
				bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: into.ID}, {Key: "contactId", Value: idIn(of[from.ID])}},
				bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: from.ID}, {Key: "contactId", Value: idIn(of[into.ID])}},
			}}}); err != nil {
				return nil, fmt.Errorf("mongo: merge profiles: lift do-not-link: %w", err)
			}
		}
		if err := s.resolveConflicts(ctx, tenant, into.ID, from.ID, ts); err != nil {
			return nil, err
		}
		ev, err := s.merge(ctx, tenant, winner.ID, loser.ID, by, ts)
		events = append(events, ev...)
		if errors.Is(err, errReplan) && attempt < maxLinkAttempts {
			continue // one of them was merged elsewhere meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("mongo: merge profiles: %w", err)
		}
		if loser.ID == into.ID && winner.CustomName != into.CustomName {
			if _, err := s.coll(collProfiles).UpdateOne(ctx, byID(tenant, winner.ID),
				bson.D{{Key: "$set", Value: bson.D{{Key: "customName", Value: into.CustomName}}}}); err != nil {
				return nil, fmt.Errorf("mongo: merge profiles: keep the name: %w", err)
			}
		}
		p, ev, err := s.refreshProfile(ctx, tenant, winner.ID, nil, false, false, ts)
		events = append(events, ev...)
		if err != nil {
			return nil, fmt.Errorf("mongo: merge profiles: %w", err)
		}
		if p == nil {
			return nil, related.NotFound("no such profile", "intoId")
		}
		return p.domain(), nil
	}
}

// resolveConflicts marks the open conflicts between two profiles
// resolved.
func (s *Store) resolveConflicts(ctx context.Context, tenant, a, b string, ts time.Time) error {
	conflicts := s.coll(collConflicts)
	open, err := findEvery[conflictDoc](ctx, conflicts, bson.D{{Key: "tenant", Value: tenant}, {Key: "pair", Value: pairOf(a, b)}, {Key: "resolved", Value: false}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil || len(open) == 0 {
		if err != nil {
			return fmt.Errorf("mongo: merge profiles: read conflicts: %w", err)
		}
		return nil
	}
	models := make([]mongodriver.WriteModel, len(open))
	for i, c := range open {
		models[i] = mongodriver.NewUpdateOneModel().SetFilter(byID(tenant, c.ID)).SetUpdate(bson.D{{Key: "$set", Value: bson.D{
			{Key: "resolved", Value: true}, {Key: "resolvedAt", Value: ts}, {Key: "openKey", Value: c.ID},
		}}})
	}
	if _, err := conflicts.BulkWrite(ctx, models); err != nil {
		return fmt.Errorf("mongo: merge profiles: resolve conflicts: %w", err)
	}
	return nil
}

// at renames the field of a NOT_FOUND error.
func at(err error, field string) error {
	if e, ok := related.AsError(err); ok {
		c := *e
		c.Field = []string{field}
		return &c
	}
	return err
}

// RenameProfile implements store.ProfileStore.
func (s *Store) RenameProfile(ctx context.Context, tenant, id, name string) (*related.Profile, error) {
	p, err := s.rootProfile(ctx, tenant, id)
	if err != nil {
		return nil, at(err, "id")
	}
	var d profileDoc
	err = s.coll(collProfiles).FindOneAndUpdate(ctx, byID(tenant, p.ID),
		bson.D{{Key: "$set", Value: bson.D{{Key: "customName", Value: name}, {Key: "updatedAt", Value: now()}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if notFound(err) {
		return nil, related.NotFound("no such profile", "id")
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: rename profile: %w", err)
	}
	return d.domain(), nil
}
