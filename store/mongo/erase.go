package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// Erasure (the right to be forgotten) without a transaction: the
// tombstone is written first, PENDING, naming the contacts to erase (by
// their ids, which are hashes, not personal data); then, under leases on
// the erased contacts and everything they touch (their profiles' members,
// their decisions' and pairs' partners), each chunk of contacts loses its
// messages, interactions, names, pairs, aliases, decisions, values,
// history and profiles, the contact documents last; then the tombstone
// becomes DONE and forgets the ids. A crash part way leaves a PENDING
// tombstone: the next start (and the background worker, once the
// erasure's leases have expired) erases what is left of its contacts, so
// no person stays half-erased (every step deletes what is there). The
// others the erased contacts held together are then decided again.

// EraseProfile implements store.Store.
func (s *Store) EraseProfile(ctx context.Context, tenant, profileID, reason string, by related.Actor) (*related.Erasure, error) {
	return s.erase(ctx, tenant, related.ErasureProfile, reason, by, func() ([]string, error) {
		p, err := s.currentProfile(ctx, tenant, profileID, "id")
		if err != nil {
			return nil, err
		}
		return s.members(ctx, tenant, p.ID)
	})
}

// EraseContact implements store.Store.
func (s *Store) EraseContact(ctx context.Context, tenant, contactID, reason string, by related.Actor) (*related.Erasure, error) {
	return s.erase(ctx, tenant, related.ErasureContact, reason, by, func() ([]string, error) {
		c, err := s.contactByID(ctx, tenant, contactID)
		if err != nil {
			return nil, at(err, "id")
		}
		return []string{c.ID}, nil
	})
}

// at renames the field of a NOT_FOUND error.
func at(err error, field string) error {
	if e, ok := related.AsError(err); ok && e.Code == related.CodeNotFound {
		return related.NotFound(e.Message, field)
	}
	return err
}

// eraseChunk bounds the contacts one round of deletions names.
const eraseChunk = 500

// erasureDoc is a document of the erasures collection: a tombstone.
type erasureDoc struct {
	ID           string    `bson:"_id"`
	Tenant       string    `bson:"tenant"`
	Subject      string    `bson:"subject"`
	Reason       string    `bson:"reason"`
	ByName       string    `bson:"byName,omitempty"`
	ByRole       string    `bson:"byRole,omitempty"`
	At           time.Time `bson:"at"`
	Contacts     int       `bson:"contacts"`
	Interactions int       `bson:"interactions"`
	Messages     int       `bson:"messages"`
	// State is erasurePending while the erasure runs; Pending then names
	// the contacts to erase, so a crash part way is finished.
	State   string   `bson:"state,omitempty"`
	Pending []string `bson:"pending,omitempty"`
}

// erasurePending marks a tombstone whose erasure has not finished.
const erasurePending = "PENDING"

func (d *erasureDoc) domain() *related.Erasure {
	return &related.Erasure{ID: d.ID, Tenant: d.Tenant, Subject: d.Subject, Reason: d.Reason, By: related.Actor{Name: d.ByName, Role: d.ByRole},
		At: d.At.UTC(), Contacts: d.Contacts, Interactions: d.Interactions, Messages: d.Messages}
}

// erase deletes the contacts who returns and everything about them.
func (s *Store) erase(ctx context.Context, tenant, subject, reason string, by related.Actor, who func() ([]string, error)) (*related.Erasure, error) {
	ts := now()
	return s.eraseUnder(ctx, &erasureDoc{ID: related.NewID(), Tenant: tenant, Subject: subject, Reason: reason, ByName: by.Name, ByRole: by.Role, At: ts}, false, who)
}

// eraseUnder runs an erasure recorded by the tombstone out: a new one, or
// (resume) one a crash left PENDING, whose contact count stands and whose
// other counts it adds to (what the crashed run deleted is not counted).
func (s *Store) eraseUnder(ctx context.Context, out *erasureDoc, resume bool, who func() ([]string, error)) (*related.Erasure, error) {
	tenant, ts, by := out.Tenant, now(), related.Actor{Name: out.ByName, Role: out.ByRole}
	// When a round meets a contended lease after its deletions began, the
	// next round erases the same contacts (some are gone by then) and
	// keeps counting.
	var (
		contacts, profiles, others []string
		events                     []store.Event
		flips                      []flip // kept across rounds, as in relink
		started                    bool
	)
	err := s.manual(ctx, tenant, nil, func(rules []identity.Rule) ([]string, error) {
		if started {
			return append(slices.Clone(contacts), others...), nil
		}
		var err error
		if contacts, err = who(); err != nil {
			return nil, err
		}
		// What the contacts touch: their profiles' other members and the
		// partners of their decisions and pairs are decided again after.
		cur, err := s.currentProfiles(ctx, tenant, contacts)
		if err != nil {
			return nil, err
		}
		profiles = nil
		for _, c := range contacts {
			profiles = append(profiles, related.ProfileIDFor(c))
			if p := cur[c]; p != "" {
				profiles = append(profiles, p)
			}
		}
		profiles = uniqSorted(profiles)
		seeds, err := s.members(ctx, tenant, distinctValues(cur)...)
		if err != nil {
			return nil, err
		}
		ds, err := s.decisions(ctx, tenant, contacts)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			seeds = append(seeds, d.A, d.B)
		}
		ps, err := s.pairsNaming(ctx, tenant, contacts)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			seeds = append(seeds, p.A, p.B)
		}
		others = slices.DeleteFunc(uniqSorted(seeds), func(c string) bool { return slices.Contains(contacts, c) })
		return append(slices.Clone(contacts), others...), nil
	}, func(l *leases, rules []identity.Rule, _ []string) error {
		if !started && !resume {
			out.Contacts = len(contacts)
			if err := s.startErasure(ctx, out, contacts); err != nil {
				return err
			}
		}
		started = true
		for start := 0; start < len(contacts); start += eraseChunk {
			chunk := contacts[start:min(start+eraseChunk, len(contacts))]
			ev, its, msgs, f, err := s.eraseContacts(ctx, tenant, rules, chunk, profiles, ts)
			events = append(events, ev...)
			flips = append(flips, f...)
			out.Interactions += its
			out.Messages += msgs
			if err != nil {
				return err
			}
		}
		seeds, err := s.flipSeeds(ctx, tenant, others, flips)
		if err != nil {
			return err
		}
		if len(seeds) > 0 {
			ev, _, err := s.recompute(ctx, l, rules, seeds, by, ts)
			events = append(events, ev...)
			if err != nil {
				return err
			}
		}
		if len(flips) > 0 {
			return s.clearFlips(ctx, tenant, flips)
		}
		return nil
	})
	s.publishEvents(ctx, events)
	if err != nil {
		return nil, wrapManual("erase", err)
	}
	out.State, out.Pending = "", nil
	if _, err := s.coll(collErasures).ReplaceOne(ctx, bson.D{{Key: "_id", Value: out.ID}, {Key: "tenant", Value: tenant}}, out,
		options.Replace().SetUpsert(true)); err != nil {
		return nil, fmt.Errorf("mongo: record erasure: %w", err)
	}
	s.log.InfoContext(ctx, "erased", "tenant", tenant, "erasure", out.ID, "subject", out.Subject, "by", by.String(),
		"contacts", out.Contacts, "interactions", out.Interactions, "messages", out.Messages)
	return out.domain(), nil
}

// startErasure records the tombstone PENDING with the contacts to erase,
// before anything is deleted.
func (s *Store) startErasure(ctx context.Context, out *erasureDoc, contacts []string) error {
	doc := *out
	doc.State, doc.Pending = erasurePending, contacts
	if _, err := s.coll(collErasures).ReplaceOne(ctx, bson.D{{Key: "_id", Value: out.ID}, {Key: "tenant", Value: out.Tenant}}, &doc,
		options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("mongo: start erasure: %w", err)
	}
	return nil
}

// finishErasures erases what is left of the contacts of erasures a crash
// interrupted: those PENDING since before a lease's time (a live one is
// left to its writer).
func (s *Store) finishErasures(ctx context.Context) error {
	docs, err := findAll[erasureDoc](ctx, s.coll(collErasures), bson.D{{Key: "state", Value: erasurePending}}, options.Find(), recoveryBatch)
	if err != nil {
		return fmt.Errorf("mongo: find unfinished erasures: %w", err)
	}
	var errs []error
	for i := range docs {
		d := &docs[i]
		if now().Sub(d.At) < s.leaseTTL {
			continue
		}
		s.log.InfoContext(ctx, "mongo: finishing an erasure a crash interrupted", "tenant", d.Tenant, "erasure", d.ID)
		pending := d.Pending
		if _, err := s.eraseUnder(ctx, d, true, func() ([]string, error) {
			return s.existingContacts(ctx, d.Tenant, pending)
		}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// existingContacts returns which of ids still exist.
func (s *Store) existingContacts(ctx context.Context, tenant string, ids []string) ([]string, error) {
	docs, err := findEvery[contactDoc](ctx, s.contacts, bson.D{{Key: "_id", Value: idIn(ids)}, {Key: "tenant", Value: tenant}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: read contacts: %w", err)
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out, nil
}

// eraseContacts deletes some contacts with everything about them, the
// contact documents last, and returns the live events of the erased
// interactions, the counts of interactions and messages deleted, and the
// flips of the quarantine of the values the contacts held.
func (s *Store) eraseContacts(ctx context.Context, tenant string, rules []identity.Rule, contacts, profiles []string, ts time.Time) ([]store.Event, int, int, []flip, error) {
	byContact := bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: idIn(contacts)}}
	its, err := findEvery[interactionDoc](ctx, s.interactions, byContact,
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "contactId", Value: 1}, {Key: "profileId", Value: 1}}))
	if err != nil {
		return nil, 0, 0, nil, fmt.Errorf("read interactions: %w", err)
	}
	var (
		events []store.Event
		ids    []string
		msgs   int
	)
	for _, it := range its {
		ids = append(ids, it.ID)
		events = append(events, store.Event{ID: related.NewID(), Tenant: tenant, Kind: store.InteractionErased,
			InteractionID: it.ID, ContactID: it.ContactID, ProfileID: it.ProfileID, At: ts})
	}
	for start := 0; start < len(ids); start += eraseChunk {
		res, err := s.messages.DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "interactionId", Value: idIn(ids[start:min(start+eraseChunk, len(ids))])}})
		if err != nil {
			return events, 0, 0, nil, fmt.Errorf("erase messages: %w", err)
		}
		msgs += int(res.DeletedCount)
	}
	if s.eraseCrash != nil {
		if err := s.eraseCrash(); err != nil {
			return events, len(its), msgs, nil, err // the process dies with the messages gone, the rest not
		}
	}
	del := func(coll string, filter bson.D) error {
		if _, err := s.coll(coll).DeleteMany(ctx, filter); err != nil {
			return fmt.Errorf("erase %s: %w", coll, err)
		}
		return nil
	}
	derived := func(f func(c string) string) []string {
		out := make([]string, len(contacts))
		for i, c := range contacts {
			out[i] = f(c)
		}
		return out
	}
	byIDs := func(ids []string) bson.D {
		return bson.D{{Key: "_id", Value: idIn(ids)}, {Key: "tenant", Value: tenant}}
	}
	inContacts := bson.D{{Key: "tenant", Value: tenant}, {Key: "contacts", Value: idIn(contacts)}}
	for _, step := range []struct {
		coll   string
		filter bson.D
	}{
		{collInteractions, byContact},
		{collRenames, byIDs(derived(func(c string) string { return renameID(tenant, c) }))},
		{collPairs, inContacts},
		{collDecisions, inContacts},
		{collAliases, byContact},
		{collAliases, byIDs(derived(func(c string) string { return aliasID(tenant, "contact", c) }))},
		{collContactMerges, byIDs(derived(func(c string) string { return contactMergeID(tenant, c) }))},
		{collHistory, bson.D{{Key: "tenant", Value: tenant}, {Key: "profiles", Value: idIn(profiles)}}},
		{collHistory, byContact},
	} {
		if err := del(step.coll, step.filter); err != nil {
			return events, len(its), msgs, nil, err
		}
	}
	values, err := s.valuesOf(ctx, tenant, contacts)
	if err != nil {
		return events, len(its), msgs, nil, err
	}
	var flips []flip
	if len(values) > 0 {
		if err := del(collValues, byContact); err != nil {
			return events, len(its), msgs, nil, err
		}
		held := make([]related.Identifier, len(values))
		for i, v := range values {
			held[i] = related.Identifier{Key: v.Key, Value: v.Value}
		}
		if flips, err = s.countValues(ctx, tenant, rules, held, ts); err != nil {
			return events, len(its), msgs, flips, err
		}
		// A value nobody holds any more was the erased person's: it goes,
		// even if an admin had blocked or allowed it.
		stats := make([]string, len(held))
		for i, v := range held {
			stats[i] = statID(tenant, v)
		}
		if err := del(collValueStats, bson.D{{Key: "_id", Value: idIn(uniqSorted(stats))}, {Key: "tenant", Value: tenant}, {Key: "contacts", Value: 0}}); err != nil {
			return events, len(its), msgs, flips, err
		}
	}
	// The samples of the tenant's last rule evaluation name people as
	// they were: the erased may be among them.
	if _, err := s.coll(collEvaluations).UpdateOne(ctx, byID(tenant, evaluationID(tenant)),
		bson.D{{Key: "$set", Value: bson.D{{Key: "samples", Value: bson.A{}}}}}); err != nil {
		return events, len(its), msgs, flips, fmt.Errorf("erase evaluation samples: %w", err)
	}
	if err := del(collProfiles, byIDs(profiles)); err != nil {
		return events, len(its), msgs, flips, err
	}
	if err := del(collContacts, byIDs(contacts)); err != nil {
		return events, len(its), msgs, flips, err
	}
	return events, len(its), msgs, flips, nil
}

// Erasures implements store.Store.
func (s *Store) Erasures(ctx context.Context, tenant string, p store.Page) (*store.ErasurePage, error) {
	docs, next, prev, err := page[erasureDoc](ctx, s.coll(collErasures), bson.D{{Key: "tenant", Value: tenant}}, "at", true, p)
	if err != nil {
		return nil, fmt.Errorf("mongo: list erasures: %w", err)
	}
	out := &store.ErasurePage{HasNextPage: next, HasPreviousPage: prev}
	for i := range docs {
		out.Items = append(out.Items, docs[i].domain())
	}
	return out, nil
}
