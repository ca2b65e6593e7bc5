package server

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// Cost is what extensions.cost reports on every response to a validated
// operation, as Shopify's and GitHub's APIs report theirs: what the
// operation asked for, by the same measure the limit applies (complexity),
// and the limit, so a client sees how close it runs before it is refused.
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
