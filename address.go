package related

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// AddressStatus says whether a contact's address could be understood.
type AddressStatus string

// The address statuses.
const (
	// AddressValid: the address is in its channel's canonical form and is
	// the contact's key on that channel.
	AddressValid AddressStatus = "VALID"
	// AddressUnparseable: the address could not be understood. It is
	// stored, cleaned, so the message that carried it is not lost, but it
	// links nothing.
	AddressUnparseable AddressStatus = "UNPARSEABLE"
)

// Valid reports whether s is one of the address statuses.
func (s AddressStatus) Valid() bool { return s == AddressValid || s == AddressUnparseable }

// MarshalGQL writes s as a GraphQL enum value.
func (s AddressStatus) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads s from a GraphQL enum value.
func (s *AddressStatus) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, s, AddressStatus.Valid, "AddressStatus")
}

// CanonicalAddress is an address in the canonical form of its channel.
type CanonicalAddress struct {
	// Address is the canonical form: the contact's key on its channel. For
	// an UNPARSEABLE address it is the cleaned input (invisible characters
	// removed, NFC, trimmed, white-space runs collapsed to one space), so
	// the same bad input always maps to the same contact.
	Address string
	// Status is UNPARSEABLE when the address could not be understood: it is
	// stored, cleaned, but links nothing.
	Status AddressStatus
	// Name is a display name the input carried ("Ann Lee <ann@x.io>"),
	// else "". It is at most MaxNameLength bytes.
	Name string
	// Problem says, for an UNPARSEABLE address, what is wrong: one
	// sentence for the caller's warning. It is "" for a VALID one.
	Problem string
}

// maxAddressInput bounds the raw input Canonicalize reads, in bytes. It is
// larger than MaxAddressLength because what is stored is the canonical
// address, and an email sender's display name, a mailto: URI's query or a
// phone number's punctuation and extension may make the input longer than
// the address it holds; it exists so that the work stays bounded.
const maxAddressInput = 4 * MaxAddressLength

// problemNoCountryCode is the Problem of a phone number without a country
// code when no default region applies.
const problemNoCountryCode = "no country code; set the tenant's default region or send E.164"

// Canonicalize returns addr's canonical form on channel c. region is the
// tenant's default ISO 3166 region for phone numbers written without a
// country code ("" = none; an unknown region counts as none).
//
// It returns an *Error (CodeInvalid) only for what cannot be stored at all:
// blank after cleaning, an address longer than MaxAddressLength bytes (or
// an input longer than four times that), invalid UTF-8, control
// characters (on the email and phone channels tab, CR and LF count as
// white space instead), an unknown channel. Anything else that cannot be
// understood is UNPARSEABLE, never an error: a contact centre must not
// drop a customer's message. An UNPARSEABLE address is the cleaned input,
// its inner runs of white space collapsed to one space, so that the same
// bad input maps to the same contact.
//
// Every channel's input is cleaned first: invisible characters removed,
// Unicode NFC, surrounding white space (Unicode's too) trimmed. Then:
//
//   - EMAIL: the addr-spec of the address or sender (see CanonicalEmail),
//     with the display name in Name.
//   - SMS, WHATSAPP, VOICE: the E.164 number (see CanonicalPhone).
//   - WEBCHAT, MESSENGER, INSTAGRAM, TWITTER: the id exactly as cleaned;
//     the platforms' ids are opaque, so nothing else is touched.
//
// Canonicalize is idempotent: the Address it returns, canonicalized again
// on the same channel and region, gives the same Address and Status.
func Canonicalize(c Channel, addr, region string) (CanonicalAddress, error) {
	if !c.Valid() {
		return CanonicalAddress{}, Invalid(fmt.Sprintf("unknown channel %q", c))
	}
	if len(addr) > maxAddressInput {
		return CanonicalAddress{}, Invalid(fmt.Sprintf("address is longer than %d bytes", maxAddressInput))
	}
	if !utf8.ValidString(addr) {
		return CanonicalAddress{}, Invalid("address is not valid UTF-8")
	}
	var (
		t   string
		err *Error
	)
	switch c {
	case ChannelEmail, ChannelSMS, ChannelWhatsApp, ChannelVoice:
		t, err = cleanParsed(addr)
	default:
		t, err = cleanOpaque(addr)
	}
	if err != nil {
		return CanonicalAddress{}, err
	}
	var res CanonicalAddress
	switch c {
	case ChannelEmail:
		a, name, problem := canonicalEmail(t)
		res = CanonicalAddress{Address: a, Status: AddressValid, Name: name}
		if problem != "" {
			res = CanonicalAddress{Address: t, Status: AddressUnparseable, Name: name, Problem: problem}
		}
	case ChannelSMS, ChannelWhatsApp, ChannelVoice:
		if e164, problem := canonicalPhone(t, normalizeRegion(region)); problem == "" {
			res = CanonicalAddress{Address: e164, Status: AddressValid}
		} else {
			res = CanonicalAddress{Address: t, Status: AddressUnparseable, Problem: problem}
		}
	default:
		res = CanonicalAddress{Address: t, Status: AddressValid}
	}
	if len(res.Address) > MaxAddressLength {
		return CanonicalAddress{}, Invalid(fmt.Sprintf("address is longer than %d bytes", MaxAddressLength))
	}
	return res, nil
}

// CanonicalEmail returns the canonical addr-spec of an email address or
// sender, and the display name it carried. ok is false when it is not an
// address.
//
// Accepted, liberally, as a sender: "addr", "<addr>", "Display Name
// <addr>", "\"Lee, Ann\" <addr>", "addr (Display Name)", a mailto: URI in
// any case, with a ?query and %-escapes, alone or in angle brackets, and
// display names in RFC 2047 encoded words. Called an address, strictly: an
// addr-spec with exactly one @, a local part that is a dot-atom or a quoted
// string (RFC 5322, with UTF-8 as RFC 6532 allows) holding no @ and no
// white space, and a domain of at least two non-empty labels that IDNA
// (UTS #46, non-transitional) accepts and whose last label is not all
// digits.
//
// The canonical form lower-cases the local part (as mailbox names are
// case-insensitive in practice; dots and plus tags are kept, since
// providers differ on them), drops quotes that are not needed, and writes
// the domain in its IDNA Unicode form, lower-cased: "bücher.de" and
// "xn--bcher-kva.de" give the same address. Unicode rather than punycode,
// because the local part is Unicode already (RFC 6532) and a mixed
// "jürgen@xn--bcher-kva.de" would be the least readable of all, and because
// agents read this address.
//
// It is a plain net/mail.ParseAddress in spirit, but that function refuses
// senders a contact centre meets ("Lee, Ann <ann@x.io>", mailto: URIs) and
// accepts what must not be called an address: "bob@ example.com" (white
// space around the @ is folded away) and "\"a@b\"@x.io" (reported as
// a@b@x.io).
func CanonicalEmail(s string) (addr, name string, ok bool) {
	if len(s) > maxAddressInput || !utf8.ValidString(s) {
		return "", "", false
	}
	t, err := cleanParsed(s)
	if err != nil {
		return "", "", false
	}
	addr, name, problem := canonicalEmail(t)
	if problem != "" {
		return "", "", false
	}
	return addr, name, true
}

// CanonicalPhone returns s as an E.164 number. ok is false when it is not a
// phone number. region is the ISO 3166 region of numbers written without a
// country code ("" = none: such numbers are not understood).
//
// Accepted: a leading + or 00, or region's own international prefix (011
// in the US); region's national trunk prefix ("07400 123456" in GB); a
// country code written without a + when it is region's own ("447400123456"
// in GB); spaces, dots, dashes, slashes and brackets, "(0)" after a country
// code; an extension ("x123", "ext. 123", ";ext=123"), dropped because the
// line is the same; a tel: URI prefix. Letters are refused rather than read
// as a vanity number: an SMS sender such as "BANK" must not become a phone
// number.
//
// A number is accepted when its length is possible for its country, not
// only when it is a valid, allocated number, so test and reserved ranges
// (Ofcom's 07700 900xxx) work. A length possible only for local dialling
// (a US number without its area code) is refused: it would name a line
// without saying which.
func CanonicalPhone(s, region string) (string, bool) {
	if len(s) > maxAddressInput || !utf8.ValidString(s) {
		return "", false
	}
	t, err := cleanParsed(s)
	if err != nil {
		return "", false
	}
	e164, problem := canonicalPhone(t, normalizeRegion(region))
	return e164, problem == ""
}

// ValidRegion reports whether r is an ISO 3166 region code the phone
// library knows (upper case). The library's list also holds a few codes
// that ISO reserves rather than assigns, such as AC (Ascension Island) and
// XK (Kosovo), since they have their own numbering plans.
func ValidRegion(r string) bool {
	return len(r) == 2 && phonenumbers.GetSupportedRegions()[r]
}

// normalizeRegion returns r in upper case, or "" when the phone library
// does not know it: an unknown region is no region, which keeps numbers
// without a country code apart rather than guessing.
func normalizeRegion(r string) string {
	r = strings.ToUpper(strings.TrimSpace(r))
	if !ValidRegion(r) {
		return ""
	}
	return r
}

// Cleaning.

// cleanParsed cleans the input of a channel whose addresses are parsed
// (email and phone): it removes every invisible character, normalizes to
// NFC, trims white space and collapses inner runs of white space to one
// space. Everything Canonicalize decides for these channels is a function
// of this cleaned text, and the text is a fixed point of cleanParsed: that
// is what makes UNPARSEABLE results idempotent.
//
// Invisible here means Unicode's Default_Ignorable_Code_Point (format
// characters such as ZWSP, ZWJ, BOM, soft hyphen and the bidi controls,
// variation selectors, Hangul fillers) and every other format character
// (Cf): none can be part of an address a person means, and each can make a
// second contact that looks the same as the first.
//
// White space counts the C0 controls tab, line feed and carriage return as
// space rather than as control characters, so a folded header ("Ann
// Lee\r\n <ann@x.io>") is still a sender; other control characters are an
// error.
func cleanParsed(s string) (string, *Error) {
	t := norm.NFC.String(strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, s))
	for _, r := range t {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return "", Invalid("address contains control characters")
		}
	}
	t = strings.Join(strings.FieldsFunc(t, unicode.IsSpace), " ")
	if t == "" {
		return "", Invalid("address must not be blank")
	}
	return t, nil
}

// invisible reports whether r is removed from parsed addresses.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// Invisible characters removed from opaque ids: the zero-width characters,
// the word joiner, BOM, soft hyphen and the bidi controls. Other format
// characters are kept, since an opaque id may hold emoji, whose sequences
// use some (tag characters in subdivision flags).
const (
	zwj          = '\u200d'
	opaqueRemove = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
)

// cleanOpaque cleans an opaque id: the listed invisible characters
// removed, NFC, surrounding white space trimmed; nothing else touched. A
// zero-width joiner between two symbols is kept, so emoji sequences such
// as 👩‍💻 survive; elsewhere it is invisible and removed.
func cleanOpaque(s string) (string, *Error) {
	// NFC before the joiners are judged, so that they are judged on the
	// characters that stay (a few symbols, such as U+1D15E, decompose),
	// and again after, since a removed character may have kept a mark
	// from its base.
	rs := []rune(norm.NFC.String(s))
	// next[i] is the first rune after rs[i] that is kept unconditionally,
	// or 0: what a joiner at i would join.
	next := make([]rune, len(rs))
	for i := len(rs) - 2; i >= 0; i-- {
		next[i] = next[i+1]
		if !strings.ContainsRune(opaqueRemove, rs[i+1]) {
			next[i] = rs[i+1]
		}
	}
	var b strings.Builder
	b.Grow(len(s))
	var prev rune // the last rune written, ignoring emoji modifiers
	for i, r := range rs {
		if r == zwj {
			if joinsEmoji(prev, next[i]) {
				b.WriteRune(r)
				prev = r
			}
			continue
		}
		if strings.ContainsRune(opaqueRemove, r) {
			continue
		}
		b.WriteRune(r)
		if !emojiModifier(r) {
			prev = r
		}
	}
	t := strings.TrimFunc(norm.NFC.String(b.String()), unicode.IsSpace)
	for _, r := range t {
		if unicode.IsControl(r) {
			return "", Invalid("address contains control characters")
		}
	}
	if t == "" {
		return "", Invalid("address must not be blank")
	}
	return t, nil
}

// joinsEmoji reports whether a zero-width joiner between prev and next
// belongs to an emoji sequence: both are symbols (Unicode So, where the
// emoji are). A joiner after a joiner never does.
func joinsEmoji(prev, next rune) bool {
	return prev != zwj && unicode.Is(unicode.So, prev) && unicode.Is(unicode.So, next)
}

// emojiModifier reports whether r modifies the emoji before it (variation
// selector 16, skin tones) and so may sit between an emoji and a joiner.
func emojiModifier(r rune) bool {
	return r == '\ufe0f' || r >= 0x1f3fb && r <= 0x1f3ff
}

// Email.

// canonicalEmail returns the canonical address and display name of the
// cleaned sender t, or a problem saying why it is not an address (the name
// is then still returned when the sender's shape gave one). It returns a
// canonical address only when that address is a fixed point, so that
// canonicalizing it again gives it back: what is not is not called an
// address.
func canonicalEmail(t string) (addr, name, problem string) {
	spec, name, problem := splitSender(t)
	if problem != "" {
		return "", name, problem
	}
	addr, problem = canonicalAddrSpec(spec)
	if problem != "" {
		return "", name, problem
	}
	if strings.Contains(name, "@") {
		// Mailers often repeat the address as the display name; it is
		// not a person's name.
		if n, _, p := splitSender(name); p == "" {
			if a, p := canonicalAddrSpec(n); p == "" && a == addr {
				name = ""
			}
		}
	}
	if t2, err := cleanParsed(addr); err != nil || t2 != addr {
		return "", name, "not an email address: it does not keep its form when read again"
	}
	if spec2, name2, p := splitSender(addr); p != "" || name2 != "" || spec2 != addr {
		return "", name, "not an email address: it does not keep its form when read again"
	}
	if a2, p := canonicalAddrSpec(addr); p != "" || a2 != addr {
		return "", name, "not an email address: it does not keep its form when read again"
	}
	return addr, name, ""
}

// splitSender splits a cleaned sender into its addr-spec and display name.
// It is liberal in what it accepts as a sender; the addr-spec is checked
// by canonicalAddrSpec.
func splitSender(t string) (spec, name, problem string) {
	switch {
	case hasPrefixFold(t, "mailto:"):
		spec, problem = mailtoSpec(t)
		return spec, "", problem
	case strings.HasSuffix(t, ">"):
		lt := lastOpenAngle(t)
		if lt < 0 {
			// An unbalanced quote in the display name hid the <.
			lt = strings.LastIndexByte(t, '<')
		}
		if lt < 0 {
			return "", "", "not an email address: a > has no <"
		}
		name = displayName(t[:lt])
		spec = strings.TrimSpace(t[lt+1 : len(t)-1])
		if hasPrefixFold(spec, "mailto:") {
			spec, problem = mailtoSpec(spec)
		}
		if problem == "" && spec == "" {
			problem = "not an email address: the angle brackets hold nothing"
		}
		return spec, name, problem
	case strings.HasSuffix(t, ")"):
		// The old form "ann@x.io (Ann Lee)": an address, a space, then
		// the name as a comment.
		if i := strings.Index(t, " ("); i > 0 && !strings.ContainsRune(t[:i], ' ') {
			return t[:i], displayName(t[i+2 : len(t)-1]), ""
		}
	}
	// A whole address in quotes, "ann@x.io" or 'ann@x.io', as some
	// exports write it.
	for _, q := range []string{`"`, `'`} {
		if len(t) > 2 && strings.HasPrefix(t, q) && strings.HasSuffix(t, q) && !strings.Contains(t[1:len(t)-1], q) {
			return t[1 : len(t)-1], "", ""
		}
	}
	return t, "", ""
}

// mailtoSpec returns the address of a mailto: URI: its query removed and
// its %-escapes decoded. The decoded address is cleaned again, since an
// escape may hide an invisible or control character.
func mailtoSpec(t string) (spec, problem string) {
	spec, _, _ = strings.Cut(t[len("mailto:"):], "?")
	spec, err := url.PathUnescape(spec)
	if err != nil || !utf8.ValidString(spec) {
		return "", "not an email address: the mailto: URI has a broken %-escape"
	}
	if strings.TrimSpace(spec) == "" {
		return "", "not an email address: the mailto: URI holds no address"
	}
	spec, cerr := cleanParsed(spec)
	if cerr != nil {
		return "", "not an email address: the mailto: URI hides control characters"
	}
	return spec, ""
}

// lastOpenAngle returns the index of the last < in t outside a quoted
// string, or -1.
func lastOpenAngle(t string) int {
	lt, quoted := -1, false
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case '<':
			if !quoted {
				lt = i
			}
		}
	}
	return lt
}

// displayName returns the display name in s: trimmed, unquoted, RFC 2047
// encoded words decoded, white space collapsed, at most MaxNameLength
// bytes. An empty name is "".
func displayName(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		var b strings.Builder
		in := s[1 : len(s)-1]
		for i := 0; i < len(in); i++ {
			if in[i] == '\\' && i+1 < len(in) {
				i++
			}
			b.WriteByte(in[i])
		}
		s = b.String()
	} else if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		// Some mailers quote names with apostrophes: 'Ann Lee'.
		s = s[1 : len(s)-1]
	} else {
		// A quote without its pair, as broken feeds write them.
		s = strings.Trim(s, `"`)
	}
	if strings.Contains(s, "=?") {
		if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil && utf8.ValidString(d) {
			s = d
		}
	}
	// A decoded name may hold anything; keep what a name can show.
	s = strings.Map(func(r rune) rune {
		switch {
		case invisible(r):
			return -1
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.FieldsFunc(norm.NFC.String(s), unicode.IsSpace), " ")
	if len(s) > MaxNameLength {
		s = s[:MaxNameLength]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// hasPrefixFold reports whether s begins with prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// emailProfile is IDNA as a mail client looking a domain up applies it
// (UTS #46 mapping, non-transitional so ß stays ß as browsers now do; bidi
// rule; STD3 host names; DNS lengths).
var emailProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.VerifyDNSLength(true),
)

// canonicalAddrSpec returns the canonical form of the addr-spec spec, or a
// problem saying why it is not one.
func canonicalAddrSpec(spec string) (addr, problem string) {
	if !strings.Contains(spec, "@") {
		return "", "not an email address: it has no @"
	}
	if strings.IndexFunc(spec, unicode.IsSpace) >= 0 {
		return "", "not an email address: it has white space in it"
	}
	var local, domain string
	if strings.HasPrefix(spec, `"`) {
		content, rest, ok := quotedString(spec)
		if !ok {
			return "", "not an email address: the quoted part before the @ is not closed"
		}
		if !strings.HasPrefix(rest, "@") {
			return "", "not an email address: the quoted part is not followed by an @"
		}
		domain = rest[1:]
		switch {
		case content == "":
			return "", "not an email address: nothing before the @"
		case strings.Contains(content, "@"):
			// An @ in a quoted local part is lawful (RFC 5322) but no
			// one uses it, and every reader of a canonical address
			// expects exactly one @.
			return "", "not an email address: an @ inside quotes is not supported"
		}
		for _, r := range content {
			if r < 0x20 || r == 0x7f || r >= 0x80 && !unicode.IsGraphic(r) {
				return "", fmt.Sprintf("not an email address: the part before the @ holds %q", r)
			}
		}
		local = strings.ToLower(content)
		if !dotAtom(local) {
			local = quote(local)
		}
	} else {
		var ok bool
		local, domain, ok = strings.Cut(spec, "@")
		if !ok || local == "" {
			return "", "not an email address: nothing before the @"
		}
		if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
			return "", "not an email address: the part before the @ starts or ends with a dot or has two dots in a row"
		}
		for _, r := range local {
			if r != '.' && !atext(r) {
				return "", fmt.Sprintf("not an email address: the part before the @ holds %q", r)
			}
		}
		local = strings.ToLower(local)
	}
	if strings.Contains(domain, "@") {
		return "", "not an email address: it has more than one @"
	}
	d, problem := canonicalDomain(domain)
	if problem != "" {
		return "", problem
	}
	addr = norm.NFC.String(local + "@" + d)
	if len(addr) > MaxAddressLength {
		return "", fmt.Sprintf("not an email address: it is longer than %d bytes", MaxAddressLength)
	}
	return addr, ""
}

// problemEmptyLabel is the Problem of a domain with an empty label.
const problemEmptyLabel = "not an email address: the domain has an empty label (two dots in a row, or a dot at an end)"

// canonicalDomain returns the canonical form of an email domain: lower
// case, IDNA Unicode form.
func canonicalDomain(domain string) (string, string) {
	if domain == "" {
		return "", "not an email address: nothing after the @"
	}
	if strings.HasPrefix(domain, "[") {
		return "", "not an email address: a domain literal such as [192.0.2.1] is not supported"
	}
	// IDNA maps the ideographic and full-width full stops to dots; the
	// labels are checked for emptiness with those in mind.
	dot := func(r rune) bool { return r == '.' || r == '。' || r == '．' || r == '｡' }
	seps := 0
	for _, r := range domain {
		if dot(r) {
			seps++
		}
	}
	if seps == 0 {
		return "", "not an email address: the domain has no dot"
	}
	if len(strings.FieldsFunc(domain, dot)) != seps+1 {
		return "", problemEmptyLabel
	}
	ascii, err := emailProfile.ToASCII(domain)
	if err != nil {
		return "", "not an email address: the domain is not a valid domain name"
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", "not an email address: the domain has no dot"
	}
	if slices.Contains(labels, "") {
		return "", problemEmptyLabel
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", "not an email address: the domain ends in a number, not a top-level domain"
	}
	u, err := emailProfile.ToUnicode(ascii)
	if err != nil {
		return "", "not an email address: the domain is not a valid domain name"
	}
	return u, ""
}

// quotedString reads the quoted string at the start of s and returns its
// content, unescaped, and the rest of s.
func quotedString(s string) (content, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "", "", false
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}

// quote writes a local part as a quoted string, escaping only what must
// be.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// dotAtom reports whether s is a dot-atom: atext runs joined by single
// dots.
func dotAtom(s string) bool {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r != '.' && !atext(r) {
			return false
		}
	}
	return true
}

// atext reports whether r may appear in a dot-atom: RFC 5322's atext, plus
// any visible non-ASCII character as RFC 6532 allows.
func atext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r < 0x80:
		return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
	}
	return unicode.IsGraphic(r) && !unicode.IsSpace(r)
}

// Phone.

// phoneExtension matches a phone number followed by an extension, which
// canonicalPhone drops: "x123", "ext. 123", "extension 123", "#123",
// ";ext=123" (a tel: URI's parameter), each optionally after a comma.
var phoneExtension = regexp.MustCompile(`(?i)^(.*?)\s*(?:[,;]\s*)?(?:ext(?:ension|n)?\s*[.:=]?|x\.?|#)\s*\p{Nd}{1,10}\s*#?$`)

// phonePunctuation holds the separators a phone number may be written
// with, besides white space and Unicode dashes: the ASCII ones and their
// full-width forms, and the minus sign.
const phonePunctuation = "-./()[]\u2212\uff08\uff09\uff0e\uff0f\uff3b\uff3d"

// canonicalPhone returns the cleaned text t as an E.164 number, or a
// problem saying why it is not a phone number. region is "" or valid.
func canonicalPhone(t, region string) (e164, problem string) {
	s := t
	if hasPrefixFold(s, "tel:") {
		s = strings.TrimSpace(s[len("tel:"):])
	}
	if m := phoneExtension.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	plus, digits, ok := phoneDigits(s)
	if !ok {
		return "", "not a phone number: only digits, spaces, dots, dashes, brackets, a leading + and an extension may appear"
	}
	switch {
	case digits == "":
		return "", "not a phone number: it has no digits"
	case len(digits) > 20:
		// Longer than any number with any prefix; the library is not
		// asked.
		return "", "not a phone number: it has too many digits"
	case plus:
		return e164Of("+"+digits, "")
	case region != "":
		e, p := e164Of(digits, region)
		if p != "" && strings.HasPrefix(digits, "00") {
			// 00 is the international prefix of most of the world;
			// accept it where the region's own is another (011 in
			// the US), when the number does not fit the region.
			if e2, p2 := e164Of("+"+digits[2:], ""); p2 == "" {
				return e2, ""
			}
		}
		return e, p
	case strings.HasPrefix(digits, "00"):
		return e164Of("+"+digits[2:], "")
	}
	return "", problemNoCountryCode
}

// phoneDigits reads the number part of a phone number: it reports
// whether it holds a leading plus and returns its digits in ASCII. ok is
// false when s holds anything but digits, separators, and a plus before
// every digit.
func phoneDigits(s string) (plus bool, digits string, ok bool) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case unicode.IsDigit(r):
			b.WriteByte(byte('0' + digitValue(r)))
		case r == '+' || r == '\uff0b':
			if plus || b.Len() > 0 {
				return false, "", false
			}
			plus = true
		case r == ' ' || unicode.Is(unicode.Pd, r) || strings.ContainsRune(phonePunctuation, r):
		default:
			return false, "", false
		}
	}
	return plus, b.String(), true
}

// digitValue returns the value of the decimal digit r. Unicode encodes the
// decimal digits (Nd) in contiguous runs of whole 0-to-9 sets, so a digit's
// value is its distance from the start of its run, modulo 10.
func digitValue(r rune) int {
	start := r
	for unicode.IsDigit(start - 1) {
		start--
	}
	return int(r-start) % 10
}

// e164Pattern is the shape of every phone address canonicalPhone returns.
var e164Pattern = regexp.MustCompile(`^\+[1-9][0-9]{6,15}$`)

// e164Of parses number, in region when it has no +, and returns it in
// E.164 form if its length is possible for its country. The result is
// checked to be a fixed point: parsed again it gives itself.
func e164Of(number, region string) (string, string) {
	if region == "" {
		region = "ZZ" // unknown: only numbers with a + parse
	}
	n, err := phonenumbers.Parse(number, region)
	if err != nil {
		if errors.Is(err, phonenumbers.ErrInvalidCountryCode) {
			return "", "not a phone number: unknown country code"
		}
		return "", "not a phone number: it has too few or too many digits"
	}
	if p := possible(n); p != "" {
		return "", p
	}
	e := phonenumbers.Format(n, phonenumbers.E164)
	if !e164Pattern.MatchString(e) {
		return "", "not a phone number: it has too few or too many digits"
	}
	n2, err := phonenumbers.Parse(e, "ZZ")
	if err != nil || possible(n2) != "" || phonenumbers.Format(n2, phonenumbers.E164) != e {
		return "", "not a phone number: it does not keep its form when read again"
	}
	return e, ""
}

// possible returns "" when n's length is possible for its country, else
// what is wrong.
func possible(n *phonenumbers.PhoneNumber) string {
	switch phonenumbers.IsPossibleNumberWithReason(n) {
	case phonenumbers.IS_POSSIBLE:
		return ""
	case phonenumbers.INVALID_COUNTRY_CODE:
		return "not a phone number: unknown country code"
	case phonenumbers.TOO_SHORT:
		return "not a phone number: too few digits for its country"
	case phonenumbers.TOO_LONG:
		return "not a phone number: too many digits for its country"
	case phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return "not a phone number: too few digits; a local number needs its area code"
	}
	return "not a phone number: wrong number of digits for its country"
}
