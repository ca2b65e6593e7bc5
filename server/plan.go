package server

import (
	"context"
	"encoding/json"
	"sync"

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
		buf := getAnswer()
		if out, ok := p.s.runPlan(ctx, e.plan, opCtx, append(*buf, dataPrefix...)); ok {
			e.answered.Inc()
			if a, ok := ctx.Value(plannedKey{}).(*plannedAnswer); ok {
				*a = plannedAnswer{buf: buf, answer: out}
			}
			return &graphql.Response{Data: out[len(dataPrefix):]}
		}
		putAnswer(buf)
		e.declined.Inc()
		return p.ExecutableSchema.Exec(ctx)(ctx)
	}
}

// runPlan runs plan for the operation's viewer, appending the data to
// dst: false when the viewer may not run its root fields (gqlgen then
// reports it, as aroundRootFields does) or the plan declines.
func (s *Server) runPlan(ctx context.Context, plan *resolvers.Plan, opCtx *graphql.OperationContext, dst []byte) ([]byte, bool) {
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
		return plan.Append(ctx, opCtx.Variables, dst)
	}
	ctx, span := s.tracer.Start(ctx, "plan "+plan.Name, trace.WithAttributes(attribute.String("graphql.operation.name", opCtx.OperationName)))
	defer span.End()
	out, ok := plan.Append(ctx, opCtx.Variables, dst)
	span.SetAttributes(attribute.Bool("related.plan.answered", ok))
	return out, ok
}

// plannedKey carries, for the HTTP transport, the answer a plan wrote: a
// response that still holds its data (no interceptor replaced it) is
// written as is, already in its final form, rather than compacted and
// escaped again by encoding/json, and without a copy: the plan writes the
// data after the answer's opening (dataPrefix), in one buffer.
type plannedKey struct{}

// plannedAnswer is what a plan wrote: dataPrefix and the data, in a
// pooled buffer.
type plannedAnswer struct {
	buf    *[]byte
	answer []byte
}

// dataPrefix opens an answer, as json.Marshal of a graphql.Response
// without errors does.
const dataPrefix = `{"data":`

// answers recycles the buffers plans write answers in.
var answers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func getAnswer() *[]byte { return answers.Get().(*[]byte) }

func putAnswer(b *[]byte) {
	if cap(*b) > 1<<20 {
		return // a rare large answer is not kept
	}
	*b = (*b)[:0]
	answers.Put(b)
}

// finish completes a planned answer to resp as json.Marshal would write
// resp: the extensions (a plan answers without errors) and the closing
// brace, in place. ok is false when resp is not
// the plan's (an interceptor replaced its data or added errors); else
// release gives the buffer back once the answer is written.
func (a *plannedAnswer) finish(resp *graphql.Response) (out []byte, release func(), ok bool) {
	if a.buf == nil {
		return nil, nil, false
	}
	data := a.answer[len(dataPrefix):]
	if len(resp.Errors) > 0 || len(data) == 0 || len(resp.Data) != len(data) || &resp.Data[0] != &data[0] ||
		resp.Label != "" || len(resp.Path) > 0 || resp.HasNext != nil {
		return nil, nil, false
	}
	out = a.answer
	if len(resp.Extensions) > 0 {
		ext, err := json.Marshal(resp.Extensions)
		if err != nil {
			return nil, nil, false
		}
		out = append(append(out, `,"extensions":`...), ext...)
	}
	out = append(out, '}')
	buf := a.buf
	return out, func() {
		*buf = out
		putAnswer(buf)
	}, true
}
