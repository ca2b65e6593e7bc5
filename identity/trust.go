package identity

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/relatedhq/related"
)

// Source says how much a value can be trusted.
type Source string

// The sources of a value.
const (
	// Attested values are vouched for: the address an email was sent
	// from, the number a call came from, a value a trusted integration or
	// an admin asserts.
	Attested Source = "ATTESTED"
	// Claimed values are what someone said: typed by a customer into a
	// chat, or set by an agent.
	Claimed Source = "CLAIMED"
)

// Valid reports whether s is a known source.
func (s Source) Valid() bool { return s == Attested || s == Claimed }

// MarshalGQL writes s as a GraphQL enum value.
func (s Source) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads s from a GraphQL enum value.
func (s *Source) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, s, Source.Valid, "IdentifierSource")
}

// AutoMerge is a rule's policy for merging profiles through shared values.
type AutoMerge string

// The merge policies.
const (
	// AutoMergeAttested merges only through values attested on both
	// sides; a value claimed on either side suggests a merge instead.
	AutoMergeAttested AutoMerge = "ATTESTED"
	// AutoMergeAny merges through any value, except one an agent set.
	AutoMergeAny AutoMerge = "ANY"
	// AutoMergeNever never merges: shared values only suggest. For
	// references people share, such as an order number a gift buyer and
	// its recipient both quote.
	AutoMergeNever AutoMerge = "NEVER"
)

// Valid reports whether m is a known policy.
func (m AutoMerge) Valid() bool {
	return m == AutoMergeAttested || m == AutoMergeAny || m == AutoMergeNever
}

// MarshalGQL writes m as a GraphQL enum value.
func (m AutoMerge) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(m))) }

// UnmarshalGQL reads m from a GraphQL enum value.
func (m *AutoMerge) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, m, AutoMerge.Valid, "AutoMerge")
}

// DefaultAutoMerge is the policy of a rule that names none: email and
// phone values merge only when attested on both sides (anyone can type
// someone else's address); order numbers never merge (buyers and
// recipients share them); other identifiers, such as a customer id a
// workflow looked up, merge through any value but an agent's.
func DefaultAutoMerge(attribute string, n Normalizer) AutoMerge {
	switch {
	case n == NormalizeEmail || n == NormalizePhone:
		return AutoMergeAttested
	case isOrderReference(attribute):
		return AutoMergeNever
	}
	return AutoMergeAny
}

// isOrderReference reports attribute names of shared references:
// orderNumber, order_id, OrderRef and the like.
func isOrderReference(attribute string) bool {
	a := strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(attribute))
	return strings.HasPrefix(a, "order") || strings.HasPrefix(a, "booking") || strings.HasPrefix(a, "ticket")
}

// Quarantine is an admin's decision about one value of a rule.
type Quarantine string

// The quarantine states.
const (
	// QuarantineAutomatic: the value links unless more contacts than the
	// rule's MaxContactsPerValue hold it.
	QuarantineAutomatic Quarantine = "AUTOMATIC"
	// QuarantineBlocked: the value never links.
	QuarantineBlocked Quarantine = "BLOCKED"
	// QuarantineAllowed: the value links however many contacts hold it.
	QuarantineAllowed Quarantine = "ALLOWED"
)

// Valid reports whether q is a known state.
func (q Quarantine) Valid() bool {
	return q == QuarantineAutomatic || q == QuarantineBlocked || q == QuarantineAllowed
}

// MarshalGQL writes q as a GraphQL enum value.
func (q Quarantine) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(q))) }

// UnmarshalGQL reads q from a GraphQL enum value.
func (q *Quarantine) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, q, Quarantine.Valid, "ValueQuarantine")
}

// ValueFacts is what the tenant knows of one value: how many contacts hold
// it and what an admin decided about it.
type ValueFacts struct {
	Contacts int
	State    Quarantine // "" is AUTOMATIC
}

// Quarantined reports whether a value with facts v links nothing under r.
func (r Rule) Quarantined(v ValueFacts) bool {
	switch v.State {
	case QuarantineBlocked:
		return true
	case QuarantineAllowed:
		return false
	}
	return r.MaxContactsPerValue > 0 && v.Contacts > r.MaxContactsPerValue
}

// Claim is an identifier a contact brings, with its provenance.
type Claim struct {
	Identifier
	RuleID string
	Source Source
	// Agent reports a value an agent set: it never merges profiles.
	Agent bool
	// InteractionID, By and At say where the value came from.
	InteractionID string
	By            related.Actor
	At            time.Time
}

// outranks reports whether c is the better provenance of one value:
// attested before claimed, a workflow's before an agent's.
func (c Claim) outranks(o Claim) bool {
	if c.Source != o.Source {
		return c.Source == Attested
	}
	return !c.Agent && o.Agent
}

// AddressAttribute is the attribute a channel's addresses are values of:
// an EMAIL contact's address is an email address, an SMS, WhatsApp or
// Voice contact's address a phone number. Other channels' addresses (web
// chat visitor ids, social handles) identify nobody across channels.
func AddressAttribute(c related.Channel) string {
	switch c {
	case related.ChannelEmail:
		return "email"
	case related.ChannelSMS, related.ChannelWhatsApp, related.ChannelVoice:
		return "phone"
	}
	return ""
}

// Claims returns the identifiers contact c brings under rules: its address,
// attested by its channel when the channel has one and it was understood,
// and its attributes, each normalized by the enabled rule of its key.
// Values that do not normalize or are blocked are left out. Each
// identifier appears once, with its best provenance. The result is sorted
// by key and value.
func Claims(rules []Rule, c *related.Contact) []Claim {
	var out []Claim
	add := func(cl Claim) {
		for i, o := range out {
			if o.Identifier == cl.Identifier {
				if cl.outranks(o) {
					out[i] = cl
				}
				return
			}
		}
		out = append(out, cl)
	}
	byKey := enabledRules(rules)
	if key := AddressAttribute(c.Channel); key != "" && c.AddressStatus != related.AddressUnparseable {
		if r, ok := byKey[key]; ok {
			if v, ok := r.Normalize(c.Address); ok {
				add(Claim{Identifier: Identifier{Key: key, Value: v}, RuleID: r.ID, Source: Attested,
					InteractionID: c.FirstInteractionID, By: related.Actor{Name: "channel " + string(c.Channel)}, At: c.CreatedAt})
			}
		}
	}
	for _, a := range c.Attributes {
		if r, ok := byKey[a.Key]; ok {
			if v, ok := r.Normalize(a.Value); ok {
				src := Claimed
				if a.Attested {
					src = Attested
				}
				add(Claim{Identifier: Identifier{Key: a.Key, Value: v}, RuleID: r.ID, Source: src,
					Agent: a.Role == related.RoleAgent, InteractionID: a.InteractionID,
					By: related.Actor{Name: a.By, Role: a.Role}, At: a.At})
			}
		}
	}
	sortClaims(out)
	return out
}

// CheckAttributes refuses attribute values that a rule of their key cannot
// parse (a phone attribute of "call me maybe"): stored, they would look
// like identifiers and link nothing. Errors name
// ["attributes", i, "value"]; an empty value (a removal) is always fine.
func CheckAttributes(rules []Rule, attrs []related.Attribute) *related.Error {
	byKey := enabledRules(rules)
	for i, a := range attrs {
		r, ok := byKey[a.Key]
		if !ok || a.Value == "" {
			continue
		}
		if _, ok := r.normalize(a.Value); !ok {
			return related.Invalid(fmt.Sprintf("is not a value of the %s rule (%s)", r.Attribute, describe(r.Normalizer)),
				"attributes", strconv.Itoa(i), "value")
		}
	}
	return nil
}

func describe(n Normalizer) string {
	switch n {
	case NormalizeEmail:
		return "an email address such as ann@example.com"
	case NormalizePhone:
		return "a phone number in E.164 (+447400123456) or of the rule's region"
	}
	return "a non-blank value"
}

func enabledRules(rules []Rule) map[string]Rule {
	byKey := make(map[string]Rule, len(rules))
	for _, r := range rules {
		if r.Enabled && !r.Deleted {
			byKey[r.Attribute] = r
		}
	}
	return byKey
}

// unmarshalEnum is the shared body of the enums' UnmarshalGQL methods.
func unmarshalEnum[T ~string](v any, dst *T, valid func(T) bool, name string) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s must be a string", name)
	}
	if !valid(T(s)) {
		return fmt.Errorf("%q is not a valid %s", s, name)
	}
	*dst = T(s)
	return nil
}
