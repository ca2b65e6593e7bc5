package server

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// Cost is what extensions.cost reports on every GraphQL response, as
// Shopify's and GitHub's APIs report theirs: what the operation asked for,
// by the same measure the limit applies (complexity), and the limit, so a
// client sees how close it runs before it is refused. A request that did
// not parse asked for nothing: 0.
type Cost struct {
	// RequestedQueryCost is the operation's cost: 1 per field, a
	// connection's edges and nodes counted first/last times.
	RequestedQueryCost int64 `json:"requestedQueryCost"`
	// MaximumQueryCost is the most an operation may cost (--max-complexity).
	MaximumQueryCost int `json:"maximumQueryCost"`
}

// reportCost is a response interceptor that adds extensions.cost to every
// response of a validated operation: results, each subscription event,
// and refusals such as QUERY_TOO_COMPLEX.
func (s *Server) reportCost(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if graphql.HasOperationContext(ctx) {
		if rc := graphql.GetOperationContext(ctx); rc.Operation != nil {
			graphql.RegisterExtension(ctx, "cost", Cost{
				RequestedQueryCost: complexity(rc.Operation, rc.Variables),
				MaximumQueryCost:   s.limits.MaxComplexity,
			})
		}
	}
	return next(ctx)
}

// withCost returns ext with extensions.cost added, for a request error
// (a document that did not parse or validate, variables that did not
// coerce), which reportCost never sees: the cost of what parsed, else 0.
func (s *Server) withCost(ext map[string]any, opCtx *graphql.OperationContext) map[string]any {
	if _, ok := ext["cost"]; ok {
		return ext
	}
	c := Cost{MaximumQueryCost: s.limits.MaxComplexity}
	if opCtx != nil && opCtx.Operation != nil {
		c.RequestedQueryCost = complexity(opCtx.Operation, opCtx.Variables)
	}
	out := make(map[string]any, len(ext)+1)
	for k, v := range ext {
		out[k] = v
	}
	out["cost"] = c
	return out
}
