package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

func TestCursorRoundTrip(t *testing.T) {
	c := store.Cursor{At: time.Date(2026, 2, 3, 4, 5, 6, 7e6, time.UTC), ID: related.NewID()}
	got, err := store.DecodeCursor(c.Encode())
	if err != nil || !got.At.Equal(c.At) || got.ID != c.ID {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, c)
	}
}

func TestNewPage(t *testing.T) {
	n := func(i int) *int { return &i }
	s := func(v string) *string { return &v }
	good := store.Cursor{At: time.UnixMilli(1).UTC(), ID: "x"}.Encode()
	tests := []struct {
		name        string
		first, last *int
		after       *string
		want        store.Page
		field       string
	}{
		{name: "default", want: store.Page{First: store.DefaultPageSize}},
		{name: "first", first: n(5), want: store.Page{First: 5}},
		{name: "last", last: n(5), want: store.Page{Last: 5}},
		{name: "max", first: n(100), want: store.Page{First: 100}},
		{name: "over max", first: n(101), field: "first"},
		{name: "negative", last: n(-1), field: "last"},
		{name: "both", first: n(1), last: n(1), field: "first"},
		{name: "bad cursor", after: s("zzz"), field: "after"},
		{name: "good cursor", after: s(good), want: store.Page{First: 20, After: &store.Cursor{At: time.UnixMilli(1).UTC(), ID: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := store.NewPage(tt.first, tt.after, tt.last, nil)
			if tt.field != "" {
				e, ok := related.AsError(err)
				if !ok || strings.Join(e.Field, ".") != tt.field {
					t.Fatalf("error = %v, want one on %s", err, tt.field)
				}
				return
			}
			if err != nil || p.First != tt.want.First || p.Last != tt.want.Last || (p.After == nil) != (tt.want.After == nil) {
				t.Fatalf("page = %+v, %v; want %+v", p, err, tt.want)
			}
		})
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(store.Cursor{At: time.UnixMilli(1700000000000), ID: "abc"}.Encode())
	f.Add("")
	f.Add("YzE6")
	f.Add("YzE6LTE6eA")
	f.Add(strings.Repeat("A", 500))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := store.DecodeCursor(s)
		if err != nil {
			return
		}
		// A decoded cursor re-encodes to an equivalent cursor.
		again, err := store.DecodeCursor(c.Encode())
		if err != nil || !again.At.Equal(c.At) || again.ID != c.ID {
			t.Fatalf("DecodeCursor(%q) = %+v, which does not round-trip: %+v, %v", s, c, again, err)
		}
	})
}
