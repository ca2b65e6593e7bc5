package storetest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// testReference drives random traffic (addresses, attested and claimed
// attributes, values agents set, a hub value, shared order numbers) through
// many goroutines where the database is atomic, then manual decisions and
// a rule toggle, and holds the store to what the facts say:
//
//   - the stored partition equals the one a simple reference computes
//     from the final facts (reference below: quadratic and obvious, written
//     apart from identity.Partition), and the stored profiles, names and
//     suggestions equal identity.Partition over the whole tenant;
//   - no profile of several contacts is joined through anything but
//     values that may merge and manual decisions;
//   - a full re-evaluation changes nothing;
//   - the same data in three shuffled orders, with the same manual
//     decisions after it, gives the same partition and the same ids.
func testReference(t *testing.T, open Opener) {
	e := open(t)
	ops, people := 360, 40
	switch {
	case e.Slow && raceEnabled:
		ops, people = 30, 8
	case e.Slow:
		ops, people = 60, 10
	}
	rng := rand.New(rand.NewPCG(7, 11))
	script := newScript(rng, ops, people)
	workers := 1
	if e.Atomic {
		workers = 8
	}
	script.setup(t, e.Store)
	script.data(t, e.Store, script.order(nil), workers)
	afterData := snapshot(t, e.Store)
	script.manual(t, e.Store)
	checkAgainstFacts(t, e.Store)
	// A rule toggled off and on, and a full re-evaluation, change nothing.
	before := snapshot(t, e.Store)
	rules, _ := e.Store.ProfileRules(context.Background(), "t1")
	for _, r := range rules {
		if r.Attribute == "customerId" {
			r.Enabled = false
			saveRule(t, e.Store, "t1", r)
			r.Enabled = true
			saveRule(t, e.Store, "t1", r)
		}
	}
	if after := snapshot(t, e.Store); after != before {
		t.Fatalf("toggling a rule changed the profiles:\n%s", diffLines(before, after))
	}
	checkAgainstFacts(t, e.Store)
	// Shuffled orders of the same data.
	for i := range 3 {
		r := open(t)
		script.setup(t, r.Store)
		script.data(t, r.Store, script.order(rand.New(rand.NewPCG(uint64(i), 99))), 1)
		if got := snapshot(t, r.Store); got != afterData {
			t.Fatalf("shuffle %d: the same data gave other profiles:\n%s", i, diffLines(afterData, got))
		}
		script.manual(t, r.Store)
		if got := snapshot(t, r.Store); got != before {
			t.Fatalf("shuffle %d: the same decisions gave other profiles:\n%s", i, diffLines(before, got))
		}
	}
}

// script is a random tenant's traffic: data operations, then manual ones.
type script struct {
	people int
	ops    []dataOp
	manual func(t *testing.T, s store.Store)
}

type dataOp struct {
	channel related.Channel
	address string
	attrs   []related.Attribute
	set     bool // set attributes on the contact rather than record a message
	by      related.Actor
}

func newScript(rng *rand.Rand, n, people int) *script {
	sc := &script{people: people}
	value := func(p int) []related.Attribute {
		var out []related.Attribute
		mark := func(a related.Attribute) related.Attribute {
			switch rng.IntN(5) {
			case 0: // claimed by the customer
			case 1:
				a.By, a.Role = agent.Name, agent.Role
			default:
				a.Attested, a.By, a.Role = true, integration.Name, integration.Role
			}
			return a
		}
		if rng.IntN(3) == 0 {
			out = append(out, mark(related.Attribute{Key: "email", Value: fmt.Sprintf("p%d@x.io", p)}))
		}
		if rng.IntN(4) == 0 {
			out = append(out, mark(related.Attribute{Key: "customerId", Value: fmt.Sprintf("C-%d", p/2)}))
		}
		if rng.IntN(6) == 0 {
			out = append(out, mark(related.Attribute{Key: "orderNumber", Value: fmt.Sprintf("O-%d", rng.IntN(5))}))
		}
		if rng.IntN(7) == 0 {
			out = append(out, mark(related.Attribute{Key: "email", Value: "info@company.com"}))
		}
		return out
	}
	// Each contact always brings the same values, so every order of the
	// operations ends with the same facts.
	valuesOf := map[string][]related.Attribute{}
	for range n {
		p := rng.IntN(people)
		var op dataOp
		switch rng.IntN(4) {
		case 0:
			op.channel, op.address = related.ChannelEmail, fmt.Sprintf("p%d@x.io", p)
		case 1:
			op.channel, op.address = related.ChannelSMS, fmt.Sprintf("+4474001%05d", p)
		case 2:
			op.channel, op.address = related.ChannelVoice, fmt.Sprintf("+4474001%05d", p)
		default:
			op.channel, op.address = related.ChannelWebChat, fmt.Sprintf("visitor-%d-%d", p, rng.IntN(2))
		}
		if _, ok := valuesOf[op.address+string(op.channel)]; !ok {
			valuesOf[op.address+string(op.channel)] = value(p)
		}
		op.attrs = valuesOf[op.address+string(op.channel)]
		op.set = rng.IntN(3) == 0
		op.by = integration
		if slices.ContainsFunc(op.attrs, func(a related.Attribute) bool { return a.Role == related.RoleAgent }) {
			op.by = agent
		}
		sc.ops = append(sc.ops, op)
	}
	// Manual decisions, chosen by contacts and by position in sorted
	// lists, so the same state gives the same decisions.
	picks := make([][2]int, 12)
	for i := range picks {
		picks[i] = [2]int{rng.IntN(n), rng.IntN(n)}
	}
	sc.manual = func(t *testing.T, s store.Store) {
		t.Helper()
		ctx := context.Background()
		contact := func(i int) *related.Contact {
			op := sc.ops[i]
			cs, _ := s.Contacts(ctx, "t1", []string{related.ContactID("t1", op.channel, op.address)})
			if len(cs) == 0 {
				return nil
			}
			return cs[0]
		}
		for k, pk := range picks {
			a, b := contact(pk[0]), contact(pk[1])
			if a == nil || b == nil {
				continue
			}
			var err error
			switch k % 6 {
			case 0, 1:
				if a.ProfileID != "" && b.ProfileID != "" {
					_, err = s.MergeProfiles(ctx, "t1", a.ProfileID, b.ProfileID, admin)
				}
			case 2:
				_, err = s.UnlinkContact(ctx, "t1", a.ID, admin)
			case 3:
				if b.ProfileID != "" {
					_, err = s.LinkContact(ctx, "t1", b.ProfileID, a.ID, admin)
				}
			case 4, 5:
				kind := identity.Suggestion
				if k%2 == 1 {
					kind = identity.Conflict
				}
				ps := pairs(t, s, "t1", kind)
				slices.SortFunc(ps, func(x, y *store.PairRecord) int { return strings.Compare(x.ID, y.ID) })
				if len(ps) > 0 {
					p := ps[pk[0]%len(ps)]
					if k%3 == 0 {
						_, err = s.ConfirmPair(ctx, "t1", p.ID, admin)
					} else {
						err = s.DismissPair(ctx, "t1", p.ID, admin)
					}
				}
			}
			if err != nil {
				t.Fatalf("manual decision %d: %v", k, err)
			}
		}
	}
	return sc
}

func (sc *script) setup(t *testing.T, s store.Store) {
	saveRule(t, s, "t1", identity.Rule{Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, Priority: 50, DefaultRegion: "GB"})
	saveRule(t, s, "t1", identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true, Priority: 200, MaxPerProfile: 1})
	saveRule(t, s, "t1", identity.Rule{Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: true})
}

// order returns the data operations' order: as generated, or shuffled.
func (sc *script) order(rng *rand.Rand) []int {
	idx := make([]int, len(sc.ops))
	for i := range idx {
		idx[i] = i
	}
	if rng != nil {
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	}
	return idx
}

// data runs the data operations in order with workers goroutines. An
// attribute set on a contact not yet seen records a message instead, so
// every order stores the same facts.
func (sc *script) data(t *testing.T, s store.Store, order []int, workers int) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[string]bool{}
	do := func(n, i int) error {
		op := sc.ops[i]
		id := related.ContactID("t1", op.channel, op.address)
		mu.Lock()
		known := seen[id]
		mu.Unlock()
		if op.set && known {
			_, err := s.SetContactAttributes(ctx, "t1", id, op.attrs, op.by)
			return err
		}
		in := msg(t, op.channel, fmt.Sprint("thread-", op.address), op.address, fmt.Sprint("op ", i), base.Add(time.Duration(i)*time.Second))
		in.Contact.Name = ""
		in.Contact.Attributes, in.By = op.attrs, op.by
		if _, err := s.RecordMessage(ctx, "t1", in); err != nil {
			return err
		}
		mu.Lock()
		seen[id] = true
		mu.Unlock()
		return nil
	}
	next := make(chan [2]int)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for x := range next {
				if err := do(x[0], x[1]); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for n, i := range order {
		next <- [2]int{n, i}
	}
	close(next)
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot renders a tenant's profiles: every contact's profile, and every
// profile's name, channels and identifiers, and the open pairs.
func snapshot(t *testing.T, s store.Store) string {
	t.Helper()
	ctx := context.Background()
	facts, err := s.TenantFacts(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	var ids, profiles []string
	for _, c := range facts.Contacts {
		ids = append(ids, c.ID)
		if c.Profile != "" && !slices.Contains(profiles, c.Profile) {
			profiles = append(profiles, c.Profile)
		}
	}
	cs, err := s.Contacts(ctx, "t1", ids)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range cs {
		lines = append(lines, fmt.Sprintf("contact %s -> %s", c.ID, c.ProfileID))
	}
	ps, err := s.Profiles(ctx, "t1", profiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		lines = append(lines, fmt.Sprintf("profile %s %q %v %v n=%d merged=%q", p.ID, p.Name, p.Channels, p.Identifiers, p.ContactCount, p.MergedInto))
	}
	for _, kind := range []identity.PairKind{identity.Suggestion, identity.Conflict} {
		for _, p := range pairs(t, s, "t1", kind) {
			lines = append(lines, fmt.Sprintf("pair %s %s %s=%s %s-%s %s", p.ID, p.Kind, p.Key, p.Value, p.ProfileA, p.ProfileB, p.Reason))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+ "+l)
		}
	}
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("... %d more", len(out)-40))
	}
	return strings.Join(out, "\n")
}

// checkAgainstFacts holds the stored profiles to the reference over the
// stored facts, and to identity.Partition over the whole tenant.
func checkAgainstFacts(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	facts, err := s.TenantFacts(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	ref := reference(facts)
	whole := identity.Partition(facts)
	byContact := map[string]identity.ContactFacts{}
	for _, c := range facts.Contacts {
		byContact[c.ID] = c
		if c.Profile != ref[c.ID] {
			t.Errorf("contact %s is in %q; the reference says %q", c.ID, c.Profile, ref[c.ID])
		}
		if c.Profile != whole.Assignment[c.ID] {
			t.Errorf("contact %s is in %q; Partition over the tenant says %q", c.ID, c.Profile, whole.Assignment[c.ID])
		}
	}
	var ids []string
	for _, p := range whole.Profiles {
		ids = append(ids, p.ID)
	}
	stored, err := s.Profiles(ctx, "t1", ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range whole.Profiles {
		i := slices.IndexFunc(stored, func(x *related.Profile) bool { return x.ID == p.ID })
		if i < 0 {
			t.Errorf("profile %s is not stored", p.ID)
			continue
		}
		x := stored[i]
		if x.Name != p.Name() || fmt.Sprint(x.Channels) != fmt.Sprint(p.Channels) || fmt.Sprint(x.Identifiers) != fmt.Sprint(p.Identifiers) || x.ContactCount != len(p.Contacts) {
			t.Errorf("profile %s is stored as %q %v %v %d; Partition says %q %v %v %d", p.ID,
				x.Name, x.Channels, x.Identifiers, x.ContactCount, p.Name(), p.Channels, p.Identifiers, len(p.Contacts))
		}
		// Joined only through what may merge, or what a person decided.
		if len(p.Contacts) > 1 && !joinedSoundly(p.Contacts, byContact, facts) {
			t.Errorf("profile %s %v is joined through a value that may not merge", p.ID, p.Contacts)
		}
	}
	var want, got []string
	for _, p := range whole.Pairs {
		want = append(want, p.ID())
	}
	for _, kind := range []identity.PairKind{identity.Suggestion, identity.Conflict} {
		for _, p := range pairs(t, s, "t1", kind) {
			got = append(got, p.ID)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("stored pairs %v; Partition over the tenant says %v", got, want)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// joinedSoundly reports whether members are connected by values that may
// merge under their rules (not blocked, not quarantined) and by
// keep-together decisions.
func joinedSoundly(members []string, by map[string]identity.ContactFacts, in identity.Input) bool {
	rules := map[string]identity.Rule{}
	for _, r := range in.Rules {
		if r.Enabled && !r.Deleted {
			rules[r.Attribute] = r
		}
	}
	edge := func(x, y string) bool {
		for _, d := range in.Decisions {
			if d.Kind == identity.KeepTogether && (d.A == x && d.B == y || d.A == y && d.B == x) {
				return true
			}
		}
		for _, a := range by[x].Claims {
			for _, b := range by[y].Claims {
				r, ok := rules[a.Key]
				if ok && a.Identifier == b.Identifier && !r.Quarantined(in.Values[a.Identifier]) {
					if m, _ := r.Merges(a, b); m {
						return true
					}
				}
			}
		}
		return false
	}
	seen := map[string]bool{members[0]: true}
	for grew := true; grew; {
		grew = false
		for _, x := range members {
			if seen[x] {
				continue
			}
			for y := range seen {
				if edge(x, y) {
					seen[x], grew = true, true
					break
				}
			}
		}
	}
	return len(seen) == len(members)
}

// reference decides a tenant's profiles from its facts the slow, obvious
// way: every pair of contacts sharing a linkable value is an edge; edges
// are taken in order (decisions by time, then attested-on-both-sides
// first, rule priority, key, value, contact ids) unless the two groups are
// kept apart or would hold more values of a key than its rule allows; a
// group is a profile if it has several contacts or any linkable value; its
// id is the latest merge's chosen contact's, else its smallest contact's.
func reference(in identity.Input) map[string]string {
	rules := map[string]identity.Rule{}
	for _, r := range in.Rules {
		if r.Enabled && !r.Deleted {
			rules[r.Attribute] = r
		}
	}
	n := len(in.Contacts)
	cs := slices.Clone(in.Contacts)
	slices.SortFunc(cs, func(a, b identity.ContactFacts) int { return strings.Compare(a.ID, b.ID) })
	held := make([][]identity.Claim, n)
	for i, c := range cs {
		byTrust := slices.Clone(c.Claims)
		slices.SortStableFunc(byTrust, func(a, b identity.Claim) int {
			ta, tb := 1, 1
			if a.Source == identity.Attested {
				ta = 0
			}
			if b.Source == identity.Attested {
				tb = 0
			}
			return cmp.Or(ta-tb, strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
		})
		count := map[string]int{}
		for _, cl := range byTrust {
			r, ok := rules[cl.Key]
			if !ok || r.Quarantined(in.Values[cl.Identifier]) || r.MaxPerProfile > 0 && count[cl.Key] >= r.MaxPerProfile {
				continue
			}
			count[cl.Key]++
			held[i] = append(held[i], cl)
		}
	}
	group := make([]int, n)
	for i := range group {
		group[i] = i
	}
	members := func(g int) []int {
		var out []int
		for i := range n {
			if group[i] == g {
				out = append(out, i)
			}
		}
		return out
	}
	apart := func(g, h int) bool {
		for _, d := range in.Decisions {
			if d.Kind != identity.KeepApart {
				continue
			}
			for _, x := range members(g) {
				for _, y := range members(h) {
					if d.A == cs[x].ID && d.B == cs[y].ID || d.A == cs[y].ID && d.B == cs[x].ID {
						return true
					}
				}
			}
		}
		return false
	}
	tooMany := func(g, h int) bool {
		for k, r := range rules {
			if r.MaxPerProfile == 0 {
				continue
			}
			vals := map[string]bool{}
			for _, x := range append(members(g), members(h)...) {
				for _, cl := range held[x] {
					if cl.Key == k {
						vals[cl.Value] = true
					}
				}
			}
			if len(vals) > r.MaxPerProfile {
				return true
			}
		}
		return false
	}
	join := func(g, h int) {
		for i := range group {
			if group[i] == h {
				group[i] = g
			}
		}
	}
	index := func(id string) int {
		return slices.IndexFunc(cs, func(c identity.ContactFacts) bool { return c.ID == id })
	}
	decisions := slices.Clone(in.Decisions)
	slices.SortFunc(decisions, func(a, b identity.Decision) int { return cmp.Or(a.At.Compare(b.At), strings.Compare(a.ID(), b.ID())) })
	var kept []identity.Decision
	for _, d := range decisions {
		x, y := index(d.A), index(d.B)
		if d.Kind != identity.KeepTogether || x < 0 || y < 0 {
			continue
		}
		if group[x] == group[y] {
			kept = append(kept, d)
		} else if !apart(group[x], group[y]) {
			join(group[x], group[y])
			kept = append(kept, d)
		}
	}
	type edge struct {
		x, y int
		a, b identity.Claim
		r    identity.Rule
	}
	var edges []edge
	for x := range n {
		for y := x + 1; y < n; y++ {
			for _, a := range held[x] {
				for _, b := range held[y] {
					if a.Identifier != b.Identifier {
						continue
					}
					if ok, _ := rules[a.Key].Merges(a, b); ok {
						edges = append(edges, edge{x, y, a, b, rules[a.Key]})
					}
				}
			}
		}
	}
	trust := func(e edge) int {
		if e.a.Source == identity.Attested && e.b.Source == identity.Attested {
			return 0
		}
		return 1
	}
	slices.SortFunc(edges, func(e, f edge) int {
		return cmp.Or(trust(e)-trust(f), f.r.Priority-e.r.Priority, strings.Compare(e.a.Key, f.a.Key),
			strings.Compare(e.a.Value, f.a.Value), e.x-f.x, e.y-f.y)
	})
	for _, e := range edges {
		g, h := group[e.x], group[e.y]
		if g != h && !apart(g, h) && !tooMany(g, h) {
			join(g, h)
		}
	}
	out := map[string]string{}
	for i := range n {
		ms := members(group[i])
		linkable := false
		in := map[string]bool{}
		for _, m := range ms {
			linkable = linkable || len(held[m]) > 0
			in[cs[m].ID] = true
		}
		if len(ms) < 2 && !linkable {
			out[cs[i].ID] = ""
			continue
		}
		anchor := cs[ms[0]].ID
		var latest *identity.Decision
		for j, d := range kept {
			if d.Into != "" && in[d.Into] && in[d.A] && in[d.B] && (latest == nil || cmp.Or(d.At.Compare(latest.At), strings.Compare(d.ID(), latest.ID())) > 0) {
				latest = &kept[j]
			}
		}
		if latest != nil {
			anchor = latest.Into
		}
		out[cs[i].ID] = related.ProfileIDFor(anchor)
	}
	return out
}
