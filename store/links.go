package store

import (
	"cmp"
	"slices"
	"strings"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// Links explains a profile's membership from its members' facts: each
// linkable value a member holds (with where it came from) and each
// keep-together decision naming a member. Oldest first.
func Links(profileID string, rules []identity.Rule, values map[related.Identifier]identity.ValueFacts, members []identity.ContactFacts, decisions []identity.Decision) []*related.ProfileLink {
	byKey := map[string]identity.Rule{}
	for _, r := range rules {
		if r.Enabled && !r.Deleted {
			byKey[r.Attribute] = r
		}
	}
	in := map[string]bool{}
	var out []*related.ProfileLink
	for _, c := range members {
		in[c.ID] = true
		for _, cl := range identity.Linkable(byKey, values, c.Claims) {
			out = append(out, &related.ProfileLink{
				ProfileID: profileID, ContactID: c.ID, Reason: related.LinkRule, Key: cl.Key, Value: cl.Value,
				RuleID: cl.RuleID, Source: string(cl.Source), InteractionID: cl.InteractionID, By: cl.By, LinkedAt: cl.At,
			})
		}
	}
	for _, d := range decisions {
		if d.Kind != identity.KeepTogether {
			continue
		}
		for _, c := range []string{d.A, d.B} {
			if in[c] {
				out = append(out, &related.ProfileLink{ProfileID: profileID, ContactID: c, Reason: related.LinkManual, By: d.By, LinkedAt: d.At})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b *related.ProfileLink) int {
		return cmp.Or(a.LinkedAt.Compare(b.LinkedAt), strings.Compare(a.ContactID, b.ContactID),
			strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
	})
	return out
}

// PageInMemory returns the page p asks for of items, sorted newest first
// by the cursor cur gives each, and whether items follow and precede it:
// for short lists a store reads whole.
func PageInMemory[T any](items []T, p Page, cur func(T) Cursor) (page []T, hasNext, hasPrev bool) {
	less := func(a, b Cursor) bool { // a comes before b in the list
		if !a.At.Equal(b.At) {
			return a.At.After(b.At)
		}
		return a.ID > b.ID
	}
	slices.SortFunc(items, func(a, b T) int {
		if less(cur(a), cur(b)) {
			return -1
		}
		if less(cur(b), cur(a)) {
			return 1
		}
		return 0
	})
	var in []T
	for _, it := range items {
		c := cur(it)
		if p.After != nil && !less(*p.After, c) || p.Before != nil && !less(c, *p.Before) {
			continue
		}
		in = append(in, it)
	}
	n := max(p.Limit(), 0)
	if p.Backward() {
		return in[max(0, len(in)-n):], p.Before != nil, len(in) > n
	}
	return in[:min(n, len(in))], len(in) > n, p.After != nil
}
