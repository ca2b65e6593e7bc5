// Package store is the persistence contract of the gateway: the Store
// interface every database adapter implements, the paging and cursor types
// its list methods share, the events it publishes after commits, and the
// command counters that make database round trips visible.
//
// The adapters live beside it: store/sqlite (the embedded default) and
// store/mongo (production). store/storetest is the conformance suite both
// must pass. Every method takes the tenant explicitly and every adapter
// filters by it, so no caller can read or write across tenants.
package store

import (
	"context"
	"time"

	"github.com/relatedhq/related"
)

// Store persists the gateway's documents. Methods return *related.Error for
// the caller's mistakes (not found, invalid, conflict) and wrapped errors
// for the database's own failures.
type Store interface {
	ProfileStore

	// RecordMessage stores a message, creating its contact and interaction
	// on first sight. The input must be normalized (related.RecordMessage's
	// Normalize); the store puts the contact's address in canonical form
	// under the tenant's default region (related.Canonicalize) and reports
	// an address it could not understand in the result's Warnings. A
	// contact attribute a rule of its key cannot parse is INVALID, naming
	// ["contact", "attributes", i, "value"], and nothing is stored. A
	// repeat with the same ClientMutationID returns the first result and
	// stores nothing.
	RecordMessage(ctx context.Context, tenant string, in related.RecordMessage) (*RecordResult, error)
	// CloseInteraction closes interaction id with state at time at. Closing
	// a closed interaction changes its state and keeps it closed.
	CloseInteraction(ctx context.Context, tenant, id string, state related.ClosedState, at time.Time) (*related.Interaction, error)
	// ReopenInteraction reopens interaction id. It fails with CONFLICT when
	// its thread already has another open interaction.
	ReopenInteraction(ctx context.Context, tenant, id string) (*related.Interaction, error)
	// SetContactAttributes applies attrs to contact id (see
	// related.MergeAttributes) and relinks it. by is the provenance; each
	// attribute says whether it is attested. A value a rule of its key
	// cannot parse is INVALID, naming ["attributes", i, "value"], and
	// nothing is stored.
	SetContactAttributes(ctx context.Context, tenant, id string, attrs []related.Attribute, by related.Actor) (*related.Contact, error)

	// Interactions, Messages, Contacts and Queues return the documents with
	// the given ids, in no particular order; ids that name nothing are left
	// out. They are the dataloaders' batch functions: one call is one
	// database command whatever the number of ids.
	Interactions(ctx context.Context, tenant string, ids []string) ([]*related.Interaction, error)
	Messages(ctx context.Context, tenant string, ids []string) ([]*related.Message, error)
	Contacts(ctx context.Context, tenant string, ids []string) ([]*related.Contact, error)
	// ContactAliases maps each of ids that names a contact merged into
	// another (two spellings of one address, folded by canonicalization)
	// to the contact it became, so an id a client kept still leads to the
	// person. Current and unknown ids are absent from the map.
	ContactAliases(ctx context.Context, tenant string, ids []string) (map[string]string, error)
	Queues(ctx context.Context, tenant string, ids []string) ([]*related.Queue, error)

	// ListInteractions pages through a tenant's interactions, newest last
	// message first, as an agent's list of recent work.
	ListInteractions(ctx context.Context, tenant string, f InteractionFilter, p Page) (*InteractionPage, error)
	// CountInteractions counts the interactions f selects.
	CountInteractions(ctx context.Context, tenant string, f InteractionFilter) (int, error)

	// ListMessages pages through an interaction's messages, oldest first.
	// Without bodies, the messages' Body is empty and is not read at all:
	// a page of ids, times or counts reads no message text, which can be
	// 256 KiB a message.
	ListMessages(ctx context.Context, tenant, interactionID string, p Page, bodies bool) (*MessagePage, error)
	// CountMessages counts an interaction's messages.
	CountMessages(ctx context.Context, tenant, interactionID string) (int, error)
	// ListRelated pages through the interactions q selects, newest last
	// message first.
	ListRelated(ctx context.Context, tenant string, q RelatedQuery, p Page) (*InteractionPage, error)
	// CountRelated counts the interactions q selects.
	CountRelated(ctx context.Context, tenant string, q RelatedQuery) (int, error)

	// Preferences returns an agent's preferences, or the defaults.
	Preferences(ctx context.Context, tenant, principal string) (related.Preferences, error)
	// SetPreferences stores an agent's preferences.
	SetPreferences(ctx context.Context, tenant, principal string, p related.Preferences) error

	// TenantSettings returns the tenant's settings (the zero value, with
	// Tenant set, when it never set any).
	TenantSettings(ctx context.Context, tenant string) (related.TenantSettings, error)
	// SetTenantSettings stores the tenant's settings. A change of the
	// default region starts the canonicalization of the tenant's contacts
	// (phone numbers written without a country code now parse) and a
	// re-evaluation of its rules.
	SetTenantSettings(ctx context.Context, tenant string, s related.TenantSettings) (related.TenantSettings, error)
	// Canonicalization reports the progress of the tenant's latest address
	// canonicalization, or nil when there was none.
	Canonicalization(ctx context.Context, tenant string) (*related.Canonicalization, error)
	// CanonicalizeContacts brings up to batch contacts (in id order) of a
	// running canonicalization to their canonical address under the
	// tenant's region: a contact whose canonical address is another's
	// (or whose id is not its canonical address's) is merged into the
	// contact of that address, created if needed. The merged contact's
	// interactions, attributes, decisions and names move; its id becomes
	// an alias. It reports whether the canonicalization is done; it
	// resumes where it stopped after a restart, and is idempotent.
	CanonicalizeContacts(ctx context.Context, tenant string, batch int) (done bool, err error)
	// PendingCanonicalizations lists the tenants with a canonicalization
	// running.
	PendingCanonicalizations(ctx context.Context) ([]string, error)

	// EraseProfile deletes every contact of a profile (profileID may be a
	// stale id: the profile it leads to) and everything about them on
	// every channel: interactions, messages, attributes, values, decisions,
	// names, suggestions, conflicts and history entries. What remains is
	// the returned tombstone. Other contacts the erased ones held together
	// are decided again. Every erased id then reads as not found.
	EraseProfile(ctx context.Context, tenant, profileID, reason string, by related.Actor) (*related.Erasure, error)
	// EraseContact erases one contact the same way.
	EraseContact(ctx context.Context, tenant, contactID, reason string, by related.Actor) (*related.Erasure, error)
	// Erasures pages through the tenant's tombstones, newest first.
	Erasures(ctx context.Context, tenant string, p Page) (*ErasurePage, error)

	// Ping reports whether the database answers and the schema is in place.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// RecordResult is what RecordMessage did.
type RecordResult struct {
	Interaction *related.Interaction
	Message     *related.Message
	Contact     *related.Contact
	// Created reports whether the interaction was opened by this message.
	Created bool
	// Duplicate reports whether the message was a repeat of an earlier one
	// with the same ClientMutationID, so nothing was stored.
	Duplicate bool
	// Warnings are what the caller should fix that did not stop the write.
	Warnings []related.Warning
}

// RelatedQuery selects the interactions of one Related panel. Exactly one
// of ContactID and ProfileID is set: ContactID for CHANNEL scope (a contact
// belongs to one channel), ProfileID for PROFILE scope.
type RelatedQuery struct {
	ContactID string
	ProfileID string
	// Exclude is the interaction the panel is shown beside.
	Exclude string
}

// InteractionFilter narrows ListInteractions; the zero value selects all.
type InteractionFilter struct {
	Status related.Status // "" for any
}

// InteractionPage is one page of a Related panel.
type InteractionPage struct {
	Items           []*related.Interaction
	HasNextPage     bool
	HasPreviousPage bool
	// Total is the size of the whole list; only PanelReader.RelatedPanel
	// computes it (ListRelated leaves it 0: ask CountRelated).
	Total int
	// Contacts are the items' contacts when the store read them with the
	// page (PanelReader.RelatedPanel).
	Contacts []*related.Contact
}

// InteractionView is an interaction with what its panel shows of it.
type InteractionView struct {
	Interaction *related.Interaction
	Contact     *related.Contact
	Profile     *related.Profile // nil when the contact is in no profile
}

// PanelReader is implemented by stores that can answer the Related
// panel's reads in fewer commands than the generic path: the interactions
// with their contacts and profiles in one command, and a page with its
// items' contacts and the list's total in one more. Resolvers use it when
// the store offers it.
type PanelReader interface {
	InteractionViews(ctx context.Context, tenant string, ids []string) ([]*InteractionView, error)
	RelatedPanel(ctx context.Context, tenant string, q RelatedQuery, p Page) (*InteractionPage, error)
}

// ErasurePage is one page of tombstones.
type ErasurePage struct {
	Items           []*related.Erasure
	HasNextPage     bool
	HasPreviousPage bool
}

// MessagePage is one page of an interaction's messages.
type MessagePage struct {
	Items           []*related.Message
	HasNextPage     bool
	HasPreviousPage bool
}

// Bulker is implemented by stores that can run many writes as one unit:
// the writes fn makes through the context it is given share one
// transaction. Bulk loaders (package seed) use it when a store offers it.
type Bulker interface {
	Bulk(ctx context.Context, fn func(ctx context.Context) error) error
}

// OpenReader is implemented by stores that can read what opening an
// interaction shows (operation.OpenInteraction, answered by the compiled
// plan in package resolvers) straight into flat rows: only the columns the
// operation selects, times as stored, nothing decoded that it does not
// show (a contact's attributes, a profile's identifiers). It reads what
// PanelReader reads, in the same statements and with the same outcome, so
// the plan and the generic resolvers answer alike.
type OpenReader interface {
	// OpenView reads interaction id with its contact and profile into v;
	// false when there is none (or its contact is missing).
	OpenView(ctx context.Context, tenant, id string, v *OpenView) (bool, error)
	// PanelRows reads one page of a Related panel with each row's contact
	// and the list's total into out, reusing out.Rows' storage.
	PanelRows(ctx context.Context, tenant string, q RelatedQuery, p Page, out *PanelRows) error
}

// OpenMessage is an interaction's copy of its newest message, as stored.
type OpenMessage struct {
	ID        string // "" when the interaction has no message
	Body      string // the first related.InlineBodyLength bytes when Partial
	Direction string
	Author    string
	SentAt    int64 // Unix milliseconds
	Partial   bool
}

// OpenProfile is what a profile bar and the panel's scope rule need of a
// profile.
type OpenProfile struct {
	ID         string // "" when the interaction's profile was not found
	CustomName string
	AutoName   string
	// Channels is the stored JSON array of the profile's channels.
	Channels   string
	Contacts   int
	MergedInto string
}

// OpenView is an interaction as opening it shows it. Times are Unix
// milliseconds, 0 for none.
type OpenView struct {
	ID, Channel, Status, ClosedState string
	ClosedAt, CreatedAt              int64
	ContactID, ProfileID             string
	QueueID, QueueName               string
	ContactName, ContactAddress      string
	Last                             OpenMessage
	Profile                          OpenProfile
}

// PanelRow is one Related panel row as stored (Last.Author is not read).
type PanelRow struct {
	ID, Channel, Status, ClosedState string
	ClosedAt, CreatedAt              int64
	ContactID, ContactName           string
	QueueID, QueueName               string
	Last                             OpenMessage
}

// PanelRows is one page of a Related panel read by OpenReader.PanelRows.
type PanelRows struct {
	Rows            []PanelRow
	HasNextPage     bool
	HasPreviousPage bool
	// Total is the size of the whole list.
	Total int
}

// AvailabilityReporter is implemented by stores that can tell a failure of
// the database itself (down, unreachable, out of disk space, stepping
// down) from other errors: the server answers those as UNAVAILABLE, a
// condition to retry after, rather than as its own defect.
type AvailabilityReporter interface {
	// Unavailable reports whether err, returned by one of the store's
	// methods, means the database is unavailable for now.
	Unavailable(err error) bool
}

// Unavailable reports whether err, returned by s, means the database is
// unavailable for now (see AvailabilityReporter).
func Unavailable(s any, err error) bool {
	r, ok := s.(AvailabilityReporter)
	return ok && err != nil && r.Unavailable(err)
}
