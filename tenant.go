package related

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// JobState is how far a background job over a tenant's contacts is.
type JobState string

// The job states.
const (
	JobRunning JobState = "RUNNING"
	JobDone    JobState = "DONE"
)

// Valid reports whether s is a known state.
func (s JobState) Valid() bool { return s == JobRunning || s == JobDone }

// MarshalGQL writes s as a GraphQL enum value.
func (s JobState) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads s from a GraphQL enum value.
func (s *JobState) UnmarshalGQL(v any) error { return unmarshalEnum(v, s, JobState.Valid, "JobState") }

// TenantSettings are a tenant's own settings.
type TenantSettings struct {
	Tenant string
	// DefaultRegion is the ISO 3166 region phone numbers written without
	// a country code belong to ("GB": 07400 123456 is +447400123456).
	// "" (a new tenant): only numbers with a country code are understood.
	DefaultRegion string
	UpdatedAt     time.Time
}

// Canonicalization is the progress of bringing a tenant's contact
// addresses to their canonical form (after an upgrade, or a change of the
// tenant's default region), merging contacts that turn out to be one.
type Canonicalization struct {
	Tenant    string
	State     JobState
	Processed int
	Total     int
	// Merged counts the contacts merged into another that had the same
	// canonical address.
	Merged    int
	StartedAt time.Time
	UpdatedAt time.Time
}

// Warning is something the caller should fix that did not stop a write:
// a message from an address that could not be understood is recorded
// anyway, and says so.
type Warning struct {
	Field   []string
	Message string
	Code    WarningCode
}

// WarningCode says what kind of warning a Warning is: the schema's
// UserWarningCode enum, so clients can branch on it.
type WarningCode string

// Warning codes.
const (
	// WarnUnparseableAddress: the contact's address could not be
	// understood; it is kept as given and links nothing.
	WarnUnparseableAddress WarningCode = "UNPARSEABLE_ADDRESS"
)

// Valid reports whether c is a known warning code.
func (c WarningCode) Valid() bool { return c == WarnUnparseableAddress }

// MarshalGQL writes c as a GraphQL enum value.
func (c WarningCode) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(c))) }

// UnmarshalGQL reads c from a GraphQL enum value.
func (c *WarningCode) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, c, WarningCode.Valid, "UserWarningCode")
}

// NormalizeRegion checks a default region an admin gives: an ISO 3166
// code the phone numbering plans know ("gb" is GB), or "" for none.
func NormalizeRegion(r string) (string, error) {
	r = strings.ToUpper(strings.TrimSpace(r))
	if r == "" || ValidRegion(r) {
		return r, nil
	}
	return "", Invalid(fmt.Sprintf("%q is not an ISO 3166 region code (such as GB or US)", r), "defaultRegion")
}

// Erasure is what remains of a right-to-erasure request: a tombstone
// without personal data (ids of erased objects are not kept either).
type Erasure struct {
	ID     string
	Tenant string
	// Subject is what was erased: PROFILE (every contact of a profile) or
	// CONTACT.
	Subject string
	Reason  string
	By      Actor
	At      time.Time
	// Counts of what was deleted.
	Contacts, Interactions, Messages int
}

// The subjects of an erasure.
const (
	ErasureProfile = "PROFILE"
	ErasureContact = "CONTACT"
)

// MaxReasonLength bounds an erasure's reason, in bytes.
const MaxReasonLength = 500
