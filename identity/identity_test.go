package identity_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

func TestNormalize(t *testing.T) {
	email := identity.Rule{Attribute: "email", Normalizer: identity.NormalizeEmail, Enabled: true}
	phone := identity.Rule{Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, DefaultRegion: "GB"}
	exact := identity.Rule{Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: true}
	ci := identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true}
	tests := []struct {
		rule     identity.Rule
		in, want string
		ok       bool
	}{
		{email, "  Ann@Example.COM ", "ann@example.com", true},
		{email, "ann.b+tag@example.com", "ann.b+tag@example.com", true}, // distinct mailboxes stay distinct
		{email, "annexample.com", "", false},
		{email, "ann@localhost", "", false},
		{email, "a@b@c.com", "", false},
		{email, "a b@c.com", "", false},
		{phone, "07700 900123", "+447700900123", true},
		{phone, "+44 7700 900123", "+447700900123", true},
		{phone, "+1 (202) 555-0143", "+12025550143", true},
		{phone, "12", "", false},
		{phone, "not a number", "", false},
		{identity.Rule{Normalizer: identity.NormalizePhone}, "07700 900123", "", false}, // no region, no country code
		{exact, " A-1234 ", "A-1234", true},
		{ci, "AbC-9", "abc-9", true},
		{exact, "   ", "", false},
	}
	for _, tt := range tests {
		got, ok := tt.rule.Normalize(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s.Normalize(%q) = %q, %v; want %q, %v", tt.rule.Normalizer, tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBlocked(t *testing.T) {
	r, err := identity.Rule{Attribute: "email", Normalizer: identity.NormalizeEmail, Enabled: true,
		BlockedValues: []string{"noreply@*", "*@example.invalid", " Info@Shop.com ", "a*b*c@x.io"}}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	for v, blocked := range map[string]bool{
		"noreply@shop.com":    true,
		"NoReply@shop.com":    true,
		"reply@shop.com":      false,
		"bob@example.invalid": true,
		"info@shop.com":       true,
		"info2@shop.com":      false,
		"abc@x.io":            true,
		"a-b-c@x.io":          true,
		"ac@x.io":             false,
	} {
		if _, ok := r.Normalize(v); ok == blocked {
			t.Errorf("%q: linked=%v, want blocked=%v", v, ok, blocked)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := identity.Rule{Attribute: "email", Normalizer: identity.NormalizeEmail}
	for _, c := range []struct {
		field string
		edit  func(*identity.Rule)
	}{
		{"attribute", func(r *identity.Rule) { r.Attribute = " " }},
		{"attribute", func(r *identity.Rule) { r.Attribute = "has space" }},
		{"normalizer", func(r *identity.Rule) { r.Normalizer = "SOUNDEX" }},
		{"maxPerProfile", func(r *identity.Rule) { r.MaxPerProfile = -1 }},
		{"defaultRegion", func(r *identity.Rule) { r.DefaultRegion = "XX" }},
		{"blockedValues.1", func(r *identity.Rule) { r.BlockedValues = []string{"a@b.c", " "} }},
	} {
		r := ok
		c.edit(&r)
		_, err := r.Validate()
		e, isErr := related.AsError(err)
		if !isErr || strings.Join(e.Field, ".") != c.field {
			t.Errorf("%s: error = %v", c.field, err)
		}
	}
	if _, err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestClaims(t *testing.T) {
	rules := []identity.Rule{
		{ID: "e", Attribute: "email", Normalizer: identity.NormalizeEmail, Enabled: true},
		{ID: "p", Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, DefaultRegion: "US"},
		{ID: "o", Attribute: "orderNumber", Normalizer: identity.NormalizeExact, Enabled: false},
	}
	c := &related.Contact{Channel: related.ChannelSMS, Address: "+12025550143", Attributes: []related.Attribute{
		{Key: "email", Value: "Ann@X.io"}, {Key: "orderNumber", Value: "1"}, {Key: "phone", Value: "(202) 555-0143"}, {Key: "email", Value: "broken"},
	}}
	got := identity.Claims(rules, c)
	want := []identity.Claim{
		{Identifier: identity.Identifier{Key: "phone", Value: "+12025550143"}, RuleID: "p", Source: identity.Attested},
		{Identifier: identity.Identifier{Key: "email", Value: "ann@x.io"}, RuleID: "e", Source: identity.Claimed},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("claims = %v\nwant %v", got, want)
	}
	// Web chat visitor ids identify nobody across channels.
	if got := identity.Claims(rules, &related.Contact{Channel: related.ChannelWebChat, Address: "ann@x.io"}); len(got) != 0 {
		t.Fatalf("web chat address claimed %v", got)
	}
}

func TestWithDefaults(t *testing.T) {
	got := identity.WithDefaults("t", nil)
	if len(got) != 1 || got[0].Attribute != "email" || !got[0].Enabled {
		t.Fatalf("a new tenant's rules = %+v, want the email rule", got)
	}
	deleted := identity.DefaultRules("t")[0]
	deleted.Deleted = true
	if got := identity.WithDefaults("t", []identity.Rule{deleted}); len(got) != 0 {
		t.Fatalf("a deleted default came back: %+v", got)
	}
	custom := []identity.Rule{{ID: "x", Attribute: "orderNumber", Priority: 5}, {ID: "y", Attribute: "phone", Priority: 200}}
	got = identity.WithDefaults("t", custom)
	if len(got) != 3 || got[0].Attribute != "phone" || got[1].Attribute != "email" {
		t.Fatalf("rules = %+v, want priority order with the default", got)
	}
}

func TestName(t *testing.T) {
	rules := []identity.Rule{{Attribute: "email", Priority: 100}, {Attribute: "customerId", Priority: 200}}
	ids := []identity.Identifier{{Key: "email", Value: "b@x.io"}, {Key: "email", Value: "a@x.io"}, {Key: "orderNumber", Value: "9"}}
	if got := identity.Name(ids, rules); got != "a@x.io" {
		t.Fatalf("name = %q", got)
	}
	if got := identity.Name(append(ids, identity.Identifier{Key: "customerId", Value: "C-1"}), rules); got != "C-1" {
		t.Fatalf("name = %q, want the higher-priority identifier", got)
	}
	if got := identity.Name(nil, rules); got != "" {
		t.Fatalf("name of nothing = %q", got)
	}
}

func TestComponents(t *testing.T) {
	id := func(v string) identity.Identifier { return identity.Identifier{Key: "k", Value: v} }
	got := identity.Components([]identity.Member{
		{ContactID: "a", Identifiers: []identity.Identifier{id("1")}},
		{ContactID: "b", Identifiers: []identity.Identifier{id("2")}},
		{ContactID: "c", Identifiers: []identity.Identifier{id("2"), id("3")}},
		{ContactID: "d", Manual: true},
		{ContactID: "e", Identifiers: []identity.Identifier{id("1")}},
	})
	want := [][]string{{"a", "d", "e"}, {"b", "c"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("components = %v, want %v", got, want)
	}
}

// world applies Decide's plans to an in-memory state, as a store does.
type world struct {
	rules     []identity.Rule
	profile   map[string]string // contact -> profile
	owner     map[identity.Identifier]string
	created   map[string]time.Time
	counts    map[string]map[string]int
	seq       int
	conflicts int
}

func newWorld(rules []identity.Rule) *world {
	return &world{rules: rules, profile: map[string]string{}, owner: map[identity.Identifier]string{},
		created: map[string]time.Time{}, counts: map[string]map[string]int{}}
}

func (w *world) link(contact string, claims []identity.Claim) {
	in := identity.PlanInput{Home: w.profile[contact], Claims: claims, Owners: map[identity.Identifier]string{},
		Profiles: map[string]identity.ProfileFacts{}, Rules: w.rules}
	facts := func(p string) {
		in.Profiles[p] = identity.ProfileFacts{ID: p, CreatedAt: w.created[p], Counts: w.counts[p]}
	}
	if in.Home != "" {
		facts(in.Home)
	}
	for _, c := range claims {
		if o, ok := w.owner[c.Identifier]; ok {
			in.Owners[c.Identifier] = o
			facts(o)
		}
	}
	p := identity.Decide(in)
	w.conflicts += len(p.Conflicts)
	target := p.Profile
	if p.NewProfile {
		w.seq++
		target = fmt.Sprintf("p%03d", w.seq)
		w.created[target] = time.Unix(int64(w.seq), 0)
		w.counts[target] = map[string]int{}
	}
	for _, m := range p.Merges {
		for c, q := range w.profile {
			if q == m {
				w.profile[c] = target
			}
		}
		for id, q := range w.owner {
			if q == m {
				w.owner[id] = target
				w.counts[target][id.Key]++
			}
		}
		delete(w.counts, m)
	}
	for _, c := range p.Claim {
		w.owner[c.Identifier] = target
		w.counts[target][c.Key]++
	}
	if target != "" {
		w.profile[contact] = target
	}
}

// partition returns the groups of contacts sharing a profile, sorted.
func partition(profile map[string]string) []string {
	groups := map[string][]string{}
	for c, p := range profile {
		groups[p] = append(groups[p], c)
	}
	var out []string
	for _, g := range groups {
		sort.Strings(g)
		out = append(out, strings.Join(g, ","))
	}
	sort.Strings(out)
	return out
}

// TestDecideMatchesUnionFind applies random traffic in random orders and
// holds the resulting partition to a union-find of contacts by shared value.
func TestDecideMatchesUnionFind(t *testing.T) {
	rules := []identity.Rule{{ID: "k", Attribute: "k", Normalizer: identity.NormalizeExact, Enabled: true}}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		type write struct {
			contact string
			values  []string
		}
		var writes []write
		for i := range 30 {
			var vs []string
			for range rng.IntN(3) {
				vs = append(vs, fmt.Sprint(rng.IntN(25)))
			}
			writes = append(writes, write{fmt.Sprintf("c%02d", i%15), vs})
		}
		// The oracle: union-find over contacts by value.
		parent := map[string]string{}
		var find func(string) string
		find = func(x string) string {
			if parent[x] == "" || parent[x] == x {
				parent[x] = x
				return x
			}
			r := find(parent[x])
			parent[x] = r
			return r
		}
		holder := map[string]string{}
		seen := map[string][]identity.Claim{}
		for _, w := range writes {
			for _, v := range w.values {
				if h, ok := holder[v]; ok {
					parent[find(w.contact)] = find(h)
				} else {
					holder[v] = w.contact
				}
			}
		}
		oracle := map[string]string{}
		for _, w := range writes {
			if len(w.values) > 0 || oracle[w.contact] != "" {
				oracle[w.contact] = find(w.contact)
			}
		}
		// Contacts accumulate values across writes, as attributes do.
		for _, order := range [][]int{rng.Perm(len(writes)), rng.Perm(len(writes))} {
			wd := newWorld(rules)
			for k := range seen {
				delete(seen, k)
			}
			for _, i := range order {
				w := writes[i]
				for _, v := range w.values {
					cl := identity.Claim{Identifier: identity.Identifier{Key: "k", Value: v}, RuleID: "k", Source: identity.Claimed}
					if !slices.Contains(seen[w.contact], cl) {
						seen[w.contact] = append(seen[w.contact], cl)
					}
				}
				wd.link(w.contact, seen[w.contact])
			}
			if got, want := partition(wd.profile), partition(oracle); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d: partition %v\nwant %v", seed, got, want)
			}
		}
	}
}

func TestDecideGuards(t *testing.T) {
	email := identity.Identifier{Key: "email", Value: "a@x.io"}
	order := identity.Identifier{Key: "order", Value: "1"}
	rules := []identity.Rule{{Attribute: "email", MaxPerProfile: 1}, {Attribute: "order"}}
	t0 := time.Unix(0, 0)
	pA := identity.ProfileFacts{ID: "A", CreatedAt: t0, Counts: map[string]int{"email": 1}}
	pB := identity.ProfileFacts{ID: "B", CreatedAt: t0.Add(time.Hour), Counts: map[string]int{"email": 1, "order": 1}}
	claims := []identity.Claim{{Identifier: order}, {Identifier: email}}

	// The contact (in B) shares an email with A: merging would give the
	// profile two emails, over the limit of one.
	p := identity.Decide(identity.PlanInput{Home: "B", Claims: claims, Owners: map[identity.Identifier]string{email: "A", order: "B"},
		Profiles: map[string]identity.ProfileFacts{"A": pA, "B": pB}, Rules: rules})
	if p.Profile != "B" || len(p.Merges) != 0 || len(p.Conflicts) != 1 || p.Conflicts[0].Reason != identity.ConflictMaxPerProfile {
		t.Fatalf("plan = %+v, want B kept apart from A with a conflict", p)
	}
	// Without the limit, B merges into the older A.
	p = identity.Decide(identity.PlanInput{Home: "B", Claims: claims, Owners: map[identity.Identifier]string{email: "A", order: "B"},
		Profiles: map[string]identity.ProfileFacts{"A": pA, "B": pB}})
	if p.Profile != "A" || fmt.Sprint(p.Merges) != "[B]" || len(p.Links) != 2 {
		t.Fatalf("plan = %+v, want B merged into A", p)
	}
	// Do-not-link keeps a contact out of a profile it was unlinked from.
	p = identity.Decide(identity.PlanInput{Claims: []identity.Claim{{Identifier: email}}, Owners: map[identity.Identifier]string{email: "A"},
		Profiles: map[string]identity.ProfileFacts{"A": pA}, DoNotLink: map[string]bool{"A": true}})
	if p.Profile != "" || p.NewProfile || len(p.Conflicts) != 1 || p.Conflicts[0].Reason != identity.ConflictDoNotLink {
		t.Fatalf("plan = %+v, want no link and a do-not-link conflict", p)
	}
	// A fresh contact with fresh values gets a new profile.
	p = identity.Decide(identity.PlanInput{Claims: claims})
	if !p.NewProfile || len(p.Claim) != 2 {
		t.Fatalf("plan = %+v, want a new profile claiming both", p)
	}
	// No claims, no profile: nothing.
	if p := identity.Decide(identity.PlanInput{}); !p.Empty() {
		t.Fatalf("plan = %+v, want empty", p)
	}
}
