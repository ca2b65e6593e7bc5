package related

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// Channel is the medium an interaction happens on. Its values are the
// GraphQL enum's names, so the type crosses the API boundary unchanged.
//
// To add a channel: add it here and to Channels, decide how its addresses
// normalize in NormalizeAddress, and add it to the Channel enum in
// schema.graphqls.
type Channel string

// The channels the gateway knows.
const (
	ChannelWebChat   Channel = "WEBCHAT"
	ChannelEmail     Channel = "EMAIL"
	ChannelSMS       Channel = "SMS"
	ChannelWhatsApp  Channel = "WHATSAPP"
	ChannelMessenger Channel = "MESSENGER"
	ChannelInstagram Channel = "INSTAGRAM"
	ChannelTwitter   Channel = "TWITTER"
	ChannelVoice     Channel = "VOICE"
)

// Channels lists every channel in the stable order the API reports them in.
var Channels = []Channel{
	ChannelWebChat, ChannelEmail, ChannelSMS, ChannelWhatsApp,
	ChannelMessenger, ChannelInstagram, ChannelTwitter, ChannelVoice,
}

// Valid reports whether c is one of Channels.
func (c Channel) Valid() bool {
	for _, k := range Channels {
		if c == k {
			return true
		}
	}
	return false
}

// Rank is c's position in Channels, used to order channel lists stably.
func (c Channel) Rank() int {
	for i, k := range Channels {
		if c == k {
			return i
		}
	}
	return len(Channels)
}

// MarshalGQL writes c as a GraphQL enum value.
func (c Channel) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(c))) }

// UnmarshalGQL reads c from a GraphQL enum value.
func (c *Channel) UnmarshalGQL(v any) error { return unmarshalEnum(v, c, Channel.Valid, "Channel") }

// MaxAddressLength bounds a contact address, in bytes.
const MaxAddressLength = 320

// NormalizeAddress returns the canonical form of a contact's address on
// channel c, the form contacts are looked up by: the same person writing
// twice must land on the same contact. It is deliberately conservative: it
// removes only what cannot distinguish two identities on that channel.
func NormalizeAddress(c Channel, addr string) (string, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		return "", &Error{Code: CodeInvalid, Message: "address must not be blank"}
	}
	if len(a) > MaxAddressLength {
		return "", &Error{Code: CodeInvalid, Message: fmt.Sprintf("address is longer than %d bytes", MaxAddressLength)}
	}
	for _, r := range a {
		if unicode.IsControl(r) {
			return "", &Error{Code: CodeInvalid, Message: "address contains control characters"}
		}
	}
	switch c {
	case ChannelEmail:
		// Mailbox names are case-insensitive in practice; nothing else
		// (dots, plus tags) is touched, since providers differ on them.
		a = strings.ToLower(a)
		if at := strings.LastIndexByte(a, '@'); at <= 0 || at == len(a)-1 {
			return "", &Error{Code: CodeInvalid, Message: "email address must look like name@domain"}
		}
	case ChannelSMS, ChannelWhatsApp, ChannelVoice:
		// Keep digits and a leading plus: "+44 (20) 7946-0000" and
		// "+442079460000" are the same line.
		var b strings.Builder
		for i, r := range a {
			switch {
			case r >= '0' && r <= '9':
				b.WriteRune(r)
			case r == '+' && i == 0:
				b.WriteRune(r)
			case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
			default:
				return "", &Error{Code: CodeInvalid, Message: "phone number may hold only digits, spaces, dashes, dots, parentheses and a leading +"}
			}
		}
		a = b.String()
		if strings.TrimPrefix(a, "+") == "" {
			return "", &Error{Code: CodeInvalid, Message: "phone number has no digits"}
		}
	case ChannelTwitter, ChannelInstagram:
		// Handles are case-insensitive and often written with an @.
		a = strings.ToLower(strings.TrimPrefix(a, "@"))
		if a == "" {
			return "", &Error{Code: CodeInvalid, Message: "handle must not be blank"}
		}
	case ChannelWebChat, ChannelMessenger:
		// Opaque ids issued by the channel: compared exactly.
	default:
		return "", &Error{Code: CodeInvalid, Message: fmt.Sprintf("unknown channel %q", c)}
	}
	return a, nil
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
