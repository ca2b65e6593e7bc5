package resolvers

import (
	"context"
	"slices"
	"strings"

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

// Identifiers are the profile's identifiers with their best trust.
func (profileResolver) Identifiers(_ context.Context, obj *related.Profile) ([]*graph.Identifier, error) {
	out := make([]*graph.Identifier, len(obj.Identifiers))
	for i, id := range obj.Identifiers {
		src := identity.Claimed
		if id.Attested {
			src = identity.Attested
		}
		out[i] = &graph.Identifier{Key: id.Key, Value: id.Value, Source: &src}
	}
	return out, nil
}

// Suggestions are the open suggestions naming the profile.
func (r profileResolver) Suggestions(ctx context.Context, obj *related.Profile) ([]*store.Suggestion, error) {
	page, err := r.Store.ProfilePairs(ctx, obj.Tenant, identity.Suggestion, obj.ID, store.Page{First: store.MaxPageSize})
	if err != nil {
		return nil, err
	}
	out := make([]*store.Suggestion, len(page.Items))
	for i, p := range page.Items {
		out[i] = &store.Suggestion{PairRecord: p}
	}
	return out, nil
}

// Conflicts are the open conflicts naming the profile.
func (r profileResolver) Conflicts(ctx context.Context, obj *related.Profile) ([]*store.Conflict, error) {
	page, err := r.Store.ProfilePairs(ctx, obj.Tenant, identity.Conflict, obj.ID, store.Page{First: store.MaxPageSize})
	if err != nil {
		return nil, err
	}
	out := make([]*store.Conflict, len(page.Items))
	for i, p := range page.Items {
		out[i] = &store.Conflict{PairRecord: p}
	}
	return out, nil
}

// History pages through what happened to the profile, newest first.
func (r profileResolver) History(ctx context.Context, obj *related.Profile, first *int, after *string, last *int, before *string) (*graph.ProfileEventConnection, error) {
	p, err := store.NewPage(first, after, last, before)
	if err != nil {
		return nil, err
	}
	page, err := r.Store.ProfileHistory(ctx, obj.Tenant, obj.ID, p)
	if err != nil {
		return nil, err
	}
	conn := &graph.ProfileEventConnection{Edges: make([]*graph.ProfileEventEdge, len(page.Items))}
	for i, e := range page.Items {
		conn.Edges[i] = &graph.ProfileEventEdge{Cursor: store.Cursor{At: e.At, ID: e.ID}.Encode(), Node: e}
	}
	conn.PageInfo = pageInfo(page.HasNextPage, page.HasPreviousPage, conn.Edges, func(e *graph.ProfileEventEdge) string { return e.Cursor })
	return conn, nil
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

// By is who made the link, in words.
func (profileLinkResolver) By(_ context.Context, obj *related.ProfileLink) (*string, error) {
	return ptr(obj.By.String()), nil
}

// Interaction is the interaction whose write brought the value.
func (profileLinkResolver) Interaction(ctx context.Context, obj *related.ProfileLink) (*related.Interaction, error) {
	if obj.InteractionID == "" {
		return nil, nil
	}
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return l.Interactions.Load(ctx, obj.InteractionID)()
}

// Rule is the rule of a RULE link (null once the rule was deleted).
func (r profileLinkResolver) Rule(ctx context.Context, obj *related.ProfileLink) (*identity.Rule, error) {
	if obj.RuleID == "" {
		return nil, nil
	}
	return r.rule(ctx, obj.RuleID)
}

// rule finds one of the viewer's tenant's rules by id.
func (r *Resolver) rule(ctx context.Context, id string) (*identity.Rule, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := r.Store.ProfileRules(ctx, v.Tenant)
	if err != nil {
		return nil, err
	}
	for i := range rules {
		if rules[i].ID == id {
			return &rules[i], nil
		}
	}
	return nil, nil
}

type profileRuleResolver struct{ *Resolver }

// ID is the rule's global id.
func (profileRuleResolver) ID(_ context.Context, obj *identity.Rule) (string, error) {
	return related.GlobalID(related.NodeProfileRule, obj.ID), nil
}

// MaxPerProfile is null when unbounded.
func (profileRuleResolver) MaxPerProfile(_ context.Context, obj *identity.Rule) (*int, error) {
	return positive(obj.MaxPerProfile), nil
}

// MaxContactsPerValue is null when unbounded.
func (profileRuleResolver) MaxContactsPerValue(_ context.Context, obj *identity.Rule) (*int, error) {
	return positive(obj.MaxContactsPerValue), nil
}

func positive(n int) *int {
	if n <= 0 {
		return nil
	}
	return &n
}

// DefaultRegion is null when unset.
func (profileRuleResolver) DefaultRegion(_ context.Context, obj *identity.Rule) (*string, error) {
	return ptr(obj.DefaultRegion), nil
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
			n, ok := rule.NormalizeValue(value)
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

// RuleEvaluation reports the progress of the latest rule re-evaluation.
func (r queryResolver) RuleEvaluation(ctx context.Context) (*store.RuleEvaluation, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return r.Store.RuleEvaluation(ctx, v.Tenant)
}

// ruleFromInput is the rule an upsert's input asks for: a new rule, or the
// rule it names with the fields it gives changed. Errors name the input's
// fields.
func (r *Resolver) ruleFromInput(ctx context.Context, input graph.ProfileRuleInput) (identity.Rule, error) {
	rule := identity.Rule{Enabled: true, MaxContactsPerValue: identity.DefaultMaxContactsPerValue}
	if input.ID != nil {
		id, err := inputID(*input.ID, related.NodeProfileRule, "id")
		if err != nil {
			return rule, err
		}
		found, err := r.rule(ctx, id)
		if err != nil {
			return rule, err
		}
		if found == nil {
			return rule, related.NotFound("no such rule", "id")
		}
		rule = *found
		if rule.Normalizer != input.Normalizer && input.AutoMerge == nil {
			rule.AutoMerge = "" // the new normalizer's default
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
	if input.AutoMerge != nil {
		rule.AutoMerge = *input.AutoMerge
	}
	if input.MaxContactsPerValue != nil {
		rule.MaxContactsPerValue = *input.MaxContactsPerValue
	}
	return rule.Validate()
}

// UpsertProfileRule creates or changes a rule; omitted fields of an
// existing rule keep their values.
func (r mutationResolver) UpsertProfileRule(ctx context.Context, input graph.ProfileRuleInput) (*graph.ProfileRulePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ProfileRulePayload{ClientMutationID: input.ClientMutationID}
	rule, err := r.ruleFromInput(ctx, input)
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

// PreviewProfileRule decides, without writing, what upserting the rule
// would do.
func (r queryResolver) PreviewProfileRule(ctx context.Context, input graph.ProfileRuleInput) (*store.Preview, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	rule, err := r.ruleFromInput(ctx, input)
	if err != nil {
		return nil, at(err, "input")
	}
	rules, err := r.Store.ProfileRules(ctx, v.Tenant)
	if err != nil {
		return nil, err
	}
	next := slices.Clone(rules)
	if i := slices.IndexFunc(next, func(x identity.Rule) bool { return x.ID == rule.ID && rule.ID != "" }); i >= 0 {
		next[i] = rule
	} else {
		if slices.ContainsFunc(next, func(x identity.Rule) bool { return x.Attribute == rule.Attribute }) {
			return nil, &related.Error{Code: related.CodeConflict, Field: []string{"input", "attribute"},
				Message: "a rule for " + rule.Attribute + " exists already; preview changing it instead"}
		}
		next = append(next, rule)
	}
	for i := range next {
		if len(rules) > 0 {
			next[i].TenantRegion = rules[0].TenantRegion
		}
	}
	return r.Store.PreviewRules(ctx, v.Tenant, next)
}

// PreviewDeleteProfileRule decides, without writing, what deleting the
// rule would do.
func (r queryResolver) PreviewDeleteProfileRule(ctx context.Context, id string) (*store.Preview, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	sid, err := inputID(id, related.NodeProfileRule, "id")
	if err != nil {
		return nil, err
	}
	rules, err := r.Store.ProfileRules(ctx, v.Tenant)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(rules, func(x identity.Rule) bool { return x.ID == sid })
	if i < 0 {
		return nil, related.NotFound("no such rule", "id")
	}
	return r.Store.PreviewRules(ctx, v.Tenant, slices.Delete(slices.Clone(rules), i, i+1))
}

type ruleEvaluationResolver struct{ *Resolver }

// Summary is what the run changed so far.
func (ruleEvaluationResolver) Summary(_ context.Context, obj *store.RuleEvaluation) (*identity.Summary, error) {
	sum := obj.Summary
	if sum.Samples == nil {
		sum.Samples = []identity.SampleChange{}
	}
	return &sum, nil
}

type profileSnapshotResolver struct{ *Resolver }

// ID is the profile's global id.
func (profileSnapshotResolver) ID(_ context.Context, obj *identity.ProfileView) (string, error) {
	return related.GlobalID(related.NodeProfile, obj.ID), nil
}

// Identifiers are the profile's identifiers with their trust.
func (profileSnapshotResolver) Identifiers(ctx context.Context, obj *identity.ProfileView) ([]*graph.Identifier, error) {
	return profileResolver{}.Identifiers(ctx, &related.Profile{Identifiers: obj.Identifiers})
}

type contactSnapshotResolver struct{ *Resolver }

// ID is the contact's global id.
func (contactSnapshotResolver) ID(_ context.Context, obj *identity.ContactView) (string, error) {
	return related.GlobalID(related.NodeContact, obj.ID), nil
}

// Name is null when unknown.
func (contactSnapshotResolver) Name(_ context.Context, obj *identity.ContactView) (*string, error) {
	return ptr(obj.Name), nil
}

// DeleteProfileRule deletes a rule.
func (r mutationResolver) DeleteProfileRule(ctx context.Context, input graph.DeleteProfileRuleInput) (*graph.DeleteProfileRulePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.DeleteProfileRulePayload{ClientMutationID: input.ClientMutationID}
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
	payload := &graph.ProfilePayload{ClientMutationID: input.ClientMutationID}
	pid, perr := inputID(input.ProfileID, related.NodeProfile, "profileId")
	cid, cerr := r.contactInputID(ctx, v.Tenant, input.ContactID, "contactId")
	switch {
	case perr != nil:
		err = perr
	case cerr != nil:
		err = cerr
	default:
		payload.Profile, err = r.Store.LinkContact(ctx, v.Tenant, pid, cid, related.ActorFrom(ctx))
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
	payload := &graph.ContactPayload{ClientMutationID: input.ClientMutationID}
	cid, err := r.contactInputID(ctx, v.Tenant, input.ContactID, "contactId")
	if err == nil {
		payload.Contact, err = r.Store.UnlinkContact(ctx, v.Tenant, cid, related.ActorFrom(ctx))
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// MergeProfiles merges one profile into another: the result keeps into's
// id and name.
func (r mutationResolver) MergeProfiles(ctx context.Context, input graph.MergeProfilesInput) (*graph.ProfilePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ProfilePayload{ClientMutationID: input.ClientMutationID}
	into, ierr := inputID(input.IntoID, related.NodeProfile, "intoId")
	from, ferr := inputID(input.FromID, related.NodeProfile, "fromId")
	switch {
	case ierr != nil:
		err = ierr
	case ferr != nil:
		err = ferr
	default:
		payload.Profile, err = r.Store.MergeProfiles(ctx, v.Tenant, into, from, related.ActorFrom(ctx))
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
	payload := &graph.ProfilePayload{ClientMutationID: input.ClientMutationID}
	name := strings.TrimSpace(input.Name)
	id, err := inputID(input.ID, related.NodeProfile, "id")
	switch {
	case err != nil:
	case len(name) > related.MaxNameLength:
		err = related.Invalid("is longer than 200 bytes", "name")
	default:
		payload.Profile, err = r.Store.RenameProfile(ctx, v.Tenant, id, name, related.ActorFrom(ctx))
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}
