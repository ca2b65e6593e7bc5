// Package identity decides who is who: how the values customers give
// (email addresses, phone numbers, customer ids, order numbers) normalize,
// which rules turn them into identifiers, and how contacts sharing an
// identifier come together in one profile. It is pure Go: the store
// gathers the facts, Plan decides, and the store applies the decision, so
// every adapter links the same way.
package identity

import (
	"cmp"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relatedhq/related"
)

// Normalizer says how a rule's values are compared.
type Normalizer string

// The normalizers.
const (
	// NormalizeEmail trims and lower-cases an address, and nothing else:
	// dots and plus tags mean different mailboxes at some providers.
	NormalizeEmail Normalizer = "EMAIL"
	// NormalizePhone parses a number to E.164, with the rule's default
	// region for numbers written without a country code.
	NormalizePhone Normalizer = "PHONE"
	// NormalizeExact trims, and compares the rest exactly.
	NormalizeExact Normalizer = "EXACT"
	// NormalizeCaseInsensitive trims and folds case.
	NormalizeCaseInsensitive Normalizer = "CASE_INSENSITIVE"
)

// Valid reports whether n is a known normalizer.
func (n Normalizer) Valid() bool {
	switch n {
	case NormalizeEmail, NormalizePhone, NormalizeExact, NormalizeCaseInsensitive:
		return true
	}
	return false
}

// MarshalGQL writes n as a GraphQL enum value.
func (n Normalizer) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(n))) }

// UnmarshalGQL reads n from a GraphQL enum value.
func (n *Normalizer) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok || !Normalizer(s).Valid() {
		return fmt.Errorf("%v is not a valid Normalizer", v)
	}
	*n = Normalizer(s)
	return nil
}

// Rule links contacts that share a value of one attribute.
type Rule struct {
	ID         string
	Tenant     string
	Attribute  string // the attribute key, such as "email" or "orderNumber"
	Normalizer Normalizer
	Enabled    bool
	// Priority orders rules for naming a profile: the identifier of the
	// rule with the highest priority names it.
	Priority int
	// MaxPerProfile bounds how many values of Attribute one profile may
	// hold; 0 means no bound. A merge past it becomes a conflict.
	MaxPerProfile int
	// AutoMerge says which shared values merge profiles on their own; the
	// others only suggest a merge.
	AutoMerge AutoMerge
	// MaxContactsPerValue quarantines hub values: a value more contacts
	// than this hold (info@company.com) links nothing. 0 means no bound.
	MaxContactsPerValue int
	// BlockedValues are normalized values, or patterns with * wildcards
	// (such as "noreply@*"), that never link anything.
	BlockedValues []string
	// DefaultRegion is the ISO 3166 region PHONE numbers without a country
	// code belong to, such as "GB"; "" uses TenantRegion.
	DefaultRegion string
	// TenantRegion is the tenant's default region, which a PHONE rule
	// without its own uses. Stores set it when they load rules; it is not
	// part of the rule.
	TenantRegion string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Deleted marks a deleted rule, kept so the default rule stays deleted.
	Deleted bool
}

// Limits on rules.
const (
	MaxRules         = 50
	MaxBlockedValues = 1000
	maxAttribute     = related.MaxAttributeKey
	// DefaultMaxContactsPerValue is the hub threshold of a rule that sets
	// none: a value more than 10 contacts give is a shared mailbox, a
	// switchboard or a test value, not a person.
	DefaultMaxContactsPerValue = 10
	// MaxContactsPerValueLimit bounds the threshold an admin may set.
	MaxContactsPerValueLimit = 100000
)

// attributeKey is what a rule's attribute may look like: a name, not text.
var attributeKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:-]*$`)

// Validate checks r and returns it normalized: trimmed attribute, blocked
// values normalized and de-duplicated. Errors name the ProfileRuleInput
// field at fault.
func (r Rule) Validate() (Rule, error) {
	r.Attribute = strings.TrimSpace(r.Attribute)
	if r.Attribute == "" {
		return r, related.Invalid("must not be blank", "attribute")
	}
	if len(r.Attribute) > maxAttribute || !attributeKey.MatchString(r.Attribute) {
		return r, related.Invalid("must be a name of letters, digits and _ . : - starting with a letter, at most 64 bytes", "attribute")
	}
	if !r.Normalizer.Valid() {
		return r, related.Invalid(fmt.Sprintf("unknown normalizer %q", r.Normalizer), "normalizer")
	}
	if r.MaxPerProfile < 0 {
		return r, related.Invalid("must not be negative", "maxPerProfile")
	}
	if r.Priority < -1000 || r.Priority > 1000 {
		return r, related.Invalid("must be between -1000 and 1000", "priority")
	}
	if r.AutoMerge == "" {
		r.AutoMerge = DefaultAutoMerge(r.Attribute, r.Normalizer)
	}
	if !r.AutoMerge.Valid() {
		return r, related.Invalid(fmt.Sprintf("unknown policy %q", r.AutoMerge), "autoMerge")
	}
	if r.MaxContactsPerValue < 0 || r.MaxContactsPerValue > MaxContactsPerValueLimit {
		return r, related.Invalid(fmt.Sprintf("must be between 0 (no bound) and %d", MaxContactsPerValueLimit), "maxContactsPerValue")
	}
	r.DefaultRegion = strings.ToUpper(strings.TrimSpace(r.DefaultRegion))
	if r.DefaultRegion != "" && !validRegion(r.DefaultRegion) {
		return r, related.Invalid(fmt.Sprintf("unknown region %q", r.DefaultRegion), "defaultRegion")
	}
	if len(r.BlockedValues) > MaxBlockedValues {
		return r, related.Invalid(fmt.Sprintf("at most %d values", MaxBlockedValues), "blockedValues")
	}
	var blocked []string
	for i, b := range r.BlockedValues {
		b = strings.TrimSpace(b)
		if b == "" || len(b) > related.MaxAttributeValue {
			return r, related.Invalid("must be 1 to 1024 bytes", "blockedValues", strconv.Itoa(i))
		}
		if !strings.Contains(b, "*") {
			if n, ok := r.normalize(b); ok {
				b = n
			}
		} else if r.Normalizer != NormalizeExact {
			b = strings.ToLower(b)
		}
		if !slices.Contains(blocked, b) {
			blocked = append(blocked, b)
		}
	}
	r.BlockedValues = blocked
	return r, nil
}

// Identifier is a normalized value of a rule's attribute: the key profiles
// are linked by.
type Identifier = related.Identifier

// Normalize returns v in the rule's canonical form. ok is false when v is
// not a value of the rule's kind (an unparseable phone number or email
// address) or is blocked: such a value is kept as an attribute but links
// nothing.
func (r Rule) Normalize(v string) (norm string, ok bool) {
	n, ok := r.normalize(v)
	if !ok || r.Blocked(n) {
		return "", false
	}
	return n, true
}

// NormalizeValue returns v in the rule's canonical form, blocked or not;
// ok is false when v is not a value of the rule's kind.
func (r Rule) NormalizeValue(v string) (string, bool) { return r.normalize(v) }

func (r Rule) normalize(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > related.MaxAttributeValue {
		return "", false
	}
	switch r.Normalizer {
	case NormalizeEmail:
		return normalizeEmail(v)
	case NormalizePhone:
		return normalizePhone(v, cmp.Or(r.DefaultRegion, r.TenantRegion))
	case NormalizeCaseInsensitive:
		return strings.ToLower(v), true
	case NormalizeExact:
		return v, true
	}
	return "", false
}

// Blocked reports whether the normalized value n is one of the rule's
// blocked values or matches one of its patterns.
func (r Rule) Blocked(n string) bool {
	for _, b := range r.BlockedValues {
		if b == n || strings.Contains(b, "*") && matchWildcard(b, n) {
			return true
		}
	}
	return false
}

// matchWildcard matches s against pattern, where * stands for any run of
// characters, including none. It runs in O(len(pattern)*len(s)) at worst,
// so no pattern can make it explode.
func matchWildcard(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	if len(parts) == 1 {
		return s == ""
	}
	return strings.HasSuffix(s, last) && len(s) >= len(last)
}

// DefaultRuleID is the id of the email rule every tenant starts with.
func DefaultRuleID(tenant string) string { return related.DerivedID(tenant, "rule", "email") }

// DefaultRules are the rules of a tenant that configured none: link by
// email address.
func DefaultRules(tenant string) []Rule {
	return []Rule{{
		ID: DefaultRuleID(tenant), Tenant: tenant, Attribute: "email",
		Normalizer: NormalizeEmail, Enabled: true, Priority: 100,
		AutoMerge: AutoMergeAttested, MaxContactsPerValue: DefaultMaxContactsPerValue,
	}}
}

// WithDefaults returns stored plus the default rules whose attribute the
// tenant has never configured, without the deleted ones, in priority
// order (highest first, then attribute).
func WithDefaults(tenant string, stored []Rule) []Rule {
	out := make([]Rule, 0, len(stored)+1)
	for _, d := range DefaultRules(tenant) {
		if !slices.ContainsFunc(stored, func(r Rule) bool { return r.Attribute == d.Attribute || r.ID == d.ID }) {
			out = append(out, d)
		}
	}
	for _, r := range stored {
		if !r.Deleted {
			out = append(out, r)
		}
	}
	SortRules(out)
	return out
}

// SortRules orders rules by priority, highest first, then by attribute.
func SortRules(rules []Rule) {
	slices.SortStableFunc(rules, func(a, b Rule) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return strings.Compare(a.Attribute, b.Attribute)
	})
}

// NodeType implements related.Node: rules have global ids.
func (*Rule) NodeType() related.NodeType { return related.NodeProfileRule }
