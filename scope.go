package related

import (
	"io"
	"strconv"
)

// Scope is the reach of a Related panel.
type Scope string

// The Related panel scopes.
const (
	ScopeChannel Scope = "CHANNEL" // the same contact on the same channel
	ScopeProfile Scope = "PROFILE" // every contact of the contact's profile
)

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return s == ScopeChannel || s == ScopeProfile }

// MarshalGQL writes s as a GraphQL enum value.
func (s Scope) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads s from a GraphQL enum value.
func (s *Scope) UnmarshalGQL(v any) error { return unmarshalEnum(v, s, Scope.Valid, "RelatedScope") }

// ChooseScope is the rule that picks a Related panel's scope. requested is
// the caller's choice, or "" for none; linked reports whether the
// interaction's contact belongs to a profile that has other contacts.
//
// Without a choice the panel spans the profile when there is one worth
// spanning, else the channel. PROFILE asked of a contact without such a
// profile is the same list as CHANNEL, and is reported as CHANNEL so the
// client knows what it got.
func ChooseScope(requested Scope, linked bool) Scope {
	if requested == ScopeChannel || !linked {
		return ScopeChannel
	}
	return ScopeProfile
}
