package resolvers

import (
	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
)

// userErrors splits err into the caller's mistakes, returned as a payload's
// userErrors, and the server's own failures, returned as an error for the
// GraphQL errors list.
func userErrors(err error) ([]*graph.UserError, error) {
	if err == nil {
		return []*graph.UserError{}, nil
	}
	if e, ok := related.AsError(err); ok {
		return []*graph.UserError{{Field: e.Field, Message: e.Message, Code: e.Code}}, nil
	}
	return nil, err
}

// at prefixes the field path of a caller's mistake with path, so that
// errors of nested inputs name the field from the mutation's input down.
func at(err error, path ...string) error {
	if e, ok := related.AsError(err); ok {
		return e.At(path...)
	}
	return err
}
