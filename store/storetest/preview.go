package storetest

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// testPreviewIsApply previews rule changes on random data, applies them,
// and holds the preview to what the change did: the same profiles merged,
// split, created and removed, the same contacts moved, the same new
// suggestions and conflicts and newly quarantined values.
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
