package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// testPreviewIsApply previews rule changes on random data, applies them,
// and holds the preview to what the change did: the same profiles merged,
// split, created and removed, the same contacts moved, the same new
// suggestions and conflicts and newly quarantined values; and holds the
// run's own summary to the preview, count by count (unchanged profiles
// too).
func testPreviewIsApply(t *testing.T, open Opener) {
	changes := []struct {
		name string
		edit func(rules []identity.Rule) ([]identity.Rule, string) // the next rules, and the id of a rule to delete instead
	}{
		{"disable customerId", func(rs []identity.Rule) ([]identity.Rule, string) {
			return edit(rs, "customerId", func(r *identity.Rule) { r.Enabled = false }), ""
		}},
		{"order numbers merge", func(rs []identity.Rule) ([]identity.Rule, string) {
			return edit(rs, "orderNumber", func(r *identity.Rule) { r.AutoMerge = identity.AutoMergeAny }), ""
		}},
		{"emails merge when claimed", func(rs []identity.Rule) ([]identity.Rule, string) {
			return edit(rs, "email", func(r *identity.Rule) { r.AutoMerge = identity.AutoMergeAny }), ""
		}},
		{"a tighter hub bound", func(rs []identity.Rule) ([]identity.Rule, string) {
			return edit(rs, "email", func(r *identity.Rule) { r.MaxContactsPerValue = 2 }), ""
		}},
		{"customer ids without a limit", func(rs []identity.Rule) ([]identity.Rule, string) {
			return edit(rs, "customerId", func(r *identity.Rule) { r.MaxPerProfile = 0 }), ""
		}},
		{"delete the phone rule", func(rs []identity.Rule) ([]identity.Rule, string) {
			i := slices.IndexFunc(rs, func(r identity.Rule) bool { return r.Attribute == "phone" })
			return slices.Delete(slices.Clone(rs), i, i+1), rs[i].ID
		}},
	}
	ops, people := 240, 30
	switch slow := open(t).Slow; {
	case slow && raceEnabled:
		ops, people = 24, 6
	case slow:
		ops, people = 40, 8
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			e := open(t)
			ctx := context.Background()
			sc := newScript(rand.New(rand.NewPCG(21, 8)), ops, people)
			sc.setup(t, e.Store)
			sc.data(t, e.Store, sc.order(nil), 1)
			rules, err := e.Store.ProfileRules(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			next, deleted := c.edit(rules)
			before, err := e.Store.TenantFacts(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			hubsBefore := quarantined(t, e.Store)
			pv, err := e.Store.PreviewRules(ctx, "t1", next)
			if err != nil {
				t.Fatal(err)
			}
			if pv.Partial {
				t.Fatal("a small preview was cut short")
			}
			if after, _ := e.Store.TenantFacts(ctx, "t1"); snapshotOf(after) != snapshotOf(before) {
				t.Fatal("the preview changed the stored profiles")
			}
			if deleted != "" {
				if err := e.Store.DeleteProfileRule(ctx, "t1", deleted); err != nil {
					t.Fatal(err)
				}
				drain(t, e.Store, "t1")
			} else {
				for _, r := range next {
					if i := slices.IndexFunc(rules, func(x identity.Rule) bool { return x.ID == r.ID }); i >= 0 && !sameRule(rules[i], r) {
						saveRule(t, e.Store, "t1", r)
					}
				}
			}
			after, err := e.Store.TenantFacts(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			res := identity.Result{Assignment: map[string]string{}}
			for _, c := range after.Contacts {
				res.Assignment[c.ID] = c.Profile
			}
			res.Pairs = after.Pairs
			did := identity.Summarize(before, res)
			did.Quarantined = len(slices.DeleteFunc(quarantined(t, e.Store), func(v string) bool { return slices.Contains(hubsBefore, v) }))
			got := []int{pv.Merged, pv.Split, pv.Created, pv.Removed, pv.ContactsMoved, pv.Suggestions, pv.Quarantined}
			want := []int{did.Merged, did.Split, did.Created, did.Removed, did.ContactsMoved, did.Suggestions, did.Quarantined}
			if !slices.Equal(got, want) {
				t.Fatalf("preview (merged, split, created, removed, moved, suggestions, quarantined) = %v; the change did %v", got, want)
			}
			if changed := did.Merged + did.Split + did.Created + did.Removed; changed > 0 && len(pv.Samples) == 0 {
				t.Fatal("a preview of changes shows no sample")
			}
			// The run reports what its preview said, count by count, and
			// shows some of the changes.
			ev, err := e.Store.RuleEvaluation(ctx, "t1")
			if err != nil || ev == nil || ev.State != related.JobDone || ev.Processed != ev.Total {
				t.Fatalf("evaluation = %+v, %v", ev, err)
			}
			if got, want := countsOf(ev.Summary), countsOf(pv.Summary); got != want {
				t.Fatalf("the run reports %s; its preview said %s", got, want)
			}
			if changed := did.Merged + did.Split + did.Created + did.Removed; changed > 0 &&
				len(ev.Summary.Samples) != min(len(pv.Samples), identity.MaxSamples) {
				t.Fatalf("the run shows %d samples, its preview %d", len(ev.Summary.Samples), len(pv.Samples))
			}
			t.Logf("%s: %+v (touched %d contacts)", c.name, got, pv.Contacts)
		})
	}
}

func edit(rules []identity.Rule, attribute string, fn func(*identity.Rule)) []identity.Rule {
	out := slices.Clone(rules)
	for i := range out {
		if out[i].Attribute == attribute {
			fn(&out[i])
		}
	}
	return out
}

func sameRule(a, b identity.Rule) bool {
	return a.Enabled == b.Enabled && a.AutoMerge == b.AutoMerge && a.MaxPerProfile == b.MaxPerProfile &&
		a.MaxContactsPerValue == b.MaxContactsPerValue && a.Priority == b.Priority && a.Normalizer == b.Normalizer
}

// quarantined lists the values that link nothing because of their count.
func quarantined(t *testing.T, s store.Store) []string {
	t.Helper()
	page, err := s.HubValues(context.Background(), "t1", store.Page{First: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range page.Items {
		if h.Quarantined {
			out = append(out, h.Key+"="+h.Value)
		}
	}
	return out
}

// snapshotOf renders facts' stored assignment.
func snapshotOf(in identity.Input) string {
	var out []byte
	for _, c := range in.Contacts {
		out = append(out, c.ID+">"+c.Profile+";"...)
	}
	return string(out)
}

// testEvaluationIsPreview creates a rule for a value three contacts share
// with a hub bound of two, and runs its re-evaluation in batches small
// enough that the holders fall into different ones. No batch may link two
// of them before a later one counts the third (a merge agents would see,
// undone a moment later), and the run's summary is the preview's, count
// by count.
func testEvaluationIsPreview(t *testing.T, open Opener) {
	for _, batch := range []int{1, 2, 3, 200} {
		t.Run(fmt.Sprint("batch of ", batch), func(t *testing.T) {
			e := open(t)
			ctx := context.Background()
			loyal := func(thread, addr, id string) *store.RecordResult {
				return record(t, e.Store, "t1", withAttested(msg(t, related.ChannelEmail, thread, addr, "hi", base), "loyaltyId", id))
			}
			// Three holders of a hub value, one holder of its own value,
			// two who share one, and a contact without any.
			hub := []*store.RecordResult{loyal("h1", "h1@x.io", "L-1"), loyal("h2", "h2@x.io", "L-1"), loyal("h3", "h3@x.io", "L-1")}
			loyal("own", "own@x.io", "L-2")
			pair := []*store.RecordResult{loyal("p1", "p1@x.io", "L-3"), loyal("p2", "p2@x.io", "L-3")}
			record(t, e.Store, "t1", msg(t, related.ChannelEmail, "none", "none@x.io", "hi", base))
			hubProfiles := map[string]bool{}
			for _, r := range hub {
				hubProfiles[pid(t, e.Store, "t1", r)] = true
			}
			rule, err := identity.Rule{Attribute: "loyaltyId", Normalizer: identity.NormalizeExact, Enabled: true,
				AutoMerge: identity.AutoMergeAny, MaxContactsPerValue: 2}.Validate()
			if err != nil {
				t.Fatal(err)
			}
			rules, err := e.Store.ProfileRules(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			pv, err := e.Store.PreviewRules(ctx, "t1", append(slices.Clone(rules), rule))
			if err != nil {
				t.Fatal(err)
			}
			if pv.Merged != 1 || pv.Split != 0 || pv.ContactsMoved != 1 || pv.Quarantined != 1 || pv.Unchanged != 4 {
				t.Fatalf("preview = %+v; want the pair merged, the hub value quarantined, four profiles unchanged", pv.Summary)
			}
			if _, err := e.Store.SaveProfileRule(ctx, "t1", rule); err != nil {
				t.Fatal(err)
			}
			drainBy(t, e.Store, "t1", batch)
			for p := range hubProfiles {
				h, err := e.Store.ProfileHistory(ctx, "t1", p, store.Page{First: store.MaxPageSize})
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range h.Items {
					if ev.Kind == identity.EventMerged || ev.Kind == identity.EventSplit {
						t.Errorf("a holder of the hub value was %s during the run (profiles %v)", ev.Kind, ev.Profiles)
					}
				}
			}
			if pid(t, e.Store, "t1", pair[0]) != pid(t, e.Store, "t1", pair[1]) {
				t.Fatal("the pair sharing a value was not merged")
			}
			ev, err := e.Store.RuleEvaluation(ctx, "t1")
			if err != nil || ev == nil || ev.State != related.JobDone || ev.Processed != ev.Total {
				t.Fatalf("evaluation = %+v, %v", ev, err)
			}
			if got, want := countsOf(ev.Summary), countsOf(pv.Summary); got != want {
				t.Fatalf("the run did %s; its preview said %s", got, want)
			}
		})
	}
}

// countsOf renders a summary's counts, named.
func countsOf(s identity.Summary) string {
	return fmt.Sprintf("merged %d, split %d, created %d, removed %d, unchanged %d, moved %d, quarantined %d, suggestions %d",
		s.Merged, s.Split, s.Created, s.Removed, s.Unchanged, s.ContactsMoved, s.Quarantined, s.Suggestions)
}

// drainBy runs a tenant's rule re-evaluation to its end, batch contacts
// at a time.
func drainBy(t *testing.T, s store.Store, tenant string, batch int) {
	t.Helper()
	for range 10000 {
		done, err := s.EvaluateRules(context.Background(), tenant, batch)
		if err != nil {
			t.Fatalf("evaluate rules: %v", err)
		}
		if done {
			return
		}
	}
	t.Fatal("rule evaluation never finished")
}

// testChangeDuringEvaluation changes a second rule while the evaluation of
// a first is still running (in its first phase, or its second): the run
// starts again over both changes' contacts, and when it ends the profiles
// are what the facts make, those the first change took values from too.
func testChangeDuringEvaluation(t *testing.T, open Opener) {
	ops, people := 120, 20
	if open(t).Slow {
		ops, people = 40, 8
	}
	const batch = 3
	for _, c := range []struct {
		name   string
		steps  func(contacts int) int // batches of the first run before the second change
		second bool                   // the steps reach its second phase
	}{
		{"in the first phase", func(int) int { return 1 }, false},
		{"in the second phase", func(n int) int { return n/batch + 2 }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := open(t)
			ctx := context.Background()
			sc := newScript(rand.New(rand.NewPCG(5, 3)), ops, people)
			sc.setup(t, e.Store)
			sc.data(t, e.Store, sc.order(nil), 1)
			facts, err := e.Store.TenantFacts(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			rules, err := e.Store.ProfileRules(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			phone := rules[slices.IndexFunc(rules, func(r identity.Rule) bool { return r.Attribute == "phone" })]
			if err := e.Store.DeleteProfileRule(ctx, "t1", phone.ID); err != nil {
				t.Fatal(err)
			}
			for range c.steps(len(facts.Contacts)) {
				if done, err := e.Store.EvaluateRules(ctx, "t1", batch); err != nil || done {
					t.Fatalf("evaluate rules: done %v, %v", done, err)
				}
			}
			// Every contact is a step of each phase.
			if ev, err := e.Store.RuleEvaluation(ctx, "t1"); err != nil || (ev.Processed > len(facts.Contacts)) != c.second {
				t.Fatalf("after the first batches: %+v, %v; want it in phase 2: %v", ev, err, c.second)
			}
			orders := rules[slices.IndexFunc(rules, func(r identity.Rule) bool { return r.Attribute == "orderNumber" })]
			orders.AutoMerge = identity.AutoMergeAny
			if _, err := e.Store.SaveProfileRule(ctx, "t1", orders); err != nil {
				t.Fatal(err)
			}
			drainBy(t, e.Store, "t1", batch)
			checkAgainstFacts(t, e.Store)
		})
	}
}
