package server

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/relatedhq/related"
)

// Error codes in GraphQL errors' extensions.code.
const (
	CodeInternal = "INTERNAL" // the server failed; details are in its log under the request id
)

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
	s.log.ErrorContext(ctx, "graphql operation failed", "err", err, "operation", operationName(ctx), "path", graphql.GetPath(ctx).String())
	out := gqlerror.WrapPath(graphql.GetPath(ctx), errInternal)
	out.Message = fmt.Sprintf("internal server error (request id %s)", id)
	out.Extensions = map[string]any{"code": CodeInternal, "requestId": id}
	return out
}

var errInternal = errors.New("internal server error")

// recoverPanic turns a resolver's panic into an INTERNAL error and logs its
// stack; the server keeps serving.
func (s *Server) recoverPanic(ctx context.Context, p any) error {
	s.log.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return errInternal
}
