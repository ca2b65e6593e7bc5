package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/relatedhq/related/store"
)

// FuzzBearerToken feeds the Authorization header parser hostile values:
// it must never panic, and what it accepts is one non-empty token.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer rk_abc", "bearer  rk_x ", "Basic Zm9vOmJhcg==", "Bearer", "Bearer a b", "", "Bearer \x00", "BEARER " + strings.Repeat("k", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearerToken(h)
		if !ok {
			return
		}
		if tok == "" || len(tok) > 256 || strings.ContainsAny(tok, " \t\r\n") {
			t.Fatalf("bearerToken(%q) = %q", h, tok)
		}
		_ = store.LooksLikeKey(tok)
	})
}

// FuzzPrecheck feeds the document pre-check (parse and measure, before
// gqlgen's validation) hostile documents: it must never panic or loop,
// and its counts never go negative.
func FuzzPrecheck(f *testing.F) {
	for _, s := range []string{
		`{ viewer { tenant } }`,
		`query { ...A } fragment A on Query { ...A }`,
		`query { ...A } fragment A on Query { ...B ...B } fragment B on Query { a: viewer { tenant } }`,
		`{ a: x b: x c: x { ... on T { d: y } } }`,
		`query Q1 { a } query Q2 { b } mutation M { c }`,
		`{ __schema { types { fields { type { ofType { ofType { name } } } } } } }`,
		`{ ` + strings.Repeat("a {", 50) + strings.Repeat("}", 50) + ` }`,
		`{`, `}`, ``, `fragment`, `query ($a: Int = 1) { x(first: $a) }`,
	} {
		f.Add(s)
	}
	p := newPrecheck(DefaultLimits)
	f.Fuzz(func(t *testing.T, q string) {
		st, ops, err := measure(q, DefaultLimits.MaxTokens)
		if err == nil && (st.fields < 0 || st.aliases < 0 || st.depth < 0 || ops < 0) {
			t.Fatalf("measure(%q) = %+v, %d", q, st, ops)
		}
		if e := p.check(q).err; e != nil && e.Extensions["code"] == nil {
			t.Fatalf("a refusal without a code: %v", e)
		}
	})
}

// FuzzLooksLikeKey checks the key shape test on arbitrary strings.
func FuzzLooksLikeKey(f *testing.F) {
	secret, _, _ := store.NewKey("t", "admin", "", testNow)
	f.Add(secret)
	f.Add("rk_")
	f.Add("rk_" + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		if store.LooksLikeKey(s) && (!strings.HasPrefix(s, store.KeyPrefix) || len(s) != len(secret)) {
			t.Fatalf("LooksLikeKey(%q) = true", s)
		}
	})
}

// FuzzSplitParams holds the POST body splitter to encoding/json: whenever
// it takes a body, each parameter is what decoding the body into a map
// gives (the same bytes, the last of a repeated key).
func FuzzSplitParams(f *testing.F) {
	for _, s := range []string{
		`{"query":"{ a }"}`, `{"query":"q","variables":{"id":"x","first":20},"operationName":null}`,
		` { "query" : "a\"b" , "extensions" : {"persistedQuery":{"version":1}} } `, `{"query":"a","query":"b"}`,
		`{"x":[1,{"y":"}"}],"query":"z"}`, `{}`, `[]`, `null`, `{"q\u0075ery":"a"}`, `{"query":1e5}`, `{"query":"a"} {}`,
		`{"variables":{"a":[true,false,null,"\\"]}}`, `{"query":"\u2028<>&"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, ok := splitParams([]byte(body))
		if !ok {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("splitParams took %q, which does not decode: %v", body, err)
		}
		for name, raw := range map[string]json.RawMessage{"query": got.query, "operationName": got.operationName, "variables": got.variables, "extensions": got.extensions} {
			if !bytes.Equal(raw, m[name]) {
				t.Fatalf("%q: %s = %q, decoding gives %q", body, name, raw, m[name])
			}
		}
	})
}
