package server

import (
	"maps"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/relatedhq/related/graph"
)

// servedSchema is the schema the gateway serves: the generated one less
// the @defer directive, which gqlgen declares for every schema.
//
// The gateway does not offer incremental delivery. gqlgen's @defer reports
// each deferred field as null in the initial payload, even a non-null one
// (the specification leaves it out until its payload comes), so a typed
// client reads a null where the schema promises a value; it delivers
// nothing deferred in a mutation; and it speaks only the 2022 draft of the
// response format. A directive that half works is worse than none: without
// it, introspection does not advertise it and a document that uses it gets
// a validation error naming it, so a client falls back to plain queries.
var servedSchema = sync.OnceValue(func() *ast.Schema {
	base := graph.NewExecutableSchema(graph.Config{}).Schema()
	s := *base
	s.Directives = maps.Clone(base.Directives)
	delete(s.Directives, "defer")
	delete(s.Directives, "stream")
	return &s
})
