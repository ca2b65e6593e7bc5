package resolvers

import (
	"context"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// Suggestions and conflicts: pairs of profiles sharing a value that did
// not merge them (identity.Pair), for an admin to decide.

// pairProfiles loads the current profiles of a pair, in the order of its
// contacts.
func pairProfiles(ctx context.Context, p *store.PairRecord) ([]*related.Profile, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	out := []*related.Profile{}
	for _, id := range []string{p.ProfileA, p.ProfileB} {
		pr, err := loadProfile(ctx, l, id)
		if err != nil {
			return nil, err
		}
		if pr != nil {
			out = append(out, pr)
		}
	}
	return out, nil
}

// pairContacts loads the two contacts of a pair.
func pairContacts(ctx context.Context, p *store.PairRecord) ([]*related.Contact, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	cs, errs := l.Contacts.LoadMany(ctx, []string{p.A, p.B})()
	out := []*related.Contact{}
	for i, c := range cs {
		if len(errs) > i && errs[i] != nil {
			return nil, errs[i]
		}
		if c != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

func identifier(id related.Identifier) *graph.Identifier {
	return &graph.Identifier{Key: id.Key, Value: id.Value}
}

type profileSuggestionResolver struct{ *Resolver }

// ID is the suggestion's global id.
func (profileSuggestionResolver) ID(_ context.Context, obj *store.Suggestion) (string, error) {
	return related.GlobalID(related.NodeSuggestion, obj.ID), nil
}

// Profiles are the two profiles, as they are now.
func (profileSuggestionResolver) Profiles(ctx context.Context, obj *store.Suggestion) ([]*related.Profile, error) {
	return pairProfiles(ctx, obj.PairRecord)
}

// Contacts are the contacts holding the value on each side.
func (profileSuggestionResolver) Contacts(ctx context.Context, obj *store.Suggestion) ([]*related.Contact, error) {
	return pairContacts(ctx, obj.PairRecord)
}

// Identifier is the shared value.
func (profileSuggestionResolver) Identifier(_ context.Context, obj *store.Suggestion) (*graph.Identifier, error) {
	return identifier(obj.Identifier), nil
}

// Sources are the value's trust on each side.
func (profileSuggestionResolver) Sources(_ context.Context, obj *store.Suggestion) ([]identity.Source, error) {
	return []identity.Source{obj.SourceA, obj.SourceB}, nil
}

// Explanation says why, in words.
func (r profileSuggestionResolver) Explanation(ctx context.Context, obj *store.Suggestion) (string, error) {
	return r.explain(ctx, obj.PairRecord)
}

// explain says why a pair did not merge, naming its rule.
func (r *Resolver) explain(ctx context.Context, p *store.PairRecord) (string, error) {
	name := p.Key
	if rule, err := r.rule(ctx, p.RuleID); err != nil {
		return "", err
	} else if rule != nil {
		name = rule.Attribute
	}
	return p.Reason.Explain(p.Identifier, name), nil
}

type profileConflictResolver struct{ *Resolver }

// ID is the conflict's global id.
func (profileConflictResolver) ID(_ context.Context, obj *store.Conflict) (string, error) {
	return related.GlobalID(related.NodeConflict, obj.ID), nil
}

// Identifier is the shared value.
func (profileConflictResolver) Identifier(_ context.Context, obj *store.Conflict) (*graph.Identifier, error) {
	return identifier(obj.Pair.Identifier), nil
}

// Reason is why the merge was refused.
func (profileConflictResolver) Reason(_ context.Context, obj *store.Conflict) (string, error) {
	return string(obj.Pair.Reason), nil
}

// Profiles are the profiles the conflict kept apart, as they are now.
func (profileConflictResolver) Profiles(ctx context.Context, obj *store.Conflict) ([]*related.Profile, error) {
	return pairProfiles(ctx, obj.PairRecord)
}

// Contacts are the contacts whose shared value asked for the merge.
func (profileConflictResolver) Contacts(ctx context.Context, obj *store.Conflict) ([]*related.Contact, error) {
	return pairContacts(ctx, obj.PairRecord)
}

// Contact is the first of the contacts.
func (profileConflictResolver) Contact(ctx context.Context, obj *store.Conflict) (*related.Contact, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return l.Contacts.Load(ctx, obj.A)()
}

// ResolvedAt is always null: a resolved conflict is gone.
func (profileConflictResolver) ResolvedAt(context.Context, *store.Conflict) (*time.Time, error) {
	return nil, nil
}

// pairConnection pages through the tenant's pairs of one kind.
func pairPage(ctx context.Context, s store.Store, kind identity.PairKind, first *int, after *string, last *int, before *string) (*store.PairPage, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	p, err := store.NewPage(first, after, last, before)
	if err != nil {
		return nil, err
	}
	return s.ProfilePairs(ctx, v.Tenant, kind, "", p)
}

func pairCursor(p *store.PairRecord) string { return store.Cursor{At: p.CreatedAt, ID: p.ID}.Encode() }

// ProfileSuggestions pages through the tenant's open suggestions.
func (r queryResolver) ProfileSuggestions(ctx context.Context, first *int, after *string, last *int, before *string) (*graph.ProfileSuggestionConnection, error) {
	page, err := pairPage(ctx, r.Store, identity.Suggestion, first, after, last, before)
	if err != nil {
		return nil, err
	}
	conn := &graph.ProfileSuggestionConnection{Edges: make([]*graph.ProfileSuggestionEdge, len(page.Items)), TotalCount: page.Total}
	for i, p := range page.Items {
		conn.Edges[i] = &graph.ProfileSuggestionEdge{Cursor: pairCursor(p), Node: &store.Suggestion{PairRecord: p}}
	}
	conn.PageInfo = pageInfo(page.HasNextPage, page.HasPreviousPage, conn.Edges, func(e *graph.ProfileSuggestionEdge) string { return e.Cursor })
	return conn, nil
}

// ProfileConflicts pages through the tenant's open conflicts.
func (r queryResolver) ProfileConflicts(ctx context.Context, first *int, after *string, last *int, before *string) (*graph.ProfileConflictConnection, error) {
	page, err := pairPage(ctx, r.Store, identity.Conflict, first, after, last, before)
	if err != nil {
		return nil, err
	}
	conn := &graph.ProfileConflictConnection{Edges: make([]*graph.ProfileConflictEdge, len(page.Items)), TotalCount: page.Total}
	for i, p := range page.Items {
		conn.Edges[i] = &graph.ProfileConflictEdge{Cursor: pairCursor(p), Node: &store.Conflict{PairRecord: p}}
	}
	conn.PageInfo = pageInfo(page.HasNextPage, page.HasPreviousPage, conn.Edges, func(e *graph.ProfileConflictEdge) string { return e.Cursor })
	return conn, nil
}

// pair reads the suggestion or conflict a mutation names, which must be
// of kind t.
func (r mutationResolver) pair(ctx context.Context, gid string, t related.NodeType) (*store.PairRecord, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	id, err := inputID(gid, t, "id")
	if err != nil {
		return nil, err
	}
	p, err := r.Store.ProfilePair(ctx, v.Tenant, id)
	if err != nil {
		return nil, err
	}
	if want := map[related.NodeType]identity.PairKind{related.NodeSuggestion: identity.Suggestion, related.NodeConflict: identity.Conflict}[t]; p.Kind != want {
		return nil, related.NotFound("no such "+string(t), "id")
	}
	return p, nil
}

// ConfirmSuggestion merges the suggestion's two profiles.
func (r mutationResolver) ConfirmSuggestion(ctx context.Context, input graph.ConfirmSuggestionInput) (*graph.ConfirmSuggestionPayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ConfirmSuggestionPayload{ClientMutationID: input.ClientMutationID}
	p, err := r.pair(ctx, input.ID, related.NodeSuggestion)
	if err == nil {
		payload.Profile, err = r.Store.ConfirmPair(ctx, v.Tenant, p.ID, related.ActorFrom(ctx))
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// DismissSuggestion keeps the suggestion's two profiles apart for good.
func (r mutationResolver) DismissSuggestion(ctx context.Context, input graph.DismissSuggestionInput) (*graph.DismissSuggestionPayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.DismissSuggestionPayload{ClientMutationID: input.ClientMutationID}
	p, err := r.pair(ctx, input.ID, related.NodeSuggestion)
	if err == nil {
		if err = r.Store.DismissPair(ctx, v.Tenant, p.ID, related.ActorFrom(ctx)); err == nil {
			payload.DismissedID = &input.ID
		}
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// ResolveConflict keeps a conflict's profiles apart, or merges them.
func (r mutationResolver) ResolveConflict(ctx context.Context, input graph.ResolveConflictInput) (*graph.ResolveConflictPayload, error) {
	v, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ResolveConflictPayload{ClientMutationID: input.ClientMutationID, Profiles: []*related.Profile{}}
	p, err := r.pair(ctx, input.ID, related.NodeConflict)
	switch {
	case err != nil:
	case input.Action == graph.ConflictActionMerge:
		var merged *related.Profile
		if merged, err = r.Store.ConfirmPair(ctx, v.Tenant, p.ID, related.ActorFrom(ctx)); err == nil {
			payload.Profiles = append(payload.Profiles, merged)
		}
	case input.Action == graph.ConflictActionKeepApart:
		if err = r.Store.DismissPair(ctx, v.Tenant, p.ID, related.ActorFrom(ctx)); err == nil {
			for _, id := range []string{p.ProfileA, p.ProfileB} {
				l.Profiles.Clear(ctx, id)
			}
			payload.Profiles, err = pairProfiles(ctx, p)
		}
	default:
		err = related.Invalid("unknown action", "action")
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

type hubValueResolver struct{ *Resolver }

// Rule is the rule whose value it is.
func (r hubValueResolver) Rule(ctx context.Context, obj *store.HubValue) (*identity.Rule, error) {
	rule, err := r.rule(ctx, obj.RuleID)
	if err == nil && rule == nil {
		err = errDangling("rule", obj.RuleID)
	}
	return rule, err
}

// HubValues pages through the tenant's quarantined values and the values
// an admin set a state for.
func (r queryResolver) HubValues(ctx context.Context, first *int, after *string, last *int, before *string) (*graph.HubValueConnection, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	p, err := store.NewPage(first, after, last, before)
	if err != nil {
		return nil, err
	}
	page, err := r.Store.HubValues(ctx, v.Tenant, p)
	if err != nil {
		return nil, err
	}
	conn := &graph.HubValueConnection{Edges: make([]*graph.HubValueEdge, 0, len(page.Items))}
	for _, h := range page.Items {
		if h.RuleID == "" {
			continue // a value of a deleted rule: nothing to act on
		}
		conn.Edges = append(conn.Edges, &graph.HubValueEdge{Cursor: store.Cursor{At: h.UpdatedAt, ID: h.ID}.Encode(), Node: h})
	}
	conn.PageInfo = pageInfo(page.HasNextPage, page.HasPreviousPage, conn.Edges, func(e *graph.HubValueEdge) string { return e.Cursor })
	return conn, nil
}

// SetValueQuarantine sets an admin's state for one value of a rule.
func (r mutationResolver) SetValueQuarantine(ctx context.Context, input graph.SetValueQuarantineInput) (*graph.HubValuePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.HubValuePayload{ClientMutationID: input.ClientMutationID}
	id, err := inputID(input.RuleID, related.NodeProfileRule, "ruleId")
	switch {
	case err != nil:
	case !input.State.Valid():
		err = related.Invalid("unknown state", "state")
	default:
		payload.HubValue, err = r.Store.SetValueQuarantine(ctx, v.Tenant, id, input.Value, input.State, related.ActorFrom(ctx))
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

type profileEventResolver struct{ *Resolver }

// Identifier is the value concerned, if any.
func (profileEventResolver) Identifier(_ context.Context, obj *store.HistoryEvent) (*graph.Identifier, error) {
	if obj.Event.Identifier.Key == "" {
		return nil, nil
	}
	return identifier(obj.Event.Identifier), nil
}

// Profiles are the profiles involved, as they are now: an id that merged
// away shows the profile it leads to, once.
func (profileEventResolver) Profiles(ctx context.Context, obj *store.HistoryEvent) ([]*related.Profile, error) {
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	out := []*related.Profile{}
	for _, id := range obj.Profiles {
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

// Contact is the contact concerned, if any.
func (profileEventResolver) Contact(ctx context.Context, obj *store.HistoryEvent) (*related.Contact, error) {
	if obj.Event.Contact == "" {
		return nil, nil
	}
	_, l, err := request(ctx)
	if err != nil {
		return nil, err
	}
	return l.Contacts.Load(ctx, obj.Event.Contact)()
}

type tenantSettingsResolver struct{ *Resolver }

// DefaultRegion is null when the tenant set none.
func (tenantSettingsResolver) DefaultRegion(_ context.Context, obj *related.TenantSettings) (*string, error) {
	return ptr(obj.DefaultRegion), nil
}

// Canonicalization is the progress of the tenant's latest canonicalization.
func (r tenantSettingsResolver) Canonicalization(ctx context.Context, obj *related.TenantSettings) (*related.Canonicalization, error) {
	return r.Store.Canonicalization(ctx, obj.Tenant)
}

// TenantSettings are the viewer's tenant's settings.
func (r queryResolver) TenantSettings(ctx context.Context) (*related.TenantSettings, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	s, err := r.Store.TenantSettings(ctx, v.Tenant)
	return &s, err
}

// SetTenantSettings changes the tenant's settings.
func (r mutationResolver) SetTenantSettings(ctx context.Context, input graph.SetTenantSettingsInput) (*graph.TenantSettingsPayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.TenantSettingsPayload{ClientMutationID: input.ClientMutationID}
	s, err := r.Store.TenantSettings(ctx, v.Tenant)
	if err != nil {
		return nil, err
	}
	if input.DefaultRegion != nil {
		s.DefaultRegion, err = related.NormalizeRegion(*input.DefaultRegion)
	}
	if err == nil {
		s, err = r.Store.SetTenantSettings(ctx, v.Tenant, s)
		if err == nil {
			payload.Settings = &s
		}
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}
