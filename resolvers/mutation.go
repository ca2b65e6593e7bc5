package resolvers

import (
	"context"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/graph"
	"github.com/relatedhq/related/store"
)

type mutationResolver struct{ *Resolver }

// RecordMessage stores a message, creating its contact and interaction on
// first sight.
func (r mutationResolver) RecordMessage(ctx context.Context, input graph.RecordMessageInput) (*graph.RecordMessagePayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	in := related.RecordMessage{
		Channel:   input.Channel,
		ThreadRef: input.ThreadRef,
		Queue:     deref(input.Queue),
		Direction: input.Direction,
		Body:      input.Body,
		Author:    deref(input.Author),
	}
	if input.Contact != nil {
		in.Contact = related.ContactInput{
			Address:    input.Contact.Address,
			Name:       deref(input.Contact.Name),
			Attributes: attributes(input.Contact.Attributes),
		}
	}
	if input.SentAt != nil {
		in.SentAt = *input.SentAt
	}
	in.ClientMutationID = deref(input.ClientMutationID)
	payload := &graph.RecordMessagePayload{ClientMutationID: input.ClientMutationID}
	in, err = in.Normalize(r.Now())
	if err == nil {
		var res *store.RecordResult
		res, err = r.Store.RecordMessage(ctx, v.Tenant, in)
		if err == nil {
			payload.Interaction, payload.Message = res.Interaction, res.Message
		}
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// CloseInteraction closes an interaction with the state the agent chose.
func (r mutationResolver) CloseInteraction(ctx context.Context, input graph.CloseInteractionInput) (*graph.InteractionPayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.InteractionPayload{}
	id, err := inputID(input.ID, related.NodeInteraction, "id")
	switch {
	case err != nil:
	case !input.State.Valid():
		err = related.Invalid("unknown closed state", "state")
	default:
		payload.Interaction, err = r.Store.CloseInteraction(ctx, v.Tenant, id, input.State, r.Now().UTC().Truncate(time.Millisecond))
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// ReopenInteraction reopens a closed interaction.
func (r mutationResolver) ReopenInteraction(ctx context.Context, input graph.ReopenInteractionInput) (*graph.InteractionPayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.InteractionPayload{}
	id, err := inputID(input.ID, related.NodeInteraction, "id")
	if err == nil {
		payload.Interaction, err = r.Store.ReopenInteraction(ctx, v.Tenant, id)
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// SetContactAttributes records what a workflow learnt about a contact.
func (r mutationResolver) SetContactAttributes(ctx context.Context, input graph.SetContactAttributesInput) (*graph.ContactPayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	payload := &graph.ContactPayload{}
	id, err := inputID(input.ContactID, related.NodeContact, "contactId")
	if err == nil {
		attrs, aerr := related.NormalizeAttributes(attributes(input.Attributes))
		if aerr != nil {
			err = aerr
		} else {
			payload.Contact, err = r.Store.SetContactAttributes(ctx, v.Tenant, id, attrs)
		}
	}
	payload.UserErrors, err = userErrors(at(err, "input"))
	return payload, err
}

// SetPreferences stores the viewer's preferences; omitted fields keep
// their values.
func (r mutationResolver) SetPreferences(ctx context.Context, input graph.SetPreferencesInput) (*graph.PreferencesPayload, error) {
	v, _, err := request(ctx)
	if err != nil {
		return nil, err
	}
	p, err := r.Store.Preferences(ctx, v.Tenant, v.Principal)
	if err != nil {
		return nil, err
	}
	if input.ShowRelated != nil {
		p.ShowRelated = *input.ShowRelated
	}
	if err := r.Store.SetPreferences(ctx, v.Tenant, v.Principal, p); err != nil {
		return nil, err
	}
	return &graph.PreferencesPayload{Preferences: &p, UserErrors: []*graph.UserError{}}, nil
}

// inputID parses the global id of a mutation's input field, which must
// name a t. A malformed or mistyped id is, to the caller, an id that names
// nothing: a NOT_FOUND error naming field.
func inputID(gid string, t related.NodeType, field string) (string, error) {
	id, err := related.ParseTypedID(gid, t)
	if e, ok := related.AsError(err); ok {
		return "", &related.Error{Code: related.CodeNotFound, Field: []string{field}, Message: "no such " + field + ": " + e.Message}
	}
	return id, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func attributes(in []*graph.AttributeInput) []related.Attribute {
	out := make([]related.Attribute, 0, len(in))
	for _, a := range in {
		if a != nil {
			out = append(out, related.Attribute{Key: a.Key, Value: a.Value})
		}
	}
	return out
}
