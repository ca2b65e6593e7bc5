package related

import (
	"errors"
	"strings"
)

// Error codes of the caller's mistakes. They reach clients as
// UserError.code, so they are part of the API and never change.
const (
	CodeInvalid  = "INVALID"   // the input breaks a rule; Field says where
	CodeNotFound = "NOT_FOUND" // an id names nothing this tenant can see
	CodeConflict = "CONFLICT"  // the input contradicts the current state
)

// Error is a mistake of the caller, reported back as a user error rather
// than a server failure. Field is the path of the offending input field,
// relative to the mutation's input (for example ["contact", "address"]).
type Error struct {
	Code    string
	Field   []string
	Message string
}

// Error returns the message, prefixed with the field's path when there is one.
func (e *Error) Error() string {
	if len(e.Field) == 0 {
		return e.Message
	}
	return strings.Join(e.Field, ".") + ": " + e.Message
}

// At returns a copy of e whose Field is prefixed with path; validation
// helpers report a field's own name and their callers say where it sits.
func (e *Error) At(path ...string) *Error {
	c := *e
	c.Field = append(append([]string{}, path...), e.Field...)
	return &c
}

// Invalid returns an INVALID error for field.
func Invalid(msg string, field ...string) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: msg}
}

// NotFound returns a NOT_FOUND error for field.
func NotFound(msg string, field ...string) *Error {
	return &Error{Code: CodeNotFound, Field: field, Message: msg}
}

// AsError reports whether err is, or wraps, an *Error and returns it.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsNotFound reports whether err is a NOT_FOUND *Error.
func IsNotFound(err error) bool {
	e, ok := AsError(err)
	return ok && e.Code == CodeNotFound
}
