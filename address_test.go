package related_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/relatedhq/related"
)

// e164 is the shape of every VALID phone address.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,15}$`)

// canonCase is one row of the Canonicalize tables. An empty problem
// substring means a VALID result is expected.
type canonCase struct {
	name    string
	ch      related.Channel
	in      string
	region  string
	want    string // the Address
	wantNm  string // the Name
	problem string // a substring of the Problem of an UNPARSEABLE result
}

func runCanonCases(t *testing.T, tests []canonCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := related.Canonicalize(tt.ch, tt.in, tt.region)
			if err != nil {
				t.Fatalf("Canonicalize(%s, %q, %q): %v", tt.ch, tt.in, tt.region, err)
			}
			wantStatus := related.AddressValid
			if tt.problem != "" {
				wantStatus = related.AddressUnparseable
			}
			if got.Address != tt.want || got.Status != wantStatus || got.Name != tt.wantNm {
				t.Fatalf("Canonicalize(%s, %q, %q) = %+v; want address %q, status %s, name %q",
					tt.ch, tt.in, tt.region, got, tt.want, wantStatus, tt.wantNm)
			}
			if !strings.Contains(got.Problem, tt.problem) || (tt.problem == "") != (got.Problem == "") {
				t.Fatalf("Canonicalize(%s, %q, %q).Problem = %q; want one with %q", tt.ch, tt.in, tt.region, got.Problem, tt.problem)
			}
			checkIdempotent(t, tt.ch, tt.region, got)
		})
	}
}

// checkIdempotent checks that canonicalizing got.Address again gives it
// back with the same status.
func checkIdempotent(t *testing.T, ch related.Channel, region string, got related.CanonicalAddress) {
	t.Helper()
	again, err := related.Canonicalize(ch, got.Address, region)
	if err != nil {
		t.Fatalf("Canonicalize(%s, %q, %q) again: %v", ch, got.Address, region, err)
	}
	if again.Address != got.Address || again.Status != got.Status {
		t.Fatalf("not idempotent on %s, region %q: %q (%s) gives %q (%s)", ch, region, got.Address, got.Status, again.Address, again.Status)
	}
}

func TestCanonicalizeEmail(t *testing.T) {
	const ann = "ann.lee@example.com"
	e := related.ChannelEmail
	tests := []canonCase{
		{name: "plain", ch: e, in: ann, want: ann},
		{name: "case and white space", ch: e, in: "  Ann.Lee@Example.COM\t", want: ann},
		{name: "plus tag kept", ch: e, in: "Ann.B+Tag@example.com", want: "ann.b+tag@example.com"},
		{name: "display name", ch: e, in: "Ann Lee <ann.lee@example.com>", want: ann, wantNm: "Ann Lee"},
		{name: "quoted display name", ch: e, in: `"Lee, Ann" <Ann.Lee@Example.COM>`, want: ann, wantNm: "Lee, Ann"},
		{name: "quoted display name with escapes", ch: e, in: `"Ann \"Nan\" Lee" <ann.lee@example.com>`, want: ann, wantNm: `Ann "Nan" Lee`},
		{name: "unquoted comma in the name", ch: e, in: "Lee, Ann <ann.lee@example.com>", want: ann, wantNm: "Lee, Ann"},
		{name: "dotted name", ch: e, in: "Ann B. Lee <ann.lee@example.com>", want: ann, wantNm: "Ann B. Lee"},
		{name: "apostrophe-quoted name", ch: e, in: "'Ann Lee' <ann.lee@example.com>", want: ann, wantNm: "Ann Lee"},
		{name: "RFC 2047 name", ch: e, in: "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <j@example.de>", want: "j@example.de", wantNm: "Jürgen Müller"},
		{name: "folded header", ch: e, in: "Ann\r\n Lee\r\n <ann.lee@example.com>", want: ann, wantNm: "Ann Lee"},
		{name: "name repeating the address", ch: e, in: "Ann.Lee@example.com <ann.lee@example.com>", want: ann},
		{name: "comment name", ch: e, in: "ann.lee@example.com (Ann Lee)", want: ann, wantNm: "Ann Lee"},
		{name: "unbalanced quote in the name", ch: e, in: `"Ann Lee <ann.lee@example.com>`, want: ann, wantNm: "Ann Lee"},
		{name: "angle brackets", ch: e, in: "<ann@example.com>", want: "ann@example.com"},
		{name: "angle brackets with spaces", ch: e, in: "< ann@example.com >", want: "ann@example.com"},
		{name: "whole address in quotes", ch: e, in: `"ann@example.com"`, want: "ann@example.com"},
		{name: "mailto", ch: e, in: "mailto:ann.lee@example.com", want: ann},
		{name: "MAILTO with a query", ch: e, in: "MAILTO:ann.lee@example.com?subject=hi", want: ann},
		{name: "mailto escapes", ch: e, in: "mailto:ann.lee%2Bwork@example.com", want: "ann.lee+work@example.com"},
		{name: "mailto in brackets", ch: e, in: "Ann Lee <mailto:ann.lee@example.com>", want: ann, wantNm: "Ann Lee"},
		{name: "quoted local part unquoted", ch: e, in: `"Ann.Lee"@example.com`, want: ann},
		{name: "quoted local part kept", ch: e, in: `"Ann..Lee"@example.com`, want: `"ann..lee"@example.com`},
		{name: "quoted local part escapes", ch: e, in: `"a\"b\c"@example.com`, want: `"a\"bc"@example.com`},

		// Internationalized domains: one Unicode, lower-case form.
		{name: "IDN Unicode", ch: e, in: "jürgen@bücher.de", want: "jürgen@bücher.de"},
		{name: "IDN punycode", ch: e, in: "jürgen@xn--bcher-kva.de", want: "jürgen@bücher.de"},
		{name: "IDN upper case", ch: e, in: "JÜRGEN@BÜCHER.DE", want: "jürgen@bücher.de"},
		{name: "IDN decomposed", ch: e, in: "ju\u0308rgen@bu\u0308cher.de", want: "jürgen@bücher.de"},
		{name: "IDN punycode upper case", ch: e, in: "ann@XN--BCHER-KVA.DE", want: "ann@bücher.de"},
		{name: "IDN sharp s kept", ch: e, in: "ann@straße.de", want: "ann@straße.de"},
		{name: "IDN sharp s punycode", ch: e, in: "ann@xn--strae-oqa.de", want: "ann@straße.de"},
		{name: "full-width domain", ch: e, in: "ann@ｅｘａｍｐｌｅ．ｃｏｍ", want: "ann@example.com"},
		{name: "ideographic full stop", ch: e, in: "ann@example。com", want: "ann@example.com"},

		// Invisible characters make no second address.
		{name: "zero-width space inside", ch: e, in: "ann.lee\u200b@example.com", want: ann},
		{name: "zero-width space around", ch: e, in: "\u200bann.lee@example.com\u200b", want: ann},
		{name: "BOM", ch: e, in: "\ufeffann.lee@example.com", want: ann},
		{name: "soft hyphen in domain", ch: e, in: "ann.lee@exam\u00adple.com", want: ann},
		{name: "joiners", ch: e, in: "an\u200dn.l\u200cee@exa\u2060mple.com", want: ann},
		{name: "bidi controls", ch: e, in: "\u202aann.lee@example.com\u202c\u200e", want: ann},
		{name: "bidi isolates", ch: e, in: "\u2066ann.lee\u2069@\u061cexample.com", want: ann},
		{name: "Unicode spaces around", ch: e, in: "\u00a0\u2003ann.lee@example.com\u3000\u202f", want: ann},
		{name: "invisible in display name", ch: e, in: "Ann\u200b Lee <ann.lee\u200b@example.com>", want: ann, wantNm: "Ann Lee"},

		// Not addresses: stored as cleaned, with a problem.
		{name: "space before @", ch: e, in: "bob @example.com", want: "bob @example.com", problem: "white space"},
		{name: "space runs collapsed", ch: e, in: "bob \t @example.com", want: "bob @example.com", problem: "white space"},
		{name: "space after @", ch: e, in: "bob@ example.com", want: "bob@ example.com", problem: "white space"},
		{name: "no @", ch: e, in: "no-at", want: "no-at", problem: "no @"},
		{name: "a name only", ch: e, in: "Ann Lee", want: "Ann Lee", problem: "no @"},
		{name: "empty local part", ch: e, in: "@x.io", want: "@x.io", problem: "nothing before the @"},
		{name: "empty domain", ch: e, in: "ann@", want: "ann@", problem: "nothing after the @"},
		{name: "two @", ch: e, in: "a@b@example.com", want: "a@b@example.com", problem: "more than one @"},
		{name: "two addresses", ch: e, in: "a@x.io, b@y.io", want: "a@x.io, b@y.io", problem: "white space"},
		{name: "no dot", ch: e, in: "ann@localhost", want: "ann@localhost", problem: "no dot"},
		{name: "empty label", ch: e, in: "ann@example..com", want: "ann@example..com", problem: "empty label"},
		{name: "trailing dot", ch: e, in: "ann@example.com.", want: "ann@example.com.", problem: "empty label"},
		{name: "leading dot domain", ch: e, in: "ann@.example.com", want: "ann@.example.com", problem: "empty label"},
		{name: "dot at start of local part", ch: e, in: ".ann@example.com", want: ".ann@example.com", problem: "dot"},
		{name: "two dots in local part", ch: e, in: "ann..lee@example.com", want: "ann..lee@example.com", problem: "dot"},
		{name: "domain literal", ch: e, in: "ann@[192.0.2.1]", want: "ann@[192.0.2.1]", problem: "domain literal"},
		{name: "underscore in domain", ch: e, in: "ann@ex_ample.com", want: "ann@ex_ample.com", problem: "domain name"},
		{name: "numeric top-level domain", ch: e, in: "ann@192.0.2.1", want: "ann@192.0.2.1", problem: "number"},
		{name: "@ inside quotes", ch: e, in: `"a@b"@example.com`, want: `"a@b"@example.com`, problem: "inside quotes"},
		{name: "space inside quotes", ch: e, in: `"a b"@example.com`, want: `"a b"@example.com`, problem: "white space"},
		{name: "bad character", ch: e, in: "a<b@example.com", want: "a<b@example.com", problem: "holds"},
		{name: "empty brackets", ch: e, in: "Ann <>", want: "Ann <>", wantNm: "Ann", problem: "hold nothing"},
		{name: "name with a bad address", ch: e, in: "Ann Lee <bob @example.com>", want: "Ann Lee <bob @example.com>", wantNm: "Ann Lee", problem: "white space"},
		{name: "mailto without address", ch: e, in: "mailto:?subject=hi", want: "mailto:?subject=hi", problem: "no address"},
		{name: "mailto with a broken escape", ch: e, in: "mailto:ann%zz@example.com", want: "mailto:ann%zz@example.com", problem: "%-escape"},
		{name: "mailto hiding a control character", ch: e, in: "mailto:ann%0a%00@example.com", want: "mailto:ann%0a%00@example.com", problem: "control"},
		{name: "zero-width space in a bad address", ch: e, in: "bob\u200b @example.com", want: "bob @example.com", problem: "white space"},
	}
	runCanonCases(t, tests)
}

func TestCanonicalizePhone(t *testing.T) {
	const gb = "+447400123456"
	s, w, v := related.ChannelSMS, related.ChannelWhatsApp, related.ChannelVoice
	noCC := "no country code; set the tenant's default region or send E.164"
	tests := []canonCase{
		// GB's forms of one mobile number.
		{name: "national trunk 0", ch: s, in: "07400 123456", region: "GB", want: gb},
		{name: "E.164", ch: s, in: "+447400123456", region: "GB", want: gb},
		{name: "spaces", ch: w, in: "+44 7400 123456", region: "GB", want: gb},
		{name: "country code without +", ch: v, in: "447400123456", region: "GB", want: gb},
		{name: "00 prefix", ch: s, in: "0044 7400 123456", region: "GB", want: gb},
		{name: "(0) after the country code", ch: s, in: "+44 (0)7400 123456", region: "GB", want: gb},
		{name: "dots", ch: s, in: "+44.7400.123.456", region: "GB", want: gb},
		{name: "dashes", ch: s, in: "+44-7400-123-456", region: "GB", want: gb},
		{name: "Unicode dashes", ch: s, in: "07400\u2013123\u2212456", region: "GB", want: gb},
		{name: "brackets", ch: s, in: "(07400) 123456", region: "GB", want: gb},
		{name: "bracketed +", ch: s, in: "(+44) 7400 123456", region: "GB", want: gb},
		{name: "slash", ch: s, in: "07400/123456", region: "GB", want: gb},
		{name: "extension x", ch: v, in: "07400 123456 x123", region: "GB", want: gb},
		{name: "extension ext.", ch: v, in: "+44 7400 123456 ext. 123", region: "GB", want: gb},
		{name: "extension word", ch: v, in: "+44 7400 123456, extension 9", region: "GB", want: gb},
		{name: "extension hash", ch: v, in: "07400123456#12", region: "GB", want: gb},
		{name: "tel URI with extension", ch: v, in: "tel:+44-7400-123456;ext=123", region: "GB", want: gb},
		{name: "Ofcom drama range", ch: s, in: "07700 900123", region: "GB", want: "+447700900123"},
		{name: "full-width", ch: s, in: "＋４４ ７４００ １２３４５６", region: "GB", want: gb},
		{name: "Arabic-Indic digits", ch: s, in: "+٤٤ ٧٤٠٠ ١٢٣٤٥٦", want: gb},
		{name: "Devanagari digits", ch: s, in: "+९१ ९८७६५ ४३२१०", want: "+919876543210"},
		{name: "mathematical digits", ch: s, in: "𝟎𝟕𝟒𝟎𝟎 𝟏𝟐𝟑𝟒𝟓𝟔", region: "GB", want: gb},
		{name: "region in lower case", ch: s, in: "07400 123456", region: "gb", want: gb},

		// Invisible characters make no second number.
		{name: "zero-width spaces", ch: s, in: "\u200b07400\u200b123456\u200b", region: "GB", want: gb},
		{name: "BOM and word joiner", ch: s, in: "\ufeff+44\u20607400123456", region: "GB", want: gb},
		{name: "bidi controls", ch: w, in: "\u202d+44 7400 123456\u202c\u200f", region: "GB", want: gb},
		{name: "Unicode spaces", ch: s, in: "\u00a0+44\u20097400\u202f123456\u3000", region: "GB", want: gb},
		{name: "soft hyphen", ch: s, in: "07400\u00ad123456", region: "GB", want: gb},

		// Other regions' numbers written with + stay theirs.
		{name: "US with + in GB", ch: s, in: "+1 (202) 555-0143", region: "GB", want: "+12025550143"},
		{name: "DE with + in GB", ch: s, in: "+49 30 123456", region: "GB", want: "+4930123456"},
		{name: "FR with + in GB", ch: s, in: "+33 1 23 45 67 89", region: "GB", want: "+33123456789"},
		{name: "IN with + in GB", ch: s, in: "+91 98765 43210", region: "GB", want: "+919876543210"},
		{name: "BR with + in GB", ch: s, in: "+55 11 91234-5678", region: "GB", want: "+5511912345678"},
		{name: "DE with 00 in GB", ch: s, in: "0049 30 123456", region: "GB", want: "+4930123456"},
		{name: "US with + no region", ch: s, in: "+1 202 555 0143", want: "+12025550143"},
		{name: "IT keeps its leading zero", ch: s, in: "+39 06 1234 5678", want: "+390612345678"},
		{name: "international freephone", ch: s, in: "+800 1234 5678", want: "+80012345678"},

		// Each region's national forms.
		{name: "US national", ch: s, in: "(202) 555-0143", region: "US", want: "+12025550143"},
		{name: "US with trunk 1", ch: s, in: "1-202-555-0143", region: "US", want: "+12025550143"},
		{name: "US 011 prefix", ch: s, in: "011 44 7400 123456", region: "US", want: gb},
		{name: "00 prefix in the US", ch: s, in: "0044 7400 123456", region: "US", want: gb},
		{name: "AU 0011 prefix", ch: s, in: "0011 44 7400 123456", region: "AU", want: gb},
		{name: "DE national", ch: s, in: "030 123456", region: "DE", want: "+4930123456"},
		{name: "FR national", ch: s, in: "01 23 45 67 89", region: "FR", want: "+33123456789"},
		{name: "FR country code without +", ch: s, in: "33 1 23 45 67 89", region: "FR", want: "+33123456789"},
		{name: "IN national", ch: s, in: "098765 43210", region: "IN", want: "+919876543210"},
		{name: "BR national", ch: s, in: "(11) 91234-5678", region: "BR", want: "+5511912345678"},

		// Without a region.
		{name: "no region, E.164", ch: s, in: "+447400123456", want: gb},
		{name: "no region, 00", ch: s, in: "00 44 7400 123456", want: gb},
		{name: "no region, trunk 0", ch: s, in: "07400 123456", want: "07400 123456", problem: noCC},
		{name: "no region, country code without +", ch: s, in: "447400123456", want: "447400123456", problem: noCC},
		{name: "unknown region is no region", ch: s, in: "07400 123456", region: "XX", want: "07400 123456", problem: noCC},

		// Not phone numbers: stored as cleaned, with a problem.
		{name: "words", ch: s, in: "call me maybe", region: "GB", want: "call me maybe", problem: "not a phone number"},
		{name: "words with space runs", ch: v, in: " call  me\tmaybe ", region: "GB", want: "call me maybe", problem: "not a phone number"},
		{name: "vanity number", ch: v, in: "0800 FLOWERS", region: "GB", want: "0800 FLOWERS", problem: "not a phone number"},
		{name: "alphanumeric sender", ch: s, in: "HSBC UK", region: "GB", want: "HSBC UK", problem: "not a phone number"},
		{name: "short code", ch: s, in: "88888", region: "GB", want: "88888", problem: "area code"},
		{name: "US without area code", ch: s, in: "555-0143", region: "US", want: "555-0143", problem: "area code"},
		{name: "too short", ch: s, in: "12", region: "GB", want: "12", problem: "digits"},
		{name: "too long", ch: s, in: "+44 7400 1234567", region: "GB", want: "+44 7400 1234567", problem: "too many digits"},
		{name: "US without + in GB", ch: s, in: "12025550143", region: "GB", want: "12025550143", problem: "too many digits"},
		{name: "unknown country code", ch: s, in: "+999 123 456", region: "GB", want: "+999 123 456", problem: "country code"},
		{name: "second plus", ch: s, in: "+44 +7400 123456", region: "GB", want: "+44 +7400 123456", problem: "not a phone number"},
		{name: "plus only", ch: s, in: "+", region: "GB", want: "+", problem: "no digits"},
		{name: "very long", ch: s, in: strings.Repeat("1", 40), region: "GB", want: strings.Repeat("1", 40), problem: "too many digits"},
	}
	runCanonCases(t, tests)
}

func TestCanonicalizeOpaque(t *testing.T) {
	tests := []canonCase{
		{name: "trimmed", ch: related.ChannelWebChat, in: "  visitor-AbC123\u00a0", want: "visitor-AbC123"},
		{name: "case and @ kept", ch: related.ChannelTwitter, in: "@AnnLee", want: "@AnnLee"},
		{name: "dots kept", ch: related.ChannelInstagram, in: "Ann.Lee", want: "Ann.Lee"},
		{name: "numeric id", ch: related.ChannelMessenger, in: "1234567890123456", want: "1234567890123456"},
		{name: "inner spaces kept", ch: related.ChannelWebChat, in: "a  b", want: "a  b"},
		{name: "zero-width space", ch: related.ChannelWebChat, in: "abc\u200bdef\u200b", want: "abcdef"},
		{name: "listed invisibles", ch: related.ChannelMessenger, in: "\ufeff\u202a12\u00ad34\u2060\u200e\u202c", want: "1234"},
		{name: "NFC", ch: related.ChannelWebChat, in: "Cafe\u0301", want: "Café"},
		{name: "joiner outside emoji", ch: related.ChannelWebChat, in: "a\u200db", want: "ab"},
		{name: "emoji sequence kept", ch: related.ChannelWebChat, in: "team-👩\u200d💻", want: "team-👩\u200d💻"},
		{name: "emoji with skin tone", ch: related.ChannelWebChat, in: "👩🏽\u200d🚀", want: "👩🏽\u200d🚀"},
		{name: "double joiner", ch: related.ChannelWebChat, in: "👩\u200d\u200b\u200d💻", want: "👩\u200d💻"},
		{name: "joiner after a decomposing symbol", ch: related.ChannelWebChat, in: "\U0001D15E\u200d🎵", want: "\U0001D157\U0001D165🎵"},
		{name: "joiner after a mark", ch: related.ChannelWebChat, in: "\u21d0\u200b\u0338\u200d🎵", want: "\u21cd🎵"},
		{name: "joiner at the end", ch: related.ChannelWebChat, in: "👩\u200d", want: "👩"},
		{name: "flag tag sequence kept", ch: related.ChannelWebChat, in: "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", want: "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"},
	}
	runCanonCases(t, tests)
}

func TestCanonicalizeRefuses(t *testing.T) {
	long := strings.Repeat("a", related.MaxAddressLength+1)
	tests := []struct {
		name string
		ch   related.Channel
		in   string
	}{
		{"empty", related.ChannelEmail, ""},
		{"blank", related.ChannelSMS, " \t\u00a0"},
		{"invisible only", related.ChannelWebChat, "\u200b\ufeff \u200d"},
		{"invisible only, email", related.ChannelEmail, "\u200b\u2060"},
		{"too long opaque", related.ChannelWebChat, long},
		{"too long unparseable email", related.ChannelEmail, long + "@"},
		{"too long unparseable phone", related.ChannelVoice, long},
		{"too long input", related.ChannelEmail, "Ann " + strings.Repeat("Lee ", 400) + "<ann@example.com>"},
		{"invalid UTF-8", related.ChannelEmail, "ann\xff@example.com"},
		{"NUL", related.ChannelSMS, "+44\x007400123456"},
		{"escape", related.ChannelEmail, "ann\x1b@example.com"},
		{"DEL", related.ChannelTwitter, "ann\x7f"},
		{"C1 control", related.ChannelEmail, "ann\u0085x\u0080@example.com"},
		{"tab inside an opaque id", related.ChannelMessenger, "12\t34"},
		{"unknown channel", related.Channel("FAX"), "+447400123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := related.Canonicalize(tt.ch, tt.in, "GB")
			e, ok := related.AsError(err)
			if !ok || e.Code != related.CodeInvalid {
				t.Fatalf("Canonicalize(%s, %q) = %+v, %v; want an INVALID error", tt.ch, tt.in, got, err)
			}
		})
	}
}

func TestCanonicalizeLongSender(t *testing.T) {
	// What is stored is the address: a long display name does not make
	// the sender too long.
	name := strings.Repeat("Ann Lee ", 60)
	got, err := related.Canonicalize(related.ChannelEmail, name+"<ann@example.com>", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Address != "ann@example.com" || got.Status != related.AddressValid || len(got.Name) != related.MaxNameLength {
		t.Fatalf("got %+v (name of %d bytes)", got, len(got.Name))
	}
	// The name is cut on a character boundary.
	got, err = related.Canonicalize(related.ChannelEmail, strings.Repeat("é", 150)+" <ann@example.com>", "")
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(got.Name) || len(got.Name) > related.MaxNameLength || got.Name != strings.Repeat("é", related.MaxNameLength/2) {
		t.Fatalf("name %q", got.Name)
	}
}

// TestOneContactPerPerson records the variants of one address a contact
// centre meets and checks that they name a single contact.
func TestOneContactPerPerson(t *testing.T) {
	groups := []struct {
		ch       related.Channel
		region   string
		variants []string
	}{
		{related.ChannelSMS, "GB", []string{"07400 123456", "447400123456", "+447400123456", "0044 7400 123456", "+44 (0)7400-123-456", "\u200b07400123456", "tel:+447400123456", "07400 123456 ext. 2"}},
		{related.ChannelEmail, "", []string{"Ann Lee <ann.lee@example.com>", "mailto:ann.lee@example.com", "ANN.LEE@EXAMPLE.COM", "ann.lee\u200b@example.com", "<ann.lee@example.com>", `"Lee, Ann" <Ann.Lee@Example.COM>`, "MAILTO:ann.lee@example.com?subject=hi"}},
		{related.ChannelEmail, "", []string{"jürgen@bücher.de", "jürgen@xn--bcher-kva.de", "JÜRGEN@BÜCHER.DE", "ju\u0308rgen@bu\u0308cher.de"}},
	}
	for _, g := range groups {
		seen := map[string]bool{}
		for _, v := range g.variants {
			got, err := related.Canonicalize(g.ch, v, g.region)
			if err != nil || got.Status != related.AddressValid {
				t.Fatalf("Canonicalize(%s, %q) = %+v, %v", g.ch, v, got, err)
			}
			seen[got.Address] = true
		}
		if len(seen) != 1 {
			t.Errorf("%s variants %q give %d addresses: %v", g.ch, g.variants, len(seen), seen)
		}
	}
}

func TestCanonicalEmail(t *testing.T) {
	tests := []struct {
		in, addr, name string
		ok             bool
	}{
		{"Ann Lee <Ann.Lee@Example.com>", "ann.lee@example.com", "Ann Lee", true},
		{" ann@example.com ", "ann@example.com", "", true},
		{"mailto:ann@example.com", "ann@example.com", "", true},
		{"bob @example.com", "", "", false},
		{"ann@example.com\x00", "", "", false},
		{"\xff", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		addr, name, ok := related.CanonicalEmail(tt.in)
		if addr != tt.addr || name != tt.name || ok != tt.ok {
			t.Errorf("CanonicalEmail(%q) = %q, %q, %v; want %q, %q, %v", tt.in, addr, name, ok, tt.addr, tt.name, tt.ok)
		}
	}
}

func TestCanonicalPhone(t *testing.T) {
	tests := []struct {
		in, region, want string
		ok               bool
	}{
		{"07400 123456", "GB", "+447400123456", true},
		{"07400 123456", "", "", false},
		{"+1 202 555 0143", "", "+12025550143", true},
		{"call me maybe", "GB", "", false},
		{"\x00", "GB", "", false},
	}
	for _, tt := range tests {
		got, ok := related.CanonicalPhone(tt.in, tt.region)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CanonicalPhone(%q, %q) = %q, %v; want %q, %v", tt.in, tt.region, got, ok, tt.want, tt.ok)
		}
	}
}

func TestValidRegion(t *testing.T) {
	for r, want := range map[string]bool{
		"GB": true, "US": true, "DE": true, "FR": true, "IN": true, "BR": true, "AC": true,
		"gb": false, "UK": false, "ZZ": false, "001": false, "": false, "GBR": false, " GB": false,
	} {
		if got := related.ValidRegion(r); got != want {
			t.Errorf("ValidRegion(%q) = %v, want %v", r, got, want)
		}
	}
}

func TestAddressStatusGQL(t *testing.T) {
	for _, s := range []related.AddressStatus{related.AddressValid, related.AddressUnparseable} {
		var b bytes.Buffer
		s.MarshalGQL(&b)
		if b.String() != `"`+string(s)+`"` {
			t.Errorf("MarshalGQL(%s) = %s", s, b.String())
		}
		var got related.AddressStatus
		if err := got.UnmarshalGQL(string(s)); err != nil || got != s {
			t.Errorf("UnmarshalGQL(%q) = %q, %v", s, got, err)
		}
	}
	var got related.AddressStatus
	for _, v := range []any{"valid", "BROKEN", 1, nil} {
		if err := got.UnmarshalGQL(v); err == nil {
			t.Errorf("UnmarshalGQL(%v) accepted", v)
		}
	}
}

// checkEmail checks the shape of a VALID email address.
func checkEmail(t *testing.T, in, addr string) {
	t.Helper()
	if strings.Count(addr, "@") != 1 || strings.IndexFunc(addr, unicode.IsSpace) >= 0 {
		t.Fatalf("%q gives the address %q: want exactly one @ and no white space", in, addr)
	}
}

// checkOutput checks what every canonical output must be.
func checkOutput(t *testing.T, in string, outs ...string) {
	t.Helper()
	for _, o := range outs {
		if !utf8.ValidString(o) || len(o) > related.MaxAddressLength {
			t.Fatalf("%q gives %q: invalid UTF-8 or longer than %d bytes", in, o, related.MaxAddressLength)
		}
	}
}

var emailSeeds = []string{
	"ann.lee@example.com", "Ann Lee <ann.lee@example.com>", `"Lee, Ann" <Ann.Lee@Example.COM>`,
	"mailto:ann.lee@example.com", "MAILTO:ann.lee@example.com?subject=hi", "<ann@example.com>",
	"jürgen@xn--bcher-kva.de", "ann\u200b@example.com", "bob @example.com", "no-at", "@x.io",
	`"a\"b"@x.io`, "=?UTF-8?B?SsO8cmdlbg==?= <j@x.de>", "ann@x.io (Ann)", "mailto:a%2Bb@x.io",
}

func FuzzCanonicalEmail(f *testing.F) {
	for _, s := range emailSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, name, ok := related.CanonicalEmail(s)
		if !utf8.ValidString(name) {
			t.Fatalf("%q gives the name %q: invalid UTF-8", s, name)
		}
		if !ok {
			return
		}
		checkOutput(t, s, addr)
		checkEmail(t, s, addr)
		again, name2, ok := related.CanonicalEmail(addr)
		if !ok || again != addr || name2 != "" {
			t.Fatalf("not idempotent: %q gives %q, which gives %q, %q, %v", s, addr, again, name2, ok)
		}
	})
}

func FuzzCanonicalPhone(f *testing.F) {
	for _, s := range []string{"07400 123456", "+44 (0)7400-123-456", "0044 7400 123456", "447400123456",
		"011 44 7400 123456", "+1 202 555 0143 x12", "tel:+447400123456;ext=1", "call me maybe", "＋４４ ７４００ １２３４５６"} {
		for _, r := range []string{"GB", "US", "", "DE"} {
			f.Add(s, r)
		}
	}
	f.Fuzz(func(t *testing.T, s, region string) {
		got, ok := related.CanonicalPhone(s, region)
		if !ok {
			return
		}
		if !e164.MatchString(got) {
			t.Fatalf("%q in %q gives %q, not E.164", s, region, got)
		}
		for _, r := range []string{region, ""} {
			if again, ok := related.CanonicalPhone(got, r); !ok || again != got {
				t.Fatalf("not idempotent: %q in %q gives %q, which in %q gives %q, %v", s, region, got, r, again, ok)
			}
		}
	})
}

func FuzzCanonicalize(f *testing.F) {
	for i, s := range append(emailSeeds, "07400 123456", "+447400123456", "call me maybe", "visitor-1", "👩\u200d💻", " a\u200bb ") {
		f.Add(uint8(i), s, "GB")
	}
	f.Fuzz(func(t *testing.T, ch uint8, s, region string) {
		c := related.Channels[int(ch)%len(related.Channels)]
		got, err := related.Canonicalize(c, s, region)
		if err != nil {
			if e, ok := related.AsError(err); !ok || e.Code != related.CodeInvalid {
				t.Fatalf("Canonicalize(%s, %q, %q): %v is not an INVALID *Error", c, s, region, err)
			}
			return
		}
		checkOutput(t, s, got.Address)
		if !utf8.ValidString(got.Name) || !utf8.ValidString(got.Problem) || len(got.Name) > related.MaxNameLength {
			t.Fatalf("Canonicalize(%s, %q, %q) = %+v: bad name or problem", c, s, region, got)
		}
		if got.Address == "" || !got.Status.Valid() || (got.Status == related.AddressUnparseable) != (got.Problem != "") {
			t.Fatalf("Canonicalize(%s, %q, %q) = %+v", c, s, region, got)
		}
		if got.Status == related.AddressValid {
			switch c {
			case related.ChannelEmail:
				checkEmail(t, s, got.Address)
			case related.ChannelSMS, related.ChannelWhatsApp, related.ChannelVoice:
				if !e164.MatchString(got.Address) {
					t.Fatalf("Canonicalize(%s, %q, %q) = %q, not E.164", c, s, region, got.Address)
				}
			}
		}
		checkIdempotent(t, c, region, got)
	})
}

func BenchmarkCanonicalize(b *testing.B) {
	for _, bb := range []struct {
		name   string
		ch     related.Channel
		in     string
		region string
	}{
		{"email", related.ChannelEmail, "ann.lee@example.com", ""},
		{"email sender", related.ChannelEmail, `"Lee, Ann" <Ann.Lee@Example.COM>`, ""},
		{"email IDN", related.ChannelEmail, "jürgen@xn--bcher-kva.de", ""},
		{"email unparseable", related.ChannelEmail, "bob @example.com", ""},
		{"phone national", related.ChannelSMS, "07400 123456", "GB"},
		{"phone E.164", related.ChannelSMS, "+447400123456", "GB"},
		{"phone unparseable", related.ChannelSMS, "call me maybe", "GB"},
		{"opaque", related.ChannelWebChat, "visitor-5f3a2c", ""},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := related.Canonicalize(bb.ch, bb.in, bb.region); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
