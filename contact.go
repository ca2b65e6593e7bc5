package related

import "time"

// Contact is a customer's identity on one channel: an email address, a
// phone number, a web chat visitor id, a social handle. The same person on
// two channels is two contacts; profiles join them.
type Contact struct {
	ID      string
	Tenant  string
	Channel Channel
	Address string // canonical (Canonicalize)
	// AddressStatus is UNPARSEABLE when the address could not be
	// understood: the contact is kept, but its address links nothing.
	AddressStatus AddressStatus
	Name          string // empty when unknown
	Attributes    []Attribute
	ProfileID     string // empty while the contact belongs to no profile
	// FirstInteractionID is the interaction the contact was first seen
	// in: the provenance of its address.
	FirstInteractionID string
	// ClaimsSig is the stores' digest of the values last linked for the
	// contact: a write that leaves it unchanged has nothing to relink.
	ClaimsSig string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Attribute is a key/value fact about a contact, such as an order number a
// customer gave, with where it came from: profiles merge only through
// values someone trusted vouches for.
type Attribute struct {
	Key   string
	Value string
	// Attested reports a value a trusted integration or an admin vouches
	// for (a verified login's email address, say). Anything else, typed by
	// a customer or set by an agent, is claimed.
	Attested bool
	// By is who set it, and Role that actor's role ("" for the gateway).
	// A value an agent set never merges profiles.
	By   string
	Role string
	// InteractionID is the interaction whose write set it, if any.
	InteractionID string
	// At is when it was set.
	At time.Time
}

// SameFact reports whether a and b state the same fact: the same value
// with the same trust. Provenance (who, when) does not make a new fact.
func (a Attribute) SameFact(b Attribute) bool {
	return a.Key == b.Key && a.Value == b.Value && a.Attested == b.Attested
}

// Limits on attributes, so one contact cannot grow without bound.
const (
	MaxAttributes       = 100
	MaxAttributeKey     = 64
	MaxAttributeValue   = 1024
	MaxNameLength       = 200
	MaxThreadRefLength  = 512
	MaxBodyLength       = 256 << 10
	MaxQueueNameLength  = 200
	MaxAuthorLength     = 200
	MaxClientMutationID = 200
)

// MergeAttributes returns cur with set applied: a key in set replaces the
// value of the same key in cur, new keys are appended in set's order, and
// a set value of "" removes the key. Setting the same fact again keeps the
// first provenance, so a repeated message changes nothing.
func MergeAttributes(cur, set []Attribute) []Attribute {
	out := make([]Attribute, 0, len(cur)+len(set))
	idx := make(map[string]int, len(cur)+len(set))
	for _, a := range cur {
		idx[a.Key] = len(out)
		out = append(out, a)
	}
	for _, a := range set {
		if i, ok := idx[a.Key]; ok {
			if !out[i].SameFact(a) {
				out[i] = a
			}
			continue
		}
		idx[a.Key] = len(out)
		out = append(out, a)
	}
	kept := out[:0]
	for _, a := range out {
		if a.Value != "" {
			kept = append(kept, a)
		}
	}
	return kept
}

// WithProvenance returns attrs with the interaction and time they were
// learnt in filled in where the caller left them empty.
func WithProvenance(attrs []Attribute, interactionID string, at time.Time) []Attribute {
	out := make([]Attribute, len(attrs))
	for i, a := range attrs {
		if a.InteractionID == "" {
			a.InteractionID = interactionID
		}
		if a.At.IsZero() {
			a.At = at
		}
		out[i] = a
	}
	return out
}

// ContactID is the id of the contact with a canonical address on a
// channel: a pure function of them, so every replica and every retry
// finds the same contact.
func ContactID(tenant string, c Channel, address string) string {
	return DerivedID(tenant, "contact", string(c), address)
}

// Queue is where interactions wait for agents. Queues are named by the
// channels' routing; the gateway creates one the first time it sees a name.
type Queue struct {
	ID     string
	Tenant string
	Name   string
}

// Preferences are one agent's settings, kept server-side so they follow
// the agent across interactions, reloads and devices.
type Preferences struct {
	ShowRelated bool
}

// DefaultPreferences are an agent's settings before the agent changes any.
var DefaultPreferences = Preferences{ShowRelated: true}
