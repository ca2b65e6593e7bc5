package resolvers

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// wire is what a value gqlgen marshals with m reaches the wire as: the
// HTTP transport encodes the response with encoding/json, which compacts
// (and escapes) the data gqlgen wrote.
func wire(t testing.TB, m graphql.Marshaler) []byte {
	var buf bytes.Buffer
	m.MarshalGQL(&buf)
	out, err := json.Marshal(json.RawMessage(buf.Bytes()))
	if err != nil {
		t.Fatalf("encode %q: %v", buf.Bytes(), err)
	}
	return out
}

var jsonSeeds = []string{
	"", "plain", `"quoted" \ back`, "<b>&amp;</b>", "\u2028\u2029", "\x00\x01\x1f\x7f\t\r\n",
	"\xe2\x80", "\xe2\x80\xa8", "\xff\xfe invalid", "emoji 😀", "…", strings.Repeat("é", 200),
	"a\u0085b\u00a0c\u3000d", "\ufffd", " \n\t lead and trail \n ",
}

// FuzzAppendString: a plan writes every string as gqlgen and encoding/json
// together write it, any bytes at all.
func FuzzAppendString(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := wire(t, graphql.MarshalString(s))
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// FuzzAppendPreview: a plan writes a body's preview as
// related.Preview makes it and gqlgen writes it.
func FuzzAppendPreview(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s)
	}
	f.Add(strings.Repeat("x", related.PreviewLength))
	f.Add(strings.Repeat("x", related.PreviewLength-1) + " y")
	f.Add(strings.Repeat("x ", related.PreviewLength))
	f.Fuzz(func(t *testing.T, s string) {
		want := wire(t, graphql.MarshalString(related.Preview(s, related.PreviewLength)))
		if got := appendPreview(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendPreview(%q) = %s, want %s", s, got, want)
		}
	})
}

// TestAppendScalars holds the plan's other writers to gqlgen's marshalling:
// times, enums, global ids and cursors.
func TestAppendScalars(t *testing.T) {
	for _, ms := range []int64{1, 999, 1000, 1_780_000_000_000, 1_780_000_000_120, 1_780_000_000_100, 253_402_300_799_999} {
		want := wire(t, graphql.MarshalTime(time.UnixMilli(ms).UTC()))
		if got := appendTime(nil, ms); !bytes.Equal(got, want) {
			t.Errorf("appendTime(%d) = %s, want %s", ms, got, want)
		}
	}
	for _, c := range related.Channels {
		var buf bytes.Buffer
		c.MarshalGQL(&buf)
		if got, ok := appendEnum(nil, string(c)); !ok || !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("appendEnum(%s) = %s %v", c, got, ok)
		}
	}
	if _, ok := appendEnum(nil, "NOT AN ENUM"); ok {
		t.Errorf("appendEnum took a value with a space")
	}
	for _, id := range []string{"x", "06h33abcdefghijklmnopqrstu", strings.Repeat("z", 64)} {
		want := wire(t, graphql.MarshalID(related.GlobalID(related.NodeInteraction, id)))
		if got := appendGlobalID(nil, related.NodeInteraction, id); !bytes.Equal(got, want) {
			t.Errorf("appendGlobalID(%s) = %s, want %s", id, got, want)
		}
		for _, ms := range []int64{0, 1, 1_780_000_000_123} {
			it := &related.Interaction{ID: id, CreatedAt: fromMS(ms)}
			want := wire(t, graphql.MarshalString(store.InteractionCursor(it).Encode()))
			if got := appendCursor(nil, ms, id); !bytes.Equal(got, want) {
				t.Errorf("appendCursor(%d, %s) = %s, want %s", ms, id, got, want)
			}
		}
	}
	for _, c := range []struct {
		in string
		ok bool
	}{{"[]", true}, {`["EMAIL"]`, true}, {`["WEBCHAT","EMAIL","SMS"]`, true}, {`[""]`, false}, {`["EMAIL",]`, false},
		{`[ "EMAIL"]`, false}, {`["EMAIL""SMS"]`, false}, {`null`, false}, {`["email"]`, false}, {`[`, false}, {`["A\"B"]`, false}} {
		if got := channelList(c.in); got != c.ok {
			t.Errorf("channelList(%s) = %v, want %v", c.in, got, c.ok)
		}
	}
}

func fromMS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}
