package server_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/relatedhq/related/server"
)

// urqlAccept is the Accept header urql sends with every operation.
const urqlAccept = "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"

// TestGraphQLOverHTTP holds the answers to the GraphQL-over-HTTP
// specification's cases: the media type follows Accept, a request that
// does not run has no "data" entry and its status depends on the media
// type, and methods and bodies that are not GraphQL requests are refused
// with a code.
func TestGraphQLOverHTTP(t *testing.T) {
	g := newGateway(t, backends[0])
	get := func(q string) string { return "/graphql?" + url.Values{"query": {q}}.Encode() }
	for _, c := range []struct {
		name, method, path, accept, contentType, body string
		status                                        int
		media                                         string // Content-Type of the answer
		data                                          bool   // a "data" entry
		code                                          string // extensions.code of the first error
	}{
		{"query, no Accept", "POST", "/graphql", "", "application/json", `{"query":"{ viewer { tenant } }"}`, 200, "application/json", true, ""},
		{"query, Accept */*", "POST", "/graphql", "*/*", "application/json", `{"query":"{ viewer { tenant } }"}`, 200, "application/json", true, ""},
		{"query, graphql-response+json", "POST", "/graphql", "application/graphql-response+json, application/json;q=0.9", "application/json", `{"query":"{ viewer { tenant } }"}`, 200, "application/graphql-response+json", true, ""},
		{"json preferred", "POST", "/graphql", "application/graphql-response+json;q=0.5, application/json", "application/json", `{"query":"{ viewer { tenant } }"}`, 200, "application/json", true, ""},
		{"parse error, json", "POST", "/graphql", "application/json", "application/json", `{"query":"{ viewer { "}`, 200, "application/json", false, "GRAPHQL_PARSE_FAILED"},
		{"parse error, graphql-response+json", "POST", "/graphql", "application/graphql-response+json", "application/json", `{"query":"{ viewer { "}`, 400, "application/graphql-response+json", false, "GRAPHQL_PARSE_FAILED"},
		{"validation error, json", "POST", "/graphql", "application/json", "application/json", `{"query":"{ nope }"}`, 200, "application/json", false, "GRAPHQL_VALIDATION_FAILED"},
		{"validation error, graphql-response+json", "POST", "/graphql", "application/graphql-response+json", "application/json", `{"query":"{ nope }"}`, 400, "application/graphql-response+json", false, "GRAPHQL_VALIDATION_FAILED"},
		{"variable coercion, json", "POST", "/graphql", "application/json", "application/json", `{"query":"query($id: ID!) { node(id: $id) { id } }","variables":{"id":{"x":1}}}`, 200, "application/json", false, "GRAPHQL_VALIDATION_FAILED"},
		{"too complex, graphql-response+json", "POST", "/graphql", "application/graphql-response+json", "application/json", `{"query":"{ interactions(first: 100) { edges { node { related(first: 100) { edges { node { id channel status } } } } } } }"}`, 400, "application/graphql-response+json", false, server.CodeTooComplex},
		{"GET query", "GET", get("{ viewer { tenant } }"), "application/graphql-response+json", "", "", 200, "application/graphql-response+json", true, ""},
		{"GET mutation, Accept text/html", "GET", get(`mutation { setPreferences(input: {showRelated: true}) { preferences { showRelated } } }`), "text/html", "", "", 405, "application/json", false, server.CodeMethodNotAllowed},
		{"GET query, Accept text/html", "GET", get(`{ viewer { tenant } }`), "text/html", "", "", 406, "application/json", false, server.CodeNotAcceptable},
		{"GET mutation", "GET", get(`mutation { setPreferences(input: {showRelated: true}) { preferences { showRelated } } }`), "application/json", "", "", 405, "application/json", false, server.CodeMethodNotAllowed},
		{"GET bad variables", "GET", get("{ viewer { tenant } }") + "&variables=%5B1", "application/json", "", "", 400, "application/json", false, server.CodeBadRequest},
		{"no query", "POST", "/graphql", "application/json", "application/json", `{"variables":{}}`, 400, "application/json", false, server.CodeBadRequest},
		{"query not a string", "POST", "/graphql", "application/json", "application/json", `{"query":42}`, 400, "application/json", false, server.CodeBadRequest},
		{"variables not an object", "POST", "/graphql", "application/json", "application/json", `{"query":"{ viewer { tenant } }","variables":[1]}`, 400, "application/json", false, server.CodeBadRequest},
		{"not JSON", "POST", "/graphql", "application/json", "application/json", `{"query":`, 400, "application/json", false, server.CodeBadRequest},
		{"text/plain body", "POST", "/graphql", "application/json", "text/plain", `{ viewer { tenant } }`, 415, "application/json", false, server.CodeUnsupportedType},
		{"Accept nothing we speak", "POST", "/graphql", "text/html", "application/json", `{"query":"{ viewer { tenant } }"}`, 406, "application/json", false, server.CodeNotAcceptable},
		{"mutation from urql", "POST", "/graphql", urqlAccept, "application/json", `{"query":"mutation { setPreferences(input: {showRelated: true}) { preferences { showRelated } } }"}`, 200, "application/graphql-response+json", true, ""},
		{"mutation asking only for a stream", "POST", "/graphql", "text/event-stream", "application/json", `{"query":"mutation { setPreferences(input: {showRelated: true}) { preferences { showRelated } } }"}`, 200, "text/event-stream", true, ""},
		{"a batch asking only for a stream", "POST", "/graphql", "text/event-stream", "application/json", `[{"query":"subscription { interactionsChanged { kind } }"}]`, 400, "application/json", false, server.CodeBadRequest},
		{"a bad body asking only for a stream", "POST", "/graphql", "text/event-stream", "application/json", `{"query":1}`, 400, "application/json", false, server.CodeBadRequest},
		{"not JSON, asking only for a stream", "POST", "/graphql", "text/event-stream", "application/json", `{"query":`, 400, "application/json", false, server.CodeBadRequest},
		{"no query, asking only for a stream", "POST", "/graphql", "text/event-stream", "application/json", `{}`, 400, "application/json", false, server.CodeBadRequest},
		{"validation error, asking only for a stream", "POST", "/graphql", "text/event-stream", "application/json", `{"query":"subscription { nope }"}`, 400, "application/json", false, "GRAPHQL_VALIDATION_FAILED"},
		{"@defer is not offered", "POST", "/graphql", "application/json", "application/json", `{"query":"{ viewer { tenant ... @defer { role } } }"}`, 200, "application/json", false, "GRAPHQL_VALIDATION_FAILED"},
		{"subscription over plain POST", "POST", "/graphql", "application/json", "application/json", `{"query":"subscription { relatedChanged(interactionId: \"x\") { kind } }"}`, 200, "application/json", false, server.CodeBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{"Authorization": "Bearer " + g.key}
			if c.accept != "" {
				h["Accept"] = c.accept
			}
			if c.contentType != "" {
				h["Content-Type"] = c.contentType
			}
			r := g.raw(c.method, c.path, h, c.body)
			if r.status != c.status || !strings.HasPrefix(r.header.Get("Content-Type"), c.media) {
				t.Fatalf("status %d %q, want %d %q: %s", r.status, r.header.Get("Content-Type"), c.status, c.media, r.body)
			}
			if c.media == "text/event-stream" {
				if !strings.Contains(r.body, "event: next") || !strings.Contains(r.body, `"showRelated":true`) {
					t.Fatalf("stream %s", r.body)
				}
				return
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Fatalf("%s: %v", r.body, err)
			}
			if _, ok := body["data"]; ok != c.data {
				t.Fatalf("data entry present=%v, want %v: %s", ok, c.data, r.body)
			}
			var errs []struct{ Extensions map[string]any }
			json.Unmarshal(body["errors"], &errs)
			got := ""
			if len(errs) > 0 {
				got, _ = errs[0].Extensions["code"].(string)
			}
			if got != c.code {
				t.Fatalf("code %q, want %q: %s", got, c.code, r.body)
			}
			// Every GraphQL answer reports its cost, a document that did
			// not parse or validate too.
			if c.code == "" || strings.HasPrefix(c.code, "GRAPHQL_") {
				var ext struct {
					Cost *struct{ RequestedQueryCost, MaximumQueryCost int }
				}
				json.Unmarshal(body["extensions"], &ext)
				if ext.Cost == nil || ext.Cost.MaximumQueryCost == 0 {
					t.Fatalf("no extensions.cost: %s", r.body)
				}
			}
			if c.status == 405 && r.header.Get("Allow") != "POST" {
				t.Fatalf("Allow %q", r.header.Get("Allow"))
			}
		})
	}
}

func TestDeferNotAdvertised(t *testing.T) {
	g := newGateway(t, backends[0])
	var s struct {
		Schema struct{ Directives []struct{ Name string } } `json:"__schema"`
	}
	g.must(`{ __schema { directives { name } } }`, nil, &s)
	for _, d := range s.Schema.Directives {
		if d.Name == "defer" || d.Name == "stream" {
			t.Fatalf("introspection lists @%s", d.Name)
		}
	}
}

func TestCostExtension(t *testing.T) {
	g := newGateway(t, backends[0])
	r := g.raw("POST", "/graphql", map[string]string{"Authorization": "Bearer " + g.key, "Content-Type": "application/json"},
		`{"query":"{ viewer { tenant } interactions(first: 7) { edges { node { id channel } } } }"}`)
	var body struct {
		Extensions struct{ Cost server.Cost }
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	// viewer 1 + tenant 1; interactions 1 + edges (1 + node (1 + 2)) x 7.
	want := server.Cost{RequestedQueryCost: 2 + 1 + 4*7, MaximumQueryCost: server.DefaultLimits.MaxComplexity}
	if body.Extensions.Cost != want {
		t.Fatalf("extensions.cost %+v, want %+v: %s", body.Extensions.Cost, want, r.body)
	}
	// nodes resolves its selection once per id: 1 + (id 1 + messages 1 +
	// edges (1 + node (1 + 1)) x 20) x 3 ids, from a variable.
	r = g.raw("POST", "/graphql", map[string]string{"Authorization": "Bearer " + g.key, "Content-Type": "application/json"},
		`{"query":"query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Interaction { messages { edges { node { id } } } } } }","variables":{"ids":["a","b","c"]}}`)
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	if want := int64(1 + (1+1+3*20)*3); body.Extensions.Cost.RequestedQueryCost != want {
		t.Fatalf("nodes of 3 ids: extensions.cost %+v, want a requested cost of %d: %s", body.Extensions.Cost, want, r.body)
	}
}

func TestBatch(t *testing.T) {
	g := newGatewayWith(t, backends[0], server.Options{Limits: server.Limits{RatePerSecond: 0.001, RateBurst: 6, MaxBatch: 4}})
	post := func(body string) rawResult {
		return g.raw("POST", "/graphql", map[string]string{"Authorization": "Bearer " + g.key, "Content-Type": "application/json", "Accept": "application/graphql-response+json"}, body)
	}
	r := post(`[{"query":"{ viewer { tenant } }"}, {"query":"{ nope }"}, {"query":"query Q($n: Int) { interactions(first: $n) { edges { node { id } } } }","variables":{"n":1}}, {"x":1}]`)
	var results []map[string]json.RawMessage
	if r.status != 200 || json.Unmarshal([]byte(r.body), &results) != nil || len(results) != 4 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if string(results[0]["data"]) != `{"viewer":{"tenant":"demo"}}` || results[1]["data"] != nil || results[1]["errors"] == nil ||
		!strings.Contains(string(results[2]["data"]), "interactions") || !strings.Contains(string(results[3]["errors"]), server.CodeBadRequest) {
		t.Fatalf("results %s", r.body)
	}
	// 4 of the key's 6 tokens are spent; a batch of 3 needs 3.
	if r := post(`[{"query":"{ viewer { tenant } }"},{"query":"{ viewer { tenant } }"},{"query":"{ viewer { tenant } }"}]`); r.status != 429 || !strings.Contains(r.body, server.CodeRateLimited) {
		t.Fatalf("a batch over the rate limit: %d %s", r.status, r.body)
	}
	g2 := newGatewayWith(t, backends[0], server.Options{Limits: server.Limits{RatePerSecond: -1, MaxBatch: 2}})
	for body, code := range map[string]string{
		`[{"query":"{ viewer { tenant } }"},{"query":"{ viewer { tenant } }"},{"query":"{ viewer { tenant } }"}]`: server.CodeBatchTooLarge,
		`[]`:     server.CodeBadRequest,
		`[1, 2`:  server.CodeBadRequest,
		` [ 1 ]`: "", // an element that is not an object is that element's error
	} {
		r := g2.raw("POST", "/graphql", map[string]string{"Authorization": "Bearer " + g2.key, "Content-Type": "application/json"}, body)
		if code == "" {
			if r.status != 200 || !strings.Contains(r.body, server.CodeBadRequest) || !strings.HasPrefix(r.body, "[") {
				t.Fatalf("%s: %d %s", body, r.status, r.body)
			}
			continue
		}
		if r.status != 400 || !strings.Contains(r.body, code) {
			t.Fatalf("%s: %d %s, want 400 %s", body, r.status, r.body, code)
		}
	}
}
