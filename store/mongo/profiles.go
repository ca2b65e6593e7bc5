package mongo

import (
	"context"
	"errors"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// errProfilesPending marks the profile methods whose MongoDB
// implementation is being written; until then the adapter links nothing.
var errProfilesPending = errors.New("mongo: profiles are not implemented on MongoDB yet")

// ProfileRules implements store.ProfileStore.
func (s *Store) ProfileRules(ctx context.Context, tenant string) ([]identity.Rule, error) {
	return identity.WithDefaults(tenant, nil), nil
}

// SaveProfileRule implements store.ProfileStore.
func (s *Store) SaveProfileRule(ctx context.Context, tenant string, r identity.Rule) (identity.Rule, error) {
	return r, errProfilesPending
}

// DeleteProfileRule implements store.ProfileStore.
func (s *Store) DeleteProfileRule(ctx context.Context, tenant, id string) error {
	return errProfilesPending
}

// RuleEvaluation implements store.ProfileStore.
func (s *Store) RuleEvaluation(ctx context.Context, tenant string) (*related.RuleEvaluation, error) {
	return nil, nil
}

// EvaluateRules implements store.ProfileStore.
func (s *Store) EvaluateRules(ctx context.Context, tenant string, batch int) (bool, error) {
	return true, nil
}

// PendingEvaluations implements store.ProfileStore.
func (s *Store) PendingEvaluations(ctx context.Context) ([]string, error) { return nil, nil }

// Profiles implements store.ProfileStore.
func (s *Store) Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error) {
	return nil, nil
}

// ProfileByIdentifier implements store.ProfileStore.
func (s *Store) ProfileByIdentifier(ctx context.Context, tenant string, id related.Identifier) (*related.Profile, error) {
	return nil, nil
}

// ProfileContacts implements store.ProfileStore.
func (s *Store) ProfileContacts(ctx context.Context, tenant string, profileIDs []string) ([]*related.Contact, error) {
	return nil, nil
}

// ProfileLinks implements store.ProfileStore.
func (s *Store) ProfileLinks(ctx context.Context, tenant, profileID string) ([]*related.ProfileLink, error) {
	return nil, nil
}

// ProfileConflicts implements store.ProfileStore.
func (s *Store) ProfileConflicts(ctx context.Context, tenant string, resolved bool, limit int) ([]*related.ProfileConflict, error) {
	return nil, nil
}

// LinkContact implements store.ProfileStore.
func (s *Store) LinkContact(ctx context.Context, tenant, profileID, contactID, by string) (*related.Profile, error) {
	return nil, errProfilesPending
}

// UnlinkContact implements store.ProfileStore.
func (s *Store) UnlinkContact(ctx context.Context, tenant, contactID, by string) (*related.Contact, error) {
	return nil, errProfilesPending
}

// MergeProfiles implements store.ProfileStore.
func (s *Store) MergeProfiles(ctx context.Context, tenant, intoID, fromID, by string) (*related.Profile, error) {
	return nil, errProfilesPending
}

// RenameProfile implements store.ProfileStore.
func (s *Store) RenameProfile(ctx context.Context, tenant, id, name string) (*related.Profile, error) {
	return nil, errProfilesPending
}
