package related

import (
	"fmt"
	"io"
	"strconv"
)

// Channel is the medium an interaction happens on. Its values are the
// GraphQL enum's names, so the type crosses the API boundary unchanged.
//
// To add a channel: add it here and to Channels, decide how its addresses
// are canonicalized in Canonicalize (address.go), and add it to the Channel
// enum in schema.graphqls.
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
