package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// Manual control: an admin's link, unlink, merge, rename, confirmation or
// dismissal is stored as a decision (identity.Decision, identity.Rename),
// a fact like any other, and the clusters it names are recomputed. So a
// rule change, a toggle or a re-evaluation never undoes it.

// putDecision stores d, replacing a decision of the other kind about the
// same pair: the later decision wins.
func (s *Store) putDecision(ctx context.Context, tx *sql.Tx, tenant string, d identity.Decision) error {
	other := identity.KeepApart
	if d.Kind == identity.KeepApart {
		other = identity.KeepTogether
	}
	o := identity.NewDecision(other, d.A, d.B)
	if _, err := s.exec(ctx, tx, `DELETE FROM decisions WHERE tenant = ? AND id = ?`, tenant, o.ID()); err != nil {
		return fmt.Errorf("sqlite: replace decision: %w", err)
	}
	if _, err := s.exec(ctx, tx, `INSERT OR REPLACE INTO decisions (tenant, id, `+decisionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		tenant, d.ID(), d.Kind, d.A, d.B, d.Into, d.Reason, d.By.Name, d.By.Role, ms(d.At)); err != nil {
		return fmt.Errorf("sqlite: store decision: %w", err)
	}
	return nil
}

// dropDecisions deletes the decisions of kind between a contact of xs and
// a contact of ys (ys nil: any contact).
func (s *Store) dropDecisions(ctx context.Context, tx *sql.Tx, tenant string, kind identity.DecisionKind, xs, ys []string) error {
	ds, err := s.decisions(ctx, tx, tenant, xs)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Kind != kind {
			continue
		}
		if ys != nil && !(slices.Contains(xs, d.A) && slices.Contains(ys, d.B) || slices.Contains(xs, d.B) && slices.Contains(ys, d.A)) {
			continue
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM decisions WHERE tenant = ? AND id = ?`, tenant, d.ID()); err != nil {
			return fmt.Errorf("sqlite: drop decision: %w", err)
		}
	}
	return nil
}

// members lists the contacts of a profile.
func (s *Store) members(ctx context.Context, q querier, tenant, profileID string) ([]string, error) {
	return s.idList(ctx, q, `SELECT id FROM contacts WHERE tenant = ? AND profile_id = ?`, tenant, profileID)
}

// pieces returns the anchors of the profiles the contacts of profile
// members would form without contact c: what c holds together.
func (s *Store) pieces(ctx context.Context, tx *sql.Tx, tenant string, rules []identity.Rule, members []string, c string) ([]string, error) {
	in, err := store.Gather(ctx, clusterReader{s, tx}, tenant, rules, members)
	if err != nil {
		return nil, err
	}
	return store.PiecesWithout(in, members, c), nil
}

// LinkContact implements store.ProfileStore.
func (s *Store) LinkContact(ctx context.Context, tenant, profileID, contactID string, by related.Actor) (*related.Profile, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Profile
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		p, err := s.currentProfile(ctx, tx, tenant, profileID, "profileId")
		if err != nil {
			return nil, err
		}
		c, err := s.contactByID(ctx, tx, tenant, contactID)
		if err != nil {
			return nil, err
		}
		if c.ProfileID == p.ID {
			out = p
			return nil, nil
		}
		rules, err := s.rules(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		into, err := s.members(ctx, tx, tenant, p.ID)
		if err != nil {
			return nil, err
		}
		if err := s.dropDecisions(ctx, tx, tenant, identity.KeepApart, []string{c.ID}, into); err != nil {
			return nil, err
		}
		seeds := append([]string{c.ID}, into...)
		if c.ProfileID != "" {
			old, err := s.detach(ctx, tx, tenant, rules, c, "link", by, now)
			if err != nil {
				return nil, err
			}
			seeds = append(seeds, old...)
		}
		d := identity.NewDecision(identity.KeepTogether, c.ID, p.Anchor)
		d.Into, d.Reason, d.By, d.At = p.Anchor, "link", by, now
		if err := s.putDecision(ctx, tx, tenant, d); err != nil {
			return nil, err
		}
		events, err := s.recompute(ctx, tx, tenant, rules, seeds, by, now)
		if err != nil {
			return nil, err
		}
		out, err = s.currentProfile(ctx, tx, tenant, p.ID, "profileId")
		return events, err
	})
	return out, err
}

// detach takes contact c out of its profile by decisions: what held it
// there by hand is dropped, and it is kept apart from each part of what
// remains, which it no longer holds together. It returns the profile's
// members before, the seeds of the recompute that follows.
func (s *Store) detach(ctx context.Context, tx *sql.Tx, tenant string, rules []identity.Rule, c *related.Contact, reason string, by related.Actor, now time.Time) ([]string, error) {
	old, err := s.members(ctx, tx, tenant, c.ProfileID)
	if err != nil {
		return nil, err
	}
	if err := s.dropDecisions(ctx, tx, tenant, identity.KeepTogether, []string{c.ID}, nil); err != nil {
		return nil, err
	}
	anchors, err := s.pieces(ctx, tx, tenant, rules, old, c.ID)
	if err != nil {
		return nil, err
	}
	for _, a := range anchors {
		d := identity.NewDecision(identity.KeepApart, c.ID, a)
		d.Reason, d.By, d.At = reason, by, now
		if err := s.putDecision(ctx, tx, tenant, d); err != nil {
			return nil, err
		}
	}
	return old, nil
}

// UnlinkContact implements store.ProfileStore.
func (s *Store) UnlinkContact(ctx context.Context, tenant, contactID string, by related.Actor) (*related.Contact, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Contact
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		c, err := s.contactByID(ctx, tx, tenant, contactID)
		if err != nil {
			return nil, err
		}
		if c.ProfileID == "" {
			out = c
			return nil, nil
		}
		rules, err := s.rules(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		old, err := s.detach(ctx, tx, tenant, rules, c, "unlink", by, now)
		if err != nil {
			return nil, err
		}
		events, err := s.recompute(ctx, tx, tenant, rules, old, by, now)
		if err != nil {
			return nil, err
		}
		if err := s.recordEvents(ctx, tx, tenant, []identity.Event{{Kind: identity.EventUnlinked, Profiles: []string{c.ProfileID}, Contact: c.ID}}, by, now); err != nil {
			return nil, err
		}
		out, err = s.contactByID(ctx, tx, tenant, contactID)
		return events, err
	})
	return out, err
}

// MergeProfiles implements store.ProfileStore.
func (s *Store) MergeProfiles(ctx context.Context, tenant, intoID, fromID string, by related.Actor) (*related.Profile, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Profile
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		into, err := s.currentProfile(ctx, tx, tenant, intoID, "intoId")
		if err != nil {
			return nil, err
		}
		from, err := s.currentProfile(ctx, tx, tenant, fromID, "fromId")
		if err != nil {
			return nil, err
		}
		if into.ID == from.ID {
			out = into
			return nil, nil
		}
		events, err := s.keepTogether(ctx, tx, tenant, into, from, into.Anchor, "merge", by, now)
		if err != nil {
			return nil, err
		}
		out, err = s.currentProfile(ctx, tx, tenant, into.ID, "intoId")
		return events, err
	})
	return out, err
}

// keepTogether records that profiles a and b are one person (keeping the
// id and the name of the profile anchored at into, if set) and recomputes
// them: the keep-apart decisions between them are lifted, and b's names
// give way to a's.
func (s *Store) keepTogether(ctx context.Context, tx *sql.Tx, tenant string, a, b *related.Profile, into, reason string, by related.Actor, now time.Time) ([]store.Event, error) {
	rules, err := s.rules(ctx, tx, tenant)
	if err != nil {
		return nil, err
	}
	ma, err := s.members(ctx, tx, tenant, a.ID)
	if err != nil {
		return nil, err
	}
	mb, err := s.members(ctx, tx, tenant, b.ID)
	if err != nil {
		return nil, err
	}
	if err := s.dropDecisions(ctx, tx, tenant, identity.KeepApart, ma, mb); err != nil {
		return nil, err
	}
	if into != "" && len(mb) > 0 {
		if _, err := s.exec(ctx, tx, `DELETE FROM renames WHERE tenant = ? AND anchor IN (`+placeholders(len(mb))+`)`,
			append([]any{tenant}, anys(mb)...)...); err != nil {
			return nil, fmt.Errorf("sqlite: drop names: %w", err)
		}
	}
	if into != "" && a.CustomName == "" && a.Name != "" {
		// A merge keeps into's name as the admin saw it. Written down as
		// a name given with the merge, else from's contacts (more of them,
		// perhaps, under another person's name) could outvote it.
		if _, err := s.exec(ctx, tx, `INSERT OR REPLACE INTO renames (tenant, anchor, name, by_name, by_role, at) VALUES (?, ?, ?, ?, ?, ?)`,
			tenant, into, a.Name, by.Name, by.Role, ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: keep the merged profile's name: %w", err)
		}
	}
	d := identity.NewDecision(identity.KeepTogether, a.Anchor, b.Anchor)
	d.Into, d.Reason, d.By, d.At = into, reason, by, now
	if err := s.putDecision(ctx, tx, tenant, d); err != nil {
		return nil, err
	}
	return s.recompute(ctx, tx, tenant, rules, append(ma, mb...), by, now)
}

// RenameProfile implements store.ProfileStore.
func (s *Store) RenameProfile(ctx context.Context, tenant, id, name string, by related.Actor) (*related.Profile, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Profile
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		p, err := s.currentProfile(ctx, tx, tenant, id, "id")
		if err != nil {
			return nil, err
		}
		ms_, err := s.members(ctx, tx, tenant, p.ID)
		if err != nil {
			return nil, err
		}
		// The profile's names so far give way: the new one is the latest.
		if len(ms_) > 0 {
			if _, err := s.exec(ctx, tx, `DELETE FROM renames WHERE tenant = ? AND anchor IN (`+placeholders(len(ms_))+`)`,
				append([]any{tenant}, anys(ms_)...)...); err != nil {
				return nil, fmt.Errorf("sqlite: drop names: %w", err)
			}
		}
		if name != "" {
			if _, err := s.exec(ctx, tx, `INSERT INTO renames (tenant, anchor, name, by_name, by_role, at) VALUES (?, ?, ?, ?, ?, ?)`,
				tenant, p.Anchor, name, by.Name, by.Role, ms(now)); err != nil {
				return nil, fmt.Errorf("sqlite: rename: %w", err)
			}
		}
		rules, err := s.rules(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		events, err := s.recompute(ctx, tx, tenant, rules, ms_, by, now)
		if err != nil {
			return nil, err
		}
		if err := s.recordEvents(ctx, tx, tenant, []identity.Event{{Kind: identity.EventRenamed, Profiles: []string{p.ID}}}, by, now); err != nil {
			return nil, err
		}
		out, err = s.currentProfile(ctx, tx, tenant, p.ID, "id")
		return events, err
	})
	return out, err
}

// ConfirmPair implements store.ProfileStore.
func (s *Store) ConfirmPair(ctx context.Context, tenant, id string, by related.Actor) (*related.Profile, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Profile
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		pr, err := s.profilePair(ctx, tx, tenant, id)
		if err != nil {
			return nil, err
		}
		a, err := s.currentProfile(ctx, tx, tenant, pr.ProfileA, "id")
		if err != nil {
			return nil, err
		}
		b, err := s.currentProfile(ctx, tx, tenant, pr.ProfileB, "id")
		if err != nil {
			return nil, err
		}
		events, err := s.keepTogether(ctx, tx, tenant, a, b, "", "confirm", by, now)
		if err != nil {
			return nil, err
		}
		cur, err := s.contactByID(ctx, tx, tenant, pr.A)
		if err != nil {
			return nil, err
		}
		if out, err = s.currentProfile(ctx, tx, tenant, cur.ProfileID, "id"); err != nil {
			return nil, err
		}
		return events, s.recordEvents(ctx, tx, tenant, []identity.Event{{Kind: identity.EventConfirmed,
			Profiles: []string{out.ID, a.ID, b.ID}, Identifier: pr.Identifier}}, by, now)
	})
	return out, err
}

// DismissPair implements store.ProfileStore.
func (s *Store) DismissPair(ctx context.Context, tenant, id string, by related.Actor) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	return s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		pr, err := s.profilePair(ctx, tx, tenant, id)
		if err != nil {
			return nil, err
		}
		rules, err := s.rules(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		d := identity.NewDecision(identity.KeepApart, pr.A, pr.B)
		d.Reason, d.By, d.At = "dismiss", by, now
		if err := s.putDecision(ctx, tx, tenant, d); err != nil {
			return nil, err
		}
		events, err := s.recompute(ctx, tx, tenant, rules, []string{pr.A, pr.B}, by, now)
		if err != nil {
			return nil, err
		}
		return events, s.recordEvents(ctx, tx, tenant, []identity.Event{{Kind: identity.EventDismissed,
			Profiles: []string{pr.ProfileA, pr.ProfileB}, Identifier: pr.Identifier}}, by, now)
	})
}

// SetValueQuarantine implements store.ProfileStore.
func (s *Store) SetValueQuarantine(ctx context.Context, tenant, ruleID, value string, state identity.Quarantine, by related.Actor) (*store.HubValue, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *store.HubValue
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		rules, err := s.rules(ctx, tx, tenant)
		if err != nil {
			return nil, err
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
		facts, err := clusterReader{s, tx}.ValueFacts(ctx, tenant, []related.Identifier{id})
		if err != nil {
			return nil, err
		}
		before := r.Quarantined(facts[id])
		f := identity.ValueFacts{Contacts: facts[id].Contacts, State: state}
		after := r.Quarantined(f)
		if _, err := s.exec(ctx, tx, `INSERT INTO value_stats (tenant, key, value, id, contacts, state, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)
			ON CONFLICT (tenant, key, value) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
			tenant, id.Key, id.Value, valueID(id), state, ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: set quarantine: %w", err)
		}
		if err := s.markValue(ctx, tx, tenant, id, after, state, now); err != nil {
			return nil, err
		}
		out = &store.HubValue{ID: valueID(id), RuleID: r.ID, Key: id.Key, Value: id.Value, Contacts: f.Contacts, State: state, Quarantined: after, UpdatedAt: now}
		if before == after {
			return nil, nil
		}
		hs, err := s.holders(ctx, tx, tenant, []related.Identifier{id})
		if err != nil {
			return nil, err
		}
		var seeds, profiles []string
		for _, h := range hs {
			seeds = append(seeds, h.Contact)
		}
		cur, err := clusterReader{s, tx}.CurrentProfiles(ctx, tenant, seeds)
		if err != nil {
			return nil, err
		}
		for _, p := range cur {
			if p != "" && !slices.Contains(profiles, p) {
				profiles = append(profiles, p)
			}
		}
		events, err := s.recompute(ctx, tx, tenant, rules, seeds, by, now)
		if err != nil {
			return nil, err
		}
		kind := identity.EventReleased
		if after {
			kind = identity.EventQuarantined
		}
		slices.Sort(profiles)
		return events, s.recordEvents(ctx, tx, tenant, []identity.Event{{Kind: kind, Profiles: profiles, Identifier: id}}, by, now)
	})
	return out, err
}
