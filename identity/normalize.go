package identity

import (
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// normalizeEmail trims and lower-cases an address and checks its shape:
// one @, a non-empty local part, a domain with a dot and no spaces.
func normalizeEmail(v string) (string, bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	local, domain, ok := strings.Cut(v, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || !strings.Contains(domain, ".") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", false
	}
	for _, r := range v {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", false
		}
	}
	return v, true
}

// normalizePhone parses v as a phone number, in region when it has no
// country code, and returns it in E.164 form. Numbers whose length no
// numbering plan of the region allows are refused: they would link
// strangers. (Possible rather than valid numbers are accepted, so test and
// reserved ranges such as Ofcom's 07700 900xxx still link.)
func normalizePhone(v, region string) (string, bool) {
	if region == "" {
		region = "ZZ" // unknown: only numbers with a country code parse
	}
	n, err := phonenumbers.Parse(v, region)
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}

// validRegion reports whether r is a region the phone library knows.
func validRegion(r string) bool {
	return phonenumbers.GetCountryCodeForRegion(r) != 0
}
