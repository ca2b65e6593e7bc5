package identity_test

import (
	"fmt"
	"strings"
	"testing"

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
	var got []string
	for _, cl := range identity.Claims(rules, c) {
		got = append(got, fmt.Sprint(cl.Key, "=", cl.Value, " ", cl.RuleID, " ", cl.Source))
	}
	want := []string{"email=ann@x.io e CLAIMED", "phone=+12025550143 p ATTESTED"}
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
