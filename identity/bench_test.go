package identity_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// BenchmarkLink is the CPU cost of deciding one contact's links, database
// time excluded: normalizing its address and attributes under the rules,
// and planning against the owners a store would have read.
func BenchmarkLink(b *testing.B) {
	rules := []identity.Rule{
		{ID: "e", Attribute: "email", Normalizer: identity.NormalizeEmail, Enabled: true, Priority: 100, BlockedValues: []string{"noreply@*"}},
		{ID: "p", Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, Priority: 50, DefaultRegion: "GB"},
		{ID: "c", Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true, Priority: 200, MaxPerProfile: 1},
	}
	c := &related.Contact{Channel: related.ChannelWhatsApp, Address: "+447700900123", Attributes: []related.Attribute{
		{Key: "email", Value: "Ann.Example@Example.com"}, {Key: "customerId", Value: "CU-0000042"},
	}}
	t0 := time.Unix(0, 0)
	for _, owned := range []int{0, 1, 3} {
		b.Run(fmt.Sprint("owners=", owned), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				claims := identity.Claims(rules, c)
				in := identity.PlanInput{Claims: claims, Owners: map[related.Identifier]string{}, Profiles: map[string]identity.ProfileFacts{}, Rules: rules}
				for i := range min(owned, len(claims)) {
					id := fmt.Sprint("p", i)
					in.Owners[claims[i].Identifier] = id
					in.Profiles[id] = identity.ProfileFacts{ID: id, CreatedAt: t0.Add(time.Duration(i)), Counts: map[string]int{claims[i].Key: 1}}
				}
				if p := identity.Decide(in); p.Empty() {
					b.Fatal("empty plan")
				}
			}
		})
	}
}
