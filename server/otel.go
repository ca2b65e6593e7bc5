package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the gateway's instrumentation in the spans it exports.
const tracerName = "github.com/relatedhq/related/server"

// NewTracerProvider returns a tracer provider that exports spans over OTLP
// (HTTP, protobuf) when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and nil when neither is:
// tracing is then off, and costs nothing, since the server installs none
// of its tracing hooks. The exporter and the SDK read the other standard
// variables themselves (OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, ...). Shut the provider
// down on exit, so the last spans are sent.
func NewTracerProvider(ctx context.Context, getenv func(string) string) (*sdktrace.TracerProvider, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "relatedd")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// propagator reads a caller's W3C traceparent, so the gateway's spans join
// the trace of the frontend or service that called it.
var propagator = propagation.TraceContext{}

// traceHTTP puts every HTTP request in a server span, a child of the
// caller's traceparent when it sends one.
func (s *Server) traceHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		route := routeOf(r.URL.Path)
		ctx, span := s.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("http.route", route),
				attribute.String("url.path", r.URL.Path),
				attribute.String("related.request_id", RequestID(r.Context())),
			))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}

// routeOf bounds a path to the routes the server serves, for labels and
// span names.
func routeOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/graphiql"):
		return "/graphiql"
	case routes[path]:
		return path
	}
	return "other"
}

// traceOperations puts each GraphQL operation in a span named by its type
// and name ("query Panel"), ended with its first response. A
// subscription's span covers its setup only: it then lives as long as
// its client.
func (s *Server) traceOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	rc := graphql.GetOperationContext(ctx)
	if rc.Operation == nil {
		return next(ctx)
	}
	typ := string(rc.Operation.Operation)
	name := typ
	if rc.Operation.Name != "" {
		name += " " + rc.Operation.Name
	}
	ctx, span := s.tracer.Start(ctx, name, trace.WithAttributes(
		attribute.String("graphql.operation.type", typ),
		attribute.String("graphql.operation.name", rc.Operation.Name),
	))
	h := next(ctx)
	if rc.Operation.Operation == ast.Subscription {
		span.End()
		return h
	}
	ended := false
	return func(ctx context.Context) *graphql.Response {
		r := h(ctx)
		if !ended {
			ended = true
			if r == nil || len(r.Errors) > 0 {
				span.SetStatus(codes.Error, "the response has errors")
			}
			span.End()
		}
		return r
	}
}

// traceFields puts each field that runs a resolver in a span: those are
// the fields that do I/O (the schema's other fields read what a resolver
// already loaded, and would only add thousands of empty spans).
func (s *Server) traceFields(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !fc.IsResolver {
		return next(ctx)
	}
	ctx, span := s.tracer.Start(ctx, fc.Object+"."+fc.Field.Name, trace.WithAttributes(
		attribute.String("graphql.field.path", fc.Path().String()),
	))
	defer span.End()
	res, err := next(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "resolver error")
	}
	return res, err
}

// observeCommand is the store's command observer: the duration histogram,
// and with tracing a client span per command of a traced request.
func (s *Server) observeCommand(ctx context.Context, name string) func(error) {
	endMetric := s.metrics.observeCommand(name)
	if s.tracer == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return endMetric
	}
	_, span := s.tracer.Start(ctx, s.dbSystem+" "+name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("db.system.name", s.dbSystem),
		attribute.String("db.operation.name", name),
	))
	return func(err error) {
		endMetric(err)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "database command failed")
		}
		span.End()
	}
}
