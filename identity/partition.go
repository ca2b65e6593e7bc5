package identity

import (
	"cmp"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relatedhq/related"
)

// A tenant's profiles are a pure function of its facts: its contacts with
// the values they hold (each attested or claimed), its rules, the manual
// decisions of its admins, and its quarantined values. Partition is that
// function. Any arrival order of the same facts, any interleaving of
// concurrent writers, any replica and a full re-evaluation give the same
// profiles with the same ids, because nothing here depends on when or in
// which order a fact arrived.
//
// The procedure is Kruskal's: every pair of contacts sharing a linkable
// value is a candidate edge; edges are taken in one fixed order (manual
// decisions first, then by trust, rule priority, key, value and contact
// ids), each unless it breaks a constraint (a keep-apart decision, or a
// rule's MaxPerProfile). The components are the profiles. Edges that may
// not merge on their own (a claimed value under an ATTESTED rule, a NEVER
// rule, a value an agent set) become suggestions for a person to confirm;
// merges a MaxPerProfile refused become conflicts.
//
// Partition decides clusters: sets of contacts closed under the edges that
// may merge and under keep-together decisions. A store gathers the
// clusters a write touches (store.Gather) and applies the result, so a
// write recomputes only what it can change.

// DecisionKind says what an admin decided about two contacts.
type DecisionKind string

// The decision kinds.
const (
	// KeepTogether: the two contacts are one person (a merge, a manual
	// link, a confirmed suggestion). It holds whatever the rules' limits.
	KeepTogether DecisionKind = "TOGETHER"
	// KeepApart: the two contacts are never in one profile (an unlink, a
	// dismissed suggestion, a conflict kept apart).
	KeepApart DecisionKind = "APART"
)

// Decision is a manual decision about two contacts. Decisions are facts:
// they survive rule changes, toggles and re-evaluation.
type Decision struct {
	Kind DecisionKind
	A, B string // contact ids, A < B
	// Into is, for a merge, the contact whose profile id the result keeps
	// (the anchor of the profile the admin merged into), else "".
	Into string
	// Reason says which action made it: merge, link, unlink, confirm,
	// dismiss, keep-apart.
	Reason string
	By     related.Actor
	At     time.Time
}

// NewDecision returns a decision about contacts a and b, in canonical
// order.
func NewDecision(kind DecisionKind, a, b string) Decision {
	if b < a {
		a, b = b, a
	}
	return Decision{Kind: kind, A: a, B: b}
}

// ID is the decision's identity: one decision per kind and pair.
func (d Decision) ID() string { return related.DerivedID("decision", string(d.Kind), d.A, d.B) }

// laterThan orders decisions by time, then id, so "the latest" is the same
// on every replica.
func (d Decision) laterThan(o Decision) bool {
	if c := d.At.Compare(o.At); c != 0 {
		return c > 0
	}
	return d.ID() > o.ID()
}

// Rename is an admin's name for the profile anchored at a contact. The
// latest rename among a profile's contacts names it.
type Rename struct {
	Anchor string
	Name   string
	By     related.Actor
	At     time.Time
}

// ContactFacts is one contact as Partition sees it.
type ContactFacts struct {
	ID      string
	Channel related.Channel
	Name    string
	Address string
	// Claims are the values it holds under the current rules.
	Claims []Claim
	// Profile is its profile as stored now ("" for none): only to tell
	// what changed.
	Profile string
}

// Holder is a contact outside the clusters being decided that holds one
// of their values: it cannot merge with them (or Gather would have taken
// it in), but it may be suggested.
type Holder struct {
	Contact string
	Profile string // its current profile
	Claim
}

// Input is the facts of the clusters to decide.
type Input struct {
	// Contacts are every contact of the clusters.
	Contacts []ContactFacts
	// Outside are the other holders of the contacts' linkable values.
	Outside []Holder
	// Partners maps the contacts outside the clusters that decisions name
	// to their current profile.
	Partners map[string]string
	Rules    []Rule
	// Values are the facts of every value the contacts hold.
	Values map[Identifier]ValueFacts
	// Decisions are every decision naming a contact of the clusters.
	Decisions []Decision
	// Renames are the renames anchored at contacts of the clusters.
	Renames []Rename
	// Pairs are the suggestions and conflicts stored now that name a
	// contact of the clusters: only to tell what is new.
	Pairs []Pair
}

// ProfileResult is one profile Partition decided.
type ProfileResult struct {
	ID     string
	Anchor string
	// Contacts are its contacts' ids, sorted.
	Contacts    []string
	Identifiers []related.ProfileIdentifier
	Channels    []related.Channel
	AutoName    string
	CustomName  string
}

// Name is what the profile bar shows.
func (p ProfileResult) Name() string { return cmp.Or(p.CustomName, p.AutoName) }

// Result is what Partition decided.
type Result struct {
	// Profiles are the clusters' profiles, by id.
	Profiles []ProfileResult
	// Assignment maps every contact of the input to its profile id, ""
	// for none.
	Assignment map[string]string
	// Pairs are the suggestions and conflicts naming a contact of the
	// clusters, by id.
	Pairs []Pair
	// Events are what changed, for the profiles' history.
	Events []Event
}

// PairKind says what a pair of profiles sharing a value is.
type PairKind string

// The pair kinds.
const (
	// Suggestion: the value may not merge on its own; a person decides.
	Suggestion PairKind = "SUGGESTION"
	// Conflict: the rule would merge, and MaxPerProfile refused it.
	Conflict PairKind = "CONFLICT"
)

// PairReason says why a shared value did not merge two profiles.
type PairReason string

// The pair reasons.
const (
	// ReasonClaimed: the rule merges only attested values, and the value
	// is claimed on at least one side.
	ReasonClaimed PairReason = "CLAIMED"
	// ReasonAgentSet: an agent set the value on at least one side, and
	// agents never merge profiles.
	ReasonAgentSet PairReason = "AGENT_SET"
	// ReasonNeverMerges: the rule's policy is NEVER.
	ReasonNeverMerges PairReason = "NEVER_MERGES"
	// ReasonMaxPerProfile: the merge would give a profile more values of
	// the key than the rule allows.
	ReasonMaxPerProfile PairReason = "MAX_PER_PROFILE"
)

// Valid reports whether r is a known reason.
func (r PairReason) Valid() bool {
	switch r {
	case ReasonClaimed, ReasonAgentSet, ReasonNeverMerges, ReasonMaxPerProfile:
		return true
	}
	return false
}

// MarshalGQL writes r as a GraphQL enum value.
func (r PairReason) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(r))) }

// UnmarshalGQL reads r from a GraphQL enum value.
func (r *PairReason) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, r, PairReason.Valid, "PairReason")
}

// Explain says in words why a pair of profiles sharing id did not merge.
func (r PairReason) Explain(id Identifier, rule string) string {
	switch r {
	case ReasonClaimed:
		return "both profiles hold " + id.Key + " " + id.Value + ", but on at least one side it was typed, not vouched for; the " + rule + " rule merges only attested values"
	case ReasonAgentSet:
		return "both profiles hold " + id.Key + " " + id.Value + ", but an agent set it on at least one side; agents never merge profiles"
	case ReasonNeverMerges:
		return "both profiles hold " + id.Key + " " + id.Value + "; the " + rule + " rule never merges on its own (people share such values)"
	case ReasonMaxPerProfile:
		return "both profiles hold " + id.Key + " " + id.Value + ", but merging them would give one profile more " + rule + " values than the rule allows"
	}
	return string(r)
}

// Pair is two contacts in different profiles sharing a value that did not
// merge them: a suggestion or a conflict. One pair stands for each pair of
// profiles and value.
type Pair struct {
	Kind PairKind
	Identifier
	RuleID string
	// A and B are the contacts, A < B, with their claims' trust.
	A, B             string
	SourceA, SourceB Source
	Reason           PairReason
}

// ID is the pair's identity, a function of what it says.
func (p Pair) ID() string {
	return related.DerivedID("pair", string(p.Kind), p.Key, p.Value, p.A, p.B)
}

// Merges reports whether a shared value with claims a and b merges two
// profiles on its own under r, and if not, why.
func (r Rule) Merges(a, b Claim) (bool, PairReason) {
	policy := r.AutoMerge
	if policy == "" {
		policy = DefaultAutoMerge(r.Attribute, r.Normalizer)
	}
	switch {
	case policy == AutoMergeNever:
		return false, ReasonNeverMerges
	case a.Agent || b.Agent:
		return false, ReasonAgentSet
	case policy == AutoMergeAttested && (a.Source != Attested || b.Source != Attested):
		return false, ReasonClaimed
	}
	return true, ""
}

// MaxPairHolders bounds the holders of one value that Partition pairs up:
// past it (only a value an admin allowed despite its hub size) edges join
// each holder to the first, and no suggestions are made for it.
const MaxPairHolders = 32

// Linkable returns the claims of c that link under rules and values: those
// of an enabled rule whose value is not quarantined, at most MaxPerProfile
// of a key (attested first, then by value; the rest cannot be held by any
// profile of c's anyway).
func Linkable(rules map[string]Rule, values map[Identifier]ValueFacts, claims []Claim) []Claim {
	var out []Claim
	perKey := map[string]int{}
	for _, cl := range bestFirst(claims) {
		r, ok := rules[cl.Key]
		if !ok || r.Quarantined(values[cl.Identifier]) {
			continue
		}
		if r.MaxPerProfile > 0 && perKey[cl.Key] >= r.MaxPerProfile {
			continue
		}
		perKey[cl.Key]++
		out = append(out, cl)
	}
	sortClaims(out)
	return out
}

// bestFirst orders claims attested first, then by key and value.
func bestFirst(claims []Claim) []Claim {
	out := slices.Clone(claims)
	slices.SortStableFunc(out, func(a, b Claim) int {
		if a.Source != b.Source {
			if a.Source == Attested {
				return -1
			}
			return 1
		}
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
	})
	return out
}

func sortClaims(cs []Claim) {
	slices.SortFunc(cs, func(a, b Claim) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
	})
}

// edge is a candidate link between contacts a and b (indexes, a < b by id).
type edge struct {
	a, b   int
	claim  [2]Claim
	rule   Rule
	manual *Decision
}

// Partition decides the profiles of the clusters in in. See the top of
// this file.
func Partition(in Input) Result {
	rules := enabledRules(in.Rules)
	n := len(in.Contacts)
	contacts := slices.Clone(in.Contacts)
	slices.SortFunc(contacts, func(a, b ContactFacts) int { return strings.Compare(a.ID, b.ID) })
	index := make(map[string]int, n)
	for i, c := range contacts {
		index[c.ID] = i
	}
	linkable := make([][]Claim, n)
	holders := map[Identifier][]int{}
	var idents []Identifier
	for i, c := range contacts {
		linkable[i] = Linkable(rules, in.Values, c.Claims)
		for _, cl := range linkable[i] {
			if _, ok := holders[cl.Identifier]; !ok {
				idents = append(idents, cl.Identifier)
			}
			holders[cl.Identifier] = append(holders[cl.Identifier], i)
		}
	}
	slices.SortFunc(idents, compareIdentifiers)
	claimOf := func(i int, id Identifier) Claim {
		for _, cl := range linkable[i] {
			if cl.Identifier == id {
				return cl
			}
		}
		return Claim{}
	}

	// Candidate edges.
	var merging, suggesting []edge
	for _, id := range idents {
		hs := holders[id]
		r := rules[id.Key]
		for x := 0; x < len(hs); x++ {
			for y := x + 1; y < len(hs); y++ {
				if len(hs) > MaxPairHolders && x > 0 {
					break // a hub an admin allowed: a star, no suggestions
				}
				e := edge{a: hs[x], b: hs[y], claim: [2]Claim{claimOf(hs[x], id), claimOf(hs[y], id)}, rule: r}
				if ok, _ := r.Merges(e.claim[0], e.claim[1]); ok {
					merging = append(merging, e)
				} else if len(hs) <= MaxPairHolders {
					suggesting = append(suggesting, e)
				}
			}
		}
	}
	slices.SortFunc(merging, func(e, f edge) int {
		return cmp.Or(
			cmp.Compare(trustRank(e), trustRank(f)),
			cmp.Compare(f.rule.Priority, e.rule.Priority),
			compareIdentifiers(e.claim[0].Identifier, f.claim[0].Identifier),
			strings.Compare(contacts[e.a].ID, contacts[f.a].ID),
			strings.Compare(contacts[e.b].ID, contacts[f.b].ID),
		)
	})

	// Decisions: keep-together edges come first, in the order they were
	// made; keep-apart ones are constraints.
	apart := map[string][]string{}
	var together []Decision
	for _, d := range in.Decisions {
		switch d.Kind {
		case KeepApart:
			apart[d.A] = append(apart[d.A], d.B)
			apart[d.B] = append(apart[d.B], d.A)
		case KeepTogether:
			if _, ok := index[d.A]; !ok {
				continue
			}
			if _, ok := index[d.B]; !ok {
				continue
			}
			together = append(together, d)
		}
	}
	slices.SortFunc(together, func(a, b Decision) int {
		if a.laterThan(b) {
			return 1
		}
		if b.laterThan(a) {
			return -1
		}
		return 0
	})

	u := newUnion(contacts, linkable, rules, apart, index)
	joined := make([]Claim, n) // the value each contact joined its profile through
	var accepted []Decision
	for _, d := range together {
		a, b := index[d.A], index[d.B]
		if u.union(a, b, false) {
			accepted = append(accepted, d)
		} else if u.find(a) == u.find(b) {
			accepted = append(accepted, d) // already together: the decision still names the profile
		}
	}
	var refused []edge
	for _, e := range merging {
		if u.find(e.a) == u.find(e.b) {
			continue
		}
		switch u.tryUnion(e.a, e.b) {
		case joinedOK:
			for k, i := range []int{e.a, e.b} {
				if joined[i].Key == "" {
					joined[i] = e.claim[k]
				}
			}
		case refusedLimit:
			refused = append(refused, e)
		}
	}

	// Components become profiles.
	groups := map[int][]int{}
	var roots []int
	for i := range contacts {
		r := u.find(i)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], i)
	}
	res := Result{Assignment: make(map[string]string, n)}
	profileOf := make([]string, n)
	for _, r := range roots {
		members := groups[r]
		hasIdentifiers := false
		for _, m := range members {
			hasIdentifiers = hasIdentifiers || len(linkable[m]) > 0
		}
		if len(members) < 2 && !hasIdentifiers {
			res.Assignment[contacts[members[0]].ID] = ""
			continue
		}
		p := buildProfile(contacts, linkable, members, accepted, in.Renames, in.Rules)
		for _, m := range members {
			profileOf[m] = p.ID
			res.Assignment[contacts[m].ID] = p.ID
		}
		res.Profiles = append(res.Profiles, p)
	}
	slices.SortFunc(res.Profiles, func(a, b ProfileResult) int { return strings.Compare(a.ID, b.ID) })

	// Suggestions and conflicts: one pair per value and pair of profiles.
	pairs := map[string]Pair{}
	keep := func(p Pair, pa, pb string) {
		if pa > pb {
			pa, pb = pb, pa
		}
		k := string(p.Kind) + "\x00" + p.Key + "\x00" + p.Value + "\x00" + pa + "\x00" + pb
		if o, ok := pairs[k]; !ok || p.A < o.A || p.A == o.A && p.B < o.B {
			pairs[k] = p
		}
	}
	mkPair := func(kind PairKind, id Identifier, r Rule, a, b string, ca, cb Claim, reason PairReason) Pair {
		if b < a {
			a, b, ca, cb = b, a, cb, ca
		}
		return Pair{Kind: kind, Identifier: id, RuleID: r.ID, A: a, B: b, SourceA: ca.Source, SourceB: cb.Source, Reason: reason}
	}
	for _, e := range suggesting {
		if u.find(e.a) == u.find(e.b) || u.apartFrom(e.a, func(p string) bool { return inGroup(index, u, p, e.b) }) {
			continue
		}
		_, why := e.rule.Merges(e.claim[0], e.claim[1])
		keep(mkPair(Suggestion, e.claim[0].Identifier, e.rule, contacts[e.a].ID, contacts[e.b].ID, e.claim[0], e.claim[1], why),
			profileOf[e.a], profileOf[e.b])
	}
	for _, e := range refused {
		if u.find(e.a) == u.find(e.b) {
			continue
		}
		keep(mkPair(Conflict, e.claim[0].Identifier, e.rule, contacts[e.a].ID, contacts[e.b].ID, e.claim[0], e.claim[1], ReasonMaxPerProfile),
			profileOf[e.a], profileOf[e.b])
	}
	outside := map[Identifier][]Holder{}
	outsideProfile := map[string]string{}
	for _, h := range in.Outside {
		if _, in := index[h.Contact]; !in {
			outside[h.Identifier] = append(outside[h.Identifier], h)
			outsideProfile[h.Contact] = h.Profile
		}
	}
	for _, id := range idents {
		os := outside[id]
		if len(os) == 0 || len(os)+len(holders[id]) > MaxPairHolders {
			continue
		}
		r := rules[id.Key]
		for _, i := range holders[id] {
			for _, o := range os {
				ca := claimOf(i, id)
				ok, why := r.Merges(ca, o.Claim)
				if ok || o.Profile != "" && o.Profile == profileOf[i] {
					continue // Gather takes mergeable holders in; this one is stale
				}
				if u.apartFrom(i, func(p string) bool { return p == o.Contact || o.Profile != "" && in.Partners[p] == o.Profile }) {
					continue
				}
				keep(mkPair(Suggestion, id, r, contacts[i].ID, o.Contact, ca, o.Claim, why), profileOf[i], o.Profile)
			}
		}
	}
	for _, p := range pairs {
		res.Pairs = append(res.Pairs, p)
	}
	slices.SortFunc(res.Pairs, func(a, b Pair) int { return strings.Compare(a.ID(), b.ID()) })
	res.Events = history(contacts, res, joined, profileOf, in.Pairs, outsideProfile)
	return res
}

// trustRank orders merging edges: attested on both sides first.
func trustRank(e edge) int {
	if e.claim[0].Source == Attested && e.claim[1].Source == Attested {
		return 0
	}
	return 1
}

func compareIdentifiers(a, b Identifier) int {
	return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
}

// inGroup reports whether contact id is in the same component as index j.
func inGroup(index map[string]int, u *union, id string, j int) bool {
	i, ok := index[id]
	return ok && u.find(i) == u.find(j)
}

// buildProfile makes the profile of one component.
func buildProfile(contacts []ContactFacts, linkable [][]Claim, members []int, accepted []Decision, renames []Rename, rules []Rule) ProfileResult {
	in := map[string]bool{}
	for _, m := range members {
		in[contacts[m].ID] = true
	}
	// The anchor: the contact of the latest merge into a chosen profile,
	// so a merge keeps the id the admin chose; else the smallest id.
	anchor := contacts[members[0]].ID
	var latest *Decision
	for i, d := range accepted {
		if d.Into != "" && in[d.Into] && in[d.A] && in[d.B] && (latest == nil || d.laterThan(*latest)) {
			latest = &accepted[i]
		}
	}
	if latest != nil {
		anchor = latest.Into
	}
	p := ProfileResult{ID: related.ProfileIDFor(anchor), Anchor: anchor}
	ids := map[Identifier]bool{} // value: attested
	var chans []related.Channel
	for _, m := range members {
		c := contacts[m]
		p.Contacts = append(p.Contacts, c.ID)
		chans = append(chans, c.Channel)
		for _, cl := range linkable[m] {
			ids[cl.Identifier] = ids[cl.Identifier] || cl.Source == Attested
		}
	}
	for id, att := range ids {
		p.Identifiers = append(p.Identifiers, related.ProfileIdentifier{Identifier: id, Attested: att})
	}
	slices.SortFunc(p.Identifiers, func(a, b related.ProfileIdentifier) int { return compareIdentifiers(a.Identifier, b.Identifier) })
	p.Channels = related.SortChannels(chans)
	var rename *Rename
	for i, r := range renames {
		if in[r.Anchor] && (rename == nil || r.At.After(rename.At) || r.At.Equal(rename.At) && r.Anchor > rename.Anchor) {
			rename = &renames[i]
		}
	}
	if rename != nil {
		p.CustomName = rename.Name
	}
	p.AutoName = autoName(contacts, members, p.Identifiers, rules, anchor)
	return p
}

// autoName is a profile's name when nobody named it: the person's name its
// contacts carry (the most common one; ties: the one of the smallest
// contact id), else the value of its highest-priority attested identifier,
// else of any identifier, else its anchor's address.
func autoName(contacts []ContactFacts, members []int, ids []related.ProfileIdentifier, rules []Rule, anchor string) string {
	count := map[string]int{}
	best := ""
	for _, m := range members { // members are in contact id order
		name := contacts[m].Name
		if name == "" {
			continue
		}
		count[name]++
		if best == "" || count[name] > count[best] {
			best = name
		}
	}
	if best != "" {
		return best
	}
	if v := bestIdentifier(ids, rules, true); v != "" {
		return v
	}
	if v := bestIdentifier(ids, rules, false); v != "" {
		return v
	}
	for _, m := range members {
		if contacts[m].ID == anchor {
			return contacts[m].Address
		}
	}
	return ""
}

// bestIdentifier is the value of the identifier whose rule has the highest
// priority (ties: key, then value), among the attested ones if attested.
func bestIdentifier(ids []related.ProfileIdentifier, rules []Rule, attested bool) string {
	prio := map[string]int{}
	for _, r := range rules {
		prio[r.Attribute] = r.Priority
	}
	var best *related.ProfileIdentifier
	for i, id := range ids {
		if attested && !id.Attested {
			continue
		}
		if best == nil || prio[id.Key] > prio[best.Key] ||
			prio[id.Key] == prio[best.Key] && compareIdentifiers(id.Identifier, best.Identifier) < 0 {
			best = &ids[i]
		}
	}
	if best == nil {
		return ""
	}
	return best.Value
}
