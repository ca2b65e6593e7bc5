package resolvers

import (
	"fmt"

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
		code := graph.UserErrorCode(e.Code)
		if !code.IsValid() {
			// A code the schema's UserErrorCode does not list would reach
			// the client as a value its generated types cannot hold: a
			// server bug, reported as one rather than sent.
			return nil, fmt.Errorf("resolvers: user error code %q is not a UserErrorCode: %w", e.Code, err)
		}
		return []*graph.UserError{{Field: e.Field, Message: e.Message, Code: code}}, nil
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
