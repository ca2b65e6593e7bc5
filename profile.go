package related

import (
	"io"
	"slices"
	"strconv"
	"time"
)

// Identifier is a normalized value of a linking rule's attribute, such as
// {email, ann@example.com}: contacts that share one belong together.
type Identifier struct {
	Key   string
	Value string
}

// Profile is one customer across channels: the contacts its identifiers
// link.
type Profile struct {
	ID     string
	Tenant string
	// Name is what the profile bar shows: the name an admin gave it, else
	// AutoName.
	Name string
	// CustomName is the name an admin gave it, or "".
	CustomName string
	// AutoName is the value of its highest-priority identifier.
	AutoName string
	// Channels are its contacts' channels, distinct, in Channels order.
	Channels    []Channel
	Identifiers []Identifier
	// ContactCount is the number of its contacts: the Related panel spans
	// the profile only when there are others besides the interaction's.
	ContactCount int
	// MergedInto is the profile this one was merged into, or "". Readers
	// follow it to the root.
	MergedInto string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// DisplayName is the name the profile bar shows.
func (p *Profile) DisplayName() string {
	if p.CustomName != "" {
		return p.CustomName
	}
	return p.AutoName
}

// NodeType implements Node.
func (*Profile) NodeType() NodeType { return NodeProfile }

// SortChannels orders channels as Channels does and drops repeats.
func SortChannels(cs []Channel) []Channel {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(a, b Channel) int { return a.Rank() - b.Rank() })
	return slices.Compact(out)
}

// LinkReason says why a contact is in a profile.
type LinkReason string

// The link reasons.
const (
	LinkRule   LinkReason = "RULE"   // a rule matched an identifier
	LinkManual LinkReason = "MANUAL" // an admin linked it
)

// Valid reports whether r is a known reason.
func (r LinkReason) Valid() bool { return r == LinkRule || r == LinkManual }

// MarshalGQL writes r as a GraphQL enum value.
func (r LinkReason) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(r))) }

// UnmarshalGQL reads r from a GraphQL enum value.
func (r *LinkReason) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, r, LinkReason.Valid, "LinkReason")
}

// ProfileLink records why a contact belongs to a profile, with its
// provenance: the rule and value, where the value came from, and who made
// the link. "Why is this contact here" always has an answer.
type ProfileLink struct {
	ID        string
	Tenant    string
	ProfileID string
	ContactID string
	Reason    LinkReason
	Key       string // for RULE links: the identifier
	Value     string
	RuleID    string
	// Source is ATTESTED (the channel vouches for the value) or CLAIMED.
	Source        string
	InteractionID string // the interaction the value came with, if any
	By            string // the principal or "rule"
	LinkedAt      time.Time
}

// ProfileConflict is a link the rules asked for and a guard refused: a
// merge past a rule's maxPerProfile, or a value of a profile the contact
// was unlinked from. An admin resolves it with an explicit merge.
type ProfileConflict struct {
	ID         string
	Tenant     string
	Key        string
	Value      string
	Reason     string
	ProfileIDs []string
	ContactID  string
	CreatedAt  time.Time
	ResolvedAt time.Time // zero while open
}

// RuleEvaluation is the progress of re-evaluating a tenant's contacts
// after its rules changed.
type RuleEvaluation struct {
	Tenant    string
	State     string // RUNNING, DONE
	Processed int
	Total     int
	StartedAt time.Time
	UpdatedAt time.Time
}
