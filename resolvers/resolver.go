// Package resolvers translates GraphQL to the gateway's domain and store
// calls. Resolvers stay thin: rules live in package related, persistence in
// package store. Each operation gets its own dataloaders (see loaders.go),
// keyed by the viewer's tenant. There is one file per schema type.
package resolvers

import (
	"context"
	"log/slog"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/store"
)

// Resolver is the root of the resolver tree; gqlgen calls its methods.
type Resolver struct {
	Store store.Store
	Log   *slog.Logger
	// Now is the clock, replaceable in tests.
	Now func() time.Time
	// Hub serves subscriptions (live updates); nil refuses them.
	Hub *live.Hub
	// PresentError shapes the errors the resolvers hand to a transport
	// themselves (a subscription's end), as the server's error presenter
	// shapes all the others; nil gives them a bare code.
	PresentError func(context.Context, error) *gqlerror.Error
}

var _ graph.ResolverRoot = (*Resolver)(nil)

// New returns a Resolver over s.
func New(s store.Store, log *slog.Logger) *Resolver {
	if log == nil {
		log = slog.Default()
	}
	return &Resolver{Store: s, Log: log, Now: time.Now}
}

// Attribute returns the Attribute type's resolvers.
func (r *Resolver) Attribute() graph.AttributeResolver { return attributeResolver{r} }

// Erasure returns the Erasure type's resolvers.
func (r *Resolver) Erasure() graph.ErasureResolver { return erasureResolver{r} }

// HubValue returns the HubValue type's resolvers.
func (r *Resolver) HubValue() graph.HubValueResolver { return hubValueResolver{r} }

// ProfileEvent returns the ProfileEvent type's resolvers.
func (r *Resolver) ProfileEvent() graph.ProfileEventResolver { return profileEventResolver{r} }

// ProfileSuggestion returns the ProfileSuggestion type's resolvers.
func (r *Resolver) ProfileSuggestion() graph.ProfileSuggestionResolver {
	return profileSuggestionResolver{r}
}

// TenantSettings returns the TenantSettings type's resolvers.
func (r *Resolver) TenantSettings() graph.TenantSettingsResolver { return tenantSettingsResolver{r} }

// ContactSnapshot returns the ContactSnapshot type's resolvers.
func (r *Resolver) ContactSnapshot() graph.ContactSnapshotResolver { return contactSnapshotResolver{r} }

// ProfileSnapshot returns the ProfileSnapshot type's resolvers.
func (r *Resolver) ProfileSnapshot() graph.ProfileSnapshotResolver { return profileSnapshotResolver{r} }

// RuleEvaluation returns the RuleEvaluation type's resolvers.
func (r *Resolver) RuleEvaluation() graph.RuleEvaluationResolver { return ruleEvaluationResolver{r} }

// Contact returns the Contact type's resolvers.
func (r *Resolver) Contact() graph.ContactResolver { return contactResolver{r} }

// Interaction returns the Interaction type's resolvers.
func (r *Resolver) Interaction() graph.InteractionResolver { return interactionResolver{r} }

// InteractionConnection returns the InteractionConnection type's resolvers.
func (r *Resolver) InteractionConnection() graph.InteractionConnectionResolver {
	return interactionConnectionResolver{r}
}

// Message returns the Message type's resolvers.
func (r *Resolver) Message() graph.MessageResolver { return messageResolver{r} }

// MessageConnection returns the MessageConnection type's resolvers.
func (r *Resolver) MessageConnection() graph.MessageConnectionResolver {
	return messageConnectionResolver{r}
}

// Mutation returns the mutations' resolvers.
func (r *Resolver) Mutation() graph.MutationResolver { return mutationResolver{r} }

// Profile returns the Profile type's resolvers.
func (r *Resolver) Profile() graph.ProfileResolver { return profileResolver{r} }

// ProfileConflict returns the ProfileConflict type's resolvers.
func (r *Resolver) ProfileConflict() graph.ProfileConflictResolver { return profileConflictResolver{r} }

// ProfileLink returns the ProfileLink type's resolvers.
func (r *Resolver) ProfileLink() graph.ProfileLinkResolver { return profileLinkResolver{r} }

// ProfileRule returns the ProfileRule type's resolvers.
func (r *Resolver) ProfileRule() graph.ProfileRuleResolver { return profileRuleResolver{r} }

// Query returns the queries' resolvers.
func (r *Resolver) Query() graph.QueryResolver { return queryResolver{r} }

// Subscription returns the subscriptions' resolvers (subscription.go).
func (r *Resolver) Subscription() graph.SubscriptionResolver { return subscriptionResolver{r} }

// Viewer returns the Viewer type's resolvers.
func (r *Resolver) Viewer() graph.ViewerResolver { return viewerResolver{r} }

// ptr returns a pointer to s, or nil for the zero string: GraphQL's null
// for an absent optional string.
func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
