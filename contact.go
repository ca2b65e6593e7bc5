package related

import "time"

// Contact is a customer's identity on one channel: an email address, a
// phone number, a web chat visitor id, a social handle. The same person on
// two channels is two contacts; profiles join them.
type Contact struct {
	ID         string
	Tenant     string
	Channel    Channel
	Address    string // normalized by NormalizeAddress
	Name       string // empty when unknown
	Attributes []Attribute
	ProfileID  string // empty while the contact belongs to no profile
	// Identifiers are the identifiers the contact's rule links hold: what
	// connects it to the other contacts of its profile.
	Identifiers []Identifier
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Attribute is a key/value fact about a contact, such as an order number a
// customer gave.
type Attribute struct {
	Key   string
	Value string
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
// a set value of "" removes the key.
func MergeAttributes(cur, set []Attribute) []Attribute {
	out := make([]Attribute, 0, len(cur)+len(set))
	idx := make(map[string]int, len(cur)+len(set))
	for _, a := range cur {
		idx[a.Key] = len(out)
		out = append(out, a)
	}
	for _, a := range set {
		if i, ok := idx[a.Key]; ok {
			out[i].Value = a.Value
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
