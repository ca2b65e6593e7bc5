package related

import (
	"io"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status says whether an interaction is still being worked on.
type Status string

// The interaction statuses.
const (
	StatusOpen   Status = "OPEN"
	StatusClosed Status = "CLOSED"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == StatusOpen || s == StatusClosed }

// MarshalGQL writes s as a GraphQL enum value.
func (s Status) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads s from a GraphQL enum value.
func (s *Status) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, s, Status.Valid, "InteractionStatus")
}

// ClosedState says how a closed interaction was closed. The agent console
// greys closed interactions and shows this state.
type ClosedState string

// The ways an interaction can be closed.
const (
	ClosedStateClosed  ClosedState = "CLOSED"  // handled and done
	ClosedStateIgnored ClosedState = "IGNORED" // closed without a reply
	ClosedStateSpam    ClosedState = "SPAM"    // closed as unwanted
)

// Valid reports whether s is a known closed state.
func (s ClosedState) Valid() bool {
	return s == ClosedStateClosed || s == ClosedStateIgnored || s == ClosedStateSpam
}

// MarshalGQL writes s as a GraphQL enum value.
func (s ClosedState) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads s from a GraphQL enum value.
func (s *ClosedState) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, s, ClosedState.Valid, "ClosedState")
}

// Direction says who sent a message.
type Direction string

// The message directions.
const (
	Inbound  Direction = "INBOUND"  // from the customer
	Outbound Direction = "OUTBOUND" // from the contact centre
)

// Valid reports whether d is a known direction.
func (d Direction) Valid() bool { return d == Inbound || d == Outbound }

// MarshalGQL writes d as a GraphQL enum value.
func (d Direction) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(d))) }

// UnmarshalGQL reads d from a GraphQL enum value.
func (d *Direction) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, d, Direction.Valid, "Direction")
}

// Interaction is one conversation with a customer on one channel, in one
// thread of that channel. At most one interaction of a thread is open; a
// message on a thread whose interaction is closed opens a new one.
type Interaction struct {
	ID          string
	Tenant      string
	Channel     Channel
	ThreadRef   string
	ContactID   string
	ProfileID   string // empty while the contact belongs to no profile
	QueueID     string // empty when no queue was ever named
	QueueName   string // the queue's name, kept beside its id so the panel needs no lookup
	Status      Status
	ClosedState ClosedState // empty unless Status is StatusClosed
	ClosedAt    time.Time   // zero unless Status is StatusClosed
	// LastMessage is a copy of the newest message (by sent time), kept on
	// the interaction because every Related panel row shows it.
	LastMessage *Message
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// LastAt is the time the Related panel sorts by: the newest message's sent
// time, or the creation time of an interaction without messages.
func (i *Interaction) LastAt() time.Time {
	if i.LastMessage != nil {
		return i.LastMessage.SentAt
	}
	return i.CreatedAt
}

// OpenKey is the key that makes a thread's open interaction unique: two
// open interactions of one (channel, thread) would share it. A closed
// interaction's key is its own id, which nothing else can hold.
func (i *Interaction) OpenKey() string {
	if i.Status == StatusOpen {
		return OpenKey(i.Channel, i.ThreadRef)
	}
	return "closed:" + i.ID
}

// OpenKey is the unique key of the open interaction of thread ref on c.
func OpenKey(c Channel, ref string) string { return "open:" + string(c) + ":" + ref }

// Message is one message of an interaction.
type Message struct {
	ID            string
	Tenant        string
	InteractionID string
	Direction     Direction
	Body          string
	SentAt        time.Time
	Author        string // empty when unknown
	CreatedAt     time.Time
	// Partial marks the copy of a long message an interaction keeps as its
	// LastMessage: Body holds only its first InlineBodyLength bytes, and the
	// whole message is loaded by ID when its body is asked for.
	Partial bool
}

// InlineBodyLength is the most of a message's body an interaction keeps
// in its copy of its last message. Chats and most emails fit whole; a long
// email is cut, so a Related page of long emails stays small.
const InlineBodyLength = 4 << 10

// InlineBody returns the part of body an interaction keeps (cut on a
// character boundary) and whether it is only part of it.
func InlineBody(body string) (string, bool) {
	if len(body) <= InlineBodyLength {
		return body, false
	}
	cut := InlineBodyLength
	for cut > 0 && !utf8.RuneStart(body[cut]) {
		cut--
	}
	return body[:cut], true
}

// PreviewLength is the most characters a message preview holds.
const PreviewLength = 140

// Preview is the one-line form of m's body that the Related panel shows.
func (m *Message) Preview() string { return Preview(m.Body, PreviewLength) }

// Preview folds runs of white space in s to one space, drops control
// characters and invalid bytes, and shortens the result to at most n
// characters (runes), cutting on a character boundary and marking the cut
// with an ellipsis.
func Preview(s string, n int) string {
	out := make([]rune, 0, min(len(s), n+1))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = len(out) > 0
			continue
		case r == utf8.RuneError || unicode.IsControl(r):
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		out = append(out, r)
		if len(out) > n {
			// There is more than fits: keep n-1 and the ellipsis.
			out = append(out[:n-1], '…')
			return string(out)
		}
	}
	return string(out)
}

// Began is when an interaction opened by a message sent at sentAt and
// recorded at now began: the message's time, unless the clock says it was
// sent in the future. A backfilled thread began when its first message was
// sent, not when it was loaded.
func Began(sentAt, now time.Time) time.Time {
	if sentAt.IsZero() || sentAt.After(now) {
		return now
	}
	return sentAt
}
