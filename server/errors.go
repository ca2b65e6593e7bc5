package server

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/resolvers"
)

// Error codes in GraphQL errors' extensions.code. They are part of the
// API: clients branch on them, so they never change.
const (
	CodeInternal         = "INTERNAL"                 // the server failed; details are in its log under the request id
	CodeUnauthenticated  = "UNAUTHENTICATED"          // no API key, or one that is unknown, malformed or revoked (HTTP 401)
	CodeForbidden        = "FORBIDDEN"                // the key's role may not run this field (HTTP 403)
	CodeRateLimited      = "RATE_LIMITED"             // the key (or address) sent too many requests; see Retry-After (HTTP 429)
	CodeTooLarge         = "REQUEST_TOO_LARGE"        // the body is over the limit (HTTP 413)
	CodeTooComplex       = "QUERY_TOO_COMPLEX"        // the query's cost is over the limit
	CodeTooDeep          = "QUERY_TOO_DEEP"           // the query nests fields deeper than the limit
	CodeTooManyAliases   = "TOO_MANY_ALIASES"         // the document has more aliases than the limit
	CodeTooManyFields    = "TOO_MANY_FIELDS"          // the document selects more fields (fragments expanded) than the limit
	CodeTooManyOps       = "TOO_MANY_OPERATIONS"      // the document holds more operations than the limit
	CodeNotPersisted     = "PERSISTED_QUERY_REQUIRED" // allow-list mode: the operation is not registered
	CodeTooManySubs      = "TOO_MANY_SUBSCRIPTIONS"   // the key has as many open subscriptions as allowed
	CodeTimeout          = "TIMEOUT"                  // the operation ran past its time limit
	CodeRequestTimeout   = "REQUEST_TIMEOUT"          // the request body took longer than the body timeout to arrive (HTTP 408)
	CodeTooManyConns     = "TOO_MANY_CONNECTIONS"     // the key has as many WebSockets and event streams open as allowed (HTTP 429, WebSocket close 4429)
	CodeResponseTooLarge = "RESPONSE_TOO_LARGE"       // the response (or a subscription event) would exceed the response byte limit
	CodeUnavailable      = "UNAVAILABLE"              // the database is unavailable or full; retry after Retry-After (HTTP 503)
	CodeTooSlow          = "TOO_SLOW"                 // a subscription's client fell too far behind and was dropped: resubscribe
	CodeShuttingDown     = "SHUTTING_DOWN"            // the server is shutting down: reconnect and resubscribe
	CodeCancelled        = "CANCELLED"                // the client went away before the answer: nobody's failure
)

func init() {
	// Refusals of the whole request are protocol errors to gqlgen, which
	// answers them with 400 (application/graphql-response+json) or 422
	// rather than 200, as the GraphQL-over-HTTP spec asks.
	for _, c := range []string{CodeTooComplex, CodeTooDeep, CodeTooManyAliases, CodeTooManyFields, CodeTooManyOps, CodeNotPersisted} {
		errcode.RegisterErrorType(c, errcode.KindProtocol)
	}
}

// refusal is a request-level error with a stable code.
func refusal(code, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
}

// presentError shapes every GraphQL error. The caller's mistakes keep their
// message and get a stable code and field path; anything else is the
// server's own failure, logged in full and shown to the client only as an
// INTERNAL error with the request id, so no database detail or file path
// leaks.
func (s *Server) presentError(ctx context.Context, err error) *gqlerror.Error {
	if e, ok := related.AsError(err); ok {
		gerr := gqlerror.WrapPath(graphql.GetPath(ctx), e)
		gerr.Message = e.Error()
		gerr.Extensions = map[string]any{"code": e.Code}
		if len(e.Field) > 0 {
			gerr.Extensions["field"] = e.Field
		}
		return gerr
	}
	var gerr *gqlerror.Error
	if errors.As(err, &gerr) && gerr.Err == nil {
		// Parse and validation errors: the caller's, already well formed.
		return graphql.DefaultErrorPresenter(ctx, err)
	}
	id := RequestID(ctx)
	path := graphql.GetPath(ctx)
	switch {
	case errors.Is(err, resolvers.ErrTooLarge):
		// The response is replaced whole (aroundResponses); this error
		// stands for it on the fields that stopped.
		out := gqlerror.WrapPath(path, resolvers.ErrTooLarge)
		out.Extensions = map[string]any{"code": CodeResponseTooLarge, "requestId": id}
		return out
	case errors.Is(err, live.ErrTooSlow):
		out := gqlerror.WrapPath(path, err)
		out.Message = "this subscription fell too far behind and was dropped: resubscribe and refetch"
		out.Extensions = map[string]any{"code": CodeTooSlow, "requestId": id}
		return out
	case errors.Is(err, live.ErrClosed):
		out := gqlerror.WrapPath(path, err)
		out.Message = "the server is shutting down: reconnect and resubscribe"
		out.Extensions = map[string]any{"code": CodeShuttingDown, "requestId": id}
		return out
	case errors.Is(err, context.Canceled):
		// The client went away (a closed socket, a dropped request, a
		// subscription ended mid-event): nobody reads this error, and it
		// is nobody's defect.
		s.log.InfoContext(ctx, "graphql operation cancelled", "operation", operationName(ctx), "path", path.String())
		out := gqlerror.WrapPath(path, err)
		out.Message = fmt.Sprintf("the operation was cancelled (request id %s)", id)
		out.Extensions = map[string]any{"code": CodeCancelled, "requestId": id}
		return out
	case errors.Is(err, context.DeadlineExceeded):
		s.log.WarnContext(ctx, "graphql operation timed out", "err", err, "operation", operationName(ctx), "path", path.String())
		out := gqlerror.WrapPath(path, errTimeout)
		out.Message = fmt.Sprintf("the operation ran out of time (request id %s)", id)
		out.Extensions = map[string]any{"code": CodeTimeout, "requestId": id}
		return out
	case s.unavailable(err):
		// Not a defect of this code: the database is down, unreachable or
		// out of space. Writes were rolled back whole; the client retries.
		s.log.ErrorContext(ctx, "database unavailable", "err", err, "operation", operationName(ctx), "path", path.String())
		markUnavailable(ctx)
		out := gqlerror.WrapPath(path, errUnavailable)
		out.Message = fmt.Sprintf("the database is unavailable for now (out of space or unreachable): nothing was changed; retry later (request id %s)", id)
		out.Extensions = map[string]any{"code": CodeUnavailable, "requestId": id, "retryAfter": retryAfterUnavailable}
		return out
	}
	s.log.ErrorContext(ctx, "graphql operation failed", "err", err, "operation", operationName(ctx), "path", path.String())
	out := gqlerror.WrapPath(path, errInternal)
	out.Message = fmt.Sprintf("internal server error (request id %s)", id)
	out.Extensions = map[string]any{"code": CodeInternal, "requestId": id}
	return out
}

// retryAfterUnavailable is the Retry-After, in seconds, of an UNAVAILABLE
// answer: long enough for a failover, short enough not to idle a client
// once an operator has freed space.
const retryAfterUnavailable = 10

var (
	errInternal    = errors.New("internal server error")
	errTimeout     = errors.New("operation timed out")
	errUnavailable = errors.New("database unavailable")
)

// recoverPanic turns a resolver's panic into an INTERNAL error and logs its
// stack; the server keeps serving.
func (s *Server) recoverPanic(ctx context.Context, p any) error {
	s.log.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return errInternal
}
