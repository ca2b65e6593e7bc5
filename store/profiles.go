package store

import (
	"context"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// ProfileStore persists identity: the facts profiles are decided from
// (contacts' values, rules, manual decisions, quarantined values) and the
// profiles, suggestions, conflicts and history identity.Partition derives
// from them. Linking happens inside the write that changes a fact, and
// every adapter decides alike: Gather, Partition, Plan.
type ProfileStore interface {
	// ProfileRules returns the tenant's rules, the default email rule
	// included until the tenant deletes it, highest priority first.
	ProfileRules(ctx context.Context, tenant string) ([]identity.Rule, error)
	// SaveProfileRule creates (empty ID) or replaces a rule, which must be
	// valid (identity.Rule.Validate). A second rule for one attribute is a
	// CONFLICT naming "attribute". Saving starts a re-evaluation of the
	// tenant's contacts.
	SaveProfileRule(ctx context.Context, tenant string, r identity.Rule) (identity.Rule, error)
	// DeleteProfileRule deletes a rule and starts a re-evaluation, which
	// unlinks what only that rule linked.
	DeleteProfileRule(ctx context.Context, tenant, id string) error
	// RuleEvaluation reports the progress of the tenant's latest
	// re-evaluation, or nil when there was none.
	RuleEvaluation(ctx context.Context, tenant string) (*RuleEvaluation, error)
	// EvaluateRules re-evaluates up to batch contacts of a running
	// re-evaluation and reports whether it is done. The server calls it in
	// the background until done; it resumes where it stopped after a
	// restart.
	EvaluateRules(ctx context.Context, tenant string, batch int) (done bool, err error)
	// PendingEvaluations lists the tenants with a re-evaluation running.
	PendingEvaluations(ctx context.Context) ([]string, error)

	// Profiles returns the profiles with the given ids, as the dataloader's
	// batch function. An id that is no longer current (its anchor joined
	// another profile) comes back as a stub with MergedInto set; callers
	// follow it.
	Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error)
	// ProfileByIdentifier returns the profile holding a normalized
	// identifier (the one where it is attested, if any), or nil.
	ProfileByIdentifier(ctx context.Context, tenant string, id related.Identifier) (*related.Profile, error)
	// ProfileContacts returns the contacts of the given profiles.
	ProfileContacts(ctx context.Context, tenant string, profileIDs []string) ([]*related.Contact, error)
	// ProfileLinks returns why each contact of a profile is there: the
	// values it holds (with their provenance) and the manual decisions
	// naming it, oldest first.
	ProfileLinks(ctx context.Context, tenant, profileID string) ([]*related.ProfileLink, error)
	// ProfilePairs pages through the tenant's open suggestions or
	// conflicts, newest first; with profileID set, only those naming that
	// profile.
	ProfilePairs(ctx context.Context, tenant string, kind identity.PairKind, profileID string, p Page) (*PairPage, error)
	// ProfilePair returns one suggestion or conflict, or a NOT_FOUND error.
	ProfilePair(ctx context.Context, tenant, id string) (*PairRecord, error)
	// ProfileHistory pages through what happened to a profile, newest
	// first.
	ProfileHistory(ctx context.Context, tenant, profileID string, p Page) (*HistoryPage, error)
	// HubValues pages through the tenant's quarantined values and the
	// values an admin set a state for.
	HubValues(ctx context.Context, tenant string, p Page) (*HubValuePage, error)

	// LinkContact puts a contact into a profile by hand: a keep-together
	// decision with the profile's anchor (the profile keeps its id), and
	// keep-apart decisions with the parts of the contact's old profile.
	LinkContact(ctx context.Context, tenant, profileID, contactID string, by related.Actor) (*related.Profile, error)
	// UnlinkContact takes a contact out of its profile: keep-apart
	// decisions with each part of what remains.
	UnlinkContact(ctx context.Context, tenant, contactID string, by related.Actor) (*related.Contact, error)
	// MergeProfiles merges from into into, whatever the rules' limits: a
	// keep-together decision that keeps into's id and name.
	MergeProfiles(ctx context.Context, tenant, intoID, fromID string, by related.Actor) (*related.Profile, error)
	// RenameProfile sets a profile's name; "" returns to the automatic one.
	RenameProfile(ctx context.Context, tenant, id, name string, by related.Actor) (*related.Profile, error)
	// ConfirmPair merges the two profiles of a suggestion or conflict.
	ConfirmPair(ctx context.Context, tenant, id string, by related.Actor) (*related.Profile, error)
	// DismissPair keeps the two profiles of a suggestion or conflict apart
	// for good.
	DismissPair(ctx context.Context, tenant, id string, by related.Actor) error
	// PreviewRules returns what replacing the tenant's rules with next
	// would do to its profiles, writing nothing (store.PreviewRules).
	PreviewRules(ctx context.Context, tenant string, next []identity.Rule) (*Preview, error)
	// TenantFacts returns every fact of the tenant's identity (its
	// contacts with their values, decisions, renames, value facts): what
	// its profiles are a function of. For verification and previews of
	// tenants up to MaxCluster contacts.
	TenantFacts(ctx context.Context, tenant string) (identity.Input, error)
	// SetValueQuarantine sets an admin's state for one normalized value of
	// a rule, and recomputes the profiles of the contacts holding it.
	SetValueQuarantine(ctx context.Context, tenant, ruleID, value string, state identity.Quarantine, by related.Actor) (*HubValue, error)
}

// PairRecord is a stored suggestion or conflict with what a reader shows:
// the current profiles of its two contacts.
type PairRecord struct {
	identity.Pair
	ID                 string
	ProfileA, ProfileB string
	CreatedAt          time.Time
}

// Suggestion is a PairRecord of kind Suggestion, as the API shows it.
type Suggestion struct{ *PairRecord }

// NodeType implements related.Node.
func (Suggestion) NodeType() related.NodeType { return related.NodeSuggestion }

// Conflict is a PairRecord of kind Conflict, as the API shows it.
type Conflict struct{ *PairRecord }

// NodeType implements related.Node.
func (Conflict) NodeType() related.NodeType { return related.NodeConflict }

// PairPage is one page of suggestions or conflicts.
type PairPage struct {
	Items           []*PairRecord
	HasNextPage     bool
	HasPreviousPage bool
	Total           int
}

// HistoryEvent is one entry of a profile's history.
type HistoryEvent struct {
	ID string
	identity.Event
	By related.Actor
	At time.Time
}

// GID is the event's global id, for GraphQL; ProfileEvent is not a Node.
func (e *HistoryEvent) GID() string { return related.GlobalID(related.TypeProfileEvent, e.ID) }

// HistoryPage is one page of a profile's history.
type HistoryPage struct {
	Items           []*HistoryEvent
	HasNextPage     bool
	HasPreviousPage bool
}

// HubValue is a value that links nothing because too many contacts hold
// it, or that an admin set a state for.
type HubValue struct {
	// ID is the value's position key in the list.
	ID          string
	RuleID      string
	Key         string
	Value       string
	Contacts    int
	State       identity.Quarantine
	Quarantined bool
	UpdatedAt   time.Time
}

// HubValuePage is one page of hub values.
type HubValuePage struct {
	Items           []*HubValue
	HasNextPage     bool
	HasPreviousPage bool
}
