package schemacheck_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/relatedhq/related/schemacheck"
)

// base is the old version every Diff case changes.
const base = `
"d" scalar Time
"d" interface Node { "d" id: ID! }
"d" type Query {
  "d" node("d" id: ID!): Node
  "d" items("d" first: Int, "d" tags: [String!]): [Item]!
  "d" old: String @deprecated(reason: "use items")
}
"d" type Item implements Node { "d" id: ID! "d" name: String "d" at: Time! "d" kind: Kind! }
"d" enum Kind { "d" A "d" B "d" C @deprecated(reason: "gone soon") }
"d" input ItemInput { "d" name: String! "d" note: String }
"d" type Mutation { "d" add("d" input: ItemInput!): Item }
"d" union Thing = Item
"d" directive @cost("d" weight: Int!) on FIELD_DEFINITION
`

func TestDiff(t *testing.T) {
	tests := []struct {
		name, from, to string
		// want is every change Diff reports, as "BREAKING: path" or
		// "safe: path".
		want []string
	}{
		{"no change", "", "", nil},
		{"type added", "", "\"d\" type Extra { \"d\" x: Int }", []string{"safe: Extra"}},
		{"type removed", "\"d\" union Thing = Item", "", []string{"BREAKING: Thing"}},
		{"field added", "\"d\" at: Time!", "\"d\" at: Time! \"d\" more: Int", []string{"safe: Item.more"}},
		{"field removed", "\"d\" name: String", "", []string{"BREAKING: Item.name"}},
		{"deprecated field removed", "\"d\" old: String @deprecated(reason: \"use items\")", "", []string{"BREAKING: Query.old"}},
		{"output made non-null", "\"d\" name: String", "\"d\" name: String!", []string{"safe: Item.name"}},
		{"output made nullable", "\"d\" at: Time!", "\"d\" at: Time", []string{"BREAKING: Item.at"}},
		{"output type changed", "\"d\" name: String", "\"d\" name: Int", []string{"BREAKING: Item.name"}},
		{"output list items made non-null", "): [Item]!", "): [Item!]!", []string{"safe: Query.items"}},
		{"output list made nullable", "): [Item]!", "): [Item]", []string{"BREAKING: Query.items"}},
		{"output list made a single item", "): [Item]!", "): Item!", []string{"BREAKING: Query.items"}},
		{"optional argument added", "\"d\" tags: [String!])", "\"d\" tags: [String!], \"d\" last: Int)", []string{"safe: Query.items(last:)"}},
		{"required argument added", "\"d\" tags: [String!])", "\"d\" tags: [String!], \"d\" last: Int!)", []string{"BREAKING: Query.items(last:)"}},
		{"required argument with a default added", "\"d\" tags: [String!])", "\"d\" tags: [String!], \"d\" last: Int! = 5)", []string{"safe: Query.items(last:)"}},
		{"argument removed", "\"d\" first: Int, ", "", []string{"BREAKING: Query.items(first:)"}},
		{"argument made nullable", "node(\"d\" id: ID!)", "node(\"d\" id: ID)", []string{"safe: Query.node(id:)"}},
		{"argument made non-null", "\"d\" first: Int,", "\"d\" first: Int!,", []string{"BREAKING: Query.items(first:)"}},
		{"argument list items made nullable", "tags: [String!])", "tags: [String])", []string{"safe: Query.items(tags:)"}},
		{"argument list made non-null", "tags: [String!])", "tags: [String!]!)", []string{"BREAKING: Query.items(tags:)"}},
		{"enum value added", "\"d\" C @deprecated", "\"d\" D \"d\" C @deprecated", []string{"safe: Kind.D"}},
		{"enum value removed", "\"d\" B ", "", []string{"BREAKING: Kind.B"}},
		{"optional input field added", "\"d\" note: String }", "\"d\" note: String \"d\" tag: String }", []string{"safe: ItemInput.tag"}},
		{"required input field added", "\"d\" note: String }", "\"d\" note: String \"d\" tag: String! }", []string{"BREAKING: ItemInput.tag"}},
		{"input field removed", "\"d\" note: String ", "", []string{"BREAKING: ItemInput.note"}},
		{"input field made nullable", "\"d\" name: String! \"d\" note", "\"d\" name: String \"d\" note", []string{"safe: ItemInput.name"}},
		{"input field made non-null", "\"d\" note: String }", "\"d\" note: String! }", []string{"BREAKING: ItemInput.note"}},
		{"interface removed", "type Item implements Node", "type Item", []string{"BREAKING: Item"}},
		{"kind changed", "\"d\" union Thing = Item", "\"d\" type Thing { \"d\" x: Int }", []string{"BREAKING: Thing"}},
		{"directive removed", "\"d\" directive @cost(\"d\" weight: Int!) on FIELD_DEFINITION", "", []string{"BREAKING: @cost"}},
		{"directive location removed", "on FIELD_DEFINITION", "on OBJECT", []string{"BREAKING: @cost"}},
		{"root type removed", "\"d\" type Mutation { \"d\" add(\"d\" input: ItemInput!): Item }", "", []string{"BREAKING: Mutation", "BREAKING: schema.mutation"}},
		{"description changed", "\"d\" name: String", "\"other words\" name: String", nil},
		{"field deprecated", "\"d\" name: String", "\"d\" name: String @deprecated(reason: \"x\")", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.from) {
				t.Fatalf("the base schema has no %q", tt.from)
			}
			old, err := schemacheck.Load("old", base)
			if err != nil {
				t.Fatal(err)
			}
			new, err := schemacheck.Load("new", strings.Replace(base, tt.from, tt.to, 1))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range schemacheck.Diff(old, new) {
				kind := "safe"
				if c.Breaking {
					kind = "BREAKING"
				}
				got = append(got, kind+": "+c.Path)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %q, want %q\n%v", got, tt.want, schemacheck.Diff(old, new))
			}
		})
	}
}

func TestUndocumented(t *testing.T) {
	s, err := schemacheck.Load("s", `
"Documented." type Query { node(id: ID!): Node "d" ok("d" a: Int, b: Int): Int }
interface Node { "d" id: ID! }
"d" enum E { "d" A B }
"d" input I { "d" x: Int y: Int }
directive @tag(name: String) on FIELD_DEFINITION
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"E.B", "I.y", "Node", "Query.node", "Query.node(id:)", "Query.ok(b:)", "@tag", "@tag(name:)"}
	if got := schemacheck.Undocumented(s); !slices.Equal(got, want) {
		t.Errorf("Undocumented = %q, want %q", got, want)
	}
}

func TestNotRelayShaped(t *testing.T) {
	s, err := schemacheck.Load("s", `
type Query { x: Int }
input GoodInput { a: Int clientMutationId: String }
type GoodPayload { a: Int clientMutationId: String }
input BareInput { a: Int }
type BarePayload { a: Int }
input TypedInput { clientMutationId: ID }
type Mutation {
  good(input: GoodInput!): GoodPayload!
  noEcho(input: GoodInput!): BarePayload!
  noInputID(input: BareInput!): GoodPayload
  typed(input: TypedInput!): GoodPayload
  optional(input: GoodInput): GoodPayload
  twoArgs(input: GoodInput!, other: Int): GoodPayload
  scalar(input: GoodInput!): Int
}
`)
	if err != nil {
		t.Fatal(err)
	}
	got := schemacheck.NotRelayShaped(s)
	for _, want := range []string{
		"Mutation.noEcho: BarePayload has no clientMutationId",
		"Mutation.noInputID: BareInput has no clientMutationId",
		"Mutation.typed: TypedInput.clientMutationId is ID",
		"Mutation.optional: input is GoodInput; want a non-null",
		"Mutation.twoArgs: takes 2 arguments",
		"Mutation.scalar: returns Int",
	} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("NotRelayShaped = %q; want one starting %q", got, want)
		}
	}
	if len(got) != 6 {
		t.Errorf("NotRelayShaped = %q; want 6 findings", got)
	}
}

func TestFormatRoundTrips(t *testing.T) {
	s, err := schemacheck.Load("base", base)
	if err != nil {
		t.Fatal(err)
	}
	again, err := schemacheck.Load("formatted", string(schemacheck.Format(s)))
	if err != nil {
		t.Fatal(err)
	}
	if changes := schemacheck.Diff(s, again); len(changes) != 0 {
		t.Errorf("formatting changed the schema: %v", changes)
	}
	if string(schemacheck.Format(again)) != string(schemacheck.Format(s)) {
		t.Error("Format is not stable")
	}
	if !strings.Contains(string(schemacheck.Format(s)), `@deprecated(reason: "use items")`) {
		t.Errorf("Format dropped a deprecation:\n%s", schemacheck.Format(s))
	}
}
