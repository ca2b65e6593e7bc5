package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// A write that changes what contacts hold (an address, an attribute, a
// decision, a rule) recomputes the profiles of the clusters it touches:
// Gather reads the facts of those clusters through the adapter's
// ClusterReader, identity.Partition decides, and Plan turns the decision
// into the changes the adapter applies. The gathering lives here, once,
// so both adapters recompute exactly the same set of contacts.

// ClusterReader is what Gather needs an adapter to read. Every method
// takes a batch and is one database command (or a small constant number).
type ClusterReader interface {
	// ClusterContacts returns the contacts with the given ids (missing
	// ones left out), each with its claims as stored and its current
	// profile.
	ClusterContacts(ctx context.Context, tenant string, ids []string) ([]identity.ContactFacts, error)
	// ProfileMembers returns the ids of the contacts now in the profiles.
	ProfileMembers(ctx context.Context, tenant string, profileIDs []string) ([]string, error)
	// Holders returns the stored claims of the values, whoever holds them
	// (their Profile left empty).
	Holders(ctx context.Context, tenant string, values []related.Identifier) ([]identity.Holder, error)
	// ValueFacts returns what is known of the values; absent ones are
	// held by nobody and AUTOMATIC.
	ValueFacts(ctx context.Context, tenant string, values []related.Identifier) (map[related.Identifier]identity.ValueFacts, error)
	// Decisions returns the decisions naming any of the contacts.
	Decisions(ctx context.Context, tenant string, contactIDs []string) ([]identity.Decision, error)
	// CurrentProfiles returns the current profile of each contact ("" for
	// none; missing contacts left out).
	CurrentProfiles(ctx context.Context, tenant string, contactIDs []string) (map[string]string, error)
	// Renames returns the renames anchored at the contacts.
	Renames(ctx context.Context, tenant string, contactIDs []string) ([]identity.Rename, error)
	// Pairs returns the stored suggestions and conflicts naming any of the
	// contacts.
	Pairs(ctx context.Context, tenant string, contactIDs []string) ([]identity.Pair, error)
}

// MaxCluster bounds the contacts one recompute gathers. Hub quarantine and
// MaxPerProfile keep real clusters far smaller; a cluster past it is
// refused rather than loaded without bound.
const MaxCluster = 20000

// ErrClusterTooLarge is returned when a recompute would gather more than
// MaxCluster contacts.
var ErrClusterTooLarge = fmt.Errorf("store: a profile cluster has more than %d contacts", MaxCluster)

// Gather reads the facts of every cluster the seed contacts belong to:
// the contacts reachable from the seeds through values that may merge
// (under rules, whatever the constraints), keep-together decisions and
// current profile membership (a profile that may split must be decided
// whole). It returns Partition's input.
func Gather(ctx context.Context, r ClusterReader, tenant string, rules []identity.Rule, seeds []string) (identity.Input, error) {
	in := identity.Input{Rules: rules, Values: map[identity.Identifier]identity.ValueFacts{}, Partners: map[string]string{}}
	byKey := map[string]identity.Rule{}
	for _, r := range rules {
		if r.Enabled && !r.Deleted {
			byKey[r.Attribute] = r
		}
	}
	members := map[string]int{} // contact id -> index in in.Contacts
	seenProfile := map[string]bool{}
	seenValue := map[identity.Identifier]bool{}
	holders := map[identity.Identifier][]identity.Holder{}
	decisions := map[string]identity.Decision{}
	var order []identity.Identifier
	pending := uniq(seeds)
	for len(pending) > 0 {
		if len(members)+len(pending) > MaxCluster {
			return in, ErrClusterTooLarge
		}
		cs, err := r.ClusterContacts(ctx, tenant, pending)
		if err != nil {
			return in, err
		}
		pending = nil
		var newProfiles []string
		var newValues []identity.Identifier
		var ids []string
		for _, c := range cs {
			if _, ok := members[c.ID]; ok {
				continue
			}
			members[c.ID] = len(in.Contacts)
			in.Contacts = append(in.Contacts, c)
			ids = append(ids, c.ID)
			if c.Profile != "" && !seenProfile[c.Profile] {
				seenProfile[c.Profile] = true
				newProfiles = append(newProfiles, c.Profile)
			}
			for _, cl := range c.Claims {
				if _, ok := byKey[cl.Key]; ok && !seenValue[cl.Identifier] {
					seenValue[cl.Identifier] = true
					newValues = append(newValues, cl.Identifier)
				}
			}
		}
		if len(ids) == 0 {
			break
		}
		if len(newProfiles) > 0 {
			ms, err := r.ProfileMembers(ctx, tenant, newProfiles)
			if err != nil {
				return in, err
			}
			pending = append(pending, ms...)
		}
		if len(newValues) > 0 {
			vf, err := r.ValueFacts(ctx, tenant, newValues)
			if err != nil {
				return in, err
			}
			var live []identity.Identifier
			for _, id := range newValues {
				in.Values[id] = vf[id]
				if !byKey[id.Key].Quarantined(vf[id]) {
					live = append(live, id)
				}
			}
			if len(live) > 0 {
				hs, err := r.Holders(ctx, tenant, live)
				if err != nil {
					return in, err
				}
				for _, h := range hs {
					if _, ok := holders[h.Identifier]; !ok {
						order = append(order, h.Identifier)
					}
					holders[h.Identifier] = append(holders[h.Identifier], h)
				}
			}
		}
		ds, err := r.Decisions(ctx, tenant, ids)
		if err != nil {
			return in, err
		}
		for _, d := range ds {
			if _, ok := decisions[d.ID()]; ok {
				continue
			}
			decisions[d.ID()] = d
			if d.Kind == identity.KeepTogether {
				pending = append(pending, d.A, d.B)
			}
		}
		// Holders that may merge with a member join the cluster.
		for _, id := range order {
			r := byKey[id.Key]
			for _, h := range holders[id] {
				if _, ok := members[h.Contact]; ok {
					continue
				}
				for _, m := range holders[id] {
					if _, ok := members[m.Contact]; !ok {
						continue
					}
					if ok, _ := r.Merges(m.Claim, h.Claim); ok {
						pending = append(pending, h.Contact)
						break
					}
				}
			}
		}
		pending = slices.DeleteFunc(uniq(pending), func(id string) bool { _, ok := members[id]; return ok })
	}
	// The rest: outside holders, decision partners, names and pairs.
	var outside []string
	for _, id := range order {
		for _, h := range holders[id] {
			if _, ok := members[h.Contact]; !ok {
				in.Outside = append(in.Outside, h)
				outside = append(outside, h.Contact)
			}
		}
	}
	ids := make([]string, 0, len(in.Contacts))
	for _, c := range in.Contacts {
		ids = append(ids, c.ID)
	}
	for _, d := range decisions {
		in.Decisions = append(in.Decisions, d)
		for _, c := range []string{d.A, d.B} {
			if _, ok := members[c]; !ok {
				outside = append(outside, c)
			}
		}
	}
	slices.SortFunc(in.Decisions, func(a, b identity.Decision) int {
		if a.ID() < b.ID() {
			return -1
		}
		return 1
	})
	if outside = uniq(outside); len(outside) > 0 {
		cur, err := r.CurrentProfiles(ctx, tenant, outside)
		if err != nil {
			return in, err
		}
		for i := range in.Outside {
			in.Outside[i].Profile = cur[in.Outside[i].Contact]
		}
		for _, c := range outside {
			in.Partners[c] = cur[c]
		}
	}
	var err error
	if in.Renames, err = r.Renames(ctx, tenant, ids); err != nil {
		return in, err
	}
	if in.Pairs, err = r.Pairs(ctx, tenant, ids); err != nil {
		return in, err
	}
	return in, nil
}

func uniq(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// Move is a contact changing profile ("" for none).
type Move struct {
	Contact  string
	From, To string
}

// Changes is what applying a Partition result changes in the database.
type Changes struct {
	// Moves are the contacts whose profile changed; their interactions
	// move with them.
	Moves []Move
	// Profiles are the decided profiles, written whole (an adapter may
	// skip those whose stored row is equal).
	Profiles []identity.ProfileResult
	// Deleted are profile ids that are no longer any profile's.
	Deleted []string
	// DeletePairs and InsertPairs replace the stored pairs naming the
	// clusters' contacts.
	DeletePairs []string
	InsertPairs []identity.Pair
	// Events are the history entries.
	Events []identity.Event
	// Summary counts what changed, for a re-evaluation's report.
	Summary identity.Summary
}

// Empty reports whether nothing changes.
func (c Changes) Empty() bool {
	return len(c.Moves) == 0 && len(c.Deleted) == 0 && len(c.DeletePairs) == 0 && len(c.InsertPairs) == 0 && len(c.Events) == 0
}

// Plan returns the changes that turn the stored state of in into res.
func Plan(in identity.Input, res identity.Result) Changes {
	var ch Changes
	current := map[string]bool{}
	for _, p := range res.Profiles {
		current[p.ID] = true
	}
	ch.Profiles = res.Profiles
	gone := map[string]bool{}
	for _, c := range in.Contacts {
		to := res.Assignment[c.ID]
		if c.Profile != to {
			ch.Moves = append(ch.Moves, Move{Contact: c.ID, From: c.Profile, To: to})
		}
		if c.Profile != "" && !current[c.Profile] && !gone[c.Profile] {
			gone[c.Profile] = true
			ch.Deleted = append(ch.Deleted, c.Profile)
		}
	}
	slices.Sort(ch.Deleted)
	old := map[string]bool{}
	for _, p := range in.Pairs {
		old[p.ID()] = true
	}
	next := map[string]bool{}
	for _, p := range res.Pairs {
		next[p.ID()] = true
		if !old[p.ID()] {
			ch.InsertPairs = append(ch.InsertPairs, p)
		}
	}
	for _, p := range in.Pairs {
		if !next[p.ID()] {
			ch.DeletePairs = append(ch.DeletePairs, p.ID())
		}
	}
	ch.Events = res.Events
	return ch
}

// Recompute gathers the clusters of seeds and decides them: the common
// body of every write that changes identity facts.
func Recompute(ctx context.Context, r ClusterReader, tenant string, rules []identity.Rule, seeds []string) (identity.Input, Changes, error) {
	in, err := Gather(ctx, r, tenant, rules, seeds)
	if err != nil {
		return in, Changes{}, err
	}
	res := identity.Partition(in)
	ch := Plan(in, res)
	ch.Summary = identity.Summarize(in, res)
	return in, ch, nil
}

// PiecesWithout returns the anchors of the profiles the members of a
// profile would form without contact c (c and the decisions naming it
// left out of in): what c alone holds together, which an unlinked or
// moved c is then kept apart from.
func PiecesWithout(in identity.Input, members []string, c string) []string {
	in.Contacts = slices.DeleteFunc(slices.Clone(in.Contacts), func(x identity.ContactFacts) bool { return x.ID == c })
	in.Decisions = slices.DeleteFunc(slices.Clone(in.Decisions), func(d identity.Decision) bool { return d.A == c || d.B == c })
	var out []string
	for _, p := range identity.Partition(in).Profiles {
		if slices.ContainsFunc(p.Contacts, func(x string) bool { return x != c && slices.Contains(members, x) }) {
			out = append(out, p.Anchor)
		}
	}
	return out
}
