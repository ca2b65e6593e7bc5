package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// This file holds the input checks that make a caller's mistake a
// validation error (GRAPHQL_VALIDATION_FAILED, naming the field) rather
// than something gqlgen or a resolver trips over later and reports as
// INTERNAL: strict variable coercion (the GraphQL spec's, where gqlparser
// is lenient), literal scalars gqlparser does not check (Time), and text
// that is not Unicode.
//
// Text is checked where it is still raw. JSON decoders silently replace
// invalid UTF-8 and lone UTF-16 surrogate escapes (\ud800) with U+FFFD, so
// a value that arrives broken would be stored as something the client never
// sent; and a NUL (\u0000) is valid JSON that no text field means. Every
// transport's raw JSON (POST and SSE bodies, GET parameters, WebSocket
// messages) passes checkJSONText; query text passes checkQueryText.

// CodeValidationFailed is the code of a request refused for the caller's
// malformed input: gqlgen's own code for parse and validation errors.
const CodeValidationFailed = errcode.ValidationFailed

// textProblem is where a raw JSON document holds text that is not Unicode,
// and what is wrong with it.
type textProblem struct {
	path    []string // JSON keys and indices down to the string
	problem string
}

func (p *textProblem) Error() string {
	if len(p.path) == 0 {
		return p.problem
	}
	return strings.Join(p.path, ".") + ": " + p.problem
}

// checkJSONText reports the first string of the JSON document data, key or
// value, that is not valid Unicode text: invalid UTF-8, a lone surrogate
// escape, or a NUL. Malformed JSON is not its business (the transport
// reports it): it returns nil for it. It costs one pass over data when
// nothing is suspicious, and a token walk otherwise.
func checkJSONText(data []byte) *textProblem {
	if utf8.Valid(data) && !bytes.Contains(data, []byte(`\u`)) && bytes.IndexByte(data, 0) < 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		key    string
		index  int
		expect bool // object: the next string is a key
	}
	var stack []frame
	path := func() []string {
		out := make([]string, 0, len(stack))
		for _, f := range stack {
			if f.object {
				out = append(out, f.key)
			} else {
				out = append(out, strconv.Itoa(f.index))
			}
		}
		return out
	}
	// advance moves the innermost container past one value.
	advance := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].expect = true
			} else {
				stack[n-1].index++
			}
		}
	}
	prev := dec.InputOffset()
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			// Not JSON: what precedes the error may still be broken text,
			// but the transport refuses the document anyway.
			return nil
		}
		end := dec.InputOffset()
		raw := data[prev:end]
		prev = end
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{object: true, expect: true})
			case '[':
				stack = append(stack, frame{})
			case '}', ']':
				stack = stack[:len(stack)-1]
				advance()
			}
		case string:
			key := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].expect
			if problem := rawStringProblem(raw); problem != "" {
				p := path()
				if key {
					problem = fmt.Sprintf("the key %q %s", t, problem)
				}
				return &textProblem{path: p, problem: problem}
			}
			if key {
				stack[len(stack)-1].key = t
				stack[len(stack)-1].expect = false
				continue
			}
			advance()
		default:
			advance()
		}
	}
}

// rawStringProblem checks the raw bytes of one JSON string token (and the
// separators before it, which hold no backslash) and says what is wrong.
func rawStringProblem(raw []byte) string {
	if !utf8.Valid(raw) {
		return "is not valid UTF-8"
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		return "holds a NUL character"
	}
	return escapeProblem(string(raw), false)
}

// escapeProblem scans s for \uXXXX escapes (and, when braced is set, the
// GraphQL \u{X...} form) and reports a NUL or a UTF-16 surrogate that is
// not half of a pair. s is the text of one string, escapes not yet
// decoded.
func escapeProblem(s string, braced bool) string {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			continue
		}
		if s[i+1] != 'u' {
			i++ // an escaped character, maybe a backslash: skip it
			continue
		}
		if braced && i+2 < len(s) && s[i+2] == '{' {
			end := strings.IndexByte(s[i+3:], '}')
			if end < 0 {
				return "" // malformed: the parser reports it
			}
			v, err := strconv.ParseUint(s[i+3:i+3+end], 16, 32)
			if err == nil && v == 0 {
				return "holds a NUL character (\\u{0})"
			}
			i += 3 + end
			continue
		}
		r, ok := hex4(s, i+2)
		if !ok {
			continue // malformed: the decoder reports it
		}
		switch {
		case r == 0:
			return "holds a NUL character (\\u0000)"
		case r >= 0xD800 && r <= 0xDBFF:
			if low, ok := hex4(s, i+8); ok && s[i+6] == '\\' && s[i+7] == 'u' && low >= 0xDC00 && low <= 0xDFFF {
				i += 11 // the pair: one character
				continue
			}
			return fmt.Sprintf("holds a lone UTF-16 surrogate (\\u%04X), which is not a character", r)
		case r >= 0xDC00 && r <= 0xDFFF:
			return fmt.Sprintf("holds a lone UTF-16 surrogate (\\u%04X), which is not a character", r)
		}
		i += 5
	}
	return ""
}

// hex4 decodes the four hex digits of s at i.
func hex4(s string, i int) (rune, bool) {
	if i < 0 || i+4 > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s[i:i+4], 16, 16)
	return rune(v), err == nil
}

// textRefusal is the GraphQL error for a request holding text that is not
// Unicode; where says where (the transport's name for the document part).
func textRefusal(p *textProblem) *gqlerror.Error {
	e := refusal(CodeValidationFailed, "%s (send valid UTF-8 text without NUL characters)", p.Error())
	if len(p.path) > 0 {
		e.Extensions["field"] = p.path
	}
	return e
}

// checkQueryText checks a GraphQL document's text: valid UTF-8, and no
// string literal that escapes a NUL or a lone surrogate (gqlparser decodes
// those to U+0000 and U+FFFD without a word). Comments and block strings,
// which take no escapes, are skipped.
func checkQueryText(q string) *gqlerror.Error {
	if !utf8.ValidString(q) {
		return refusal(CodeValidationFailed, "query: the document is not valid UTF-8")
	}
	if strings.IndexByte(q, 0) >= 0 {
		return refusal(CodeValidationFailed, "query: the document holds a NUL character")
	}
	if !strings.Contains(q, `\u`) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(q); i++ {
		switch {
		case q[i] == '\n':
			line, col = line+1, 1
			continue
		case q[i] == '#':
			for i+1 < len(q) && q[i+1] != '\n' {
				i++
			}
		case strings.HasPrefix(q[i:], `"""`):
			end := strings.Index(q[i+3:], `"""`)
			for end > 0 && q[i+3+end-1] == '\\' { // \""" is an escaped quote
				next := strings.Index(q[i+3+end+3:], `"""`)
				if next < 0 {
					end = -1
					break
				}
				end += 3 + next
			}
			if end < 0 {
				return nil // unterminated: the parser reports it
			}
			line += strings.Count(q[i:i+3+end+3], "\n")
			i += 3 + end + 2
		case q[i] == '"':
			j := i + 1
			for j < len(q) && q[j] != '"' && q[j] != '\n' {
				if q[j] == '\\' {
					j++
				}
				j++
			}
			if j > len(q) {
				j = len(q)
			}
			if p := escapeProblem(q[i+1:j], true); p != "" {
				return refusal(CodeValidationFailed, "query: the string at line %d, column %d %s (send valid UTF-8 text without NUL characters)", line, col, p)
			}
			col += j - i
			i = j
		}
		col++
	}
	return nil
}

// maxInt and minInt are GraphQL's Int range: a signed 32-bit integer.
const (
	maxInt = math.MaxInt32
	minInt = math.MinInt32
)

// coerceVariables checks variable values against their declared types
// the way the GraphQL spec coerces them, before gqlparser does, which is
// lenient (the string "10" passes as an Int, any integer of 64 bits does,
// an enum's name in any case does) and misreports a fraction ("cannot use
// value 0 as Int"). Structural problems (missing non-null values, unknown
// input fields) are left to gqlparser, whose messages are good.
func coerceVariables(schema *ast.Schema, defs []varDef, vars map[string]any) *gqlerror.Error {
	for _, d := range defs {
		v, ok := vars[d.name]
		if !ok {
			continue
		}
		if err := coerceValue(schema, d.typ, v, ast.Path{ast.PathName("variable"), ast.PathName(d.name)}); err != nil {
			return err
		}
	}
	return nil
}

func coerceValue(schema *ast.Schema, t *ast.Type, v any, path ast.Path) *gqlerror.Error {
	if v == nil || t == nil {
		return nil // null: gqlparser checks it against NonNull
	}
	if t.Elem != nil {
		list, ok := v.([]any)
		if !ok {
			return coerceValue(schema, t.Elem, v, path) // a single value is a list of one
		}
		for i, item := range list {
			if err := coerceValue(schema, t.Elem, item, append(path, ast.PathIndex(i))); err != nil {
				return err
			}
		}
		return nil
	}
	def := schema.Types[t.NamedType]
	if def == nil {
		return nil
	}
	bad := func(format string, args ...any) *gqlerror.Error {
		e := gqlerror.ErrorPathf(path, "%s: %s", varPath(path), fmt.Sprintf(format, args...))
		errcode.Set(e, CodeValidationFailed)
		return e
	}
	switch def.Kind {
	case ast.Enum:
		s, ok := v.(string)
		if !ok {
			return bad("cannot use %s as a %s: want one of %s", describe(v), def.Name, enumNames(def))
		}
		if def.EnumValues.ForName(s) == nil {
			return bad("%q is not a %s: want one of %s (case matters)", s, def.Name, enumNames(def))
		}
	case ast.InputObject:
		m, ok := v.(map[string]any)
		if !ok {
			return nil // gqlparser: "must be a ..."
		}
		for _, f := range def.Fields {
			if fv, ok := m[f.Name]; ok {
				if err := coerceValue(schema, f.Type, fv, append(path, ast.PathName(f.Name))); err != nil {
					return err
				}
			}
		}
	case ast.Scalar:
		switch def.Name {
		case "Int":
			if _, problem := asGraphQLInt(v); problem != "" {
				return bad("%s", problem)
			}
		case "Float":
			if !isNumber(v) {
				return bad("cannot use %s as a Float: send a JSON number", describe(v))
			}
		case "String":
			s, ok := v.(string)
			if !ok {
				return bad("cannot use %s as a String", describe(v))
			}
			if p := decodedTextProblem(s); p != "" {
				return bad("%s", p)
			}
		case "ID":
			switch x := v.(type) {
			case string:
				if p := decodedTextProblem(x); p != "" {
					return bad("%s", p)
				}
			default:
				if _, problem := asGraphQLInt(v); problem != "" {
					return bad("cannot use %s as an ID: send a string", describe(v))
				}
			}
		case "Boolean":
			if _, ok := v.(bool); !ok {
				return bad("cannot use %s as a Boolean: send true or false", describe(v))
			}
		case "Time":
			s, ok := v.(string)
			if !ok {
				return bad("cannot use %s as a Time: send an RFC 3339 date-time string such as %q", describe(v), timeExample)
			}
			if p := timeProblem(s); p != "" {
				return bad("%s", p)
			}
		}
	}
	return nil
}

// timeExample is the format the errors about Time show.
const timeExample = "2026-05-04T08:00:00Z"

// timeProblem says why s is not a Time (RFC 3339, with its offset), or "".
func timeProblem(s string) string {
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		return fmt.Sprintf("%q is not a Time: want an RFC 3339 date-time such as %q", s, timeExample)
	}
	return ""
}

// decodedTextProblem checks text that has been decoded already: the raw
// checks catch what decoding hides, this catches what it lets through.
func decodedTextProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "holds a NUL character"
	}
	return ""
}

// asGraphQLInt reads v as a GraphQL Int: a JSON number that is whole and
// within 32 bits. Strings are refused, as the spec says.
func asGraphQLInt(v any) (int64, string) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return intInRange(i, string(n))
		}
		x, err := n.Float64()
		if err != nil {
			return 0, fmt.Sprintf("cannot use %s as an Int: Int is 32-bit (%d to %d)", n, minInt, maxInt)
		}
		f = x
	case int:
		return intInRange(int64(n), strconv.Itoa(n))
	case int32:
		return int64(n), ""
	case int64:
		return intInRange(n, strconv.FormatInt(n, 10))
	case float64:
		f = n
	default:
		return 0, fmt.Sprintf("cannot use %s as an Int: send a JSON number", describe(v))
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, fmt.Sprintf("cannot use %v as an Int: it is not a whole number", f)
	}
	if f < minInt || f > maxInt {
		return 0, fmt.Sprintf("cannot use %v as an Int: Int is 32-bit (%d to %d)", f, minInt, maxInt)
	}
	return int64(f), ""
}

func intInRange(i int64, text string) (int64, string) {
	if i < minInt || i > maxInt {
		return 0, fmt.Sprintf("cannot use %s as an Int: Int is 32-bit (%d to %d)", text, minInt, maxInt)
	}
	return i, ""
}

func isNumber(v any) bool {
	switch v.(type) {
	case json.Number, float64, float32, int, int32, int64:
		return true
	}
	return false
}

// describe names a JSON value for an error message, with a short excerpt.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case json.Number:
		return "the number " + x.String()
	case nil:
		return "null"
	}
	if isNumber(v) {
		return fmt.Sprintf("the number %v", v)
	}
	return fmt.Sprintf("%v", v)
}

func enumNames(def *ast.Definition) string {
	names := make([]string, len(def.EnumValues))
	for i, v := range def.EnumValues {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

// varPath writes a variable's path as the caller wrote it: $in.contact.name,
// $ids[2].
func varPath(p ast.Path) string {
	var b strings.Builder
	for i, e := range p {
		switch e := e.(type) {
		case ast.PathName:
			switch {
			case i == 0:
				continue // "variable"
			case i == 1:
				b.WriteString("$" + string(e))
			default:
				b.WriteString("." + string(e))
			}
		case ast.PathIndex:
			fmt.Fprintf(&b, "[%d]", int(e))
		}
	}
	return b.String()
}

// varDef is one declared variable, kept apart from the parsed document:
// the document's positions pin the whole query text, which a cache of
// these must not. Its strings are copies for the same reason: the parser's
// names are slices of the query text.
type varDef struct {
	name string
	typ  *ast.Type
}

// declaredVars lists the variables of each operation of doc by name ("" for
// a document's only operation, which a request may leave unnamed).
func declaredVars(doc *ast.QueryDocument) map[string][]varDef {
	out := make(map[string][]varDef, len(doc.Operations))
	for _, op := range doc.Operations {
		defs := make([]varDef, len(op.VariableDefinitions))
		for i, vd := range op.VariableDefinitions {
			defs[i] = varDef{name: strings.Clone(vd.Variable), typ: bareType(vd.Type)}
		}
		out[strings.Clone(op.Name)] = defs
	}
	if len(doc.Operations) == 1 {
		out[""] = out[doc.Operations[0].Name]
	}
	return out
}

// bareType copies t without its positions and out of the query text.
func bareType(t *ast.Type) *ast.Type {
	if t == nil {
		return nil
	}
	return &ast.Type{NamedType: strings.Clone(t.NamedType), Elem: bareType(t.Elem), NonNull: t.NonNull}
}

// varDefsSize estimates the bytes defs keep, for the byte-bounded cache.
func varDefsSize(m map[string][]varDef) int {
	n := 0
	for name, defs := range m {
		n += len(name) + 64
		for _, d := range defs {
			n += len(d.name) + 48
			for t := d.typ; t != nil; t = t.Elem {
				n += len(t.NamedType) + 48
			}
		}
	}
	return n
}

// checkLiterals checks the literal values of a validated operation that
// gqlparser's validation accepts but execution would choke on: custom
// scalars (a Time literal that is not RFC 3339) in arguments and in
// variables' default values.
func checkLiterals(op *ast.OperationDefinition) *gqlerror.Error {
	for _, vd := range op.VariableDefinitions {
		if vd.DefaultValue != nil {
			if err := checkLiteral(vd.DefaultValue, vd.Type, "the default of $"+vd.Variable); err != nil {
				return err
			}
		}
	}
	seen := map[string]bool{}
	return checkSelectionLiterals(op.SelectionSet, seen)
}

func checkSelectionLiterals(ss ast.SelectionSet, seen map[string]bool) *gqlerror.Error {
	for _, sel := range ss {
		switch s := sel.(type) {
		case *ast.Field:
			for _, a := range s.Arguments {
				var t *ast.Type
				if s.Definition != nil {
					if ad := s.Definition.Arguments.ForName(a.Name); ad != nil {
						t = ad.Type
					}
				}
				if err := checkLiteral(a.Value, t, fmt.Sprintf("argument %s of %s", a.Name, s.Name)); err != nil {
					return err
				}
			}
			if err := checkSelectionLiterals(s.SelectionSet, seen); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := checkSelectionLiterals(s.SelectionSet, seen); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && !seen[s.Name] {
				seen[s.Name] = true
				if err := checkSelectionLiterals(s.Definition.SelectionSet, seen); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkLiteral checks one literal value of type t (nil when unknown).
func checkLiteral(v *ast.Value, t *ast.Type, where string) *gqlerror.Error {
	if v == nil {
		return nil
	}
	if t == nil {
		t = v.ExpectedType
	}
	switch v.Kind {
	case ast.ListValue:
		var elem *ast.Type
		if t != nil {
			elem = t.Elem
			if elem == nil {
				elem = t // a single value coerced to a list
			}
		}
		for _, c := range v.Children {
			if err := checkLiteral(c.Value, elem, where); err != nil {
				return err
			}
		}
	case ast.ObjectValue:
		for _, c := range v.Children {
			var ft *ast.Type
			if v.Definition != nil {
				if fd := v.Definition.Fields.ForName(c.Name); fd != nil {
					ft = fd.Type
				}
			}
			if err := checkLiteral(c.Value, ft, where+"."+c.Name); err != nil {
				return err
			}
		}
	case ast.Variable, ast.NullValue:
	default:
		if t == nil || t.Elem != nil || t.NamedType != "Time" {
			return nil
		}
		p := fmt.Sprintf("cannot use %s as a Time: send an RFC 3339 date-time string such as %q", v.String(), timeExample)
		if v.Kind == ast.StringValue || v.Kind == ast.BlockValue {
			p = timeProblem(v.Raw)
		}
		if p != "" {
			e := gqlerror.ErrorPosf(v.Position, "%s: %s", where, p)
			errcode.Set(e, CodeValidationFailed)
			return e
		}
	}
	return nil
}
