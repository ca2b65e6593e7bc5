package resolvers

import (
	"context"
	"strings"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// loadProfile loads a profile and follows its merge chain to the profile
// that holds its contacts now. nil when id names nothing.
func loadProfile(ctx context.Context, l *Loaders, id string) (*related.Profile, error) {
	for range 16 {
		if id == "" {
			return nil, nil
		}
		p, err := l.Profiles.Load(ctx, id)()
		if err != nil || p == nil || p.MergedInto == "" {
			return p, err
		}
		id = p.MergedInto
	}
	return nil, errDangling("profile merge chain of", id)
}

// Profile is the interaction's contact's profile, for the profile bar.
func (interactionResolver) Profile(ctx context.Context, obj *related.Interaction) (*related.Profile, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return loadProfile(ctx, l, obj.ProfileID)
}

// Profile is the contact's profile.
func (contactResolver) Profile(ctx context.Context, obj *related.Contact) (*related.Profile, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return loadProfile(ctx, l, obj.ProfileID)
}

type profileResolver struct{ *Resolver }

// Contacts are the profile's contacts, batched across profiles.
func (profileResolver) Contacts(ctx context.Context, obj *related.Profile) ([]*related.Contact, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := l.ProfileContacts.Load(ctx, obj.ID)()
	if cs == nil && err == nil {
		cs = []*related.Contact{}
	}
	return cs, err
}

// Interactions pages through the profile's interactions across channels.
func (r profileResolver) Interactions(ctx context.Context, obj *related.Profile, first *int, after *string, last *int, before *string) (*graph.InteractionConnection, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	p, err := store.NewPage(first, after, last, before)
	if err != nil {
		return nil, err
	}
	q := store.RelatedQuery{ProfileID: obj.ID}
	page, err := r.Store.ListRelated(ctx, obj.Tenant, q, p)
	if err != nil {
		return nil, err
	}
	if err := chargeInteractions(ctx, page.Items); err != nil {
		return nil, err
	}
	if err := primeContacts(ctx, r.Store, l, obj.Tenant, page.Items); err != nil {
		return nil, err
	}
	conn := interactionConnection(page)
	conn.Query = &q
	return conn, nil
}

// Links explain every membership.
func (r profileResolver) Links(ctx context.Context, obj *related.Profile) ([]*related.ProfileLink, error) {
	return r.Store.ProfileLinks(ctx, obj.Tenant, obj.ID)
}

type profileLinkResolver struct{ *Resolver }

// Contact is the linked contact.
func (profileLinkResolver) Contact(ctx context.Context, obj *related.ProfileLink) (*related.Contact, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	c, err := l.Contacts.Load(ctx, obj.ContactID)()
	if err == nil && c == nil {
		err = errDangling("contact", obj.ContactID)
	}
	return c, err
}

// Key is null for MANUAL links.
func (profileLinkResolver) Key(_ context.Context, obj *related.ProfileLink) (*string, error) {
	return ptr(obj.Key), nil
}

// Value is null for MANUAL links.
func (profileLinkResolver) Value(_ context.Context, obj *related.ProfileLink) (*string, error) {
	return ptr(obj.Value), nil
}

// Source is null for MANUAL links.
func (profileLinkResolver) Source(_ context.Context, obj *related.ProfileLink) (*string, error) {
	return ptr(obj.Source), nil
}

// By is who made the link.
func (profileLinkResolver) By(_ context.Context, obj *related.ProfileLink) (*string, error) {
	return ptr(obj.By), nil
}

type profileRuleResolver struct{ *Resolver }

// ID is the rule's global id.
func (profileRuleResolver) ID(_ context.Context, obj *identity.Rule) (string, error) {
	return related.GlobalID(related.NodeProfileRule, obj.ID), nil
}

// MaxPerProfile is null when unbounded.
func (profileRuleResolver) MaxPerProfile(_ context.Context, obj *identity.Rule) (*int, error) {
	if obj.MaxPerProfile <= 0 {
		return nil, nil
	}
	n := obj.MaxPerProfile
	return &n, nil
}

// DefaultRegion is null when unset.
func (profileRuleResolver) DefaultRegion(_ context.Context, obj *identity.Rule) (*string, error) {
	return ptr(obj.DefaultRegion), nil
}

type profileConflictResolver struct{ *Resolver }

// ID is the conflict's id.
func (profileConflictResolver) ID(_ context.Context, obj *related.ProfileConflict) (string, error) {
	return obj.ID, nil
}

// Profiles are the profiles the conflict kept apart, as they are now.
func (profileConflictResolver) Profiles(ctx context.Context, obj *related.ProfileConflict) ([]*related.Profile, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	out := []*related.Profile{}
	for _, id := range obj.ProfileIDs {
		p, err := loadProfile(ctx, l, id)
		if err != nil {
			return nil, err
		}
		if p != nil && !containsProfile(out, p.ID) {
			out = append(out, p)
		}
	}
	return out, nil
}

func containsProfile(ps []*related.Profile, id string) bool {
	for _, p := range ps {
		if p.ID == id {
			return true
		}
	}
	return false
}

// Contact is the contact whose write raised the conflict.
func (profileConflictResolver) Contact(ctx context.Context, obj *related.ProfileConflict) (*related.Contact, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return l.Contacts.Load(ctx, obj.ContactID)()
}

// ResolvedAt is null while the conflict is open.
func (profileConflictResolver) ResolvedAt(_ context.Context, obj *related.ProfileConflict) (*time.Time, error) {
	if obj.ResolvedAt.IsZero() {
		return nil, nil
	}
	t := obj.ResolvedAt
	return &t, nil
}

// Profile resolves a profile by global id, following merges.
func (r queryResolver) Profile(ctx context.Context, id string) (*related.Profile, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	sid, err := related.ParseTypedID(id, related.NodeProfile)
	if err != nil {
		return nil, nil
	}
	return loadProfile(ctx, l, sid)
}

// ProfileByIdentifier normalizes value with the key's rule, then finds the
// profile holding it.
func (r queryResolver) ProfileByIdentifier(ctx context.Context, key string, value string) (*related.Profile, error) {
	v, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := r.Store.ProfileRules(ctx, v.Tenant)
	if err != nil {
		return nil, err
	}
	key = strings.TrimSpace(key)
	norm := strings.TrimSpace(value)
	for _, rule := range rules {
		if rule.Attribute == key {
			n, ok := rule.Normalize(value)
			if !ok {
				return nil, nil // not a value of the rule's kind: nothing holds it
			}
			norm = n
		}
	}
	p, err := r.Store.ProfileByIdentifier(ctx, v.Tenant, related.Identifier{Key: key, Value: norm})
	if err != nil || p == nil {
		return nil, err
	}
	return loadProfile(ctx, l, p.ID)
}

// ProfileRules are the tenant's rules, highest priority first.
func (r queryResolver) ProfileRules(ctx context.Context) ([]*identity.Rule, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := r.Store.ProfileRules(ctx, v.Tenant)
	if err != nil {
		return nil, err
	}
	out := make([]*identity.Rule, len(rules))
	for i := range rules {
		out[i] = &rules[i]
	}
	return out, nil
}

// ProfileConflicts lists the conflicts for an admin to review.
func (r queryResolver) ProfileConflicts(ctx context.Context, includeResolved *bool, first *int) ([]*related.ProfileConflict, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	n := 50
	if first != nil {
		n = *first
	}
	if n < 0 || n > store.MaxPageSize {
		return nil, related.Invalid("must be between 0 and 100", "first")
	}
	return r.Store.ProfileConflicts(ctx, v.Tenant, includeResolved != nil && *includeResolved, n)
}

// RuleEvaluation reports the progress of the latest rule re-evaluation.
func (r queryResolver) RuleEvaluation(ctx context.Context) (*related.RuleEvaluation, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return r.Store.RuleEvaluation(ctx, v.Tenant)
}

// UpsertProfileRule creates or changes a rule; omitted fields of an
// existing rule keep their values.
func (r mutationResolver) UpsertProfileRule(ctx context.Context, input graph.ProfileRuleInput) (*graph.ProfileRulePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ProfileRulePayload{}
	rule := identity.Rule{Enabled: true}
	if input.ID != nil {
		id, perr := inputID(*input.ID, related.NodeProfileRule, "id")
		if perr != nil {
			payload.UserErrors, err = userErrors(at(perr, "input"))
			return payload, err
		}
		rules, err := r.Store.ProfileRules(ctx, v.Tenant)
		if err != nil {
			return nil, err
		}
		found := false
		for _, x := range rules {
			if x.ID == id {
				rule, found = x, true
			}
		}
		if !found {
			payload.UserErrors, err = userErrors(related.NotFound("no such rule", "input", "id"))
			return payload, err
		}
	}
	rule.Attribute, rule.Normalizer = input.Attribute, input.Normalizer
	if input.Enabled != nil {
		rule.Enabled = *input.Enabled
	}
	if input.Priority != nil {
		rule.Priority = *input.Priority
	}
	if input.MaxPerProfile != nil {
		rule.MaxPerProfile = *input.MaxPerProfile
	}
	if input.BlockedValues != nil {
		rule.BlockedValues = input.BlockedValues
	}
	if input.DefaultRegion != nil {
		rule.DefaultRegion = *input.DefaultRegion
	}
	rule, err = rule.Validate()
	if err == nil {
		var saved identity.Rule
		saved, err = r.Store.SaveProfileRule(ctx, v.Tenant, rule)
		if err == nil {
			payload.Rule = &saved
		}
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// DeleteProfileRule deletes a rule.
func (r mutationResolver) DeleteProfileRule(ctx context.Context, input graph.DeleteProfileRuleInput) (*graph.DeleteProfileRulePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.DeleteProfileRulePayload{}
	id, err := inputID(input.ID, related.NodeProfileRule, "id")
	if err == nil {
		err = r.Store.DeleteProfileRule(ctx, v.Tenant, id)
	}
	if err == nil {
		payload.DeletedID = &input.ID
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// LinkContact puts a contact into a profile by hand.
func (r mutationResolver) LinkContact(ctx context.Context, input graph.LinkContactInput) (*graph.ProfilePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ProfilePayload{}
	pid, perr := inputID(input.ProfileID, related.NodeProfile, "profileId")
	cid, cerr := inputID(input.ContactID, related.NodeContact, "contactId")
	switch {
	case perr != nil:
		err = perr
	case cerr != nil:
		err = cerr
	default:
		payload.Profile, err = r.Store.LinkContact(ctx, v.Tenant, pid, cid, v.Principal)
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// UnlinkContact takes a contact out of its profile.
func (r mutationResolver) UnlinkContact(ctx context.Context, input graph.UnlinkContactInput) (*graph.ContactPayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ContactPayload{}
	cid, err := inputID(input.ContactID, related.NodeContact, "contactId")
	if err == nil {
		payload.Contact, err = r.Store.UnlinkContact(ctx, v.Tenant, cid, v.Principal)
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// MergeProfiles merges one profile into another.
func (r mutationResolver) MergeProfiles(ctx context.Context, input graph.MergeProfilesInput) (*graph.ProfilePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ProfilePayload{}
	into, ierr := inputID(input.IntoID, related.NodeProfile, "intoId")
	from, ferr := inputID(input.FromID, related.NodeProfile, "fromId")
	switch {
	case ierr != nil:
		err = ierr
	case ferr != nil:
		err = ferr
	default:
		payload.Profile, err = r.Store.MergeProfiles(ctx, v.Tenant, into, from, v.Principal)
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// RenameProfile names a profile.
func (r mutationResolver) RenameProfile(ctx context.Context, input graph.RenameProfileInput) (*graph.ProfilePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ProfilePayload{}
	name := strings.TrimSpace(input.Name)
	id, err := inputID(input.ID, related.NodeProfile, "id")
	switch {
	case err != nil:
	case len(name) > related.MaxNameLength:
		err = related.Invalid("is longer than 200 bytes", "name")
	default:
		payload.Profile, err = r.Store.RenameProfile(ctx, v.Tenant, id, name)
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}
