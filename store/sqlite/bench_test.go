package sqlite_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/seed"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// BenchmarkRecordLinking is the cost of recording a message as a profile's
// cluster grows, and beside a hub value many contacts hold:
//
//   - returning: a message from a contact of an n-contact profile whose
//     values did not change (the common case: no linking work at all);
//   - joining: a message from a new contact that joins the n-contact
//     profile (the cluster is gathered and decided again);
//   - hub: a message from a new contact that gives a value 10,000 contacts
//     hold (quarantined: it links nothing, and nothing is recomputed).
//
// It reports database statements per operation beside the time.
func BenchmarkRecordLinking(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 10, 100} {
		s, cmds := benchStore(b)
		customerRule(b, s, 0) // no hub bound: a profile of n contacts
		for i := range n {
			record(b, s, related.ChannelWebChat, fmt.Sprintf("member-%d", i), "cust", "C-1")
		}
		b.Run(fmt.Sprintf("returning/profile=%d", n), func(b *testing.B) {
			benchRecord(b, cmds, func(i int) { record(b, s, related.ChannelWebChat, "member-0", "cust", "C-1") }, nil)
		})
		// Each joiner leaves again (untimed), so the profile stays at n.
		b.Run(fmt.Sprintf("joining/profile=%d", n), func(b *testing.B) {
			var last string
			benchRecord(b, cmds, func(i int) {
				last = fmt.Sprintf("joiner-%d-%d", n, i)
				record(b, s, related.ChannelWebChat, last, "cust", "C-1")
			}, func() {
				id := related.ContactID("t1", related.ChannelWebChat, last)
				if _, err := s.SetContactAttributes(ctx, "t1", id, []related.Attribute{{Key: "cust", Value: ""}}, related.System); err != nil {
					b.Fatal(err)
				}
			})
		})
		s.Close()
	}
	s, cmds := benchStore(b)
	customerRule(b, s, identity.DefaultMaxContactsPerValue)
	const holders = 10000
	if err := s.Bulk(ctx, func(ctx context.Context) error {
		for i := range holders {
			in := message(related.ChannelWebChat, fmt.Sprintf("hub-holder-%d", i), "cust", "SHARED")
			if _, err := s.RecordMessage(ctx, "t1", in); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("hub/holders=%d", holders), func(b *testing.B) {
		benchRecord(b, cmds, func(i int) {
			record(b, s, related.ChannelWebChat, fmt.Sprintf("hub-joiner-%d", i), "cust", "SHARED")
		}, nil)
	})
	s.Close()
}

func benchStore(b *testing.B) (*sqlite.Store, *store.Commands) {
	b.Helper()
	cmds := new(store.Commands)
	s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: b.TempDir(), Commands: cmds, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return s, cmds
}

// customerRule is a customer id rule that merges through any value, with
// hub threshold maxContacts.
func customerRule(b *testing.B, s *sqlite.Store, maxContacts int) identity.Rule {
	b.Helper()
	r, err := identity.Rule{Attribute: "cust", Normalizer: identity.NormalizeExact, Enabled: true, AutoMerge: identity.AutoMergeAny,
		MaxContactsPerValue: maxContacts}.Validate()
	if err != nil {
		b.Fatal(err)
	}
	if r, err = s.SaveProfileRule(context.Background(), "t1", r); err != nil {
		b.Fatal(err)
	}
	for done := false; !done; {
		if done, err = s.EvaluateRules(context.Background(), "t1", 500); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

func message(ch related.Channel, addr, key, value string) related.RecordMessage {
	in, err := related.RecordMessage{Channel: ch, ThreadRef: "thread-" + addr, Direction: related.Inbound, Body: "hello",
		Contact: related.ContactInput{Address: addr, Name: "Ann", Attributes: []related.Attribute{{Key: key, Value: value,
			Attested: true, By: "bench", Role: related.RoleIntegration}}}}.Normalize(time.Now())
	if err != nil {
		panic(err)
	}
	return in
}

func record(b *testing.B, s *sqlite.Store, ch related.Channel, addr, key, value string) {
	if _, err := s.RecordMessage(context.Background(), "t1", message(ch, addr, key, value)); err != nil {
		b.Fatal(err)
	}
}

// benchRecord times op, and counts its statements; undo, if set, runs
// after each op, untimed and uncounted.
func benchRecord(b *testing.B, cmds *store.Commands, op func(i int), undo func()) {
	b.ReportAllocs()
	var statements int64
	i := 0
	for b.Loop() {
		before := cmds.Total()
		op(i)
		statements += cmds.Total() - before
		if undo != nil {
			b.StopTimer()
			undo()
			b.StartTimer()
		}
		i++
	}
	b.ReportMetric(float64(statements)/float64(i), "statements/op")
}

// BenchmarkPreview is the time to preview rule changes on the seeded
// sample (RELATED_BENCH_CUSTOMERS customers, default 1,000: about 10,000
// interactions; 10,000 gives about 100,000), the data set of BENCHMARKS.md.
func BenchmarkPreview(b *testing.B) {
	ctx := context.Background()
	customers := 1000
	if v, err := strconv.Atoi(os.Getenv("RELATED_BENCH_CUSTOMERS")); err == nil && v > 0 {
		customers = v
	}
	s, _ := benchStore(b)
	defer s.Close()
	stats, err := seed.Run(ctx, s, seed.Options{Tenant: "demo", Customers: customers, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, run := range []func(context.Context, store.Store, string, int) (bool, error){
		func(ctx context.Context, s store.Store, t string, n int) (bool, error) {
			return s.CanonicalizeContacts(ctx, t, n)
		},
		func(ctx context.Context, s store.Store, t string, n int) (bool, error) {
			return s.EvaluateRules(ctx, t, n)
		},
	} {
		for done := false; !done; {
			if done, err = run(ctx, s, "demo", 500); err != nil {
				b.Fatal(err)
			}
		}
	}
	rules, err := s.ProfileRules(ctx, "demo")
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d customers, %d contacts, %d interactions", stats.Customers, stats.Contacts, stats.Interactions)
	for _, c := range []struct {
		name string
		edit func(*identity.Rule)
		attr string
	}{
		{"email merges claimed values", func(r *identity.Rule) { r.AutoMerge = identity.AutoMergeAny }, "email"},
		{"customerId disabled", func(r *identity.Rule) { r.Enabled = false }, "customerId"},
		{"phone hub bound 2", func(r *identity.Rule) { r.MaxContactsPerValue = 2 }, "phone"},
	} {
		next := slices.Clone(rules)
		for i := range next {
			if next[i].Attribute == c.attr {
				c.edit(&next[i])
			}
		}
		b.Run(c.name, func(b *testing.B) {
			var pv *store.Preview
			for b.Loop() {
				ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				pv, err = s.PreviewRules(ctx, "demo", next)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(pv.Contacts), "contacts-touched")
			b.ReportMetric(float64(pv.Merged+pv.Split+pv.Created+pv.Removed), "profiles-changed")
			if pv.Partial {
				b.Log("partial")
			}
		})
	}
}
