package related_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/relatedhq/related"
)

func TestPreview(t *testing.T) {
	long := strings.Repeat("é", 200)
	tests := []struct {
		name, in, want string
	}{
		{"short", "Hello there", "Hello there"},
		{"folds white space", "  Hello,\n\n  my\torder  ", "Hello, my order"},
		{"drops control characters", "a\x00b\x1bc", "abc"},
		{"exactly 140", strings.Repeat("a", 140), strings.Repeat("a", 140)},
		{"141 is cut", strings.Repeat("a", 141), strings.Repeat("a", 139) + "…"},
		{"cut on a character boundary", long, strings.Repeat("é", 139) + "…"},
		{"emoji", strings.Repeat("😀", 150), strings.Repeat("😀", 139) + "…"},
		{"invalid UTF-8", "ok\xff\xfeok", "okok"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := related.Preview(tt.in, related.PreviewLength)
			if got != tt.want {
				t.Fatalf("Preview(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > related.PreviewLength || !utf8.ValidString(got) {
				t.Fatalf("preview has %d characters (valid=%v)", n, utf8.ValidString(got))
			}
		})
	}
}

func TestCanonicalizeAddress(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		ch               related.Channel
		in, name, region string
		want, wantName   string
		warn             related.WarningCode
	}{
		{related.ChannelEmail, "Ann Lee <Ann.Lee@Example.COM>", "", "", "ann.lee@example.com", "Ann Lee", ""},
		{related.ChannelEmail, "Ann Lee <ann@x.io>", "Ann Example", "", "ann@x.io", "Ann Example", ""}, // a given name wins
		{related.ChannelEmail, "mailto:ann@x.io", "", "", "ann@x.io", "", ""},
		{related.ChannelEmail, "bob @example.com", "", "", "bob @example.com", "", related.WarnUnparseableAddress},
		{related.ChannelSMS, "07400 123456", "", "GB", "+447400123456", "", ""},
		{related.ChannelSMS, "07400 123456", "", "", "07400 123456", "", related.WarnUnparseableAddress},
		{related.ChannelVoice, "call me maybe", "", "GB", "call me maybe", "", related.WarnUnparseableAddress},
		{related.ChannelWebChat, " Visitor-ABC ", "", "", "Visitor-ABC", "", ""},
	}
	for _, tt := range tests {
		in, err := related.RecordMessage{Channel: tt.ch, ThreadRef: "t", Direction: related.Inbound, Body: "hi",
			Contact: related.ContactInput{Address: tt.in, Name: tt.name}}.Normalize(now)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		warnings, err := in.CanonicalizeAddress(tt.region)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		var code related.WarningCode
		if len(warnings) == 1 && strings.Join(warnings[0].Field, ".") == "contact.address" {
			code = warnings[0].Code
		}
		wantStatus := related.AddressValid
		if tt.warn != "" {
			wantStatus = related.AddressUnparseable
		}
		name := in.Contact.Name
		if name == "" {
			name = in.Contact.FallbackName
		}
		if in.Contact.Address != tt.want || name != tt.wantName || code != tt.warn || in.Contact.AddressStatus != wantStatus {
			t.Errorf("%s %q in %q: address %q name %q status %s warnings %v; want %q %q %s",
				tt.ch, tt.in, tt.region, in.Contact.Address, name, in.Contact.AddressStatus, warnings, tt.want, tt.wantName, tt.warn)
		}
	}
	// What cannot be stored at all is refused, naming the field.
	for _, bad := range []string{"   ", "psid\x00", strings.Repeat("a", 2000) + "@x.io"} {
		_, err := related.RecordMessage{Channel: related.ChannelMessenger, ThreadRef: "t", Direction: related.Inbound, Body: "hi",
			Contact: related.ContactInput{Address: bad}}.Normalize(now)
		if e, ok := related.AsError(err); !ok || e.Code != related.CodeInvalid || strings.Join(e.Field, ".") != "contact.address" {
			t.Errorf("%q: error %v, want INVALID at contact.address", bad, err)
		}
	}
}

func TestMergeAttributes(t *testing.T) {
	a := func(kv ...string) []related.Attribute {
		var out []related.Attribute
		for i := 0; i < len(kv); i += 2 {
			out = append(out, related.Attribute{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name          string
		cur, set, out []related.Attribute
	}{
		{"add", a("x", "1"), a("y", "2"), a("x", "1", "y", "2")},
		{"replace keeps position", a("x", "1", "y", "2"), a("x", "9"), a("x", "9", "y", "2")},
		{"empty removes", a("x", "1", "y", "2"), a("x", ""), a("y", "2")},
		{"remove missing is a no-op", a("x", "1"), a("z", ""), a("x", "1")},
		{"nil", nil, nil, a()},
	}
	for _, tt := range tests {
		got := related.MergeAttributes(tt.cur, tt.set)
		if len(got) != len(tt.out) {
			t.Fatalf("%s: %v, want %v", tt.name, got, tt.out)
		}
		for i := range got {
			if got[i] != tt.out[i] {
				t.Fatalf("%s: %v, want %v", tt.name, got, tt.out)
			}
		}
	}
}

func TestChooseScope(t *testing.T) {
	tests := []struct {
		requested related.Scope
		linked    bool
		want      related.Scope
	}{
		{"", false, related.ScopeChannel},
		{"", true, related.ScopeProfile},
		{related.ScopeChannel, true, related.ScopeChannel},
		{related.ScopeProfile, true, related.ScopeProfile},
		{related.ScopeProfile, false, related.ScopeChannel},
	}
	for _, tt := range tests {
		if got := related.ChooseScope(tt.requested, tt.linked); got != tt.want {
			t.Errorf("ChooseScope(%q, %v) = %s, want %s", tt.requested, tt.linked, got, tt.want)
		}
	}
}

func TestRecordMessageNormalize(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 123456789, time.UTC)
	ok := related.RecordMessage{
		Channel: related.ChannelEmail, ThreadRef: " t ", Direction: related.Inbound, Body: "hi",
		Contact: related.ContactInput{Address: "A@B.io", Attributes: []related.Attribute{{Key: " k ", Value: "1"}, {Key: "k", Value: "2"}}},
	}
	got, err := ok.Normalize(now)
	if err != nil {
		t.Fatal(err)
	}
	// The address is canonicalized later, under the tenant's region.
	if got.ThreadRef != "t" || got.Contact.Address != "A@B.io" || !got.SentAt.Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("normalized = %+v", got)
	}
	if len(got.Contact.Attributes) != 1 || got.Contact.Attributes[0] != (related.Attribute{Key: "k", Value: "2"}) {
		t.Fatalf("attributes = %+v, want the last value of a repeated key", got.Contact.Attributes)
	}
	bad := []struct {
		field string
		edit  func(*related.RecordMessage)
	}{
		{"channel", func(r *related.RecordMessage) { r.Channel = "FAX" }},
		{"threadRef", func(r *related.RecordMessage) { r.ThreadRef = "" }},
		{"contact.address", func(r *related.RecordMessage) { r.Contact.Address = "" }},
		{"contact.name", func(r *related.RecordMessage) { r.Contact.Name = "a\x00" }},
		{"contact.attributes.1.key", func(r *related.RecordMessage) {
			r.Contact.Attributes = []related.Attribute{{Key: "a", Value: "b"}, {Key: " ", Value: "c"}}
		}},
		{"queue", func(r *related.RecordMessage) { r.Queue = strings.Repeat("q", 300) }},
		{"direction", func(r *related.RecordMessage) { r.Direction = "SIDEWAYS" }},
		{"body", func(r *related.RecordMessage) { r.Body = "\n\t " }},
		{"body", func(r *related.RecordMessage) { r.Body = "\xff" }},
		{"sentAt", func(r *related.RecordMessage) { r.SentAt = now.Add(48 * time.Hour) }},
		{"sentAt", func(r *related.RecordMessage) { r.SentAt = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"clientMutationId", func(r *related.RecordMessage) { r.ClientMutationID = strings.Repeat("c", 300) }},
	}
	for _, b := range bad {
		r := ok
		b.edit(&r)
		_, err := r.Normalize(now)
		e, isErr := related.AsError(err)
		if !isErr || strings.Join(e.Field, ".") != b.field || e.Code != related.CodeInvalid {
			t.Errorf("%s: error = %v, want INVALID on %s", b.field, err, b.field)
		}
	}
}

func TestNewIDIsIncreasingAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 10000 {
		id := related.NewID()
		if seen[id] || id <= prev || len(id) != 26 {
			t.Fatalf("id %q after %q (seen=%v)", id, prev, seen[id])
		}
		seen[id] = true
		prev = id
	}
}

func TestGlobalIDRoundTrip(t *testing.T) {
	for _, typ := range []related.NodeType{related.NodeInteraction, related.NodeMessage, related.NodeContact, related.NodeQueue} {
		id := related.NewID()
		gotType, gotID, err := related.ParseGlobalID(related.GlobalID(typ, id))
		if err != nil || gotType != typ || gotID != id {
			t.Fatalf("round trip of %s:%s = %s:%s, %v", typ, id, gotType, gotID, err)
		}
	}
	if _, err := related.ParseTypedID(related.GlobalID(related.NodeContact, "x"), related.NodeInteraction); !related.IsNotFound(err) {
		t.Fatalf("a contact id as an interaction id = %v, want NOT_FOUND", err)
	}
}

func FuzzParseGlobalID(f *testing.F) {
	f.Add(related.GlobalID(related.NodeInteraction, "abc"))
	f.Add("")
	f.Add("SW50ZXJhY3Rpb246")
	f.Add("!!!")
	f.Add(strings.Repeat("A", 300))
	f.Fuzz(func(t *testing.T, s string) {
		typ, id, err := related.ParseGlobalID(s)
		if err != nil {
			if _, ok := related.AsError(err); !ok {
				t.Fatalf("error %v is not a *related.Error", err)
			}
			return
		}
		// Whatever parses must be what GlobalID would have made.
		if again := related.GlobalID(typ, id); again != s {
			t.Fatalf("ParseGlobalID(%q) = %s:%s, which encodes as %q", s, typ, id, again)
		}
	})
}

func TestInlineBody(t *testing.T) {
	short := strings.Repeat("a", related.InlineBodyLength)
	if got, partial := related.InlineBody(short); got != short || partial {
		t.Fatalf("a body of the limit was cut")
	}
	long := strings.Repeat("é", related.InlineBodyLength) // 2 bytes each
	got, partial := related.InlineBody(long)
	if !partial || len(got) > related.InlineBodyLength || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Fatalf("cut = %d bytes, partial=%v, valid=%v", len(got), partial, utf8.ValidString(got))
	}
}
