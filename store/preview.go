package store

import (
	"context"
	"slices"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// A preview of a rule change decides, without writing anything, what the
// change would do: the profiles are a function of the facts, so deciding
// the touched clusters under the new rules is exactly what the change's
// re-evaluation will do. Only the contacts that hold a value of the rule's
// attribute (under the old rules or the new) and their clusters are read:
// the tenant's contacts are streamed once to find them, and the clusters
// are gathered in chunks, each through a reader that shows the new
// claims of that attribute in place of the stored ones.

// ContactScanner streams a tenant's contacts, for previews. fn sees each
// contact once, in id order; the adapter reads them in batches, so memory
// does not grow with the tenant.
type ContactScanner interface {
	ScanContacts(ctx context.Context, tenant string, fn func(*related.Contact) error) error
}

// Preview is what a rule change would do.
type Preview struct {
	identity.Summary
	// Contacts is how many contacts the change touches (they hold a value
	// of the rule's attribute).
	Contacts int
	// Partial reports a preview cut short by its deadline: the counts are
	// of the clusters it got to.
	Partial bool
}

// previewChunk is how many touched contacts one gathering starts from.
var previewChunk = 500

// ChangedKeys returns the attributes whose rules differ between old and
// next: the values a change of rules can relink.
func ChangedKeys(old, next []identity.Rule) []string {
	var keys []string
	find := func(rules []identity.Rule, attr string) *identity.Rule {
		for i := range rules {
			if rules[i].Attribute == attr && !rules[i].Deleted {
				return &rules[i]
			}
		}
		return nil
	}
	for _, set := range [][]identity.Rule{old, next} {
		for _, r := range set {
			a, b := find(old, r.Attribute), find(next, r.Attribute)
			same := a != nil && b != nil && a.Enabled == b.Enabled && a.Normalizer == b.Normalizer && a.Priority == b.Priority &&
				a.MaxPerProfile == b.MaxPerProfile && a.AutoMerge == b.AutoMerge && a.MaxContactsPerValue == b.MaxContactsPerValue &&
				a.DefaultRegion == b.DefaultRegion && slices.Equal(a.BlockedValues, b.BlockedValues)
			if !same && !slices.Contains(keys, r.Attribute) {
				keys = append(keys, r.Attribute)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// PreviewRules returns what replacing the tenant's rules old with next
// would do to its profiles. r reads the stored facts. When ctx's deadline
// comes near, the preview stops and is marked Partial.
func PreviewRules(ctx context.Context, s ContactScanner, r ClusterReader, tenant string, old, next []identity.Rule) (*Preview, error) {
	keys := ChangedKeys(old, next)
	byKey := func(rules []identity.Rule) map[string]identity.Rule {
		m := map[string]identity.Rule{}
		for _, r := range rules {
			if r.Enabled && !r.Deleted {
				m[r.Attribute] = r
			}
		}
		return m
	}
	oldBy, nextBy := byKey(old), byKey(next)
	touched := func(cl identity.Claim) bool { return slices.Contains(keys, cl.Key) }
	ov := &overlay{ClusterReader: r, keys: keys, claims: map[string][]identity.Claim{}, holders: map[related.Identifier][]identity.Holder{}}
	var (
		affected   []string
		oldValues  = map[related.Identifier]int{}
		deadline   = previewDeadline(ctx)
		pv         = &Preview{}
		stopErr    = context.DeadlineExceeded
		scanCutOff bool
	)
	err := s.ScanContacts(ctx, tenant, func(c *related.Contact) error {
		if time.Now().After(deadline) {
			scanCutOff = true
			return stopErr
		}
		before := slices.DeleteFunc(identity.Claims(old, c), func(cl identity.Claim) bool { return !touched(cl) })
		after := slices.DeleteFunc(identity.Claims(next, c), func(cl identity.Claim) bool { return !touched(cl) })
		if len(before) == 0 && len(after) == 0 {
			return nil
		}
		affected = append(affected, c.ID)
		ov.claims[c.ID] = after
		for _, cl := range before {
			oldValues[cl.Identifier]++
		}
		for _, cl := range after {
			ov.holders[cl.Identifier] = append(ov.holders[cl.Identifier], identity.Holder{Contact: c.ID, Claim: cl})
		}
		return nil
	})
	if err != nil && !scanCutOff {
		return nil, err
	}
	pv.Contacts = len(affected)
	if scanCutOff {
		pv.Partial = true
		return pv, nil
	}
	// Values newly quarantined: held by more contacts than the new rule
	// allows, where the old rule linked them (an admin's block is not a
	// count's: the run counts only the values a count quarantines).
	var values []related.Identifier
	for id := range ov.holders {
		values = append(values, id)
	}
	for id := range oldValues {
		if _, ok := ov.holders[id]; !ok {
			values = append(values, id)
		}
	}
	stored, err := r.ValueFacts(ctx, tenant, values)
	if err != nil {
		return nil, err
	}
	ov.states = map[related.Identifier]identity.Quarantine{}
	for _, id := range values {
		f := stored[id]
		ov.states[id] = f.State
		if f.State != "" && f.State != identity.QuarantineAutomatic {
			continue // an admin's state: no count changes it
		}
		wasQ := oldValues[id] > 0 && oldBy[id.Key].Quarantined(identity.ValueFacts{Contacts: oldValues[id], State: f.State})
		isQ := nextBy[id.Key].Quarantined(identity.ValueFacts{Contacts: len(ov.holders[id]), State: f.State})
		if _, linked := nextBy[id.Key]; linked && len(ov.holders[id]) > 0 && isQ && !wasQ {
			pv.Quarantined++
		}
	}
	covered := map[string]bool{}
	// A suggestion between clusters of two chunks is new in both (the
	// preview stores nothing): it is counted once, as the change's run,
	// which stores it, does.
	suggested := map[string]bool{}
	for start := 0; start < len(affected); start += previewChunk {
		if time.Now().After(deadline) {
			pv.Partial = true
			break
		}
		var seeds []string
		for _, id := range affected[start:min(start+previewChunk, len(affected))] {
			if !covered[id] {
				seeds = append(seeds, id)
			}
		}
		if len(seeds) == 0 {
			continue
		}
		in, err := Gather(ctx, ov, tenant, next, seeds)
		if err != nil {
			return nil, err
		}
		for _, c := range in.Contacts {
			covered[c.ID] = true
		}
		res := identity.Partition(in)
		sum := identity.Summarize(in, res)
		sum.Quarantined = 0 // counted above, once per value
		stored := map[string]bool{}
		for _, p := range in.Pairs {
			stored[p.ID()] = true
		}
		for _, p := range res.Pairs {
			if !stored[p.ID()] && suggested[p.ID()] {
				sum.Suggestions--
			}
			suggested[p.ID()] = true
		}
		pv.Summary.Add(sum)
	}
	return pv, NameSamples(ctx, r, tenant, pv.Samples)
}

// NameSamples names the samples' earlier profiles as they are stored (a
// decision names only the profiles it makes): for a preview, or for a run
// before it applies its changes.
func NameSamples(ctx context.Context, r ClusterReader, tenant string, samples []identity.SampleChange) error {
	pr, ok := r.(interface {
		Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error)
	})
	var ids []string
	for _, c := range samples {
		for _, b := range c.Before {
			ids = append(ids, b.ID)
		}
	}
	if !ok || len(ids) == 0 {
		return nil
	}
	ps, err := pr.Profiles(ctx, tenant, uniq(ids))
	if err != nil {
		return err
	}
	for i := range samples {
		for j := range samples[i].Before {
			b := &samples[i].Before[j]
			for _, p := range ps {
				if p.ID == b.ID {
					b.Name, b.Identifiers = p.Name, p.Identifiers
				}
			}
		}
	}
	return nil
}

// previewDeadline is when a preview stops: three quarters of the way to
// ctx's deadline (the rest is for answering), or in ten seconds.
func previewDeadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(10 * time.Second)
	}
	return time.Now().Add(time.Until(d) * 3 / 4)
}

// overlay is a ClusterReader that shows, for the attributes of a rule
// change, the claims the new rules give in place of the stored ones.
type overlay struct {
	ClusterReader
	keys    []string
	claims  map[string][]identity.Claim // contact -> its new claims of keys
	holders map[related.Identifier][]identity.Holder
	states  map[related.Identifier]identity.Quarantine
}

func (o *overlay) ClusterContacts(ctx context.Context, tenant string, ids []string) ([]identity.ContactFacts, error) {
	cs, err := o.ClusterReader.ClusterContacts(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	for i := range cs {
		cs[i].Claims = slices.DeleteFunc(cs[i].Claims, func(cl identity.Claim) bool { return slices.Contains(o.keys, cl.Key) })
		cs[i].Claims = append(cs[i].Claims, o.claims[cs[i].ID]...)
	}
	return cs, nil
}

func (o *overlay) Holders(ctx context.Context, tenant string, values []related.Identifier) ([]identity.Holder, error) {
	var mine, theirs []related.Identifier
	for _, v := range values {
		if slices.Contains(o.keys, v.Key) {
			mine = append(mine, v)
		} else {
			theirs = append(theirs, v)
		}
	}
	out, err := o.ClusterReader.Holders(ctx, tenant, theirs)
	if err != nil {
		return nil, err
	}
	for _, v := range mine {
		out = append(out, o.holders[v]...)
	}
	return out, nil
}

func (o *overlay) ValueFacts(ctx context.Context, tenant string, values []related.Identifier) (map[related.Identifier]identity.ValueFacts, error) {
	out, err := o.ClusterReader.ValueFacts(ctx, tenant, values)
	if err != nil {
		return nil, err
	}
	for _, v := range values {
		if slices.Contains(o.keys, v.Key) {
			out[v] = identity.ValueFacts{Contacts: len(o.holders[v]), State: o.states[v]}
		}
	}
	return out, nil
}
