package identity_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// Rules of the scenarios: the defaults a tenant would get for each key.
var (
	emailRule = identity.Rule{ID: "r-email", Attribute: "email", Normalizer: identity.NormalizeEmail, Enabled: true,
		Priority: 100, AutoMerge: identity.AutoMergeAttested, MaxContactsPerValue: 10}
	phoneRule = identity.Rule{ID: "r-phone", Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true,
		Priority: 50, AutoMerge: identity.AutoMergeAttested, MaxContactsPerValue: 10, DefaultRegion: "GB"}
	customerRule = identity.Rule{ID: "r-cust", Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true,
		Priority: 200, AutoMerge: identity.AutoMergeAny, MaxContactsPerValue: 10, MaxPerProfile: 1}
	orderRule = identity.Rule{ID: "r-order", Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: true,
		Priority: 10, AutoMerge: identity.AutoMergeNever, MaxContactsPerValue: 10}
	allRules = []identity.Rule{emailRule, phoneRule, customerRule, orderRule}
)

// fact describes a claim compactly: "email=ann@x.io" is claimed,
// "email=ann@x.io!" attested, "email=ann@x.io~" set by an agent.
func claim(f string) identity.Claim {
	k, v, _ := strings.Cut(f, "=")
	c := identity.Claim{Identifier: identity.Identifier{Key: k, Value: v}, RuleID: "r-" + k, Source: identity.Claimed}
	switch {
	case strings.HasSuffix(v, "!"):
		c.Value, c.Source = strings.TrimSuffix(v, "!"), identity.Attested
	case strings.HasSuffix(v, "~"):
		c.Value, c.Agent = strings.TrimSuffix(v, "~"), true
	}
	return c
}

func contact(id, name string, facts ...string) identity.ContactFacts {
	c := identity.ContactFacts{ID: id, Channel: related.ChannelEmail, Name: name, Address: id + "@addr"}
	for _, f := range facts {
		c.Claims = append(c.Claims, claim(f))
	}
	return c
}

func values(in identity.Input) map[identity.Identifier]identity.ValueFacts {
	out := map[identity.Identifier]identity.ValueFacts{}
	for _, c := range in.Contacts {
		for _, cl := range c.Claims {
			v := out[cl.Identifier]
			v.Contacts++
			out[cl.Identifier] = v
		}
	}
	for id, v := range in.Values {
		out[id] = v
	}
	return out
}

// groups renders a partition as sorted groups of contact ids, "-" for a
// contact in no profile: "[a b] [c] -d".
func groups(res identity.Result) string {
	by := map[string][]string{}
	var none []string
	for c, p := range res.Assignment {
		if p == "" {
			none = append(none, "-"+c)
			continue
		}
		by[p] = append(by[p], c)
	}
	var out []string
	for _, cs := range by {
		slices.Sort(cs)
		out = append(out, "["+strings.Join(cs, " ")+"]")
	}
	slices.Sort(out)
	slices.Sort(none)
	return strings.TrimSpace(strings.Join(out, " ") + " " + strings.Join(none, " "))
}

func pairs(res identity.Result) string {
	var out []string
	for _, p := range res.Pairs {
		out = append(out, fmt.Sprintf("%s %s=%s %s-%s %s", p.Kind, p.Key, p.Value, p.A, p.B, p.Reason))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

func TestPartitionScenarios(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		in        identity.Input
		want      string // groups
		wantPairs string
	}{{
		name: "the same attested email on two channels is one person",
		in:   identity.Input{Contacts: []identity.ContactFacts{contact("a", "", "email=ann@x.io!"), contact("b", "", "email=ann@x.io!")}},
		want: "[a b]",
	}, {
		name:      "an email typed into a chat only suggests",
		in:        identity.Input{Contacts: []identity.ContactFacts{contact("a", "", "email=ann@x.io!"), contact("b", "", "email=ann@x.io")}},
		want:      "[a] [b]",
		wantPairs: "SUGGESTION email=ann@x.io a-b CLAIMED",
	}, {
		name: "a gift buyer and recipient sharing an order number stay apart",
		in: identity.Input{Contacts: []identity.ContactFacts{
			contact("buyer", "", "email=buyer@x.io!", "orderNumber=A-1!"), contact("recipient", "", "email=rec@x.io!", "orderNumber=A-1!")}},
		want:      "[buyer] [recipient]",
		wantPairs: "SUGGESTION orderNumber=A-1 buyer-recipient NEVER_MERGES",
	}, {
		name: "a claimed email does not outrank a customer id",
		in: identity.Input{Contacts: []identity.ContactFacts{
			contact("ann", "", "email=ann@x.io!"), contact("bob", "", "customerId=c-2", "email=bob@x.io!"),
			contact("chat", "", "email=ann@x.io", "customerId=c-2")}},
		want:      "[ann] [bob chat]",
		wantPairs: "SUGGESTION email=ann@x.io ann-chat CLAIMED",
	}, {
		name: "an agent's value never merges, even under ANY",
		in: identity.Input{Contacts: []identity.ContactFacts{
			contact("a", "", "customerId=c-1!"), contact("b", "", "customerId=c-1~")}},
		want:      "[a] [b]",
		wantPairs: "SUGGESTION customerId=c-1 a-b AGENT_SET",
	}, {
		name: "a hub value links nothing",
		in: identity.Input{
			Contacts: []identity.ContactFacts{contact("a", "", "email=info@co.io!"), contact("b", "", "email=info@co.io!")},
			Values:   map[identity.Identifier]identity.ValueFacts{{Key: "email", Value: "info@co.io"}: {Contacts: 30}}},
		want: "-a -b",
	}, {
		name: "an allowed hub value links",
		in: identity.Input{
			Contacts: []identity.ContactFacts{contact("a", "", "email=info@co.io!"), contact("b", "", "email=info@co.io!")},
			Values:   map[identity.Identifier]identity.ValueFacts{{Key: "email", Value: "info@co.io"}: {Contacts: 30, State: identity.QuarantineAllowed}}},
		want: "[a b]",
	}, {
		name: "a blocked value links nothing however few hold it",
		in: identity.Input{
			Contacts: []identity.ContactFacts{contact("a", "", "email=x@co.io!", "phone=+441!"), contact("b", "", "email=x@co.io!")},
			Values:   map[identity.Identifier]identity.ValueFacts{{Key: "email", Value: "x@co.io"}: {Contacts: 2, State: identity.QuarantineBlocked}}},
		want: "[a] -b",
	}, {
		name: "max per profile keeps the stronger link whatever the order",
		in: identity.Input{Contacts: []identity.ContactFacts{
			contact("a", "", "customerId=c-1!", "email=shared@x.io!"),
			contact("b", "", "customerId=c-2!", "email=shared@x.io!"),
			contact("c", "", "customerId=c-1!")}},
		// customerId has the higher priority: a-c join first; then the
		// shared email would give the profile two customer ids.
		want:      "[a c] [b]",
		wantPairs: "CONFLICT email=shared@x.io a-b MAX_PER_PROFILE",
	}, {
		name: "keep apart holds against the rules",
		in: identity.Input{
			Contacts:  []identity.ContactFacts{contact("a", "", "email=ann@x.io!"), contact("b", "", "email=ann@x.io!")},
			Decisions: []identity.Decision{identity.NewDecision(identity.KeepApart, "b", "a")}},
		want: "[a] [b]",
	}, {
		name: "keep together holds past the limits, and keeps the chosen id",
		in: identity.Input{
			Contacts: []identity.ContactFacts{contact("a", "", "customerId=c-1!"), contact("b", "", "customerId=c-2!"), contact("c", "")},
			Decisions: []identity.Decision{
				{Kind: identity.KeepTogether, A: "a", B: "b", Into: "b", At: t0},
				{Kind: identity.KeepTogether, A: "b", B: "c", At: t0.Add(time.Second)}}},
		want: "[a b c]",
	}, {
		name: "contacts without identifiers stay alone",
		in:   identity.Input{Contacts: []identity.ContactFacts{contact("a", ""), contact("b", "", "email=bad@x.io", "orderNumber=1")}},
		want: "[b] -a",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Rules = allRules
			tt.in.Values = values(tt.in)
			res := identity.Partition(tt.in)
			if got := groups(res); got != tt.want {
				t.Errorf("groups = %s, want %s", got, tt.want)
			}
			if got := pairs(res); got != tt.wantPairs {
				t.Errorf("pairs = %s\nwant    %s", got, tt.wantPairs)
			}
		})
	}
}

func TestPartitionIDsAndNames(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := identity.Input{
		Rules: allRules,
		Contacts: []identity.ContactFacts{
			contact("c1", "", "email=ann@x.io!", "customerId=C-9!"),
			contact("c2", "Ann Lee", "email=ann@x.io!"),
			contact("c3", "Ann Lee", "email=ann@x.io!"),
			contact("c4", "A. Lee", "email=ann@x.io!"),
			contact("d1", "", "phone=+447400123456!", "email=dee@x.io"),
		},
	}
	in.Values = values(in)
	res := identity.Partition(in)
	byID := map[string]identity.ProfileResult{}
	for _, p := range res.Profiles {
		byID[p.ID] = p
	}
	p, ok := byID[related.ProfileIDFor("c1")]
	if !ok {
		t.Fatalf("profiles %v: want one anchored at the smallest contact id", res.Profiles)
	}
	if p.Name() != "Ann Lee" {
		t.Errorf("name = %q, want the most common person name", p.Name())
	}
	d := byID[related.ProfileIDFor("d1")]
	if d.Name() != "+447400123456" {
		t.Errorf("name = %q, want the attested identifier (the claimed email has a higher priority but is claimed)", d.Name())
	}
	// A merge into c4's profile keeps c4's id, and the latest rename wins.
	in.Contacts = append(in.Contacts, contact("b0", "Bee"))
	in.Decisions = []identity.Decision{{Kind: identity.KeepTogether, A: "b0", B: "c4", Into: "c4", At: t0}}
	in.Renames = []identity.Rename{{Anchor: "c2", Name: "Old", At: t0}, {Anchor: "c3", Name: "New", At: t0.Add(time.Minute)}}
	res = identity.Partition(in)
	if got := res.Assignment["b0"]; got != related.ProfileIDFor("c4") {
		t.Errorf("merged profile id = %s, want the into profile's (anchored at c4)", got)
	}
	for _, p := range res.Profiles {
		if p.ID == related.ProfileIDFor("c4") && p.Name() != "New" {
			t.Errorf("name = %q, want the latest rename", p.Name())
		}
	}
}

// randomInput makes a tenant's worth of facts: people with emails, phones
// and customer ids, some attested, some claimed, some set by agents, hub
// values, shared order numbers, and manual decisions.
func randomInput(rng *rand.Rand, n int) identity.Input {
	in := identity.Input{Rules: allRules}
	people := max(1, n/3)
	for i := range n {
		p := rng.IntN(people)
		var facts []string
		mark := func() string {
			switch rng.IntN(6) {
			case 0:
				return ""
			case 1:
				return "~"
			}
			return "!"
		}
		if rng.IntN(3) > 0 {
			facts = append(facts, fmt.Sprintf("email=p%d@x.io%s", p, mark()))
		}
		if rng.IntN(3) == 0 {
			facts = append(facts, fmt.Sprintf("phone=+44740%d%s", p%7, mark()))
		}
		if rng.IntN(4) == 0 {
			facts = append(facts, fmt.Sprintf("customerId=c-%d%s", rng.IntN(people), mark()))
		}
		if rng.IntN(5) == 0 {
			facts = append(facts, fmt.Sprintf("orderNumber=o-%d!", rng.IntN(4)))
		}
		if rng.IntN(8) == 0 {
			facts = append(facts, "email=info@co.io!")
		}
		in.Contacts = append(in.Contacts, contact(fmt.Sprintf("k%03d", i), fmt.Sprint("Person ", p%5), facts...))
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n / 6 {
		a, b := in.Contacts[rng.IntN(n)].ID, in.Contacts[rng.IntN(n)].ID
		if a == b {
			continue
		}
		kind := identity.KeepApart
		if rng.IntN(2) == 0 {
			kind = identity.KeepTogether
		}
		d := identity.NewDecision(kind, a, b)
		d.At = t0.Add(time.Duration(i) * time.Second)
		if kind == identity.KeepTogether && rng.IntN(2) == 0 {
			d.Into = a
		}
		in.Decisions = append(in.Decisions, d)
	}
	in.Values = values(in)
	return in
}

func shuffled(rng *rand.Rand, in identity.Input) identity.Input {
	out := in
	out.Contacts = slices.Clone(in.Contacts)
	rng.Shuffle(len(out.Contacts), func(i, j int) { out.Contacts[i], out.Contacts[j] = out.Contacts[j], out.Contacts[i] })
	for i := range out.Contacts {
		cs := slices.Clone(out.Contacts[i].Claims)
		rng.Shuffle(len(cs), func(a, b int) { cs[a], cs[b] = cs[b], cs[a] })
		out.Contacts[i].Claims = cs
	}
	out.Decisions = slices.Clone(in.Decisions)
	rng.Shuffle(len(out.Decisions), func(i, j int) { out.Decisions[i], out.Decisions[j] = out.Decisions[j], out.Decisions[i] })
	out.Rules = slices.Clone(in.Rules)
	rng.Shuffle(len(out.Rules), func(i, j int) { out.Rules[i], out.Rules[j] = out.Rules[j], out.Rules[i] })
	return out
}

func render(res identity.Result) string {
	var b strings.Builder
	for _, p := range res.Profiles {
		fmt.Fprintf(&b, "%s %v %v %q\n", p.ID, p.Contacts, p.Identifiers, p.Name())
	}
	b.WriteString(pairs(res))
	return b.String()
}

// TestPartitionIsAFunctionOfTheFacts: shuffling the order of contacts,
// claims, decisions and rules changes nothing.
func TestPartitionIsAFunctionOfTheFacts(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		in := randomInput(rng, 10+rng.IntN(60))
		want := render(identity.Partition(in))
		for range 3 {
			if got := render(identity.Partition(shuffled(rng, in))); got != want {
				t.Fatalf("seed %d: a shuffled order gave\n%s\nwant\n%s", seed, got, want)
			}
		}
	}
}

// TestPartitionInvariants checks the guarantees on random facts: no
// profile holds more values of a key than its rule allows; no profile is
// joined through a quarantined value or a value that may not merge unless
// a person decided; keep-apart decisions hold; and deciding again from
// the result changes nothing.
func TestPartitionInvariants(t *testing.T) {
	rules := map[string]identity.Rule{}
	for _, r := range allRules {
		rules[r.Attribute] = r
	}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 2))
		in := randomInput(rng, 5+rng.IntN(80))
		res := identity.Partition(in)
		byContact := map[string]identity.ContactFacts{}
		for _, c := range in.Contacts {
			byContact[c.ID] = c
		}
		for _, p := range res.Profiles {
			manual := slices.ContainsFunc(in.Decisions, func(d identity.Decision) bool {
				return d.Kind == identity.KeepTogether && slices.Contains(p.Contacts, d.A)
			})
			perKey := map[string]int{}
			for _, id := range p.Identifiers {
				perKey[id.Key]++
			}
			for k, n := range perKey {
				if m := rules[k].MaxPerProfile; m > 0 && n > m && !manual { // a person may merge past a limit
					t.Fatalf("seed %d: profile %s holds %d values of %s (max %d)", seed, p.ID, n, k, m)
				}
			}
			if h := (identity.Identifier{Key: "email", Value: "info@co.io"}); slices.ContainsFunc(p.Identifiers, func(x related.ProfileIdentifier) bool { return x.Identifier == h }) && in.Values[h].Contacts > 10 {
				t.Fatalf("seed %d: profile %s holds the quarantined hub value", seed, p.ID)
			}
			// Every profile of several contacts is connected by
			// mergeable edges and keep-together decisions.
			if !connected(p.Contacts, byContact, in, rules) {
				t.Fatalf("seed %d: profile %s (%v) is joined through something that may not merge", seed, p.ID, p.Contacts)
			}
		}
		for _, d := range in.Decisions {
			if d.Kind == identity.KeepApart && res.Assignment[d.A] != "" && res.Assignment[d.A] == res.Assignment[d.B] {
				t.Fatalf("seed %d: %s and %s kept apart, yet both in %s", seed, d.A, d.B, res.Assignment[d.A])
			}
		}
		again := in
		again.Contacts = slices.Clone(in.Contacts)
		for i := range again.Contacts {
			again.Contacts[i].Profile = res.Assignment[again.Contacts[i].ID]
		}
		again.Pairs = res.Pairs
		if ev := identity.Partition(again).Events; len(ev) != 0 {
			t.Fatalf("seed %d: deciding again changed %v", seed, ev)
		}
	}
}

// connected reports whether members are connected by edges that may merge
// on their own (through linkable values) and by keep-together decisions.
func connected(members []string, by map[string]identity.ContactFacts, in identity.Input, rules map[string]identity.Rule) bool {
	seen := map[string]bool{members[0]: true}
	queue := []string{members[0]}
	isMember := map[string]bool{}
	for _, m := range members {
		isMember[m] = true
	}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		for _, o := range members {
			if seen[o] {
				continue
			}
			ok := slices.ContainsFunc(in.Decisions, func(d identity.Decision) bool {
				return d.Kind == identity.KeepTogether && (d.A == c && d.B == o || d.A == o && d.B == c)
			})
			for _, x := range by[c].Claims {
				for _, y := range by[o].Claims {
					r := rules[x.Key]
					if x.Identifier == y.Identifier && !r.Quarantined(in.Values[x.Identifier]) {
						if m, _ := r.Merges(x, y); m {
							ok = true
						}
					}
				}
			}
			if ok {
				seen[o] = true
				queue = append(queue, o)
			}
		}
	}
	return len(seen) == len(members)
}

// TestPartitionIsLocal: deciding two clusters together gives what
// deciding each alone gives, so a store may recompute only what a write
// touches.
func TestPartitionIsLocal(t *testing.T) {
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 3))
		in := randomInput(rng, 40)
		whole := identity.Partition(in)
		// Split the contacts by the profile they got (profiles never
		// span clusters), deciding each profile's contacts alone.
		by := map[string][]identity.ContactFacts{}
		for _, c := range in.Contacts {
			by[whole.Assignment[c.ID]] = append(by[whole.Assignment[c.ID]], c)
		}
		for p, cs := range by {
			if p == "" {
				continue
			}
			part := in
			part.Contacts = cs
			res := identity.Partition(part)
			for _, c := range cs {
				if res.Assignment[c.ID] != whole.Assignment[c.ID] && clusterOf(in, c.ID) == len(cs) {
					t.Fatalf("seed %d: %s is in %s alone, %s in the whole", seed, c.ID, res.Assignment[c.ID], whole.Assignment[c.ID])
				}
			}
		}
	}
}

// clusterOf is the size of the cluster of contact id: the contacts
// reachable through mergeable edges and keep-together decisions, whatever
// the constraints.
func clusterOf(in identity.Input, id string) int {
	rules := map[string]identity.Rule{}
	for _, r := range in.Rules {
		rules[r.Attribute] = r
	}
	by := map[string]identity.ContactFacts{}
	var all []string
	for _, c := range in.Contacts {
		by[c.ID] = c
		all = append(all, c.ID)
	}
	seen := map[string]bool{id: true}
	queue := []string{id}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		for _, o := range all {
			if seen[o] {
				continue
			}
			if connected([]string{c, o}, by, in, rules) {
				seen[o] = true
				queue = append(queue, o)
			}
		}
	}
	return len(seen)
}

func BenchmarkPartition(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprint("contacts=", n), func(b *testing.B) {
			in := identity.Input{Rules: allRules}
			for i := range n {
				in.Contacts = append(in.Contacts, contact(fmt.Sprintf("k%03d", i), "Ann",
					"email=ann@x.io!", fmt.Sprintf("phone=+44740012%04d!", i)))
			}
			in.Values = values(in)
			in.Values[identity.Identifier{Key: "email", Value: "ann@x.io"}] = identity.ValueFacts{Contacts: n, State: identity.QuarantineAllowed}
			b.ReportAllocs()
			for b.Loop() {
				if res := identity.Partition(in); len(res.Profiles) != 1 {
					b.Fatal(len(res.Profiles))
				}
			}
		})
	}
}
