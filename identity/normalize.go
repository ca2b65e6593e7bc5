package identity

import "github.com/relatedhq/related"

// normalizeEmail returns the canonical form of an email address, the same
// as a contact's address on the EMAIL channel (related.CanonicalEmail): the
// addr-spec of an address or sender, cleaned of invisible characters, its
// local part lower-cased and its domain in IDNA form. ok is false when v is
// not an address.
func normalizeEmail(v string) (string, bool) {
	addr, _, ok := related.CanonicalEmail(v)
	return addr, ok
}

// normalizePhone returns v in E.164 form, in region when it has no country
// code, the same as a contact's address on the phone channels
// (related.CanonicalPhone). Numbers whose length no numbering plan of the
// region allows are refused: they would link strangers. (Possible rather
// than valid numbers are accepted, so test and reserved ranges such as
// Ofcom's 07700 900xxx still link.)
func normalizePhone(v, region string) (string, bool) {
	return related.CanonicalPhone(v, region)
}

// validRegion reports whether r is a region the phone library knows.
func validRegion(r string) bool { return related.ValidRegion(r) }
