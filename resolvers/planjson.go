package resolvers

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/relatedhq/related"
)

// The JSON writers of compiled plans. Each writes a value exactly as it
// reaches the wire through gqlgen: gqlgen's own marshalling (strings by
// graphql.MarshalString, enums and times by strconv.Quote) and then the
// HTTP transport's encoding/json, which escapes <, > and & and the line
// separators U+2028 and U+2029 in the data it compacts. The plan's
// differential test (server/plan_test.go) holds them to it byte for byte.

const lowerHex = "0123456789abcdef"
const upperHex = "0123456789ABCDEF"

// appendString writes s as a JSON string: control characters as gqlgen
// escapes them (\t, \r, \n, else \u00XX in upper case), quotes and
// backslashes escaped, <, > and & as \u003c, \u003e and \u0026 and U+2028
// and U+2029 as \u2028 and \u2029 (encoding/json). Every other byte, an
// invalid one too, is copied.
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var esc string
		switch {
		case c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c != 0xE2:
			continue
		case c == '\t':
			esc = `\t`
		case c == '\r':
			esc = `\r`
		case c == '\n':
			esc = `\n`
		case c == '"':
			esc = `\"`
		case c == '\\':
			esc = `\\`
		case c < 0x20:
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&0xF])
			start = i + 1
			continue
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xF])
			start = i + 1
			continue
		default: // 0xE2: U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xA8 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', lowerHex[s[i+2]&0xF])
				i += 2
				start = i + 1
			}
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, esc...)
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendStringOrNull writes s, or null for "" (the OrNil accessors).
func appendStringOrNull(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendString(dst, s)
}

// appendEnum writes an enum value as its MarshalGQL does (strconv.Quote),
// which for the names of enum values (letters, digits and underscores) is
// the plain quoted name. It reports false for anything else, which a plan
// then leaves to gqlgen.
func appendEnum(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return dst, false
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// appendTime writes stored milliseconds as graphql.MarshalTime writes the
// time the store decodes them to (UTC, RFC 3339 with nanoseconds, trailing
// zeros dropped). ms must not be 0, the zero time (null).
func appendTime(dst []byte, ms int64) []byte {
	dst = append(dst, '"')
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendGlobalID writes the global id of a t with store id id
// (related.GlobalID): base64url, which needs no escaping.
func appendGlobalID(dst []byte, t related.NodeType, id string) []byte {
	var raw [160]byte
	src := append(append(append(raw[:0], t...), ':'), id...)
	dst = append(dst, '"')
	dst = base64.RawURLEncoding.AppendEncode(dst, src)
	return append(dst, '"')
}

// appendCursor writes the cursor of a Related row at lastAt (stored
// milliseconds, 0 for the zero time) with id, as
// store.InteractionCursor(...).Encode() makes it.
func appendCursor(dst []byte, lastAt int64, id string) []byte {
	if lastAt == 0 {
		lastAt = time.Time{}.UnixMilli()
	}
	var raw [128]byte
	src := append(raw[:0], "c1:"...)
	src = strconv.AppendInt(src, lastAt, 10)
	src = append(append(src, ':'), id...)
	dst = append(dst, '"')
	dst = base64.RawURLEncoding.AppendEncode(dst, src)
	return append(dst, '"')
}

// appendPreview writes related.Preview(body, related.PreviewLength) as a
// JSON string without building the preview string: white space folded,
// control characters and invalid bytes dropped, at most PreviewLength
// characters with an ellipsis at a cut.
func appendPreview(dst []byte, body string) []byte {
	const n = related.PreviewLength
	var out [n + 1]rune
	k := 0
	space := false
	cut := false
	for _, r := range body {
		switch {
		case unicode.IsSpace(r):
			space = k > 0
			continue
		case r == utf8.RuneError || unicode.IsControl(r):
			continue
		}
		if space {
			out[k] = ' '
			k++
			space = false
			if k > n {
				cut = true
				break
			}
		}
		out[k] = r
		k++
		if k > n {
			cut = true
			break
		}
	}
	if cut {
		out[n-1] = '…'
		k = n
	}
	var buf [4 * (n + 1)]byte
	b := buf[:0]
	for _, r := range out[:k] {
		b = utf8.AppendRune(b, r)
	}
	return appendString(dst, b)
}
