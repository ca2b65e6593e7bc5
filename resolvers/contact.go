package resolvers

import (
	"context"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

type contactResolver struct{ *Resolver }

type attributeResolver struct{ *Resolver }

// Source is ATTESTED when an admin or an integration vouched for the value.
func (attributeResolver) Source(_ context.Context, obj *related.Attribute) (identity.Source, error) {
	if obj.Attested {
		return identity.Attested, nil
	}
	return identity.Claimed, nil
}

// By is who set the attribute, in words; null when unknown.
func (attributeResolver) By(_ context.Context, obj *related.Attribute) (*string, error) {
	return ptr(related.Actor{Name: obj.By, Role: obj.Role}.String()), nil
}

// SetAt is when the attribute was set; null when unknown.
func (attributeResolver) SetAt(_ context.Context, obj *related.Attribute) (*time.Time, error) {
	if obj.At.IsZero() {
		return nil, nil
	}
	t := obj.At
	return &t, nil
}
