package store

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/relatedhq/related"
)

// Page limits.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Page asks for one page of a list in the list's order: the First items
// after After, or the Last items before Before. A nil cursor means the
// start (or, for Before, the end) of the list.
type Page struct {
	First  int
	After  *Cursor
	Last   int
	Before *Cursor
}

// Backward reports whether p pages towards the start of the list.
func (p Page) Backward() bool { return p.Last > 0 }

// Limit is the number of items p asks for.
func (p Page) Limit() int {
	if p.Last > 0 {
		return p.Last
	}
	return p.First
}

// NewPage validates Relay paging arguments and returns the page they ask
// for. Errors name the offending argument.
func NewPage(first *int, after *string, last *int, before *string) (Page, error) {
	var p Page
	if first != nil && last != nil {
		return p, related.Invalid("give first or last, not both", "first")
	}
	switch {
	case first != nil:
		if *first < 0 || *first > MaxPageSize {
			return p, related.Invalid("must be between 0 and "+strconv.Itoa(MaxPageSize), "first")
		}
		p.First = *first
	case last != nil:
		if *last < 0 || *last > MaxPageSize {
			return p, related.Invalid("must be between 0 and "+strconv.Itoa(MaxPageSize), "last")
		}
		p.Last = *last
		if p.Last == 0 {
			p.First = 0
		}
	default:
		p.First = DefaultPageSize
	}
	if after != nil {
		c, err := DecodeCursor(*after)
		if err != nil {
			return p, related.Invalid("malformed cursor", "after")
		}
		p.After = &c
	}
	if before != nil {
		c, err := DecodeCursor(*before)
		if err != nil {
			return p, related.Invalid("malformed cursor", "before")
		}
		p.Before = &c
	}
	return p, nil
}

// Cursor is a position in a list ordered by (At, ID): a keyset position,
// not an offset, so inserts elsewhere in the list never shift a page.
type Cursor struct {
	At time.Time
	ID string
}

const cursorPrefix = "c1:"

// maxCursor bounds an encoded cursor before any decoding happens.
const maxCursor = 200

// Encode returns c as an opaque string.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(c.At.UnixMilli(), 10) + ":" + c.ID))
}

// DecodeCursor parses a string made by Cursor.Encode. It accepts any input
// without panicking and rejects anything it did not make.
func DecodeCursor(s string) (Cursor, error) {
	bad := related.Invalid("malformed cursor")
	// The decoder skips newlines; only the exact encoding is accepted.
	if s == "" || len(s) > maxCursor || strings.ContainsAny(s, "\r\n") {
		return Cursor{}, bad
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	rest, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return Cursor{}, bad
	}
	ms, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" || len(id) > 64 {
		return Cursor{}, bad
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n < 0 || n > 1<<53 {
		return Cursor{}, bad
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return Cursor{}, bad
		}
	}
	return Cursor{At: time.UnixMilli(n).UTC(), ID: id}, nil
}

// InteractionCursor is the position of i in a Related panel.
func InteractionCursor(i *related.Interaction) Cursor { return Cursor{At: i.LastAt(), ID: i.ID} }

// MessageCursor is the position of m in its interaction's messages.
func MessageCursor(m *related.Message) Cursor { return Cursor{At: m.SentAt, ID: m.ID} }
