package related

import "time"

// TenantSettings are a tenant's own settings.
type TenantSettings struct {
	Tenant string
	// DefaultRegion is the ISO 3166 region phone numbers written without
	// a country code belong to ("GB": 07400 123456 is +447400123456).
	// "" (a new tenant): only numbers with a country code are understood.
	DefaultRegion string
	UpdatedAt     time.Time
}

// Canonicalization is the progress of bringing a tenant's contact
// addresses to their canonical form (after an upgrade, or a change of the
// tenant's default region), merging contacts that turn out to be one.
type Canonicalization struct {
	Tenant    string
	State     string // RUNNING, DONE
	Processed int
	Total     int
	// Merged counts the contacts merged into another that had the same
	// canonical address.
	Merged    int
	StartedAt time.Time
	UpdatedAt time.Time
}

// Warning is something the caller should fix that did not stop a write:
// a message from an address that could not be understood is recorded
// anyway, and says so.
type Warning struct {
	Field   []string
	Message string
	Code    string
}

// Warning codes.
const (
	// WarnUnparseableAddress: the contact's address could not be
	// understood; it is kept as given and links nothing.
	WarnUnparseableAddress = "UNPARSEABLE_ADDRESS"
)
