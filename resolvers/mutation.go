package resolvers

import (
	"context"
	"fmt"
	"strconv"
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
	actor := related.ActorFrom(ctx)
	in.By = actor
	var attrs []related.Attribute
	if input.Contact != nil {
		attrs, err = attributes(input.Contact.Attributes, v, actor, "contact")
		in.Contact = related.ContactInput{
			Address:    input.Contact.Address,
			Name:       deref(input.Contact.Name),
			Attributes: attrs,
		}
	}
	if input.SentAt != nil {
		in.SentAt = *input.SentAt
	}
	in.ClientMutationID = deref(input.ClientMutationID)
	payload := &graph.RecordMessagePayload{ClientMutationID: input.ClientMutationID, Warnings: []*related.Warning{}}
	if err == nil {
		in, err = in.Normalize(r.Now())
	}
	if err == nil {
		var res *store.RecordResult
		res, err = r.Store.RecordMessage(ctx, v.Tenant, in)
		if err == nil {
			payload.Interaction, payload.Message = res.Interaction, res.Message
			for i := range res.Warnings {
				w := res.Warnings[i]
				w.Field = append([]string{"input"}, w.Field...)
				payload.Warnings = append(payload.Warnings, &w)
			}
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
	payload := &graph.InteractionPayload{ClientMutationID: input.ClientMutationID}
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
	payload := &graph.InteractionPayload{ClientMutationID: input.ClientMutationID}
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
	payload := &graph.ContactPayload{ClientMutationID: input.ClientMutationID}
	actor := related.ActorFrom(ctx)
	id, err := r.contactInputID(ctx, v.Tenant, input.ContactID, "contactId")
	var attrs []related.Attribute
	if err == nil {
		attrs, err = attributes(input.Attributes, v, actor)
	}
	if err == nil {
		var aerr *related.Error
		if attrs, aerr = related.NormalizeAttributes(attrs); aerr != nil {
			err = aerr
		} else {
			payload.Contact, err = r.Store.SetContactAttributes(ctx, v.Tenant, id, attrs, actor)
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
	return &graph.PreferencesPayload{Preferences: &p, UserErrors: []*graph.UserError{}, ClientMutationID: input.ClientMutationID}, nil
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

// contactInputID parses the contact id of a mutation's input. The id of a
// contact that canonicalization folded into another (two spellings of one
// address) leads to the contact it became, as node(id:) does, so an id a
// workflow kept keeps working.
func (r *Resolver) contactInputID(ctx context.Context, tenant, gid, field string) (string, error) {
	id, err := inputID(gid, related.NodeContact, field)
	if err != nil {
		return "", err
	}
	m, err := r.Store.ContactAliases(ctx, tenant, []string{id})
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", field, err)
	}
	if to, ok := m[id]; ok {
		return to, nil
	}
	return id, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// attributes turns attribute inputs into attributes set by actor. Only
// admin and integration keys may attest a value: an agent can never merge
// two profiles, directly or through what it types. Errors name the
// attribute's "attested" field under path.
func attributes(in []*graph.AttributeInput, v related.Viewer, actor related.Actor, path ...string) ([]related.Attribute, error) {
	out := make([]related.Attribute, 0, len(in))
	for i, a := range in {
		if a == nil {
			continue
		}
		attested := a.Attested != nil && *a.Attested
		if attested && v.Role != related.RoleAdmin && v.Role != related.RoleIntegration {
			return nil, related.Invalid("only admin and integration keys may attest a value", append(path, "attributes", strconv.Itoa(i), "attested")...)
		}
		out = append(out, related.Attribute{Key: a.Key, Value: a.Value, Attested: attested, By: actor.Name, Role: actor.Role})
	}
	return out, nil
}
