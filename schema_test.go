package related_test

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/schemacheck"
)

// update rewrites the schema snapshot: go test . -run TestSchemaSnapshot -update
var update = flag.Bool("update", false, "record schema.graphqls as testdata/schema.snapshot.graphqls, breaking changes included")

// snapshotPath is the published version of the schema: what clients were
// written against.
const snapshotPath = "testdata/schema.snapshot.graphqls"

func loadSchema(t *testing.T, path string) *ast.Schema {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schemacheck.Load(path, string(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSchemaDocumented holds schema.graphqls to the rule that the schema is
// the documentation: every type, field, argument, enum value and input
// field says what a client needs to know.
func TestSchemaDocumented(t *testing.T) {
	for _, path := range schemacheck.Undocumented(loadSchema(t, "schema.graphqls")) {
		t.Errorf("%s has no description: say what a client needs to know (units, limits, defaults, what null means, who may call it)", path)
	}
}

// TestMutationsRelayShaped holds every mutation to Relay's convention: one
// input, a payload, and clientMutationId on both. The resolvers' echo of it
// is tested in package resolvers.
func TestMutationsRelayShaped(t *testing.T) {
	for _, problem := range schemacheck.NotRelayShaped(loadSchema(t, "schema.graphqls")) {
		t.Error(problem)
	}
}

// TestSchemaSnapshot fails on a change of schema.graphqls that could break
// a client written against the snapshot, and on any change not recorded
// in it. A deliberate change is recorded with
//
//	go test . -run TestSchemaSnapshot -update
//
// which rewrites the snapshot; the diff of schema.graphqls and of the
// snapshot then goes through review together. Remove a field or an enum
// value only after it was deprecated (@deprecated(reason:)) in a release.
func TestSchemaSnapshot(t *testing.T) {
	current := loadSchema(t, "schema.graphqls")
	text := schemacheck.Format(current)
	if *update {
		if err := os.WriteFile(snapshotPath, text, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s", snapshotPath)
		return
	}
	recorded, err := os.ReadFile(snapshotPath)
	if err != nil {
		t.Fatalf("%v: record one with go test . -run TestSchemaSnapshot -update", err)
	}
	snapshot, err := schemacheck.Load(snapshotPath, string(recorded))
	if err != nil {
		t.Fatal(err)
	}
	changes := schemacheck.Diff(snapshot, current)
	if breaking := schemacheck.Breaking(changes); len(breaking) > 0 {
		var b strings.Builder
		for _, c := range breaking {
			b.WriteString("\n  " + c.String())
		}
		t.Fatalf("schema.graphqls breaks clients written against %s:%s\n"+
			"Deprecate first (@deprecated(reason:)) and add beside; if the break is deliberate, "+
			"record it: go test . -run TestSchemaSnapshot -update", snapshotPath, b.String())
	}
	if !bytes.Equal(recorded, text) {
		var b strings.Builder
		for _, c := range changes {
			b.WriteString("\n  " + c.String())
		}
		if len(changes) == 0 {
			b.WriteString("\n  descriptions, deprecations or defaults (or a new gqlparser formats it differently)")
		}
		t.Fatalf("schema.graphqls changed without breaking clients, but %s does not record it:%s\n"+
			"Record it: go test . -run TestSchemaSnapshot -update", snapshotPath, b.String())
	}
}

// TestGeneratedFromSchema checks that graph/ serves what schema.graphqls
// says, descriptions included: go generate ./... ran after the last edit.
func TestGeneratedFromSchema(t *testing.T) {
	served := schemacheck.Format(graph.NewExecutableSchema(graph.Config{}).Schema())
	if !bytes.Equal(served, schemacheck.Format(loadSchema(t, "schema.graphqls"))) {
		t.Error("graph/ is not generated from schema.graphqls: run go generate ./...")
	}
}

// TestErrorCodesInSchema holds the codes resolvers put in UserError.code
// and UserWarning.code to the schema's enums, both ways.
func TestErrorCodesInSchema(t *testing.T) {
	s := loadSchema(t, "schema.graphqls")
	enum := func(name string) []string {
		var out []string
		for _, v := range s.Types[name].EnumValues {
			out = append(out, v.Name)
		}
		slices.Sort(out)
		return out
	}
	codes := []string{related.CodeConflict, related.CodeInvalid, related.CodeNotFound}
	if got := enum("UserErrorCode"); !slices.Equal(got, codes) {
		t.Errorf("UserErrorCode = %v; the codes of related.Error are %v", got, codes)
	}
	for _, c := range codes {
		if !graph.UserErrorCode(c).IsValid() {
			t.Errorf("graph.UserErrorCode(%q) is not valid: run go generate ./...", c)
		}
	}
	if got := enum("UserWarningCode"); !slices.Equal(got, []string{string(related.WarnUnparseableAddress)}) {
		t.Errorf("UserWarningCode = %v; want the related.WarningCode constants", got)
	}
	for _, v := range enum("UserWarningCode") {
		if !related.WarningCode(v).Valid() {
			t.Errorf("UserWarningCode.%s is not a valid related.WarningCode", v)
		}
	}
}

// TestIntrospection checks what generated clients read from introspection:
// Time's specification (GraphQL Code Generator and others type it from
// specifiedByURL), and the enums of UserError.code and UserWarning.code.
func TestIntrospection(t *testing.T) {
	srv := handler.New(graph.NewExecutableSchema(graph.Config{}))
	srv.AddTransport(transport.POST{})
	srv.Use(extension.Introspection{})
	c := client.New(srv)
	var resp struct {
		Time struct {
			Kind           string
			SpecifiedByURL *string
		}
		UserError struct {
			Fields []struct {
				Name string
				Type struct{ OfType struct{ Kind, Name string } }
			}
		}
		Code struct {
			EnumValues []struct{ Name, Description string }
		}
	}
	c.MustPost(`{
		time: __type(name: "Time") { kind specifiedByURL }
		userError: __type(name: "UserError") { fields { name type { ofType { kind name } } } }
		code: __type(name: "UserErrorCode") { enumValues { name description } }
	}`, &resp)
	if resp.Time.Kind != "SCALAR" || resp.Time.SpecifiedByURL == nil || *resp.Time.SpecifiedByURL != "https://www.rfc-editor.org/rfc/rfc3339" {
		t.Errorf("Time = %+v; want a SCALAR specified by RFC 3339", resp.Time)
	}
	found := false
	for _, f := range resp.UserError.Fields {
		if f.Name == "code" {
			found = true
			if f.Type.OfType.Kind != "ENUM" || f.Type.OfType.Name != "UserErrorCode" {
				t.Errorf("UserError.code is %+v; want UserErrorCode!", f.Type.OfType)
			}
		}
	}
	if !found || len(resp.Code.EnumValues) < 3 {
		t.Errorf("UserError = %+v, UserErrorCode = %+v", resp.UserError, resp.Code)
	}
	for _, v := range resp.Code.EnumValues {
		if v.Description == "" {
			t.Errorf("UserErrorCode.%s has no description in introspection", v.Name)
		}
	}
}
