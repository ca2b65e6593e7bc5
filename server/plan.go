package server

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/operation"
	"github.com/relatedhq/related/resolvers"
)

// plannedSchema runs the compiled plans of registered operations
// (resolvers.Plan) in place of gqlgen's execution, and gqlgen's execution
// for everything else. It sits where gqlgen runs an operation's fields,
// after the whole pipeline that leads there, so an operation a plan
// answers has passed the same checks as any other: its key, the query
// limits (fields, depth, aliases, cost), the role check of its root
// fields; and it runs inside the same operation and response interceptors:
// the operation timeout, metrics, tracing, extensions.cost. Only the
// per-field interceptors do not run: a plan has no fields to intercept. It
// checks the root field's role itself (aroundRootFields' defence in depth)
// and makes one span for its reads when tracing is on.
type plannedSchema struct {
	graphql.ExecutableSchema
	s     *Server
	plans map[string]*planEntry // by the operation's exact text
}

// planEntry is a plan with its counters
// (related_compiled_plan_runs_total{operation,outcome}).
type planEntry struct {
	plan               *resolvers.Plan
	answered, declined prometheus.Counter
}

// registeredOperations are the documents that have compiled plans.
var registeredOperations = []string{operation.OpenInteraction}

// withPlans wraps es with the compiled plans res offers; es itself when
// it offers none (a store that cannot serve them) or plans are off.
func (s *Server) withPlans(es graphql.ExecutableSchema, res *resolvers.Resolver) graphql.ExecutableSchema {
	if s.opts.NoPlans {
		return es
	}
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "related_compiled_plan_runs_total",
		Help: "Operations a compiled plan was asked to answer, by operation name and outcome: answered, or declined (then run by gqlgen).",
	}, []string{"operation", "outcome"})
	plans := map[string]*planEntry{}
	for _, q := range registeredOperations {
		if p := res.PlanFor(q); p != nil {
			plans[q] = &planEntry{plan: p, answered: runs.WithLabelValues(p.Name, "answered"), declined: runs.WithLabelValues(p.Name, "declined")}
		}
	}
	if len(plans) == 0 {
		return es
	}
	s.metrics.reg.MustRegister(runs)
	return plannedSchema{ExecutableSchema: es, s: s, plans: plans}
}

// Exec implements graphql.ExecutableSchema.
func (p plannedSchema) Exec(ctx context.Context) graphql.ResponseHandler {
	opCtx := graphql.GetOperationContext(ctx)
	e := p.plans[opCtx.RawQuery]
	if e == nil || opCtx.Operation == nil || opCtx.Operation.Operation != ast.Query {
		return p.ExecutableSchema.Exec(ctx)
	}
	return func(ctx context.Context) *graphql.Response {
		if data, ok := p.s.runPlan(ctx, e.plan, opCtx); ok {
			e.answered.Inc()
			if f, ok := ctx.Value(plannedKey{}).(*[]byte); ok {
				*f = data
			}
			return &graphql.Response{Data: data}
		}
		e.declined.Inc()
		return p.ExecutableSchema.Exec(ctx)(ctx)
	}
}

// runPlan runs plan for the operation's viewer: false when the viewer may
// not run its root fields (gqlgen then reports it, as aroundRootFields
// does) or the plan declines.
func (s *Server) runPlan(ctx context.Context, plan *resolvers.Plan, opCtx *graphql.OperationContext) ([]byte, bool) {
	v, ok := related.ViewerFrom(ctx)
	if !ok {
		return nil, false
	}
	for _, name := range rootFields(opCtx.Operation.SelectionSet) {
		if !Allowed(v.Role, "Query", name) {
			return nil, false
		}
	}
	if s.tracer == nil {
		return plan.Run(ctx, opCtx.Variables)
	}
	ctx, span := s.tracer.Start(ctx, "plan "+plan.Name, trace.WithAttributes(attribute.String("graphql.operation.name", opCtx.OperationName)))
	defer span.End()
	data, ok := plan.Run(ctx, opCtx.Variables)
	span.SetAttributes(attribute.Bool("related.plan.answered", ok))
	return data, ok
}

// plannedKey carries, for the HTTP transport, the data a plan wrote: a
// response that still holds it (no interceptor replaced it) is written as
// is, already in its final form, rather than compacted and escaped again
// by encoding/json.
type plannedKey struct{}

// isPlanned reports whether resp's data is the data a plan wrote.
func isPlanned(resp *graphql.Response, planned []byte) bool {
	return len(planned) > 0 && len(resp.Data) == len(planned) && &resp.Data[0] == &planned[0]
}

// appendResponse writes resp as json.Marshal would, taking resp.Data as
// it is: only for data a plan wrote (compact, escaped as encoding/json
// escapes).
func appendResponse(dst []byte, resp *graphql.Response) ([]byte, error) {
	if len(resp.Errors) > 0 {
		b, err := json.Marshal(resp.Errors)
		if err != nil {
			return nil, err
		}
		dst = append(append(append(dst, `{"errors":`...), b...), `,"data":`...)
	} else {
		dst = append(dst, `{"data":`...)
	}
	dst = append(dst, resp.Data...)
	if resp.Label != "" || len(resp.Path) > 0 || resp.HasNext != nil {
		return nil, errUnplannable
	}
	if len(resp.Extensions) > 0 {
		b, err := json.Marshal(resp.Extensions)
		if err != nil {
			return nil, err
		}
		dst = append(append(dst, `,"extensions":`...), b...)
	}
	return append(dst, '}'), nil
}

// errUnplannable is a planned response with fields only incremental
// delivery uses, which never happens: the caller encodes it as usual.
var errUnplannable = errors.New("server: a planned response with incremental delivery fields")
