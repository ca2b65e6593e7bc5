package related

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// RecordMessage is a message arriving from, or sent to, a customer: what
// the channel knows when it hands the message over.
type RecordMessage struct {
	Channel          Channel
	ThreadRef        string
	Contact          ContactInput
	Queue            string // empty: keep the interaction's queue
	Direction        Direction
	Body             string
	SentAt           time.Time // zero: now
	Author           string
	ClientMutationID string // when set, a repeat with the same id records nothing new
	// By is who records it: the provenance of what the contact learns.
	By Actor
}

// ContactInput identifies the contact a message comes from or goes to.
type ContactInput struct {
	Address string
	// AddressStatus is UNPARSEABLE when Normalize could not understand
	// the address: it is kept as given (cleaned) and links nothing.
	AddressStatus AddressStatus
	// FallbackName is a name the address carried (an email sender's
	// display name): the contact's name only while it has none.
	FallbackName string
	Name         string
	Attributes   []Attribute
}

// Normalize validates r and returns it in canonical form: trimmed strings,
// the address normalized for the channel, SentAt defaulted to now and
// truncated to milliseconds (the precision every store keeps). Errors name
// the field of RecordMessageInput at fault.
func (r RecordMessage) Normalize(now time.Time) (RecordMessage, error) {
	if !r.Channel.Valid() {
		return r, Invalid(fmt.Sprintf("unknown channel %q", r.Channel), "channel")
	}
	r.ThreadRef = strings.TrimSpace(r.ThreadRef)
	if err := checkText(r.ThreadRef, MaxThreadRefLength, true); err != nil {
		return r, err.At("threadRef")
	}
	// The store puts the address in canonical form under the tenant's
	// region (CanonicalizeAddress); here only what cannot be stored at all
	// is refused.
	if _, err := Canonicalize(r.Channel, r.Contact.Address, ""); err != nil {
		e, _ := AsError(err)
		return r, e.At("contact", "address")
	}
	r.Contact.Name = strings.TrimSpace(r.Contact.Name)
	if err := checkText(r.Contact.Name, MaxNameLength, false); err != nil {
		return r, err.At("contact", "name")
	}
	attrs, aerr := NormalizeAttributes(r.Contact.Attributes)
	if aerr != nil {
		return r, aerr.At("contact")
	}
	r.Contact.Attributes = attrs
	r.Queue = strings.TrimSpace(r.Queue)
	if err := checkText(r.Queue, MaxQueueNameLength, false); err != nil {
		return r, err.At("queue")
	}
	if !r.Direction.Valid() {
		return r, Invalid(fmt.Sprintf("unknown direction %q", r.Direction), "direction")
	}
	if strings.TrimSpace(r.Body) == "" {
		return r, Invalid("must not be empty", "body")
	}
	if len(r.Body) > MaxBodyLength {
		return r, Invalid(fmt.Sprintf("is longer than %d bytes", MaxBodyLength), "body")
	}
	if !utf8.ValidString(r.Body) {
		return r, Invalid("is not valid UTF-8", "body")
	}
	if strings.IndexByte(r.Body, 0) >= 0 {
		// Every other text field refuses control characters; a body keeps
		// them (a pasted log may hold a form feed) but not NUL, which no
		// text means and some clients read as the end of the string.
		return r, Invalid("contains a NUL character", "body")
	}
	if r.SentAt.IsZero() {
		r.SentAt = now
	}
	r.SentAt = r.SentAt.UTC().Truncate(time.Millisecond)
	if r.SentAt.Year() < 1970 || r.SentAt.After(now.Add(24*time.Hour)) {
		return r, Invalid("must be after 1970 and at most a day ahead of the server's clock", "sentAt")
	}
	r.Author = strings.TrimSpace(r.Author)
	if err := checkText(r.Author, MaxAuthorLength, false); err != nil {
		return r, err.At("author")
	}
	r.ClientMutationID = strings.TrimSpace(r.ClientMutationID)
	if err := checkText(r.ClientMutationID, MaxClientMutationID, false); err != nil {
		return r, err.At("clientMutationId")
	}
	return r, nil
}

// CanonicalizeAddress puts the contact's address in the canonical form of
// its channel under region, the tenant's default region (Canonicalize):
// an email sender's display name becomes the contact's FallbackName. An address that cannot be understood is kept, cleaned, marked
// UNPARSEABLE and reported in the warnings. r must be normalized.
func (r *RecordMessage) CanonicalizeAddress(region string) ([]Warning, error) {
	c, err := Canonicalize(r.Channel, r.Contact.Address, region)
	if err != nil {
		e, _ := AsError(err)
		return nil, e.At("contact", "address")
	}
	r.Contact.Address, r.Contact.AddressStatus = c.Address, c.Status
	if c.Name != "" && checkText(c.Name, MaxNameLength, false) == nil {
		r.Contact.FallbackName = c.Name
	}
	if c.Status == AddressUnparseable {
		return []Warning{{Field: []string{"contact", "address"}, Code: WarnUnparseableAddress,
			Message: "the address was not understood (" + c.Problem + "): the message is recorded, the contact links to nobody"}}, nil
	}
	return nil, nil
}

// NormalizeAttributes trims keys and values and checks their limits. A key
// given twice keeps its last value; an empty value is kept, since it asks
// MergeAttributes to remove the key. Errors name ["attributes", i, field].
func NormalizeAttributes(in []Attribute) ([]Attribute, *Error) {
	if len(in) > MaxAttributes {
		return nil, Invalid(fmt.Sprintf("at most %d attributes", MaxAttributes), "attributes")
	}
	out := make([]Attribute, 0, len(in))
	seen := make(map[string]int, len(in))
	for i, a := range in {
		k, v := strings.TrimSpace(a.Key), strings.TrimSpace(a.Value)
		idx := fmt.Sprint(i)
		if err := checkText(k, MaxAttributeKey, true); err != nil {
			return nil, err.At("attributes", idx, "key")
		}
		if err := checkText(v, MaxAttributeValue, false); err != nil {
			return nil, err.At("attributes", idx, "value")
		}
		a.Key, a.Value = k, v
		if j, ok := seen[k]; ok {
			out[j] = a
			continue
		}
		seen[k] = len(out)
		out = append(out, a)
	}
	return out, nil
}

// checkText checks a free-text field: valid UTF-8, no control characters
// other than white space, within max bytes, and present when required.
func checkText(s string, max int, required bool) *Error {
	if required && s == "" {
		return Invalid("must not be blank")
	}
	if len(s) > max {
		return Invalid(fmt.Sprintf("is longer than %d bytes", max))
	}
	if !utf8.ValidString(s) {
		return Invalid("is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return Invalid("contains control characters")
		}
	}
	return nil
}
