package identity_test

import (
	"testing"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// BenchmarkClaims is the CPU cost of normalizing one contact's address and
// attributes under the rules: what every write does before it can tell
// whether anything changed.
func BenchmarkClaims(b *testing.B) {
	rules := []identity.Rule{
		{ID: "e", Attribute: "email", Normalizer: identity.NormalizeEmail, Enabled: true, Priority: 100, BlockedValues: []string{"noreply@*"}},
		{ID: "p", Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, Priority: 50, DefaultRegion: "GB"},
		{ID: "c", Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true, Priority: 200, MaxPerProfile: 1},
	}
	c := &related.Contact{Channel: related.ChannelWhatsApp, Address: "+447700900123", Attributes: []related.Attribute{
		{Key: "email", Value: "Ann.Example@Example.com"}, {Key: "customerId", Value: "CU-0000042"},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if len(identity.Claims(rules, c)) != 3 {
			b.Fatal("claims")
		}
	}
}
