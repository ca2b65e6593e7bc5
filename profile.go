package related

import (
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Identifier is a normalized value of a linking rule's attribute, such as
// {email, ann@example.com}: contacts that share one belong together.
type Identifier struct {
	Key   string
	Value string
}

// Profile is one customer across channels: the contacts its identifiers
// link. Profiles are derived: identity.Partition computes them from the
// facts (contacts, their values, rules, manual decisions), and a profile's
// id is a function of one of its contacts, its anchor (ProfileIDFor).
type Profile struct {
	ID     string
	Tenant string
	// Anchor is the contact the id derives from.
	Anchor string
	// Name is what the profile bar shows: the name an admin gave it, else
	// AutoName.
	Name string
	// CustomName is the name an admin gave it, or "".
	CustomName string
	// AutoName is the person's name its contacts carry, else the value of
	// its highest-priority attested identifier.
	AutoName string
	// Channels are its contacts' channels, distinct, in Channels order.
	Channels    []Channel
	Identifiers []ProfileIdentifier
	// ContactCount is the number of its contacts: the Related panel spans
	// the profile only when there are others besides the interaction's.
	ContactCount int
	// MergedInto is set on a profile looked up by an id that is no longer
	// current (its anchor now belongs to another profile, or was merged
	// away): the id of the profile to show instead.
	MergedInto string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ProfileIdentifier is an identifier a profile holds, with its best trust:
// attested when any of its contacts holds it attested.
type ProfileIdentifier struct {
	Identifier
	Attested bool
}

// profileIDPrefix marks profile ids: the rest is the anchor contact's id.
const profileIDPrefix = "p-"

// ProfileIDFor returns the id of the profile anchored at contact id. Ids
// are a pure function of the facts, so any arrival order of the same facts
// gives the same ids, and an id that stops being current still leads to
// its anchor's profile.
func ProfileIDFor(contactID string) string { return profileIDPrefix + contactID }

// AnchorOf returns the anchor contact of a profile id made by
// ProfileIDFor; ok is false for other ids (those of older versions).
func AnchorOf(profileID string) (contactID string, ok bool) {
	c, ok := strings.CutPrefix(profileID, profileIDPrefix)
	return c, ok && c != ""
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
	ProfileID string
	ContactID string
	Reason    LinkReason
	Key       string // for RULE links: the identifier
	Value     string
	RuleID    string
	// Source is ATTESTED (the channel or a trusted caller vouches for the
	// value) or CLAIMED.
	Source        string
	InteractionID string // the interaction whose write brought the value, if any
	By            Actor
	LinkedAt      time.Time
}
