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

// Manual control: an admin's link, unlink, merge, rename, confirmation or
// dismissal is stored as a decision (identity.Decision, identity.Rename),
// a fact like any other, and the clusters it names are recomputed. So a
// rule change, a toggle or a re-evaluation never undoes it.
//
// An operation reads the state it decides on (profiles, members, the
// pieces a contact holds together) under leases on every contact it
// touches and their clusters, so no recompute changes that state between
// the read and the decision; it marks the contacts dirty before writing
// the decision (link.go), recomputes, and removes the mark. When a lease
// is contended the whole operation runs again from its reads: decisions
// are upserted by their derived ids, so writing one twice is harmless.

// manual runs one manual operation: prepare reads the state and returns
// the contacts the operation touches; once a prepare ran with all of them
// (and their clusters) leased, act writes and recomputes. The contacts are
// marked dirty before act, and unmarked once it succeeded: when it fails
// part way, the recovery finishes it.
func (s *Store) manual(ctx context.Context, tenant string, seeds []string, prepare func(rules []identity.Rule) ([]string, error),
	act func(l *leases, rules []identity.Rule, seeds []string) error) (err error) {
	marker := newMarker()
	var marked []string
	defer func() {
		if err == nil && len(marked) > 0 {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
			defer cancel()
			if err := s.unmarkContacts(uctx, tenant, marked, marker); err != nil {
				s.log.WarnContext(ctx, "mongo: unmarking contacts failed; the recovery relinks them", "tenant", tenant, "err", err)
			}
		}
	}()
	return s.withLeases(ctx, tenant, seeds, func(l *leases) error {
		rules, err := s.freshRules(ctx, tenant)
		if err != nil {
			return err
		}
		var seeds []string
		for round := 0; ; round++ {
			if round == maxCoverRounds {
				return fmt.Errorf("mongo: the profiles kept changing over %d reads", round)
			}
			before := len(l.held)
			if seeds, err = prepare(rules); err != nil {
				return err
			}
			if _, err := s.cover(ctx, l, rules, seeds); err != nil {
				return err
			}
			if len(l.held) == before {
				break // prepare read only leased contacts
			}
		}
		if len(seeds) == 0 {
			return act(l, rules, nil)
		}
		if err := s.markContacts(ctx, tenant, seeds, marker); err != nil {
			return err
		}
		marked = uniqSorted(append(marked, seeds...))
		return act(l, rules, seeds)
	})
}

// putDecision stores d, replacing a decision of the other kind about the
// same pair: the later decision wins. One bulk write.
func (s *Store) putDecision(ctx context.Context, tenant string, d identity.Decision) error {
	other := identity.KeepApart
	if d.Kind == identity.KeepApart {
		other = identity.KeepTogether
	}
	o := identity.NewDecision(other, d.A, d.B)
	doc := newDecisionDoc(tenant, d)
	if _, err := s.coll(collDecisions).BulkWrite(ctx, []mongodriver.WriteModel{
		mongodriver.NewDeleteOneModel().SetFilter(byID(tenant, o.ID())),
		mongodriver.NewReplaceOneModel().SetFilter(byID(tenant, doc.ID)).SetReplacement(doc).SetUpsert(true),
	}, options.BulkWrite().SetOrdered(true)); err != nil {
		return fmt.Errorf("store decision: %w", err)
	}
	return nil
}

// dropDecisions deletes the decisions of kind between a contact of xs and
// a contact of ys (ys nil: any contact).
func (s *Store) dropDecisions(ctx context.Context, tenant string, kind identity.DecisionKind, xs, ys []string) error {
	ds, err := s.decisions(ctx, tenant, xs)
	if err != nil {
		return err
	}
	var drop []string
	for _, d := range ds {
		if d.Kind != kind {
			continue
		}
		if ys != nil && !(slices.Contains(xs, d.A) && slices.Contains(ys, d.B) || slices.Contains(xs, d.B) && slices.Contains(ys, d.A)) {
			continue
		}
		drop = append(drop, d.ID())
	}
	if len(drop) == 0 {
		return nil
	}
	if _, err := s.coll(collDecisions).DeleteMany(ctx, bson.D{{Key: "_id", Value: idIn(drop)}, {Key: "tenant", Value: tenant}}); err != nil {
		return fmt.Errorf("drop decisions: %w", err)
	}
	return nil
}

// dropRenames deletes the names anchored at contacts.
func (s *Store) dropRenames(ctx context.Context, tenant string, contacts []string) error {
	if len(contacts) == 0 {
		return nil
	}
	ids := make([]string, len(contacts))
	for i, c := range contacts {
		ids[i] = renameID(tenant, c)
	}
	if _, err := s.coll(collRenames).DeleteMany(ctx, bson.D{{Key: "_id", Value: idIn(ids)}, {Key: "tenant", Value: tenant}}); err != nil {
		return fmt.Errorf("drop names: %w", err)
	}
	return nil
}

// contactByID reads one contact.
func (s *Store) contactByID(ctx context.Context, tenant, id string) (*contactDoc, error) {
	var c contactDoc
	err := s.contacts.FindOne(ctx, byID(tenant, id)).Decode(&c)
	if notFound(err) {
		return nil, related.NotFound("no such contact", "contactId")
	}
	if err != nil {
		return nil, fmt.Errorf("read contact %s: %w", id, err)
	}
	return &c, nil
}

// pieces returns the anchors of the profiles the contacts of profile
// members would form without contact c: what c holds together.
func (s *Store) pieces(ctx context.Context, l *leases, rules []identity.Rule, members []string, c string) ([]string, error) {
	in, err := s.cover(ctx, l, rules, members)
	if err != nil {
		return nil, err
	}
	return store.PiecesWithout(in, members, c), nil
}

// LinkContact implements store.ProfileStore.
func (s *Store) LinkContact(ctx context.Context, tenant, profileID, contactID string, by related.Actor) (*related.Profile, error) {
	ts := now()
	var (
		out       *related.Profile
		events    []store.Event
		p         *related.Profile
		c         *contactDoc
		into, old []string
	)
	err := s.manual(ctx, tenant, []string{contactID}, func(rules []identity.Rule) ([]string, error) {
		var err error
		if p, err = s.currentProfile(ctx, tenant, profileID, "profileId"); err != nil {
			return nil, err
		}
		if c, err = s.contactByID(ctx, tenant, contactID); err != nil {
			return nil, err
		}
		if c.ProfileID == p.ID {
			return nil, nil
		}
		if into, err = s.members(ctx, tenant, p.ID); err != nil {
			return nil, err
		}
		old = nil
		if c.ProfileID != "" {
			if old, err = s.members(ctx, tenant, c.ProfileID); err != nil {
				return nil, err
			}
		}
		return uniqSorted(append(append([]string{c.ID, p.Anchor}, into...), old...)), nil
	}, func(l *leases, rules []identity.Rule, seeds []string) error {
		if c.ProfileID == p.ID {
			out = p
			return nil
		}
		if err := s.dropDecisions(ctx, tenant, identity.KeepApart, []string{c.ID}, into); err != nil {
			return err
		}
		if c.ProfileID != "" {
			if err := s.detach(ctx, l, rules, tenant, c.ID, old, "link", by, ts); err != nil {
				return err
			}
		}
		d := identity.NewDecision(identity.KeepTogether, c.ID, p.Anchor)
		d.Into, d.Reason, d.By, d.At = p.Anchor, "link", by, ts
		if err := s.putDecision(ctx, tenant, d); err != nil {
			return err
		}
		var err error
		if events, _, err = s.recompute(ctx, l, rules, seeds, by, ts); err != nil {
			return err
		}
		out, err = s.currentProfile(ctx, tenant, p.ID, "profileId")
		return err
	})
	s.publishEvents(ctx, events)
	if err != nil {
		return nil, wrapManual("link contact", err)
	}
	return out, nil
}

// detach takes contact c out of the profile whose members were old, by
// decisions: what held it there by hand is dropped, and it is kept apart
// from each part of what remains, which it no longer holds together.
func (s *Store) detach(ctx context.Context, l *leases, rules []identity.Rule, tenant, c string, old []string, reason string, by related.Actor, ts time.Time) error {
	if err := s.dropDecisions(ctx, tenant, identity.KeepTogether, []string{c}, nil); err != nil {
		return err
	}
	anchors, err := s.pieces(ctx, l, rules, old, c)
	if err != nil {
		return err
	}
	for _, a := range anchors {
		d := identity.NewDecision(identity.KeepApart, c, a)
		d.Reason, d.By, d.At = reason, by, ts
		if err := s.putDecision(ctx, tenant, d); err != nil {
			return err
		}
	}
	return nil
}

// wrapManual wraps a database failure of a manual operation and passes
// the caller's mistakes (*related.Error) through.
func wrapManual(op string, err error) error {
	if _, ok := related.AsError(err); ok {
		return err
	}
	return fmt.Errorf("mongo: %s: %w", op, err)
}

// UnlinkContact implements store.ProfileStore.
func (s *Store) UnlinkContact(ctx context.Context, tenant, contactID string, by related.Actor) (*related.Contact, error) {
	ts := now()
	var (
		out    *related.Contact
		events []store.Event
		c      *contactDoc
		old    []string
	)
	err := s.manual(ctx, tenant, []string{contactID}, func(rules []identity.Rule) ([]string, error) {
		var err error
		if c, err = s.contactByID(ctx, tenant, contactID); err != nil {
			return nil, err
		}
		if c.ProfileID == "" {
			return nil, nil
		}
		if old, err = s.members(ctx, tenant, c.ProfileID); err != nil {
			return nil, err
		}
		return uniqSorted(append([]string{c.ID}, old...)), nil
	}, func(l *leases, rules []identity.Rule, seeds []string) error {
		if c.ProfileID == "" {
			out = c.domain()
			return nil
		}
		if err := s.detach(ctx, l, rules, tenant, c.ID, old, "unlink", by, ts); err != nil {
			return err
		}
		var err error
		if events, _, err = s.recompute(ctx, l, rules, seeds, by, ts); err != nil {
			return err
		}
		if err := s.recordEvents(ctx, tenant, []identity.Event{{Kind: identity.EventUnlinked, Profiles: []string{c.ProfileID}, Contact: c.ID}}, by, ts); err != nil {
			return err
		}
		cur, err := s.contactByID(ctx, tenant, contactID)
		if err != nil {
			return err
		}
		out = cur.domain()
		return nil
	})
	s.publishEvents(ctx, events)
	if err != nil {
		return nil, wrapManual("unlink contact", err)
	}
	return out, nil
}

// MergeProfiles implements store.ProfileStore.
func (s *Store) MergeProfiles(ctx context.Context, tenant, intoID, fromID string, by related.Actor) (*related.Profile, error) {
	ts := now()
	var (
		out        *related.Profile
		events     []store.Event
		into, from *related.Profile
		ma, mb     []string
	)
	err := s.manual(ctx, tenant, nil, func(rules []identity.Rule) ([]string, error) {
		var err error
		if into, err = s.currentProfile(ctx, tenant, intoID, "intoId"); err != nil {
			return nil, err
		}
		if from, err = s.currentProfile(ctx, tenant, fromID, "fromId"); err != nil {
			return nil, err
		}
		if into.ID == from.ID {
			return nil, nil
		}
		if ma, mb, err = s.twoProfiles(ctx, tenant, into, from); err != nil {
			return nil, err
		}
		return uniqSorted(append(slices.Clone(ma), mb...)), nil
	}, func(l *leases, rules []identity.Rule, seeds []string) error {
		if into.ID == from.ID {
			out = into
			return nil
		}
		var err error
		if events, err = s.keepTogether(ctx, l, rules, into, from, ma, mb, into.Anchor, "merge", by, ts); err != nil {
			return err
		}
		out, err = s.currentProfile(ctx, tenant, into.ID, "intoId")
		return err
	})
	s.publishEvents(ctx, events)
	if err != nil {
		return nil, wrapManual("merge profiles", err)
	}
	return out, nil
}

// twoProfiles returns the members of two profiles, each with its anchor.
func (s *Store) twoProfiles(ctx context.Context, tenant string, a, b *related.Profile) ([]string, []string, error) {
	ma, err := s.members(ctx, tenant, a.ID)
	if err != nil {
		return nil, nil, err
	}
	mb, err := s.members(ctx, tenant, b.ID)
	if err != nil {
		return nil, nil, err
	}
	return uniqSorted(append(ma, a.Anchor)), uniqSorted(append(mb, b.Anchor)), nil
}

// keepTogether records that profiles a and b (members ma and mb) are one
// person, keeping the id and the name of the profile anchored at into, if
// set, and
// recomputes them: the keep-apart decisions between them are lifted, and
// b's names give way to a's.
func (s *Store) keepTogether(ctx context.Context, l *leases, rules []identity.Rule, a, b *related.Profile, ma, mb []string, into, reason string, by related.Actor, ts time.Time) ([]store.Event, error) {
	if err := s.dropDecisions(ctx, l.tenant, identity.KeepApart, ma, mb); err != nil {
		return nil, err
	}
	if into != "" {
		if err := s.dropRenames(ctx, l.tenant, mb); err != nil {
			return nil, err
		}
	}
	if into != "" && a.CustomName == "" && a.Name != "" {
		// A merge keeps into's name as the admin saw it. Written down as
		// a name given with the merge, else from's contacts (more of them,
		// perhaps, under another person's name) could outvote it.
		doc := &renameDoc{ID: renameID(l.tenant, into), Tenant: l.tenant, Anchor: into, Name: a.Name, ByName: by.Name, ByRole: by.Role, At: ts}
		if _, err := s.coll(collRenames).ReplaceOne(ctx, byID(l.tenant, doc.ID), doc, options.Replace().SetUpsert(true)); err != nil {
			return nil, fmt.Errorf("keep the merged profile's name: %w", err)
		}
	}
	d := identity.NewDecision(identity.KeepTogether, a.Anchor, b.Anchor)
	d.Into, d.Reason, d.By, d.At = into, reason, by, ts
	if err := s.putDecision(ctx, l.tenant, d); err != nil {
		return nil, err
	}
	events, _, err := s.recompute(ctx, l, rules, append(slices.Clone(ma), mb...), by, ts)
	return events, err
}

// RenameProfile implements store.ProfileStore.
func (s *Store) RenameProfile(ctx context.Context, tenant, id, name string, by related.Actor) (*related.Profile, error) {
	ts := now()
	var (
		out     *related.Profile
		events  []store.Event
		p       *related.Profile
		members []string
	)
	err := s.manual(ctx, tenant, nil, func(rules []identity.Rule) ([]string, error) {
		var err error
		if p, err = s.currentProfile(ctx, tenant, id, "id"); err != nil {
			return nil, err
		}
		if members, err = s.members(ctx, tenant, p.ID); err != nil {
			return nil, err
		}
		return uniqSorted(append(members, p.Anchor)), nil
	}, func(l *leases, rules []identity.Rule, seeds []string) error {
		// The profile's names so far give way: the new one is the latest.
		if err := s.dropRenames(ctx, tenant, seeds); err != nil {
			return err
		}
		if name != "" {
			doc := &renameDoc{ID: renameID(tenant, p.Anchor), Tenant: tenant, Anchor: p.Anchor, Name: name, ByName: by.Name, ByRole: by.Role, At: ts}
			if _, err := s.coll(collRenames).ReplaceOne(ctx, byID(tenant, doc.ID), doc, options.Replace().SetUpsert(true)); err != nil {
				return fmt.Errorf("rename: %w", err)
			}
		}
		var err error
		if events, _, err = s.recompute(ctx, l, rules, seeds, by, ts); err != nil {
			return err
		}
		if err := s.recordEvents(ctx, tenant, []identity.Event{{Kind: identity.EventRenamed, Profiles: []string{p.ID}}}, by, ts); err != nil {
			return err
		}
		out, err = s.currentProfile(ctx, tenant, p.ID, "id")
		return err
	})
	s.publishEvents(ctx, events)
	if err != nil {
		return nil, wrapManual("rename profile", err)
	}
	return out, nil
}

// ConfirmPair implements store.ProfileStore.
func (s *Store) ConfirmPair(ctx context.Context, tenant, id string, by related.Actor) (*related.Profile, error) {
	ts := now()
	var (
		out    *related.Profile
		events []store.Event
		pr     *store.PairRecord
		a, b   *related.Profile
		ma, mb []string
	)
	err := s.manual(ctx, tenant, nil, func(rules []identity.Rule) ([]string, error) {
		var err error
		if pr, err = s.ProfilePair(ctx, tenant, id); err != nil {
			return nil, err
		}
		if a, err = s.currentProfile(ctx, tenant, pr.ProfileA, "id"); err != nil {
			return nil, err
		}
		if b, err = s.currentProfile(ctx, tenant, pr.ProfileB, "id"); err != nil {
			return nil, err
		}
		if ma, mb, err = s.twoProfiles(ctx, tenant, a, b); err != nil {
			return nil, err
		}
		return uniqSorted(append(append(slices.Clone(ma), mb...), pr.A, pr.B)), nil
	}, func(l *leases, rules []identity.Rule, seeds []string) error {
		var err error
		if events, err = s.keepTogether(ctx, l, rules, a, b, ma, mb, "", "confirm", by, ts); err != nil {
			return err
		}
		cur, err := s.contactByID(ctx, tenant, pr.A)
		if err != nil {
			return err
		}
		if out, err = s.currentProfile(ctx, tenant, cur.ProfileID, "id"); err != nil {
			return err
		}
		return s.recordEvents(ctx, tenant, []identity.Event{{Kind: identity.EventConfirmed,
			Profiles: []string{out.ID, a.ID, b.ID}, Identifier: pr.Identifier}}, by, ts)
	})
	s.publishEvents(ctx, events)
	if err != nil {
		return nil, wrapManual("confirm suggestion", err)
	}
	return out, nil
}

// DismissPair implements store.ProfileStore.
func (s *Store) DismissPair(ctx context.Context, tenant, id string, by related.Actor) error {
	ts := now()
	var (
		events []store.Event
		pr     *store.PairRecord
	)
	err := s.manual(ctx, tenant, nil, func(rules []identity.Rule) ([]string, error) {
		var err error
		if pr, err = s.ProfilePair(ctx, tenant, id); err != nil {
			return nil, err
		}
		return []string{pr.A, pr.B}, nil
	}, func(l *leases, rules []identity.Rule, seeds []string) error {
		d := identity.NewDecision(identity.KeepApart, pr.A, pr.B)
		d.Reason, d.By, d.At = "dismiss", by, ts
		if err := s.putDecision(ctx, tenant, d); err != nil {
			return err
		}
		var err error
		if events, _, err = s.recompute(ctx, l, rules, seeds, by, ts); err != nil {
			return err
		}
		return s.recordEvents(ctx, tenant, []identity.Event{{Kind: identity.EventDismissed,
			Profiles: []string{pr.ProfileA, pr.ProfileB}, Identifier: pr.Identifier}}, by, ts)
	})
	s.publishEvents(ctx, events)
	if err != nil {
		return wrapManual("dismiss suggestion", err)
	}
	return nil
}

// SetValueQuarantine implements store.ProfileStore: the admin's state is
// a compare-and-set on the value's value_stats document (as counts are,
// link.go); a change of quarantine marks the document and recomputes the
// value's holders.
func (s *Store) SetValueQuarantine(ctx context.Context, tenant, ruleID, value string, state identity.Quarantine, by related.Actor) (*store.HubValue, error) {
	ts := now()
	rules, err := s.freshRules(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("mongo: set quarantine: %w", err)
	}
	i := slices.IndexFunc(rules, func(r identity.Rule) bool { return r.ID == ruleID })
	if i < 0 {
		return nil, related.NotFound("no such rule", "ruleId")
	}
	r := rules[i]
	v, ok := r.NormalizeValue(value)
	if !ok {
		return nil, related.Invalid(fmt.Sprintf("is not a value of the %s rule", r.Attribute), "value")
	}
	id := related.Identifier{Key: r.Attribute, Value: v}
	coll := s.coll(collValueStats)
	var (
		out *store.HubValue
		f   *flip
	)
	for attempt := 0; ; attempt++ {
		if attempt == maxCASAttempts {
			return nil, fmt.Errorf("mongo: set quarantine: the value kept changing over %d attempts", attempt)
		}
		docs, err := s.stats(ctx, tenant, []related.Identifier{id})
		if err != nil {
			return nil, fmt.Errorf("mongo: set quarantine: %w", err)
		}
		var d *statDoc
		n := 0
		before := false
		if len(docs) == 1 {
			d = &docs[0]
			n, before = d.Contacts, d.Quarantined
		} else {
			c, err := s.coll(collValues).CountDocuments(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "vid", Value: valueID(id)}})
			if err != nil {
				return nil, fmt.Errorf("mongo: set quarantine: count holders: %w", err)
			}
			n = int(c)
		}
		after := r.Quarantined(identity.ValueFacts{Contacts: n, State: state})
		set := bson.D{{Key: "contacts", Value: n}, {Key: "state", Value: string(state)}, {Key: "quarantined", Value: after},
			{Key: "listed", Value: listed(after, state)}, {Key: "updatedAt", Value: ts}}
		f = nil
		if before != after {
			f = &flip{id: id, quarantined: after, marker: newMarker()}
			set = append(set, bson.E{Key: "flip", Value: f.marker})
		}
		won, err := s.casStat(ctx, coll, tenant, id, d, set, ts)
		if err != nil {
			return nil, fmt.Errorf("mongo: set quarantine: %w", err)
		}
		if won {
			out = &store.HubValue{ID: valueID(id), RuleID: r.ID, Key: id.Key, Value: id.Value, Contacts: n, State: state, Quarantined: after, UpdatedAt: ts}
			break
		}
	}
	if f == nil {
		return out, nil
	}
	if err := s.recomputeHolders(ctx, tenant, []flip{*f}, by, ts); err != nil {
		return nil, fmt.Errorf("mongo: set quarantine: %w", err)
	}
	return out, nil
}
