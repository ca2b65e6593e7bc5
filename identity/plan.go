package identity

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/relatedhq/related"
)

// Source says how much a value can be trusted.
type Source string

// The sources of a value.
const (
	// Attested values come from the channel itself: the address an email
	// was sent from, the number a call came from.
	Attested Source = "ATTESTED"
	// Claimed values are what the customer or a workflow said, such as an
	// order number typed into a chat.
	Claimed Source = "CLAIMED"
)

// Claim is an identifier a contact brings, with its provenance.
type Claim struct {
	Identifier
	RuleID string
	Source Source
}

// AddressAttribute is the attribute a channel's addresses are values of:
// an EMAIL contact's address is an email address, an SMS, WhatsApp or
// Voice contact's address a phone number. Other channels' addresses (web
// chat visitor ids, social handles) identify nobody across channels.
func AddressAttribute(c related.Channel) string {
	switch c {
	case related.ChannelEmail:
		return "email"
	case related.ChannelSMS, related.ChannelWhatsApp, related.ChannelVoice:
		return "phone"
	}
	return ""
}

// Claims returns the identifiers contact c brings under rules: its address,
// when its channel attests one, and its attributes, each normalized by the
// enabled rule of its key. Values that do not normalize or are blocked are
// left out. Each identifier appears once; an attested claim wins over a
// claimed one of the same value.
func Claims(rules []Rule, c *related.Contact) []Claim {
	var out []Claim
	add := func(cl Claim) {
		for i, o := range out {
			if o.Identifier == cl.Identifier {
				if cl.Source == Attested {
					out[i].Source = Attested
				}
				return
			}
		}
		out = append(out, cl)
	}
	byKey := make(map[string]Rule, len(rules))
	for _, r := range rules {
		if r.Enabled && !r.Deleted {
			byKey[r.Attribute] = r
		}
	}
	if key := AddressAttribute(c.Channel); key != "" {
		if r, ok := byKey[key]; ok {
			if v, ok := r.Normalize(c.Address); ok {
				add(Claim{Identifier: Identifier{Key: key, Value: v}, RuleID: r.ID, Source: Attested})
			}
		}
	}
	for _, a := range c.Attributes {
		if r, ok := byKey[a.Key]; ok {
			if v, ok := r.Normalize(a.Value); ok {
				add(Claim{Identifier: Identifier{Key: a.Key, Value: v}, RuleID: r.ID, Source: Claimed})
			}
		}
	}
	return out
}

// ProfileFacts is what Plan needs to know of an existing profile.
type ProfileFacts struct {
	ID        string
	CreatedAt time.Time
	// Counts is the number of identifiers the profile holds, by key.
	Counts map[string]int
}

// older orders profiles by age, the deterministic merge winner first.
func older(a, b ProfileFacts) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// PlanInput is the state Plan decides on. The store reads it; every
// profile id in it is a root (merge chains already followed).
type PlanInput struct {
	// Home is the profile the contact belongs to, or "".
	Home   string
	Claims []Claim
	// Owners maps each claimed identifier to the profile holding it; an
	// identifier no profile holds is absent.
	Owners map[Identifier]string
	// Profiles has the facts of Home and of every owner.
	Profiles map[string]ProfileFacts
	// DoNotLink lists the profiles the contact was manually unlinked from
	// and must not be linked to again by rules.
	DoNotLink map[string]bool
	// Rules give MaxPerProfile by key.
	Rules []Rule
}

// ConflictReason says why a link or merge did not happen.
type ConflictReason string

// The conflict reasons.
const (
	// ConflictMaxPerProfile: the merge or claim would give a profile more
	// values of a key than its rule's MaxPerProfile.
	ConflictMaxPerProfile ConflictReason = "MAX_PER_PROFILE"
	// ConflictDoNotLink: the value belongs to a profile the contact was
	// manually unlinked from.
	ConflictDoNotLink ConflictReason = "DO_NOT_LINK"
)

// Conflict is a link that the rules asked for and the guards refused, kept
// for an admin to review and resolve with an explicit merge.
type Conflict struct {
	Identifier
	Reason ConflictReason
	// Profiles are the profiles that would have been joined: the contact's
	// and the identifier's owner ("" when the contact's profile is new).
	Profiles [2]string
}

// Plan is what linking one contact does.
type Plan struct {
	// Profile is the profile the contact ends in; "" when it needs a new
	// one (NewProfile) or links to nothing.
	Profile    string
	NewProfile bool
	// Merges are the profiles merged into Profile, oldest first.
	Merges []string
	// Claim are unowned identifiers Profile takes.
	Claim []Claim
	// Links are the claims the contact is linked to Profile by: the newly
	// claimed ones and those Profile (or a merged profile) already held.
	Links     []Claim
	Conflicts []Conflict
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return p.Profile == "" && !p.NewProfile && len(p.Conflicts) == 0
}

// Decide links one contact. It is the single place the linking rules live:
//
//   - A contact joins the profile of every identifier it shares, and those
//     profiles merge into the oldest of them, so the result never depends
//     on the order writes arrive in.
//   - A merge or claim that would give a profile more values of a key than
//     the key's rule allows (MaxPerProfile) does not happen: it is a
//     conflict, recorded for an admin.
//   - Profiles the contact was manually unlinked from are never joined by
//     rules again.
//   - A contact without identifiers and without a profile stays alone.
func Decide(in PlanInput) Plan {
	var p Plan
	maxOf := map[string]int{}
	for _, r := range in.Rules {
		if r.MaxPerProfile > 0 {
			maxOf[r.Attribute] = r.MaxPerProfile
		}
	}
	counts := map[string]int{}
	group := map[string]bool{}
	var members []ProfileFacts
	join := func(f ProfileFacts) {
		group[f.ID] = true
		members = append(members, f)
		for k, n := range f.Counts {
			counts[k] += n
		}
	}
	fits := func(f ProfileFacts) (string, bool) {
		keys := make([]string, 0, len(f.Counts))
		for k := range f.Counts {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if m := maxOf[k]; m > 0 && counts[k]+f.Counts[k] > m {
				return k, false
			}
		}
		return "", true
	}
	// The owners, oldest first, so limits admit the same profiles in any
	// interleaving of the same writes.
	var owners []ProfileFacts
	seen := map[string]bool{in.Home: true}
	for _, c := range in.Claims {
		o, ok := in.Owners[c.Identifier]
		if !ok || seen[o] {
			continue
		}
		seen[o] = true
		if f, ok := in.Profiles[o]; ok {
			owners = append(owners, f)
		}
	}
	slices.SortFunc(owners, older)
	switch {
	case in.Home != "":
		join(in.Profiles[in.Home])
	case len(owners) > 0:
		// No profile yet: join the oldest eligible owner.
		for i, f := range owners {
			if !in.DoNotLink[f.ID] {
				join(f)
				owners = slices.Delete(owners, i, i+1)
				break
			}
		}
	}
	home := ""
	if len(members) > 0 {
		home = members[0].ID
	}
	for _, f := range owners {
		if in.DoNotLink[f.ID] {
			p.Conflicts = append(p.Conflicts, conflictFor(in, f.ID, home, ConflictDoNotLink))
			continue
		}
		if _, ok := fits(f); !ok {
			p.Conflicts = append(p.Conflicts, conflictFor(in, f.ID, home, ConflictMaxPerProfile))
			continue
		}
		join(f)
	}
	if len(members) == 0 {
		if len(in.Claims) == 0 {
			return p
		}
		p.NewProfile = true
	} else {
		slices.SortFunc(members, older)
		p.Profile = members[0].ID
		for _, m := range members[1:] {
			p.Merges = append(p.Merges, m.ID)
		}
	}
	for _, c := range in.Claims {
		o, owned := in.Owners[c.Identifier]
		switch {
		case owned && group[o]:
			p.Links = append(p.Links, c)
		case owned:
			// Held by a profile the guards kept apart: reported above.
		case maxOf[c.Key] > 0 && counts[c.Key]+1 > maxOf[c.Key]:
			p.Conflicts = append(p.Conflicts, Conflict{Identifier: c.Identifier, Reason: ConflictMaxPerProfile, Profiles: [2]string{p.Profile, ""}})
		default:
			counts[c.Key]++
			p.Claim = append(p.Claim, c)
			p.Links = append(p.Links, c)
		}
	}
	if p.NewProfile && len(p.Links) == 0 {
		p.NewProfile = false // every claim conflicted: nothing to hold
	}
	return p
}

// conflictFor records the first claimed identifier that owner holds.
func conflictFor(in PlanInput, owner, home string, reason ConflictReason) Conflict {
	for _, c := range in.Claims {
		if in.Owners[c.Identifier] == owner {
			return Conflict{Identifier: c.Identifier, Reason: reason, Profiles: [2]string{home, owner}}
		}
	}
	return Conflict{Reason: reason, Profiles: [2]string{home, owner}}
}

// Name is a profile's display name when nobody renamed it: the value of
// its identifier whose rule has the highest priority (ties: the smallest
// value, so the name does not depend on the order values arrived in).
func Name(ids []Identifier, rules []Rule) string {
	prio := map[string]int{}
	for _, r := range rules {
		prio[r.Attribute] = r.Priority
	}
	best := -1
	for i, id := range ids {
		if best < 0 {
			best = i
			continue
		}
		b := ids[best]
		if c := cmp.Compare(prio[id.Key], prio[b.Key]); c > 0 || c == 0 && (id.Key < b.Key || id.Key == b.Key && id.Value < b.Value) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return ids[best].Value
}

// Member is a contact of a profile with the identifiers its links hold.
type Member struct {
	ContactID   string
	Identifiers []Identifier
	// Manual reports a contact linked by hand: it stays with the profile's
	// first component whatever its identifiers.
	Manual bool
}

// Components splits a profile's members into the groups their shared
// identifiers connect, after links were removed (an unlink, a disabled
// rule). The first group keeps the profile; the others become new
// profiles. Members are given oldest first; groups come out in the order
// of their first member, and manually linked members join the first group.
func Components(members []Member) [][]string {
	parent := make([]int, len(members))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if ra < rb {
			parent[rb] = ra
		} else {
			parent[ra] = rb
		}
	}
	holder := map[Identifier]int{}
	for i, m := range members {
		for _, id := range m.Identifiers {
			if j, ok := holder[id]; ok {
				union(i, j)
			} else {
				holder[id] = i
			}
		}
		if m.Manual {
			union(0, i)
		}
	}
	var out [][]string
	index := map[int]int{}
	for i, m := range members {
		r := find(i)
		g, ok := index[r]
		if !ok {
			g = len(out)
			index[r] = g
			out = append(out, nil)
		}
		out[g] = append(out[g], m.ContactID)
	}
	return out
}
