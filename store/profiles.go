package store

import (
	"context"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// ProfileStore persists profiles: the rules that link contacts, the
// profiles they form, the links that explain them, and the conflicts the
// guards recorded. Linking itself happens inside RecordMessage and
// SetContactAttributes, as part of the same write; the decisions are
// identity.Decide's, so every adapter links alike.
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
	RuleEvaluation(ctx context.Context, tenant string) (*related.RuleEvaluation, error)
	// EvaluateRules re-evaluates up to batch contacts of a running
	// re-evaluation and reports whether it is done. The server calls it in
	// the background until done; it resumes where it stopped after a
	// restart.
	EvaluateRules(ctx context.Context, tenant string, batch int) (done bool, err error)
	// PendingEvaluations lists the tenants with a re-evaluation running.
	PendingEvaluations(ctx context.Context) ([]string, error)

	// Profiles returns the profiles with the given ids, as the dataloader's
	// batch function: one command whatever the number of ids. A merged
	// profile comes back with MergedInto set; callers follow it.
	Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error)
	// ProfileByIdentifier returns the profile holding a normalized
	// identifier, or nil.
	ProfileByIdentifier(ctx context.Context, tenant string, id related.Identifier) (*related.Profile, error)
	// ProfileContacts returns the contacts of the given profiles.
	ProfileContacts(ctx context.Context, tenant string, profileIDs []string) ([]*related.Contact, error)
	// ProfileLinks returns the links of a profile, oldest first.
	ProfileLinks(ctx context.Context, tenant, profileID string) ([]*related.ProfileLink, error)
	// ProfileConflicts returns the tenant's conflicts, newest first: the
	// open ones, or all when resolved is true.
	ProfileConflicts(ctx context.Context, tenant string, resolved bool, limit int) ([]*related.ProfileConflict, error)

	// LinkContact puts a contact into a profile by hand, moving its
	// identifiers and interactions along, and lifts a do-not-link between
	// them.
	LinkContact(ctx context.Context, tenant, profileID, contactID, by string) (*related.Profile, error)
	// UnlinkContact takes a contact out of its profile: it leaves with the
	// identifiers only it brought, the profile keeps the rest (and splits
	// if the contact was what connected it), and a do-not-link record keeps
	// the rules from linking the pair again.
	UnlinkContact(ctx context.Context, tenant, contactID, by string) (*related.Contact, error)
	// MergeProfiles merges two profiles, whatever the rules' limits, and
	// resolves the conflicts between them. As in every merge the older
	// profile survives (so merge pointers never cycle); into's name, if an
	// admin gave it one, is kept.
	MergeProfiles(ctx context.Context, tenant, intoID, fromID, by string) (*related.Profile, error)
	// RenameProfile sets a profile's name; "" returns to the automatic one.
	RenameProfile(ctx context.Context, tenant, id, name string) (*related.Profile, error)
}
