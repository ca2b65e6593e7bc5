package server

import (
	"context"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/resolvers"
)

// aroundResponses gives every response (every event of a subscription) its
// byte budget (resolvers.Budget: MaxResponseBytes of response, twice that
// of message bodies read) and replaces a response that went over it with
// one RESPONSE_TOO_LARGE error: a partial answer would look complete.
//
// A subscription event is work its key causes, like an operation it sends:
// before its first field resolves (not while it waits for the event) it
// waits for a token of the key's rate limit and a slot of its operations
// in flight. A write fanned out to one key's fifty subscriptions is then
// built at the key's rate, a few at a time, rather than all at once; a
// subscriber that falls behind so is dropped with TOO_SLOW as any slow one.
func (s *Server) aroundResponses(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	limit := s.limits.MaxResponseBytes
	if left, ok := ctx.Value(responseLimitKey{}).(int64); ok {
		limit = max(0, min(limit, left))
	}
	b := resolvers.NewBudget(limit, 2*s.limits.MaxResponseBytes)
	var release func()
	if graphql.HasOperationContext(ctx) {
		op := graphql.GetOperationContext(ctx).Operation
		if v, ok := related.ViewerFrom(ctx); ok && op != nil && op.Operation == ast.Subscription {
			b.OnStart(func(ctx context.Context) error {
				if err := s.keyLimit.wait(ctx, v.Principal); err != nil {
					return err
				}
				r, err := s.inflight.wait(ctx, v.Principal)
				release = r
				return err
			})
		}
	}
	resp := next(resolvers.WithBudget(ctx, b))
	if release != nil {
		release()
	}
	if resp != nil && b.Exceeded() {
		s.log.WarnContext(ctx, "response over its byte budget", "operation", operationName(ctx),
			"written", b.Written(), "loaded", b.Loaded(), "limit", s.limits.MaxResponseBytes)
		resp = &graphql.Response{Errors: gqlerror.List{s.tooLargeError(ctx)}, Extensions: resp.Extensions}
	}
	return resp
}

type responseLimitKey struct{}

// withResponseLimit lowers the response budget of the operation ctx runs to
// left bytes: what a batch's answer has left.
func withResponseLimit(ctx context.Context, left int64) context.Context {
	return context.WithValue(ctx, responseLimitKey{}, left)
}

func (s *Server) tooLargeError(ctx context.Context) *gqlerror.Error {
	return &gqlerror.Error{
		Message:    fmt.Sprintf("the response would be over %d bytes, the most this server sends: ask for fewer items (first/last) or fields", s.limits.MaxResponseBytes),
		Extensions: map[string]any{"code": CodeResponseTooLarge, "limit": s.limits.MaxResponseBytes, "requestId": RequestID(ctx)},
	}
}

// aroundFields counts each field's bytes of response against the
// response's budget as it resolves, so an oversized response stops being
// produced (and its loads stop) once it is over, instead of being built in
// full and measured after.
func (s *Server) aroundFields(ctx context.Context, next graphql.Resolver) (any, error) {
	b := resolvers.BudgetFrom(ctx)
	if b == nil {
		return next(ctx)
	}
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	if b.Exceeded() {
		return nil, resolvers.ErrTooLarge
	}
	res, err := next(ctx)
	if err != nil {
		return res, err
	}
	n := int64(8) // "name": and the separators
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		n += int64(len(fc.Field.Alias))
	}
	if !b.Wrote(n + valueBytes(res)) {
		return nil, resolvers.ErrTooLarge
	}
	return res, nil
}

// valueBytes is an upper bound of the bytes a resolved value adds to a JSON
// response, not counting the fields of an object (each counts itself).
func valueBytes(v any) int64 {
	switch x := v.(type) {
	case nil:
		return 4
	case string:
		return jsonStringBytes(x)
	case *string:
		if x == nil {
			return 4
		}
		return jsonStringBytes(*x)
	case bool:
		return 5
	case time.Time, *time.Time:
		return 40
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return jsonStringBytes(rv.String())
	case reflect.Pointer:
		if rv.IsNil() {
			return 4
		}
		if rv.Elem().Kind() == reflect.String {
			return jsonStringBytes(rv.Elem().String())
		}
		return 2
	case reflect.Slice, reflect.Array:
		n := int64(2 + rv.Len())
		if rv.Type().Elem().Kind() == reflect.String {
			for i := range rv.Len() {
				n += jsonStringBytes(rv.Index(i).String())
			}
		}
		return n
	}
	return 24 // numbers, and anything else small
}

// jsonStringBytes is the most bytes s takes as a JSON string: quotes, and
// escapes for control characters, quotes, backslashes, and for the HTML
// characters and line separators encoding/json escapes (\u003c: six bytes).
func jsonStringBytes(s string) int64 {
	n := int64(2 + len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20, c == '<', c == '>', c == '&':
				n += 5
			case c == '"', c == '\\':
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 5 // an invalid byte is written as \ufffd
		case r == '\u2028', r == '\u2029':
			n += 3 // three bytes written as six
		}
		i += size
	}
	return n
}
